//! Writing from what a producer plays: vary a clip (read it into the latent space and write
//! around that point), harmonise a melody (keep its parts, write the others) and continue a
//! clip (keep its last bars, write the ones that follow). The voice decoder harmonises and
//! continues natively — its context reader was trained on phrases with random parts given —
//! so both are one call, `Generator::complete`, with a different mask; the encoder supplies
//! the latent, so that what is written is in the clip's key and manner.

use super::generator::{voice_sampling, Generator, RenderRequest};
use super::latent::{anchored_latent, phrase_latents};
use super::rolls::DecodeOptions;
use super::voices::sampler::{ChordGuide, ALL_PITCH_CLASSES, GUIDE_BARS};
use crate::metrics::chords::{bar_chords, key_scale, key_scale_of_chords, strong_beat_steps, PitchClasses};
use crate::roll::{Clip, ClipError, Roll, Take, MOST_TAKE_BARS};
use candle_core::{bail, Result};
use nice_plug::prelude::Enum;
use serde::{Deserialize, Serialize};
use rand::SeedableRng;
use std::ops::Range;
use std::sync::Arc;

/// The parts of a phrase that are given, to be kept as they are while the model writes the
/// rest around them: whole tracks (a melody to harmonise) and whole steps (the bars a
/// continuation follows). A cell is given when its track is, or its step is in one of the
/// `steps_in` tracks (every track when empty): the parts a clip leaves silent are the
/// model's to write as it learnt to, not rests it must continue from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GivenParts {
    pub tracks: Vec<usize>,
    pub steps: Range<usize>,
    pub steps_in: Vec<usize>,
}

impl GivenParts {
    fn covers(&self, track: usize, step: usize) -> bool {
        self.tracks.contains(&track) || (self.steps.contains(&step) && (self.steps_in.is_empty() || self.steps_in.contains(&track)))
    }

    /// The notes of `phrase` that start in given cells, alone.
    fn of(&self, phrase: &Roll) -> Roll {
        phrase.only_notes(|note| self.covers(note.track, note.start))
    }
}

/// Where the notes come from: the producer's choice, one type for the plugin's parameter
/// (whose stable IDs projects store), the command line's `--source` and saved settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Enum, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    /// From the latent alone: the seed, the knobs.
    #[default]
    #[id = "dream"]
    Dream,
    /// The clip written again, a distance away.
    #[id = "vary"]
    Vary,
    /// The clip's parts kept, the others written around them.
    #[id = "harmonise"]
    Harmonise,
    /// The bars that follow the clip.
    #[id = "continue"]
    Continue,
    /// From the latent, with strong beats on the chord the producer holds (or the clip's
    /// chord in each bar, a chord track).
    #[id = "follow-chords"]
    #[name = "Follow chords"]
    FollowChords,
}

impl SourceMode {
    pub const ALL: [SourceMode; 5] = [SourceMode::Dream, SourceMode::Vary, SourceMode::Harmonise, SourceMode::Continue, SourceMode::FollowChords];

    pub fn name(self) -> &'static str {
        match self {
            SourceMode::Dream => "dream",
            SourceMode::Vary => "vary",
            SourceMode::Harmonise => "harmonise",
            SourceMode::Continue => "continue",
            SourceMode::FollowChords => "follow chords",
        }
    }
}

/// The source of a render and how it reads the clip.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub mode: SourceMode,
    /// Vary: 0 plays the clip as the model reads it, 1 is unrelated to it.
    pub distance: f32,
    /// Harmonise: the parts to keep; empty keeps every part the clip plays.
    pub keep: Vec<usize>,
    /// Follow chords: one chord per bar, repeating (pitch classes, bit c for pitch class c);
    /// empty reads each bar's chord from the clip.
    #[serde(default)]
    pub chords: Vec<PitchClasses>,
    /// Dream: between two stored points rather than from the seed alone.
    #[serde(default)]
    pub morph: Option<Morph>,
}

/// A point in the latent space a producer stores to morph from or to: the seed and knobs of
/// a pattern they liked, or a clip as the encoder reads it. Stored as what made it, not as
/// numbers, so that it means the same music after a project is reopened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MorphPoint {
    Dream { seed: u64, knobs: Vec<f32>, named: Vec<f32> },
    Clip(Take),
}

/// Two points and how far from the first to the second (0 is A, 1 is B).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Morph {
    pub a: MorphPoint,
    pub b: MorphPoint,
    pub amount: f32,
}

/// Spherical interpolation: Gaussian latents lie near a sphere, and the straight line
/// between two of them passes through the prior's thin middle (quieter, blander phrases);
/// the arc stays where the decoder learnt.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|y| y * y).sum::<f32>().sqrt();
    let omega = (dot / norms.max(f32::MIN_POSITIVE)).clamp(-1.0, 1.0).acos();
    if omega.abs() < 1e-4 || !omega.is_finite() {
        return a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    }
    let (wa, wb) = (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin());
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// Why a source cannot render, in words for the status line and the command line.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{} needs a clip: play into Dreamroll while the transport runs, or load a MIDI file", .0.name())]
    NoClip(SourceMode),
    #[error("the distance must be 0..=1")]
    Distance,
    #[error("part {part} to keep: this model has parts 1 to {parts}")]
    NoSuchPart { part: usize, parts: usize },
    #[error("the clip plays all {0} parts, so there is nothing to harmonise; keep fewer parts (the top one alone, say)")]
    NothingToHarmonise(usize),
    #[error("follow chords needs a chord: hold one on Dreamroll's MIDI input, or give a clip of chords")]
    NoChord,
    #[error("the model failed to render: {0}")]
    Model(#[from] candle_core::Error),
}

/// How much less likely (in logits) a harmonising part's pitch outside the melody's key and
/// its usual alterations is, at every step: enough to keep the harmony in the melody's key,
/// not so much that a chromatic passing note the model is sure of cannot be written.
pub const KEY_BIAS: f32 = -3.0;

/// How much less likely (in logits) a pitch outside the chord is on a strong beat: strong
/// enough that a guided phrase follows the chord, short of forbidding what the model is
/// sure of (a suspension held into the beat).
pub const CHORD_BIAS: f32 = -6.0;

impl Generator {
    /// A take (a recording or a MIDI file's start) as this model reads it: its first `bars` bars.
    pub fn read_take(&self, take: &Take, bars: usize) -> std::result::Result<Clip, ClipError> {
        let card = self.card();
        take.clip(&Arc::new(card.representation.clone()), card.training.track_assignment, bars)
    }

    /// The decoded bars `source` asks for: the one entry point of the plugin's engine and of
    /// `dreamroll render`, so that both write the same notes from the same clip and settings.
    pub fn render_from(&self, request: &RenderRequest, source: &Source, clip: Option<&Clip>) -> std::result::Result<Roll, SourceError> {
        match (source.mode, clip) {
            (SourceMode::Dream, _) => Ok(match &source.morph {
                Some(morph) => self.render_morph(request, morph)?,
                None => self.render(request)?,
            }),
            (SourceMode::FollowChords, clip) => {
                let mut chords = if source.chords.is_empty() { clip.map(|c| bar_chords(&c.roll)).unwrap_or_default() } else { source.chords.clone() };
                // A silent bar of a chord track keeps the chord before it.
                for bar in 1..chords.len() {
                    if chords[bar] == 0 {
                        chords[bar] = chords[bar - 1];
                    }
                }
                if chords.iter().all(|&c| c == 0) {
                    return Err(SourceError::NoChord);
                }
                let first = chords.iter().copied().find(|&c| c != 0).expect("a chord, checked above");
                chords.iter_mut().take_while(|c| **c == 0).for_each(|c| *c = first);
                Ok(self.render_following(request, &chords)?)
            }
            (mode, None) => Err(SourceError::NoClip(mode)),
            (SourceMode::Vary, Some(clip)) => {
                if !(0.0..=1.0).contains(&source.distance) {
                    return Err(SourceError::Distance);
                }
                Ok(self.render_varied(request, &clip.roll, source.distance)?)
            }
            (SourceMode::Harmonise, Some(clip)) => {
                let parts = self.card().representation.track_count();
                if let Some(&part) = source.keep.iter().find(|&&k| k >= parts) {
                    return Err(SourceError::NoSuchPart { part: part + 1, parts });
                }
                let kept = if source.keep.is_empty() { clip.tracks_given.clone() } else { source.keep.clone() };
                if kept.len() >= parts {
                    return Err(SourceError::NothingToHarmonise(parts));
                }
                Ok(self.render_harmonised(request, &clip.roll, &kept)?)
            }
            (SourceMode::Continue, Some(clip)) => Ok(self.render_continued(request, &clip.roll)?),
        }
    }

    /// `phrase` (one phrase on the model's grid) with its `given` parts kept and the rest
    /// written under `latent` (velocities are the pattern's to set, as for every note). Only
    /// the voice decoder can: the other presets decode every cell at once, with nothing to
    /// hold fixed.
    pub fn complete(&self, phrase: &Roll, given: &GivenParts, latent: &[f32], options: &DecodeOptions, rng: &mut impl rand::Rng) -> Result<Roll> {
        let card = self.card();
        let Some(decoder) = self.voice_decoder() else {
            bail!("the {} preset writes every note at once and cannot keep given ones; a voices model can", card.preset)
        };
        let representation = Arc::new(card.representation.clone());
        if phrase.representation() != &representation || phrase.steps() != representation.steps_per_phrase() {
            bail!("a phrase to complete must be one phrase on the model's own grid");
        }
        if let Some(&track) = given.tracks.iter().find(|&&t| t >= representation.track_count()) {
            bail!("part {} is not one of the model's {} parts", track + 1, representation.track_count());
        }
        let tokens = super::voices::tokens::roll_to_tokens(phrase).tokens;
        let choices: Vec<Vec<Option<u32>>> =
            tokens.iter().enumerate().map(|(step, row)| row.iter().enumerate().map(|(track, &token)| given.covers(track, step).then_some(token)).collect()).collect();
        decoder.complete(&representation, latent, &choices, voice_sampling(options), options.velocity, self.learned_phrases(), rng)
    }

    /// `request.bars` bars between two points: phrase k's latent is `morph.amount` of the way
    /// along the arc from A's phrase-k latent to B's (a clip point repeats its phrases).
    pub fn render_morph(&self, request: &RenderRequest, morph: &Morph) -> Result<Roll> {
        let card = self.card();
        let bars = request.bars.max(1);
        let phrases = bars.div_ceil(usize::from(card.representation.bars_per_phrase));
        let (a, b) = (self.point_latents(&morph.a, request, phrases)?, self.point_latents(&morph.b, request, phrases)?);
        let latents: Vec<Vec<f32>> = a.iter().zip(&b).map(|(a, b)| slerp(a, b, morph.amount.clamp(0.0, 1.0))).collect();
        Ok(self.decode_latents(&latents, request)?.slice(0..bars * card.representation.steps_per_bar()))
    }

    /// A point's latents for `count` phrases.
    fn point_latents(&self, point: &MorphPoint, request: &RenderRequest, count: usize) -> Result<Vec<Vec<f32>>> {
        match point {
            MorphPoint::Dream { seed, knobs, named } => Ok(phrase_latents(self.card(), *seed, super::latent::Knobs { macros: knobs, named }, request.variation, count)),
            MorphPoint::Clip(take) => {
                let clip = self.read_take(take, MOST_TAKE_BARS as usize).map_err(|e| candle_core::Error::Msg(format!("a morph point's clip: {e}")))?;
                let Some(codes) = self.encode(&self.clip_phrases(&clip.roll))? else {
                    bail!("model {} has no encoder (encoder.safetensors) to read a clip with", self.card().name)
                };
                Ok((0..count).map(|k| codes[k % codes.len()].clone()).collect())
            }
        }
    }

    /// `request.bars` bars from the seed's latent walk, as `render` writes them, but with the
    /// strong beats of bar b on `chords[b % chords.len()]` (see [`ChordGuide`]).
    pub fn render_following(&self, request: &RenderRequest, chords: &[PitchClasses]) -> Result<Roll> {
        let card = self.card();
        let Some(decoder) = self.voice_decoder() else {
            bail!("the {} preset writes every note at once and cannot follow chords; a voices model can", card.preset)
        };
        if chords.is_empty() {
            bail!("no chord to follow");
        }
        let representation = Arc::new(card.representation.clone());
        let bars_per_phrase = usize::from(representation.bars_per_phrase);
        let bars = request.bars.max(1);
        let latents = phrase_latents(card, request.seed, request.steering(), request.variation, bars.div_ceil(bars_per_phrase));
        let options = self.request_options(request);
        // Between strong beats the notes keep to the key the chords are in.
        let scale = key_scale_of_chords(chords);
        let mut phrases = Vec::with_capacity(latents.len());
        for (k, z) in latents.iter().enumerate() {
            let mut guide = ChordGuide {
                bars: [0; GUIDE_BARS],
                steps_per_bar: representation.steps_per_bar(),
                strong_steps: strong_beat_steps(&representation),
                lowest_pitch: representation.lowest_pitch,
                bias: CHORD_BIAS,
                scale: scale.unwrap_or(ALL_PITCH_CLASSES),
                scale_bias: KEY_BIAS,
            };
            for (b, chord) in guide.bars.iter_mut().enumerate().take(bars_per_phrase) {
                *chord = chords[(k * bars_per_phrase + b) % chords.len()];
            }
            let sampling = voice_sampling(&DecodeOptions { guide: Some(guide), ..options.clone() });
            phrases.extend(decoder.phrases(&representation, std::slice::from_ref(z), sampling, options.velocity, self.learned_phrases(), &mut phrase_stream(request.seed, z))?);
        }
        Ok(Roll::concat(&phrases).expect("at least one phrase").slice(0..bars * representation.steps_per_bar()))
    }

    /// The clip varied, phrase by phrase, the way a composer reworks a passage: a share
    /// `distance` of it is written again and the rest kept (DeepBach's and Coconet's
    /// rewriting). Of several parts, that many parts (rounded up) are rewritten, chosen by
    /// the seed; of one part, its last bars. What is rewritten is written under the
    /// encoder's reading of the phrase, `distance` away, and kept to the clip's key the more
    /// firmly the nearer it is, so it stays in the clip's key and manner; at 0 the clip plays
    /// as it is, at 1 the whole phrase is new and unrelated (the knobs move from there). The
    /// length is the clip's.
    pub fn render_varied(&self, request: &RenderRequest, clip: &Roll, distance: f32) -> Result<Roll> {
        let distance = distance.clamp(0.0, 1.0);
        let representation = &self.card().representation;
        let phrases = self.clip_phrases(clip);
        let Some(codes) = self.encode(&phrases)? else {
            bail!("model {} has no encoder (encoder.safetensors) to read a clip with", self.card().name)
        };
        let guide = self.clip_key_guide(clip).map(|guide| ChordGuide { scale_bias: guide.scale_bias * (1.0 - distance), ..guide });
        let options = DecodeOptions { guide, ..self.request_options(request) };
        let mut written = Vec::with_capacity(phrases.len());
        let played = clip.sounding_tracks();
        for (k, (phrase, code)) in phrases.iter().zip(&codes).enumerate() {
            let z = anchored_latent(self.card(), code, request.seed, k, request.steering(), distance);
            let kept = kept_when_varied(&played, usize::from(representation.bars_per_phrase), representation.steps_per_bar(), distance, request.seed, k);
            let everything_kept = kept.tracks.len() == played.len() || kept.steps.len() == phrase.steps();
            // A variation of a melody is a melody: what the model wrote in the parts the clip
            // leaves silent (its context while writing) is dropped.
            written.push(if everything_kept { phrase.clone() } else { self.complete(phrase, &kept, &z, &options, &mut phrase_stream(request.seed, &z))?.only_notes(|note| played.contains(&note.track)) });
        }
        Ok(Roll::concat(&written).expect("a clip holds at least one phrase").slice(0..clip.steps()))
    }

    /// The clip's bars harmonised: for each phrase of `clip`, its `given_tracks` kept and the
    /// other parts written, cut back to the clip's length. The latent is the encoder's
    /// reading of the given parts, `request.variation` away (so the harmony is in the
    /// melody's key); a model without an encoder takes the seed's latent walk. New notes get
    /// the card's harmonise bias, so that the written parts move as often as the composer's.
    pub fn render_harmonised(&self, request: &RenderRequest, clip: &Roll, given_tracks: &[usize]) -> Result<Roll> {
        let given = GivenParts { tracks: given_tracks.to_vec(), ..GivenParts::default() };
        let phrases = self.clip_phrases(clip);
        // The written parts keep to the key of the given ones (the encoder's reading of a lone
        // melody carries its key only loosely).
        let guide = self.key_guide(key_scale(clip, given_tracks));
        let decoding = &self.card().decoding;
        let options = DecodeOptions {
            new_note_bias: decoding.harmonise_bias,
            short_note_bias: decoding.harmonise_short_note_bias,
            rest_bias: decoding.rest_bias + decoding.harmonise_rest_bias,
            repeat_bias: decoding.harmonise_repeat_bias,
            leap_bias: decoding.harmonise_leap_bias,
            guide,
            ..self.request_options(request)
        };
        let mut written = Vec::with_capacity(phrases.len());
        for (k, phrase) in phrases.iter().enumerate() {
            let z = self.latent_for_given(&given, phrase, request, k)?;
            written.push(self.complete(phrase, &given, &z, &options, &mut phrase_stream(request.seed, &z))?);
        }
        Ok(Roll::concat(&written).expect("a clip holds at least one phrase").slice(0..clip.steps()))
    }

    /// `request.bars` bars that follow the clip: each phrase is written after the half
    /// phrase before it (the clip's last bars first, then the newest written), in the clip's
    /// key, so the music carries on rather than starting again or wandering off.
    pub fn render_continued(&self, request: &RenderRequest, clip: &Roll) -> Result<Roll> {
        let representation = &self.card().representation;
        let (bar, phrase_bars) = (representation.steps_per_bar(), usize::from(representation.bars_per_phrase));
        let context_bars = (phrase_bars / 2).max(1);
        let new_bars = phrase_bars - context_bars;
        if new_bars == 0 {
            bail!("a model of one-bar phrases has no room to continue in");
        }
        let wanted = request.bars.max(1);
        let given = GivenParts { tracks: Vec::new(), steps: 0..context_bars * bar, steps_in: clip.sounding_tracks() };
        let grid = clip.representation();
        let options = DecodeOptions { guide: self.clip_key_guide(clip), ..self.request_options(request) };
        let mut so_far = clip.clone();
        for k in 0..wanted.div_ceil(new_bars) {
            let tail = so_far.slice(so_far.steps().saturating_sub(context_bars * bar)..so_far.steps());
            // A clip shorter than the context sits at its end, after silence.
            let before = Roll::new(grid.clone(), context_bars * bar - tail.steps());
            let phrase = Roll::concat(&[before, tail, Roll::new(grid.clone(), new_bars * bar)]).expect("parts of one grid");
            let z = self.latent_for_given(&given, &phrase, request, k)?;
            let written = self.complete(&phrase, &given, &z, &options, &mut phrase_stream(request.seed, &z))?;
            so_far = Roll::concat(&[so_far, written.slice(context_bars * bar..written.steps())]).expect("one grid");
        }
        Ok(so_far.slice(clip.steps()..clip.steps() + wanted * bar))
    }

    /// A guide that keeps what is written in `scale` (`None`: no guide).
    fn key_guide(&self, scale: Option<PitchClasses>) -> Option<ChordGuide> {
        let representation = &self.card().representation;
        scale.map(|scale| ChordGuide::scale_only(scale, representation.steps_per_bar(), representation.lowest_pitch, KEY_BIAS))
    }

    /// The key of every part the clip plays, as a guide for what is written from it.
    fn clip_key_guide(&self, clip: &Roll) -> Option<ChordGuide> {
        self.key_guide(key_scale(clip, &(0..clip.track_count()).collect::<Vec<_>>()))
    }

    /// The latent to write phrase `k` under: the encoder's reading of its given parts,
    /// `request.variation` away, or without an encoder the seed's latent walk.
    fn latent_for_given(&self, given: &GivenParts, phrase: &Roll, request: &RenderRequest, k: usize) -> Result<Vec<f32>> {
        let card = self.card();
        Ok(match self.encode(&[given.of(phrase)])? {
            Some(codes) => anchored_latent(card, &codes[0], request.seed, k, request.steering(), request.variation),
            None => phrase_latents(card, request.seed, request.steering(), request.variation, k + 1).swap_remove(k),
        })
    }

    /// The clip as whole phrases, the last padded with silence.
    fn clip_phrases(&self, clip: &Roll) -> Vec<Roll> {
        let representation = &self.card().representation;
        let length = representation.steps_per_phrase();
        let whole = clip.steps().div_ceil(length).max(1) * length;
        let padded = Roll::concat(&[clip.clone(), Roll::new(clip.representation().clone(), whole - clip.steps())]).expect("one grid");
        let bars = usize::from(representation.bars_per_phrase);
        padded.phrases(bars, bars)
    }
}

/// What a variation at `distance` keeps of phrase `k` of a clip that plays the parts
/// `played`: of several, all but ceil(distance x played) are kept, the rewritten ones drawn
/// from the seed's stream for the phrase; of one, its first floor((1 - distance) x bars)
/// bars (the model continues from them). Parts the clip does not play are the model's to
/// write, as it learnt to, and are dropped afterwards (see `render_varied`).
fn kept_when_varied(played: &[usize], bars: usize, steps_per_bar: usize, distance: f32, seed: u64, k: usize) -> GivenParts {
    let mut tracks = Vec::with_capacity(played.len());
    if played.len() > 1 {
        let rewritten = (distance * played.len() as f32).ceil() as usize;
        let mut order = played.to_vec();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k as u64);
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
        tracks.extend_from_slice(&order[rewritten.min(order.len())..]);
        tracks.sort_unstable();
        GivenParts { tracks, ..GivenParts::default() }
    } else {
        let kept_bars = ((1.0 - distance) * bars as f32).floor() as usize;
        GivenParts { tracks, steps: 0..kept_bars * steps_per_bar, steps_in: played.to_vec() }
    }
}

/// The stream a phrase draws from: named by the seed and its latent, as `render` names it.
pub(crate) fn phrase_stream(seed: u64, z: &[f32]) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(crate::hash::fnv1a(seed.to_le_bytes().into_iter().chain(z.iter().flat_map(|v| v.to_le_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::card::{test_card, test_voice_card};
    use crate::model::vae::{Encoder, Shape};
    use crate::roll::GridNote;
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};
    use std::collections::HashMap;

    fn safetensors(varmap: &VarMap) -> Vec<u8> {
        let tensors: HashMap<String, Tensor> = varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        std::fs::read(path).unwrap()
    }

    /// A randomly initialised voices model with an encoder, loaded as from a folder.
    fn voices_with_encoder() -> Generator {
        let card = test_voice_card();
        let (decoder, encoder) = (VarMap::new(), VarMap::new());
        Generator::build(card.clone(), VarBuilder::from_varmap(&decoder, DType::F32, &Device::Cpu), &Device::Cpu).unwrap();
        Encoder::new(Shape::of(&card), VarBuilder::from_varmap(&encoder, DType::F32, &Device::Cpu).pp("encoder")).unwrap();
        Generator::from_bytes(&card.to_json(), &safetensors(&decoder)).unwrap().with_encoder_bytes(&safetensors(&encoder)).unwrap()
    }

    /// Three bars of a melody on the lead (track 0) of the test card's grid.
    fn melody(generator: &Generator) -> Roll {
        let mut roll = Roll::new(Arc::new(generator.card().representation.clone()), 48);
        for (i, pitch) in [60u8, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 71].into_iter().enumerate() {
            roll.place(GridNote { track: 0, start: 4 * i, pitch, length: 4, velocity: 90 }).unwrap();
        }
        roll
    }

    fn sampled() -> RenderRequest {
        RenderRequest { bars: 3, seed: 5, knobs: vec![], variation: 0.3, temperature: Some(1.0), density: 0.0, named: Vec::new() }
    }

    fn track_notes(roll: &Roll, track: usize) -> Vec<GridNote> {
        roll.notes().into_iter().filter(|n| n.track == track).map(|n| GridNote { velocity: 0, ..n }).collect()
    }

    #[test]
    fn harmonising_keeps_the_melody_and_writes_the_other_part_repeatably() {
        let generator = voices_with_encoder();
        let clip = melody(&generator);
        let harmonised = generator.render_harmonised(&sampled(), &clip, &[0]).unwrap();
        assert_eq!(harmonised.steps(), clip.steps(), "the clip's length");
        assert_eq!(track_notes(&harmonised, 0), track_notes(&clip, 0), "the melody as it was played");
        assert!(!track_notes(&harmonised, 1).is_empty(), "a part written under it");
        assert_eq!(harmonised, generator.render_harmonised(&sampled(), &clip, &[0]).unwrap(), "the same request, the same notes");
        assert_ne!(harmonised, generator.render_harmonised(&RenderRequest { seed: 6, ..sampled() }, &clip, &[0]).unwrap());
    }

    #[test]
    fn a_continuation_follows_the_clip_for_the_bars_asked() {
        let generator = voices_with_encoder();
        let clip = melody(&generator);
        let request = RenderRequest { bars: 5, ..sampled() };
        let continued = generator.render_continued(&request, &clip).unwrap();
        assert_eq!(continued.steps(), 5 * 16);
        assert_eq!(continued, generator.render_continued(&request, &clip).unwrap(), "the same request, the same notes");
        // Each written phrase keeps the bar before it as given: with a clip that ends
        // differently, the first bar after it is written differently.
        let other_ending = clip.slice(0..32);
        assert_ne!(continued.slice(0..16), generator.render_continued(&request, &other_ending).unwrap().slice(0..16));
    }

    #[test]
    fn a_variation_rewrites_as_much_of_the_clip_as_its_distance_says() {
        let generator = voices_with_encoder();
        let mut clip = melody(&generator);
        for (i, pitch) in [48u8, 50, 52, 53, 55, 53, 52, 50, 48, 52].into_iter().enumerate() {
            clip.place(GridNote { track: 1, start: 4 * i, pitch, length: 4, velocity: 90 }).unwrap();
        }
        assert_eq!(generator.render_varied(&sampled(), &clip, 0.0).unwrap(), clip, "at 0 the clip plays as it is");
        let half = generator.render_varied(&sampled(), &clip, 0.5).unwrap();
        assert_eq!(half, generator.render_varied(&sampled(), &clip, 0.5).unwrap(), "the same request, the same notes");
        let kept = (0..2).filter(|&t| track_notes(&half, t) == track_notes(&clip, t)).count();
        assert_eq!(kept, 1, "of two parts, one is rewritten and one kept");
        let all_new = generator.render_varied(&sampled(), &clip, 1.0).unwrap();
        assert!((0..2).all(|t| track_notes(&all_new, t) != track_notes(&clip, t)), "at 1 every part is new");
        assert_eq!(kept_when_varied(&[0], 4, 16, 0.3, 8, 0), GivenParts { tracks: vec![], steps: 0..32, steps_in: vec![0] }, "of one part, its first bars are kept");
        assert_eq!(kept_when_varied(&[0, 1, 2, 3], 4, 16, 0.3, 8, 0).tracks.len(), 2, "ceil(1.2) of four parts rewritten");
        let melody_only = generator.render_varied(&sampled(), &melody(&generator), 0.6).unwrap();
        assert!(track_notes(&melody_only, 1).is_empty(), "a varied melody is a melody");
        assert_ne!(track_notes(&melody_only, 0), track_notes(&melody(&generator), 0));
    }

    #[test]
    fn what_a_model_cannot_do_is_said_in_words() {
        let without_encoder = Generator::build(test_voice_card(), VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu), &Device::Cpu).unwrap();
        let clip = melody(&without_encoder);
        let error = without_encoder.render_varied(&sampled(), &clip, 0.2).unwrap_err().to_string();
        assert!(error.contains("has no encoder"), "{error}");
        assert!(without_encoder.render_harmonised(&sampled(), &clip, &[0]).is_ok(), "harmonising falls back on the seed's latents");
        let cells = Generator::build(test_card(), VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu), &Device::Cpu).unwrap();
        let error = cells.render_harmonised(&sampled(), &melody(&cells), &[0]).unwrap_err().to_string();
        assert!(error.contains("cannot keep given ones; a voices model can"), "{error}");
    }

    #[test]
    fn following_chords_puts_strong_beats_on_them_and_says_when_there_is_none() {
        use crate::metrics::chords::{parse_chord, strong_beat_chord_tones};
        let generator = voices_with_encoder();
        let chords = [parse_chord("C").unwrap(), parse_chord("F").unwrap(), parse_chord("G").unwrap()];
        let (mut with, mut without) = ((0, 0), (0, 0));
        for seed in 0..8 {
            let request = RenderRequest { bars: 6, seed, ..sampled() };
            let followed = generator.render_following(&request, &chords).unwrap();
            assert_eq!(followed.steps(), 6 * 16);
            let free = generator.render(&request).unwrap();
            let (a, b) = (strong_beat_chord_tones(&followed, &chords), strong_beat_chord_tones(&free, &chords));
            with = (with.0 + a.0, with.1 + a.1);
            without = (without.0 + b.0, without.1 + b.1);
        }
        let share = |(tones, all): (usize, usize)| tones as f64 / all.max(1) as f64;
        assert!(share(with) > 0.9 && share(with) > share(without) + 0.3, "with {with:?}, without {without:?}");
        let source = Source { mode: SourceMode::FollowChords, ..Source::default() };
        assert!(matches!(generator.render_from(&sampled(), &source, None), Err(SourceError::NoChord)));
        let given = Source { chords: vec![chords[0]], ..source };
        assert_eq!(generator.render_from(&sampled(), &given, None).unwrap(), generator.render_following(&sampled(), &chords[..1]).unwrap());
    }

    #[test]
    fn slerp_keeps_to_the_arc_and_ends_exactly_on_its_points() {
        let (a, b) = ([1.0f32, 0.0, 0.0], [0.0f32, 2.0, 0.0]);
        assert_eq!(slerp(&a, &b, 0.0), a.to_vec());
        assert_eq!(slerp(&a, &b, 1.0), b.to_vec());
        let middle = slerp(&a, &b, 0.5);
        assert!((middle[0] - middle[1] / 2.0).abs() < 1e-6 && middle[0] > 0.7, "along the arc, not the chord: {middle:?}");
        assert_eq!(slerp(&a, &a, 0.3), a.to_vec(), "one point: itself");
    }

    #[test]
    fn a_morph_starts_at_a_ends_at_b_and_reads_clips_as_points() {
        let generator = voices_with_encoder();
        let request = RenderRequest { temperature: Some(0.0), ..sampled() };
        let point = |seed| MorphPoint::Dream { seed, knobs: vec![], named: vec![] };
        let morph = |amount| Morph { a: point(request.seed), b: point(11), amount };
        assert_eq!(generator.render_morph(&request, &morph(0.0)).unwrap(), generator.render(&request).unwrap());
        assert_eq!(generator.render_morph(&request, &morph(1.0)).unwrap(), generator.render(&RenderRequest { seed: 11, ..request.clone() }).unwrap());
        let take = Take::from_score(&crate::roll::read_midi(&crate::roll::roll_to_midi(&melody(&generator), 120.0)).unwrap(), 8);
        let toward_clip = Morph { b: MorphPoint::Clip(take), ..morph(0.5) };
        assert_eq!(generator.render_morph(&request, &toward_clip).unwrap().steps(), 3 * 16);
        let source = Source { morph: Some(morph(0.0)), ..Source::default() };
        assert_eq!(generator.render_from(&request, &source, None).unwrap(), generator.render(&request).unwrap(), "dream reads the morph");
    }
}
