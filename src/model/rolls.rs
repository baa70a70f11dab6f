//! Rolls to tensors for the networks, and network output back to rolls.

use super::card::Decoding;
use super::voices::sampler::ChordGuide;
use crate::roll::{GridNote, Representation, Roll};
use candle_core::{Device, Result, Tensor};
use rand::Rng;
use std::sync::Arc;

/// Phrases as a batch [batch, 2 * tracks, steps, pitches] of 0/1: every track's onset plane,
/// then every track's sustain plane.
pub fn rolls_to_tensor(rolls: &[&Roll], device: &Device) -> Result<Tensor> {
    let first = rolls.first().expect("a batch holds at least one roll");
    let (tracks, steps, pitches) = (first.track_count(), first.steps(), first.pitch_count());
    let plane = steps * pitches;
    let mut cells = vec![0f32; rolls.len() * 2 * tracks * plane];
    for (item, roll) in rolls.iter().enumerate() {
        assert_eq!(
            (roll.track_count(), roll.steps(), roll.pitch_count()),
            (tracks, steps, pitches),
            "one shape per batch"
        );
        for track in 0..tracks {
            let onset_base = (item * 2 * tracks + track) * plane;
            let sustain_base = (item * 2 * tracks + tracks + track) * plane;
            for step in 0..steps {
                for (row, (&velocity, &sounding)) in
                    roll.onsets_at(track, step).iter().zip(roll.sounding_at(track, step)).enumerate()
                {
                    cells[onset_base + step * pitches + row] = f32::from(u8::from(velocity > 0));
                    cells[sustain_base + step * pitches + row] = f32::from(u8::from(sounding));
                }
            }
        }
    }
    Tensor::from_vec(cells, (rolls.len(), 2 * tracks, steps, pitches), device)
}

/// How a phrase's logits become notes.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeOptions {
    pub onset_threshold: f32,
    pub sustain_threshold: f32,
    /// 0 decodes by threshold alone (the same logits always give the same notes); above 0,
    /// onsets are drawn at random around the threshold, more freely as it grows.
    pub temperature: f32,
    pub monophonic: Vec<bool>,
    pub velocity: u8,
    /// −1…1, as the density control asks: already in `onset_threshold` for models of
    /// independent cells; the voice decoder reads it as a bias towards new notes.
    pub density: f32,
    /// Voice decoder: added to each voice's rest score (see [`Decoding::rest_bias`]).
    pub rest_bias: f32,
    /// Voice decoder: added to every choice that crosses a voice above (see
    /// [`Decoding::crossing_bias`]).
    pub crossing_bias: f32,
    /// Voice decoder: added to every new note in parallel fifths or octaves with a voice
    /// above (see [`Decoding::parallel_bias`]).
    pub parallel_bias: f32,
    /// Voice decoder: added to every new-note score besides what `density` adds (harmonise
    /// sets [`Decoding::harmonise_bias`] here).
    pub new_note_bias: f32,
    /// Voice decoder: added to every choice ending a note one step long (harmonise sets
    /// [`Decoding::harmonise_short_note_bias`] here).
    pub short_note_bias: f32,
    /// Voice decoder: added to a voice's repeat of its last pitch (harmonise sets
    /// [`Decoding::harmonise_repeat_bias`] here).
    pub repeat_bias: f32,
    /// Voice decoder: added to a voice's leaps beyond a fifth (harmonise sets
    /// [`Decoding::harmonise_leap_bias`] here).
    pub leap_bias: f32,
    /// Voice decoder: pitches to favour (chords to follow, a key to harmonise in).
    pub guide: Option<ChordGuide>,
}

impl DecodeOptions {
    pub fn from_card(decoding: &Decoding) -> DecodeOptions {
        DecodeOptions {
            onset_threshold: decoding.onset_threshold,
            sustain_threshold: decoding.sustain_threshold,
            temperature: decoding.temperature,
            monophonic: decoding.monophonic.clone(),
            velocity: decoding.default_velocity,
            density: 0.0,
            rest_bias: decoding.rest_bias,
            crossing_bias: decoding.crossing_bias,
            parallel_bias: decoding.parallel_bias,
            new_note_bias: 0.0,
            short_note_bias: 0.0,
            repeat_bias: 0.0,
            leap_bias: 0.0,
            guide: None,
        }
    }
}

/// How far the density control moves the onset threshold at its ends, in logits: at ±1 a note
/// the model gives even odds fires as readily as one it gave 12 % or 88 % at the calibrated
/// threshold, a span that thins a pattern to its strongest notes or fills it to busy.
pub const DENSITY_LOGITS: f32 = 2.0;

impl DecodeOptions {
    /// The options with the onset threshold moved by `density` (−1…1; 0 keeps the calibrated
    /// threshold, above 0 gives more notes).
    pub fn with_density(mut self, density: f32) -> DecodeOptions {
        let threshold = self.onset_threshold.clamp(1e-6, 1.0 - 1e-6);
        self.density = density.clamp(-1.0, 1.0);
        self.onset_threshold = sigmoid(logit(threshold) - DENSITY_LOGITS * self.density);
        self
    }
}

fn logit(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `u < sigmoid(x)`: whether a uniform draw lets a cell sound. Most cells' logits lie far
/// below zero, where e^x bounds sigmoid(x) from above; 2^(⌈x log₂e⌉ + 1) is at least
/// 1.9 e^x, more than rounding can add, so a draw at or above it is decided without the
/// exponential (most of a phrase's decoding time), and the answer is always the exact
/// comparison's. (Truncation rounds these negative powers up, without a call to `floor`.)
#[inline(always)]
fn draw_below_sigmoid(u: f32, x: f32) -> bool {
    let power = ((x * std::f32::consts::LOG2_E) as i32).saturating_add(1).clamp(-126, 0);
    // Above x = −4 the bound is not used (2 rejects nothing); chosen without a branch.
    let bound = if x < -4.0 { f32::from_bits(((power + 127) as u32) << 23) } else { 2.0 };
    u < bound && u < sigmoid(x)
}

/// Turns one phrase's logits, laid out [2 * tracks, steps, pitches] as
/// [`rolls_to_tensor`] lays out its input, into a roll. Pure but for `rng`, which only
/// temperature above 0 draws on.
pub fn logits_to_roll<R: Rng>(
    representation: &Arc<Representation>,
    logits: &[f32],
    options: &DecodeOptions,
    rng: &mut R,
) -> Roll {
    let (tracks, pitches) = (representation.track_count(), representation.pitch_count());
    let steps = logits.len() / (2 * tracks * pitches);
    let plane = steps * pitches;
    let onset_bias = logit(options.onset_threshold.clamp(1e-6, 1.0 - 1e-6));
    let sustain_bias = logit(options.sustain_threshold.clamp(1e-6, 1.0 - 1e-6));
    let mut roll = Roll::new(representation.clone(), steps);
    for track in 0..tracks {
        let onsets = &logits[track * plane..(track + 1) * plane];
        let sustains = &logits[(tracks + track) * plane..(tracks + track + 1) * plane];
        let fires = |logit: f32, rng: &mut R| -> bool {
            if options.temperature <= 0.0 {
                logit >= onset_bias
            } else {
                draw_below_sigmoid(rng.random::<f32>(), (logit - onset_bias) / options.temperature)
            }
        };
        // Notes still sounding: (pitch row, start step).
        let mut open: Vec<(usize, usize)> = Vec::new();
        let mut notes: Vec<GridNote> = Vec::new();
        let close = |row: usize, start: usize, end: usize, notes: &mut Vec<GridNote>| {
            notes.push(GridNote {
                track,
                start,
                pitch: representation.pitch_of_row(row),
                length: end - start,
                velocity: options.velocity,
            });
        };
        let mut firing: Vec<usize> = Vec::with_capacity(pitches);
        for step in 0..steps {
            let at = |row: usize| step * pitches + row;
            firing.clear();
            firing.extend((0..pitches).filter(|&row| fires(onsets[at(row)], rng)));
            let starting: Vec<usize> = if !options.monophonic[track] || firing.len() < 2 {
                firing.clone()
            } else if options.temperature <= 0.0 {
                firing.iter().copied().max_by(|&a, &b| onsets[at(a)].total_cmp(&onsets[at(b)])).into_iter().collect()
            } else {
                // One voice, several candidates: drawn by their softened probabilities, so that
                // sampling varies the melody and not only the rhythm.
                let weights: Vec<f32> =
                    firing.iter().map(|&row| (onsets[at(row)] / options.temperature).exp()).collect();
                let mut pick = rng.random::<f32>() * weights.iter().sum::<f32>();
                let chosen = firing.iter().zip(&weights).find(|(_, &w)| {
                    pick -= w;
                    pick <= 0.0
                });
                vec![*chosen.map_or(firing.last().expect("two candidates or more"), |(row, _)| row)]
            };
            let mut still_open = Vec::with_capacity(open.len());
            for (row, start) in open.drain(..) {
                let cut = starting.contains(&row) || (options.monophonic[track] && !starting.is_empty());
                if cut || sustains[at(row)] < sustain_bias {
                    close(row, start, step, &mut notes);
                } else {
                    still_open.push((row, start));
                }
            }
            open = still_open;
            open.extend(starting.into_iter().map(|row| (row, step)));
        }
        for (row, start) in open {
            close(row, start, steps, &mut notes);
        }
        for note in notes {
            roll.place(note).expect("decoded notes lie inside the roll");
        }
    }
    roll
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_draw_always_answers_as_the_exact_comparison() {
        // Every draw a 24-bit uniform can be near the bound (the draws are multiples of
        // 2^-24), and logits from far below the cut to above it.
        let draws: Vec<f32> = (0..=24)
            .flat_map(|k| {
                let at = (-(k as f32)).exp2();
                [0.0, at, at * 0.999_999, at * 1.000_001, at * 0.5, at * 0.75]
            })
            .collect();
        for i in -20_000..=2_000 {
            let x = i as f32 * 0.005;
            for &u in &draws {
                assert_eq!(draw_below_sigmoid(u, x), u < sigmoid(x), "u = {u:e}, x = {x}");
            }
        }
        assert!(!draw_below_sigmoid(0.0, f32::NEG_INFINITY) && !draw_below_sigmoid(0.5, f32::NAN));
    }
}
