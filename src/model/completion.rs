//! Writing from what a producer plays: vary a clip (read it into the latent space and write
//! around that point), harmonise a melody (keep its parts, write the others) and continue a
//! clip (keep its last bars, write the ones that follow). The voice decoder harmonises and
//! continues natively — its context reader was trained on phrases with random parts given —
//! so both are one call, `Generator::complete`, with a different mask; the encoder supplies
//! the latent, so that what is written is in the clip's key and manner.
//!
//! This module holds what the source modes keep of a clip and why they fail; the modes
//! themselves are plain data in [`super::source`], and the `Generator` methods that write
//! them live with the generator.

use super::source::SourceMode;
use crate::roll::Roll;
use rand::SeedableRng;
use std::ops::Range;

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
    pub(crate) fn covers(&self, track: usize, step: usize) -> bool {
        self.tracks.contains(&track)
            || (self.steps.contains(&step) && (self.steps_in.is_empty() || self.steps_in.contains(&track)))
    }

    /// The notes of `phrase` that start in given cells, alone.
    pub(crate) fn of(&self, phrase: &Roll) -> Roll {
        phrase.only_notes(|note| self.covers(note.track, note.start))
    }
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
    #[error(
        "the clip plays all {0} parts, so there is nothing to harmonise; keep fewer parts (the top one alone, say)"
    )]
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

/// What a variation at `distance` keeps of phrase `k` of a clip that plays the parts
/// `played`: of several, all but ceil(distance x played) are kept, the rewritten ones drawn
/// from the seed's stream for the phrase; of one, its first floor((1 - distance) x bars)
/// bars (the model continues from them). Parts the clip does not play are the model's to
/// write, as it learnt to, and are dropped afterwards (see `render_varied`).
pub(crate) fn kept_when_varied(
    played: &[usize],
    bars: usize,
    steps_per_bar: usize,
    distance: f32,
    seed: u64,
    k: usize,
) -> GivenParts {
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
