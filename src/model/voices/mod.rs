//! The voice decoder (`voices` preset): each voice, at each step, makes one categorical
//! choice — rest, hold, or a new note at one pitch — seeing the steps before it and the
//! voices above it in the same step, under a latent conductor (MusicVAE's hierarchical
//! decoder, with DeepBach's per-voice choices). Unlike a roll of independent cells, a voice
//! can only sound one pitch, holding is a decision, and a step's voices are chosen together,
//! so the lines move by step, hold instead of re-striking, and avoid parallels the way the
//! music it learned does.
//!
//! It can also complete what it is given: any voices or steps the caller fixes are read by a
//! context reader that looks both ways in time, and kept, while the rest is written around
//! them (harmonising a melody, continuing a clip). The trainer teaches that by hiding random
//! voices and spans of each training phrase.

pub mod leading;
pub mod network;
pub mod sampler;
pub mod seams;
pub mod tokens;

use super::card::ModelCard;
use super::learned_phrases::{LearnedPhrases, REDRAWS};
use crate::roll::{Representation, Roll};
use candle_core::Result;
use candle_nn::VarBuilder;
use network::{VoiceNetwork, VoiceShape};
use rand::{Rng, SeedableRng};
use sampler::{Given, JoinDraws, Sampling, VoiceSampler};
use std::sync::Arc;
use tokens::{tokens_to_roll, tokens_to_roll_with};

/// How far the density control moves new-note scores at its ends, in logits.
pub const DENSITY_LOGITS: f32 = 1.5;

impl VoiceShape {
    /// The voice network's sizes for a card; `None` for a card of another preset.
    pub fn of(card: &ModelCard) -> Option<VoiceShape> {
        let voice = card.architecture.voice.as_ref()?;
        let r = &card.representation;
        Some(VoiceShape {
            voices: r.track_count(),
            bars: usize::from(r.bars_per_phrase),
            steps_per_bar: r.steps_per_bar(),
            pitches: r.pitch_count(),
            latent: card.latent_size,
            hidden: card.architecture.hidden,
            conductor: card.architecture.bar_hidden,
            embed: voice.embed,
            age_embed: voice.age_embed,
            position_embed: voice.position_embed,
            context: voice.context,
            head: voice.head,
            leading: voice.leading,
            velocity_levels: voice.velocity_levels,
        })
    }
}

/// The network and its step-by-step sampler, built once when a model loads.
pub struct VoiceDecoder {
    pub network: VoiceNetwork,
    sampler: VoiceSampler,
    /// Per track, the velocity of each loudness level at `default_velocity` (the card's
    /// `decoding.dynamics`); empty for a decoder without levels.
    dynamics: Vec<Vec<u8>>,
    default_velocity: u8,
}

/// Which voices are drums, and the rows each may strike: a drum lane plays only its sounds,
/// and no drum is held to a key, a chord or the rules of part-writing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kit {
    /// Per voice: `None` for a pitched voice; for a drum, per row whether it is one of its
    /// sounds (every row for a drum track of every sound).
    pub rows: Vec<Option<Vec<bool>>>,
}

impl Kit {
    pub fn of(representation: &Representation) -> Kit {
        let rows = representation
            .tracks
            .iter()
            .map(|track| {
                track.is_drum.then(|| {
                    (0..representation.pitch_count()).map(|row| track.plays(representation.pitch_of_row(row))).collect()
                })
            })
            .collect();
        Kit { rows }
    }

    pub fn is_drum(&self, voice: usize) -> bool {
        self.rows.get(voice).is_some_and(Option::is_some)
    }
}

impl VoiceDecoder {
    pub fn new(card: &ModelCard, vb: VarBuilder) -> Result<VoiceDecoder> {
        let shape =
            VoiceShape::of(card).ok_or_else(|| candle_core::Error::Msg("a voices card without voice sizes".into()))?;
        let network = VoiceNetwork::new(shape, vb)?;
        let sampler = VoiceSampler::new(&network, Kit::of(&card.representation))?;
        Ok(VoiceDecoder {
            network,
            sampler,
            dynamics: card.decoding.dynamics.clone(),
            default_velocity: card.decoding.default_velocity,
        })
    }

    /// Phrases of tokens (`latents[k]` the latent of the k-th phrase of `tokens`, the last
    /// perhaps cut short) as a roll, every note at `velocity` or, where the decoder learned
    /// loudness levels, at the level it draws for the note (at `temperature`, from `rng`),
    /// scaled as `velocity` is to the card's default.
    pub fn voiced(
        &self,
        representation: &Arc<Representation>,
        tokens: &[Vec<u32>],
        latents: &[Vec<f32>],
        velocity: u8,
        temperature: f32,
        rng: &mut impl Rng,
    ) -> Result<Roll> {
        if self.dynamics.is_empty() {
            return Ok(tokens_to_roll(representation, tokens, velocity));
        }
        let phrase_steps = representation.steps_per_phrase();
        let mut levels: Vec<Vec<u8>> = Vec::with_capacity(tokens.len());
        for (phrase, z) in tokens.chunks(phrase_steps).zip(latents.iter().cycle()) {
            levels.extend(self.sampler.levels(&self.network, z, phrase, temperature, rng)?.unwrap_or_default());
        }
        let scale = f32::from(velocity) / f32::from(self.default_velocity);
        Ok(tokens_to_roll_with(representation, tokens, |step, track| {
            let track_levels = &self.dynamics[track];
            let level = usize::from(levels.get(step).map_or(0, |l| l[track])).min(track_levels.len() - 1);
            (f32::from(track_levels[level]) * scale).round().clamp(1.0, 127.0) as u8
        }))
    }

    /// The sampler reads tabulated weights: after the trainer changes them, tabulate again.
    pub fn refresh(&mut self) -> Result<()> {
        self.sampler = VoiceSampler::new(&self.network, self.sampler.kit().clone())?;
        Ok(())
    }

    /// One phrase per latent, each from silence (see `complete`).
    pub fn phrases(
        &self,
        representation: &Arc<Representation>,
        latents: &[Vec<f32>],
        sampling: Sampling,
        velocity: u8,
        learned: &LearnedPhrases,
        rng: &mut impl Rng,
    ) -> Result<Vec<Roll>> {
        latents.iter().map(|z| self.complete(representation, z, &[], sampling, velocity, learned, rng)).collect()
    }

    /// The choices of one phrase written under latent `z` around the `given` ones, as tokens,
    /// for callers that splice a span of them into a longer line: of the `draws`, the one the
    /// given choices after it follow from best, its own choices' likelihood counting too (see
    /// `VoiceSampler::best_joined`). At temperature 0 every draw is the likeliest, so one is
    /// drawn.
    pub fn joined_tokens(
        &self,
        z: &[f32],
        given: &Given,
        sampling: Sampling,
        rng: &mut impl Rng,
        draws: JoinDraws,
    ) -> Result<Vec<Vec<u32>>> {
        let candidates = if sampling.temperature > 0.0 { draws.candidates } else { 1 };
        self.sampler.best_joined(&self.network, z, given, sampling, rng, JoinDraws { candidates, ..draws })
    }

    /// A phrase written under latent `z` around the `given` choices ([step][voice]; `None` or
    /// a missing step is the model's to make), which it keeps. A phrase equal to a `learned`
    /// one is drawn again (up to `REDRAWS` times), the stream going on. At temperature 0 the
    /// likeliest choices are the same every time, so a redraw would only repeat: there is none.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &self,
        representation: &Arc<Representation>,
        z: &[f32],
        given: &Given,
        sampling: Sampling,
        velocity: u8,
        learned: &LearnedPhrases,
        rng: &mut impl Rng,
    ) -> Result<Roll> {
        let tokens = self.unlearned_tokens(representation, z, given, sampling, velocity, learned, rng)?;
        // The loudness has a stream of its own, seeded from one draw: a phrase takes the same
        // draws from `rng` however many notes it strikes.
        let loudness = &mut match self.dynamics.is_empty() || sampling.temperature <= 0.0 {
            true => rand_chacha::ChaCha8Rng::seed_from_u64(0),
            false => rand_chacha::ChaCha8Rng::seed_from_u64(rng.random()),
        };
        self.voiced(
            representation,
            &tokens,
            std::slice::from_ref(&z.to_vec()),
            velocity,
            sampling.temperature,
            loudness,
        )
    }

    /// The choices of `complete`, as tokens [step][voice], for a caller that voices a longer
    /// line once it is whole (a loop whose seams are still to be joined): voicing each phrase
    /// first would draw every note's loudness twice.
    #[allow(clippy::too_many_arguments)]
    pub fn unlearned_tokens(
        &self,
        representation: &Arc<Representation>,
        z: &[f32],
        given: &Given,
        sampling: Sampling,
        velocity: u8,
        learned: &LearnedPhrases,
        rng: &mut impl Rng,
    ) -> Result<Vec<Vec<u32>>> {
        let mut tokens = self.sampler.phrase(&self.network, z, given, sampling, rng, None)?;
        let redraws = if sampling.temperature > 0.0 { REDRAWS } else { 0 };
        for _ in 0..redraws {
            if !learned.contains(&tokens_to_roll(representation, &tokens, velocity)) {
                break;
            }
            tokens = self.sampler.phrase(&self.network, z, given, sampling, rng, None)?;
        }
        Ok(tokens)
    }
}
