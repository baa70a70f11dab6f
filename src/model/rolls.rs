//! Rolls to tensors for the networks, and network output back to rolls.

use super::card::Decoding;
use super::kernels::for_each_record;
use super::kernels::onset_cutoffs::{softened, write_cutoffs};
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

/// `u < sigmoid(x)` for a draw `u` and a cell whose
/// [`onset_cutoff`](super::kernels::onset_cutoffs::onset_cutoff) is `cutoff`, its softened
/// logit `x` (and the exponential) computed only for a draw below the cutoff.
#[inline(always)]
fn fires_at(u: f32, cutoff: f32, x: impl FnOnce() -> f32) -> bool {
    u < cutoff && u < sigmoid(x())
}

/// Draws compared with their cutoffs at once before any is looked at alone: one AVX-512
/// vector of them.
const DRAW_BLOCK: usize = 16;

/// A draw as `rng.random::<f32>()` makes it from the word it takes: its top 24 bits over
/// 2^24. A step's words are taken at once (`Rng::fill` takes them in the order single
/// draws would), which lets the comparisons run as one loop.
#[inline(always)]
fn unit_draw(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
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
    logits_to_rolls(representation, logits, 1, options, rng).pop().expect("one phrase in, one roll out")
}

/// [`logits_to_roll`] for `phrases` phrases laid one after another in `logits`, giving the
/// rolls (and leaving `rng` where) decoding them one after another would. The draws follow
/// one another on one stream, so they are made in turn on this thread; what they are first
/// compared with depends on the logits alone, and is computed ahead (for a large batch, on
/// every core of candle's pool).
pub fn logits_to_rolls<R: Rng>(
    representation: &Arc<Representation>,
    logits: &[f32],
    phrases: usize,
    options: &DecodeOptions,
    rng: &mut R,
) -> Vec<Roll> {
    let per_phrase = logits.len() / phrases.max(1);
    assert_eq!(per_phrase * phrases, logits.len(), "{} logits for {phrases} phrases", logits.len());
    let onset_bias = logit(options.onset_threshold.clamp(1e-6, 1.0 - 1e-6));
    let onset_cells = per_phrase / 2;
    let mut cutoffs = Vec::new();
    if options.temperature > 0.0 {
        cutoffs.resize(phrases * onset_cells, 0.0);
        for_each_record(&mut cutoffs, onset_cells.max(1), onset_cells, |first, part| {
            for (phrase, cutoffs) in (first..).zip(part.chunks_mut(onset_cells)) {
                write_cutoffs(cutoffs, &logits[phrase * per_phrase..][..onset_cells], onset_bias, options.temperature);
            }
        });
    }
    (0..phrases)
        .map(|phrase| {
            let logits = &logits[phrase * per_phrase..][..per_phrase];
            let cutoffs = cutoffs.get(phrase * onset_cells..(phrase + 1) * onset_cells).unwrap_or(&[]);
            phrase_to_roll(representation, logits, cutoffs, onset_bias, options, rng)
        })
        .collect()
}

/// One phrase of [`logits_to_rolls`], with its cells' onset cutoffs (none at temperature 0).
fn phrase_to_roll<R: Rng>(
    representation: &Arc<Representation>,
    logits: &[f32],
    cutoffs: &[f32],
    onset_bias: f32,
    options: &DecodeOptions,
    rng: &mut R,
) -> Roll {
    let (tracks, pitches) = (representation.track_count(), representation.pitch_count());
    let steps = logits.len() / (2 * tracks * pitches);
    let plane = steps * pitches;
    let sustain_bias = logit(options.sustain_threshold.clamp(1e-6, 1.0 - 1e-6));
    let mut roll = Roll::new(representation.clone(), steps);
    // Notes still sounding: (pitch row, start step).
    let mut open: Vec<(usize, usize)> = Vec::with_capacity(pitches);
    let mut notes: Vec<GridNote> = Vec::new();
    let mut firing: Vec<usize> = Vec::with_capacity(pitches);
    let mut starting: Vec<usize> = Vec::with_capacity(pitches);
    let mut weights: Vec<f32> = Vec::with_capacity(pitches);
    let mut draws = vec![0u32; pitches];
    for track in 0..tracks {
        let onsets = &logits[track * plane..(track + 1) * plane];
        let sustains = &logits[(tracks + track) * plane..(tracks + track + 1) * plane];
        let track_cutoffs = cutoffs.get(track * plane..(track + 1) * plane).unwrap_or(&[]);
        let close = |row: usize, start: usize, end: usize, notes: &mut Vec<GridNote>| {
            notes.push(GridNote {
                track,
                start,
                pitch: representation.pitch_of_row(row),
                length: end - start,
                velocity: options.velocity,
            });
        };
        notes.clear();
        open.clear();
        for step in 0..steps {
            let at = |row: usize| step * pitches + row;
            firing.clear();
            if options.temperature <= 0.0 {
                firing.extend((0..pitches).filter(|&row| onsets[at(row)] >= onset_bias));
            } else {
                rng.fill(&mut draws[..]);
                let step_cutoffs = &track_cutoffs[at(0)..at(pitches)];
                for (first, (words, cutoffs)) in
                    (0..).step_by(DRAW_BLOCK).zip(draws.chunks(DRAW_BLOCK).zip(step_cutoffs.chunks(DRAW_BLOCK)))
                {
                    // Nearly every draw lies at or above its cutoff: a block of them is ruled
                    // out by one vector comparison, without a branch per cell.
                    let any_below = words.iter().zip(cutoffs).fold(false, |any, (&w, &c)| any | (unit_draw(w) < c));
                    if any_below {
                        firing.extend((first..first + words.len()).filter(|&row| {
                            fires_at(unit_draw(draws[row]), step_cutoffs[row], || {
                                softened(onsets[at(row)], onset_bias, options.temperature)
                            })
                        }));
                    }
                }
            }
            starting.clear();
            if !options.monophonic[track] || firing.len() < 2 {
                starting.extend_from_slice(&firing);
            } else if options.temperature <= 0.0 {
                starting.extend(firing.iter().copied().max_by(|&a, &b| onsets[at(a)].total_cmp(&onsets[at(b)])));
            } else {
                // One voice, several candidates: drawn by their softened probabilities, so that
                // sampling varies the melody and not only the rhythm.
                weights.clear();
                weights.extend(firing.iter().map(|&row| (onsets[at(row)] / options.temperature).exp()));
                let mut pick = rng.random::<f32>() * weights.iter().sum::<f32>();
                let chosen = firing.iter().zip(&weights).find(|(_, &w)| {
                    pick -= w;
                    pick <= 0.0
                });
                starting.push(*chosen.map_or(firing.last().expect("two candidates or more"), |(row, _)| row));
            }
            open.retain(|&(row, start)| {
                let cut = starting.contains(&row) || (options.monophonic[track] && !starting.is_empty());
                let ends = cut || sustains[at(row)] < sustain_bias;
                if ends {
                    close(row, start, step, &mut notes);
                }
                !ends
            });
            open.extend(starting.iter().map(|&row| (row, step)));
        }
        for &(row, start) in &open {
            close(row, start, steps, &mut notes);
        }
        for &note in &notes {
            roll.place(note).expect("decoded notes lie inside the roll");
        }
    }
    roll
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kernels::onset_cutoffs::onset_cutoff;

    #[test]
    fn a_batch_decodes_as_its_phrases_one_after_another() {
        use crate::roll::{one_bar_grid, TrackSpec};
        use rand::SeedableRng;
        use rand_chacha::ChaCha8Rng;
        let grid = one_bar_grid((0..4).map(|c| TrackSpec::new(format!("t{c}"), c)).collect());
        // Enough phrases and cells that the cutoffs are computed on the pool's threads.
        let phrases = 24;
        let per_phrase = 2 * grid.track_count() * grid.steps_per_phrase() * grid.pitch_count();
        let mut values = ChaCha8Rng::seed_from_u64(3);
        let logits: Vec<f32> = (0..phrases * per_phrase).map(|_| values.random_range(-9.0..3.0)).collect();
        let options = DecodeOptions {
            onset_threshold: 0.3,
            sustain_threshold: 0.5,
            temperature: 0.8,
            monophonic: vec![true, false, true, false],
            velocity: 90,
            density: 0.0,
            rest_bias: 0.0,
            crossing_bias: 0.0,
            parallel_bias: 0.0,
            new_note_bias: 0.0,
            short_note_bias: 0.0,
            repeat_bias: 0.0,
            leap_bias: 0.0,
            guide: None,
        };
        let mut batch_rng = ChaCha8Rng::seed_from_u64(9);
        let batch = logits_to_rolls(&grid, &logits, phrases, &options, &mut batch_rng);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let one_by_one: Vec<Roll> =
            logits.chunks(per_phrase).map(|phrase| logits_to_roll(&grid, phrase, &options, &mut rng)).collect();
        assert!(batch.iter().all(|roll| !roll.notes().is_empty()), "every phrase has notes");
        assert!(batch == one_by_one, "the batch's rolls are those decoded one after another");
        assert_eq!(batch_rng.get_word_pos(), rng.get_word_pos());
    }

    #[test]
    fn draws_taken_a_step_at_once_are_the_single_draws() {
        use rand::SeedableRng;
        use rand_chacha::ChaCha8Rng;
        let (mut at_once, mut one_by_one) = (ChaCha8Rng::seed_from_u64(5), ChaCha8Rng::seed_from_u64(5));
        for len in [1, 7, 48, 130] {
            let mut words = vec![0u32; len];
            at_once.fill(&mut words[..]);
            for word in words {
                assert_eq!(unit_draw(word), one_by_one.random::<f32>());
            }
        }
        assert_eq!(at_once.get_word_pos(), one_by_one.get_word_pos());
    }

    #[test]
    fn the_cutoff_always_answers_as_the_exact_comparison() {
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
                assert_eq!(fires_at(u, onset_cutoff(x), || x), u < sigmoid(x), "u = {u:e}, x = {x}");
            }
        }
        let never = |u: f32, x: f32| !fires_at(u, onset_cutoff(x), || x);
        assert!(never(0.0, f32::NEG_INFINITY) && never(0.5, f32::NAN));
    }
}
