//! The `voices` preset's training step: a VAE whose decoder makes one categorical choice per
//! voice and step, scored by cross-entropy under teacher forcing. Parts of each training
//! phrase are handed to the decoder as given (whole voices, the first bars, a span), so that
//! the same model learns to complete what a user gives it, not only to dream.

use super::adam::AdamW;
use super::objective::{gaussian, named_vars, restore_vars, scalar, seeded_builder, Objective};
use super::RunConfig;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use dreamroll::model::generator::Generator;
use dreamroll::model::vae::{kl_per_dimension, reparameterise, Encoder, Shape};
use dreamroll::model::voices::network::{VoiceBatch, VoiceShape};
use dreamroll::model::voices::tokens::{roll_to_tokens, VoiceState, HOLD};
use dreamroll::model::ModelCard;
use dreamroll::roll::Roll;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// A score low enough that a choice never wins, and finite so that no NaN arises.
const BARRED: f32 = -1e4;

pub struct Voices {
    varmap: VarMap,
    encoder: Encoder,
    generator: Generator,
    adam: AdamW,
    shape: VoiceShape,
    beta: f64,
    warmup: u64,
    free_bits: f64,
}

/// One batch's targets and what the network reads, on the host.
struct Targets {
    batch: VoiceBatch,
    tokens: Tensor,
    /// 1 where the network must choose (not given), [batch, steps, voices].
    scored: Tensor,
    /// `BARRED` on hold where the voice was silent the step before, [batch, steps, voices, classes].
    barred: Tensor,
}

impl Voices {
    pub fn new(config: &RunConfig, card: &ModelCard, device: &Device) -> anyhow::Result<Voices> {
        let varmap = VarMap::new();
        let vb = seeded_builder(&varmap, config.seed, device);
        let encoder = Encoder::new(Shape::of(card), vb.pp("encoder"))?;
        let generator = Generator::build(card.clone(), vb, device)?;
        let shape = VoiceShape::of(card).expect("a voices card");
        let adam = AdamW::new(named_vars(&varmap), config.lr, 0.9, 0.999, 0.0)?;
        Ok(Voices { varmap, encoder, generator, adam, shape, beta: config.shape.beta, warmup: config.shape.kl_warmup, free_bits: config.shape.free_bits })
    }

    fn targets(&self, phrases: &[Roll], given: impl Fn(usize) -> Vec<bool>, device: &Device) -> anyhow::Result<Targets> {
        let s = self.shape;
        let cells = s.steps() * s.voices;
        let (mut sounding, mut age, mut given_cells, mut tokens) = (Vec::with_capacity(phrases.len() * cells), Vec::new(), Vec::new(), Vec::new());
        let mut barred = vec![0f32; phrases.len() * cells * s.classes()];
        for (item, phrase) in phrases.iter().enumerate() {
            let voice_tokens = roll_to_tokens(phrase);
            let mask = given(item);
            let mut states = vec![VoiceState::SILENT; s.voices];
            for (step, choices) in voice_tokens.tokens.iter().enumerate() {
                for (v, &token) in choices.iter().enumerate() {
                    let cell = item * cells + step * s.voices + v;
                    if !states[v].may_hold() {
                        barred[cell * s.classes() + HOLD as usize] = BARRED;
                    }
                    states[v] = states[v].after(token, s.max_age());
                    sounding.push(states[v].sounding);
                    age.push(states[v].age);
                    tokens.push(token);
                    given_cells.push(f32::from(u8::from(mask[step * s.voices + v])));
                }
            }
        }
        let dims = (phrases.len(), s.steps(), s.voices);
        let given = Tensor::from_vec(given_cells, dims, device)?;
        Ok(Targets {
            scored: (1.0 - &given)?,
            batch: VoiceBatch { sounding: Tensor::from_vec(sounding, dims, device)?, age: Tensor::from_vec(age, dims, device)?, given },
            tokens: Tensor::from_vec(tokens, dims, device)?,
            barred: Tensor::from_vec(barred, (phrases.len(), s.steps(), s.voices, s.classes()), device)?,
        })
    }

    /// (loss, reconstruction, KL): reconstruction is the negative log-likelihood of the
    /// choices that were not given, per phrase.
    fn losses(&self, rolls: &Tensor, targets: &Targets, eps: &Tensor, beta: f64) -> anyhow::Result<(Tensor, Tensor, Tensor)> {
        let (mean, log_variance) = self.encoder.forward(rolls)?;
        let z = reparameterise(&mean, &log_variance, eps)?;
        let network = self.generator.voice_network().expect("a voices generator");
        let scores = (network.forward(&z, &targets.batch)? + &targets.barred)?;
        let log_probabilities = candle_nn::ops::log_softmax(&scores, D::Minus1)?;
        let chosen = log_probabilities.gather(&targets.tokens.unsqueeze(D::Minus1)?, D::Minus1)?.squeeze(D::Minus1)?;
        let items = rolls.dim(0)? as f64;
        let reconstruction = (chosen.mul(&targets.scored)?.sum_all()?.neg()? / items)?;
        let kl = kl_per_dimension(&mean, &log_variance)?;
        let penalised = kl.maximum(self.free_bits)?.sum_all()?;
        let loss = (&reconstruction + (penalised * beta)?)?;
        Ok((loss, reconstruction, kl.sum_all()?))
    }
}

/// What a training phrase gives the decoder, per step and voice (true = given): nothing
/// (four times in ten), some of the voices (a melody to harmonise), the first bars (a clip
/// to continue), or a span of steps (a gap to fill).
pub fn given_mask(rng: &mut ChaCha8Rng, shape: &VoiceShape) -> Vec<bool> {
    let (steps, voices, bar) = (shape.steps(), shape.voices, shape.steps_per_bar);
    let mut mask = vec![false; steps * voices];
    let mut set = |step: usize, voice: usize| mask[step * voices + voice] = true;
    let draw = rng.next_u32() % 10;
    let by_voice = draw < 6 && voices > 1;
    match draw {
        0..=3 => {}
        4 | 5 if by_voice => {
            // A proper, non-empty subset of the voices.
            let subset = 1 + rng.next_u32() as usize % ((1usize << voices) - 2);
            for voice in (0..voices).filter(|v| subset >> v & 1 == 1) {
                (0..steps).for_each(|step| set(step, voice));
            }
        }
        4..=7 if shape.bars > 1 => {
            let bars = 1 + rng.next_u32() as usize % (shape.bars - 1);
            (0..bars * bar).for_each(|step| (0..voices).for_each(|voice| set(step, voice)));
        }
        _ => {
            let length = bar + rng.next_u32() as usize % (steps / 2).saturating_sub(bar).max(1);
            let start = rng.next_u32() as usize % (steps - length.min(steps) + 1);
            (start..(start + length).min(steps)).for_each(|step| (0..voices).for_each(|voice| set(step, voice)));
        }
    }
    mask
}

impl Objective for Voices {
    fn loss_names(&self) -> Vec<&'static str> {
        vec!["loss", "reconstruction", "kl"]
    }

    fn train_step(&mut self, batch: &Tensor, phrases: &[Roll], step: u64, rng: &mut ChaCha8Rng) -> anyhow::Result<Vec<f64>> {
        let masks: Vec<Vec<bool>> = phrases.iter().map(|_| given_mask(rng, &self.shape)).collect();
        let targets = self.targets(phrases, |item| masks[item].clone(), batch.device())?;
        let eps = gaussian(rng, batch.dim(0)?, self.shape.latent, batch.device())?;
        let beta = self.beta * (step as f64 / self.warmup.max(1) as f64).min(1.0);
        let (loss, reconstruction, kl) = self.losses(batch, &targets, &eps, beta)?;
        let values = vec![scalar(&loss)?, scalar(&reconstruction)?, scalar(&kl)?];
        if values.iter().all(|v| v.is_finite()) {
            self.adam.backward_step(&loss)?;
            self.generator.refresh()?;
        }
        Ok(values)
    }

    fn validation_losses(&self, batch: &Tensor, phrases: &[Roll]) -> anyhow::Result<Vec<f64>> {
        let cells = self.shape.steps() * self.shape.voices;
        let targets = self.targets(phrases, |_| vec![false; cells], batch.device())?;
        let eps = Tensor::zeros((batch.dim(0)?, self.shape.latent), DType::F32, batch.device())?;
        let (loss, reconstruction, kl) = self.losses(batch, &targets, &eps, self.beta)?;
        Ok(vec![scalar(&loss)?, scalar(&reconstruction)?, scalar(&kl)?])
    }

    fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<_> = named_vars(&self.varmap).into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
        tensors.extend(self.adam.state("adam"));
        tensors
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        restore_vars(&self.varmap, tensors)?;
        self.adam.restore("adam", tensors)?;
        self.generator.refresh()?;
        Ok(())
    }

    fn generator(&self) -> &Generator {
        &self.generator
    }

    fn weights(&self, prefix: &str) -> Vec<(String, Tensor)> {
        named_vars(&self.varmap).into_iter().filter(|(n, _)| n.starts_with(prefix)).map(|(n, v)| (n, v.as_tensor().clone())).collect()
    }

    fn encode(&self, batch: &Tensor) -> anyhow::Result<Option<Tensor>> {
        Ok(Some(self.encoder.forward(batch)?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn given_masks_cover_every_kind_and_never_give_everything() {
        let shape = VoiceShape { voices: 4, bars: 4, steps_per_bar: 16, pitches: 44, latent: 8, hidden: 8, conductor: 8, embed: 4, age_embed: 2, position_embed: 2, context: 4, head: 4 };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (mut nothing, mut voices, mut leading_bars, mut spans) = (0, 0, 0, 0);
        for _ in 0..2000 {
            let mask = given_mask(&mut rng, &shape);
            let count = mask.iter().filter(|&&g| g).count();
            assert!(count < mask.len(), "something is always left to write");
            let whole_voice = |v: usize| (0..64).all(|s| mask[s * 4 + v]);
            if count == 0 {
                nothing += 1;
            } else if (0..4).any(whole_voice) {
                voices += 1;
            } else if mask[0] && mask[3] {
                leading_bars += 1;
            } else {
                spans += 1;
            }
        }
        assert!(nothing > 700 && voices > 300 && leading_bars > 100 && spans > 100, "{nothing} {voices} {leading_bars} {spans}");
    }
}
