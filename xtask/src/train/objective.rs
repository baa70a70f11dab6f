//! What one training step computes, per preset.

use super::adam::AdamW;
use super::reconstruction::{Cells, Reconstruction};
use super::seeded::SeededVarMap;
use super::RunConfig;
use anyhow::Context;
use candle_core::Module;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dreamroll::model::critic::{ConvCritic, LstmCritic};
use dreamroll::model::generator::Generator;
use dreamroll::model::latent::noise;
use dreamroll::model::layers::Shape;
use dreamroll::model::midinet::{bar_chords, CHORD_SIZE};
use dreamroll::model::vae::{kl_per_dimension, reparameterise, Encoder};
use dreamroll::model::{ModelCard, Preset};
use dreamroll::roll::Roll;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

pub trait Objective {
    /// Names of the numbers `train_step` returns; the first is the one minimised.
    fn loss_names(&self) -> Vec<&'static str>;
    /// `batch` is `phrases` as the roll tensor the encoders and critics read.
    fn train_step(
        &mut self,
        batch: &Tensor,
        phrases: &[Roll],
        step: u64,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<Vec<f64>>;
    fn validation_losses(&self, batch: &Tensor, phrases: &[Roll]) -> anyhow::Result<Vec<f64>>;
    /// Weights and optimiser state, for a checkpoint.
    fn tensors(&self) -> Vec<(String, Tensor)>;
    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()>;
    /// Only the weights (a trained model's, to measure or compare it), leaving the optimiser
    /// as it is.
    fn load_weights(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()>;
    fn generator(&self) -> &Generator;
    /// The weights whose names start with `prefix` (`decoder.`, `encoder.`), for export.
    fn weights(&self, prefix: &str) -> Vec<(String, Tensor)>;
    /// Latent means of a batch, where the preset has an encoder (macro knobs come from them).
    fn encode(&self, batch: &Tensor) -> anyhow::Result<Option<Tensor>>;
}

pub fn build(config: &RunConfig, card: &ModelCard, device: &Device) -> anyhow::Result<Box<dyn Objective>> {
    match config.preset {
        Preset::Vae => Ok(Box::new(Vae::new(config, card, device, Cells)?)),
        Preset::Musegan | Preset::Midinet | Preset::CnnLstm => Ok(Box::new(Gan::new(config, card, device)?)),
        Preset::Voices => Ok(Box::new(Vae::new(config, card, device, super::voices::Choices::of(card))?)),
    }
}

pub fn named_vars(varmap: &VarMap) -> Vec<(String, candle_core::Var)> {
    named_vars_under(varmap, "")
}

pub fn named_vars_under(varmap: &VarMap, prefix: &str) -> Vec<(String, candle_core::Var)> {
    let data = varmap.data().lock().expect("the trainer holds the only lock");
    let mut vars: Vec<_> = data
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// A builder of fresh weights drawn from the run's seed, into `varmap`.
pub fn seeded_builder<'a>(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'a> {
    VarBuilder::from_backend(Box::new(SeededVarMap { varmap: varmap.clone(), seed }), DType::F32, device.clone())
}

pub fn restore_vars(varmap: &VarMap, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
    for (name, var) in named_vars(varmap) {
        var.set(tensors.get(&name).with_context(|| format!("no weight `{name}` in what was loaded"))?)?;
    }
    Ok(())
}

pub fn scalar(t: &Tensor) -> anyhow::Result<f64> {
    Ok(f64::from(t.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// A Gaussian batch [rows, columns] drawn from the run's random stream.
pub fn gaussian(rng: &mut ChaCha8Rng, rows: usize, columns: usize, device: &Device) -> anyhow::Result<Tensor> {
    Ok(Tensor::from_vec(noise(rng.next_u64(), rows * columns), (rows, columns), device)?)
}

/// The weights under `prefix`, for export.
pub fn weights_under(varmap: &VarMap, prefix: &str) -> Vec<(String, Tensor)> {
    named_vars_under(varmap, prefix).into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
}

/// beta-VAE with KL warm-up and free bits, around any decoder.
pub struct Vae<R> {
    varmap: VarMap,
    encoder: Encoder,
    generator: Generator,
    adam: AdamW,
    latent: usize,
    beta: f64,
    warmup: u64,
    free_bits: f64,
    reconstruction: R,
}

impl<R: Reconstruction> Vae<R> {
    pub fn new(config: &RunConfig, card: &ModelCard, device: &Device, reconstruction: R) -> anyhow::Result<Vae<R>> {
        let varmap = VarMap::new();
        let vb = seeded_builder(&varmap, config.seed, device);
        let encoder = Encoder::new(Shape::of(card), vb.pp("encoder"))?;
        let generator = Generator::build(card.clone(), vb, device)?;
        let adam = AdamW::new(named_vars(&varmap), config.lr, 0.9, 0.999, 0.0)?;
        Ok(Vae {
            varmap,
            encoder,
            generator,
            adam,
            latent: card.latent_size,
            beta: config.shape.beta,
            warmup: config.shape.kl_warmup,
            free_bits: config.shape.free_bits,
            reconstruction,
        })
    }

    /// (loss, reconstruction, KL) for `z = mean + sigma * eps`.
    fn losses(
        &self,
        batch: &Tensor,
        phrases: &[Roll],
        eps: &Tensor,
        beta: f64,
        rng: Option<&mut ChaCha8Rng>,
    ) -> anyhow::Result<(Tensor, Tensor, Tensor)> {
        let (mean, log_variance) = self.encoder.forward(batch)?;
        let z = reparameterise(&mean, &log_variance, eps)?;
        let reconstruction = self.reconstruction.reconstruction(&self.generator, &z, batch, phrases, rng)?;
        let (loss, kl) = vae_loss(&reconstruction, &mean, &log_variance, self.free_bits, beta)?;
        Ok((loss, reconstruction, kl))
    }
}

/// (loss, KL) of a VAE: a latent dimension's KL below `free_bits` nats costs nothing, so that
/// the decoder keeps a use for the latent.
pub fn vae_loss(
    reconstruction: &Tensor,
    mean: &Tensor,
    log_variance: &Tensor,
    free_bits: f64,
    beta: f64,
) -> candle_core::Result<(Tensor, Tensor)> {
    let kl = kl_per_dimension(mean, log_variance)?;
    let penalised = kl.maximum(free_bits)?.sum_all()?;
    Ok(((reconstruction + (penalised * beta)?)?, kl.sum_all()?))
}

impl<R: Reconstruction> Objective for Vae<R> {
    fn loss_names(&self) -> Vec<&'static str> {
        vec!["loss", "reconstruction", "kl"]
    }

    fn train_step(
        &mut self,
        batch: &Tensor,
        phrases: &[Roll],
        step: u64,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<Vec<f64>> {
        let eps = gaussian(rng, batch.dim(0)?, self.latent, batch.device())?;
        let beta = self.beta * (step as f64 / self.warmup.max(1) as f64).min(1.0);
        let (loss, reconstruction, kl) = self.losses(batch, phrases, &eps, beta, Some(rng))?;
        let values = vec![scalar(&loss)?, scalar(&reconstruction)?, scalar(&kl)?];
        if values.iter().all(|v| v.is_finite()) {
            self.adam.backward_step(&loss)?;
            self.generator.refresh()?;
        }
        Ok(values)
    }

    fn validation_losses(&self, batch: &Tensor, phrases: &[Roll]) -> anyhow::Result<Vec<f64>> {
        let eps = Tensor::zeros((batch.dim(0)?, self.latent), DType::F32, batch.device())?;
        let (loss, reconstruction, kl) = self.losses(batch, phrases, &eps, self.beta, None)?;
        Ok(vec![scalar(&loss)?, scalar(&reconstruction)?, scalar(&kl)?])
    }

    fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<_> =
            named_vars(&self.varmap).into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
        tensors.extend(self.adam.state("adam"));
        tensors
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        self.load_weights(tensors)?;
        self.adam.restore("adam", tensors)
    }

    fn load_weights(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        restore_vars(&self.varmap, tensors)?;
        self.generator.refresh()?;
        Ok(())
    }

    fn generator(&self) -> &Generator {
        &self.generator
    }

    fn weights(&self, prefix: &str) -> Vec<(String, Tensor)> {
        weights_under(&self.varmap, prefix)
    }

    fn encode(&self, batch: &Tensor) -> anyhow::Result<Option<Tensor>> {
        Ok(Some(self.encoder.forward(batch)?.0))
    }
}

/// WGAN-GP (Gulrajani et al. 2017) as MuseGAN trains it: a critic step on every batch, a
/// generator step after every fifth, and a gradient penalty of weight 10 on phrases
/// interpolated between real and generated ones.
struct Gan {
    varmap: VarMap,
    generator: Generator,
    critic: Box<dyn Module>,
    critic_adam: AdamW,
    generator_adam: AdamW,
    latent: usize,
    chord_condition: bool,
    representation: dreamroll::roll::Representation,
    last_generator_loss: f64,
}

/// Critic steps per generator step.
const CRITIC_STEPS: u64 = 5;
const GRADIENT_PENALTY: f64 = 10.0;

impl Gan {
    fn new(config: &RunConfig, card: &ModelCard, device: &Device) -> anyhow::Result<Gan> {
        let varmap = VarMap::new();
        let vb = seeded_builder(&varmap, config.seed, device);
        let generator = Generator::build(card.clone(), vb.clone(), device)?;
        let shape = Shape::of(card);
        let critic: Box<dyn Module> = match config.preset {
            Preset::CnnLstm => Box::new(LstmCritic::new(shape, vb.pp("critic"))?),
            _ => Box::new(ConvCritic::new(shape, vb.pp("critic"))?),
        };
        // Adam as WGAN-GP recommends: beta1 0.5, beta2 0.9.
        let critic_adam = AdamW::new(named_vars_under(&varmap, "critic."), config.lr, 0.5, 0.9, 0.0)?;
        let generator_adam = AdamW::new(named_vars_under(&varmap, "decoder."), config.lr, 0.5, 0.9, 0.0)?;
        Ok(Gan {
            varmap,
            generator,
            critic,
            critic_adam,
            generator_adam,
            latent: card.latent_size,
            chord_condition: card.architecture.chord_condition,
            representation: card.representation.clone(),
            last_generator_loss: 0.0,
        })
    }

    /// The chords of the real phrases, each phrase's dropped (zeros) with probability 1/2 so
    /// that the generator also learns to play with no chords given.
    fn chords(&self, real: &Tensor, rng: &mut ChaCha8Rng) -> anyhow::Result<Option<Tensor>> {
        if !self.chord_condition {
            return Ok(None);
        }
        let r = &self.representation;
        let (batch, tracks, bars) = (real.dim(0)?, r.track_count(), usize::from(r.bars_per_phrase));
        let sustain =
            real.narrow(1, tracks, tracks)?.sum(1)?.reshape((batch * bars, r.steps_per_bar() * r.pitch_count()))?;
        let mut chords = bar_chords(&sustain.to_vec2::<f32>()?, r.pitch_count(), r.lowest_pitch);
        for phrase in chords.chunks_mut(bars) {
            if rng.next_u32().is_multiple_of(2) {
                phrase.iter_mut().for_each(|c| *c = [0.0; CHORD_SIZE]);
            }
        }
        let flat: Vec<f32> = chords.iter().flatten().copied().collect();
        Ok(Some(Tensor::from_vec(flat, (batch, bars, CHORD_SIZE), real.device())?))
    }

    fn fake(&self, z: &Tensor, chords: Option<&Tensor>) -> anyhow::Result<Tensor> {
        Ok(candle_nn::ops::sigmoid(&self.generator.logits_with_chords(z, chords)?)?)
    }

    fn gradient_penalty(&self, real: &Tensor, fake: &Tensor, rng: &mut ChaCha8Rng) -> anyhow::Result<Tensor> {
        let batch = real.dim(0)?;
        let alpha: Vec<f32> = (0..batch).map(|_| (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32).collect();
        let alpha = Tensor::from_vec(alpha, (batch, 1, 1, 1), real.device())?;
        let mixed = (real.broadcast_mul(&alpha)? + fake.broadcast_mul(&(1.0 - &alpha)?)?)?.detach();
        let mixed = candle_core::Var::from_tensor(&mixed)?;
        let grads = self.critic.forward(mixed.as_tensor())?.sum_all()?.backward()?;
        let gradient = grads.get(mixed.as_tensor()).context("the critic's score does not depend on its input")?;
        let norm = (gradient.sqr()?.flatten_from(1)?.sum(1)? + 1e-12)?.sqrt()?;
        Ok(((norm - 1.0)?.sqr()?.mean_all()? * GRADIENT_PENALTY)?)
    }
}

impl Objective for Gan {
    fn loss_names(&self) -> Vec<&'static str> {
        vec!["critic", "wasserstein", "gradient_penalty", "generator"]
    }

    fn train_step(
        &mut self,
        real: &Tensor,
        _phrases: &[Roll],
        step: u64,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<Vec<f64>> {
        let batch = real.dim(0)?;
        let chords = self.chords(real, rng)?;
        let z = gaussian(rng, batch, self.latent, real.device())?;
        let fake = self.fake(&z, chords.as_ref())?.detach();
        let real_score = self.critic.forward(real)?.mean_all()?;
        let fake_score = self.critic.forward(&fake)?.mean_all()?;
        let penalty = self.gradient_penalty(real, &fake, rng)?;
        let critic_loss = ((&fake_score - &real_score)? + &penalty)?;
        let values = [scalar(&critic_loss)?, scalar(&(real_score - fake_score)?)?, scalar(&penalty)?];
        if values.iter().all(|v| v.is_finite()) {
            self.critic_adam.backward_step(&critic_loss)?;
        }
        if step % CRITIC_STEPS == CRITIC_STEPS - 1 {
            let z = gaussian(rng, batch, self.latent, real.device())?;
            let generator_loss = self.critic.forward(&self.fake(&z, chords.as_ref())?)?.mean_all()?.neg()?;
            self.last_generator_loss = scalar(&generator_loss)?;
            if self.last_generator_loss.is_finite() {
                self.generator_adam.backward_step(&generator_loss)?;
            }
        }
        Ok(vec![values[0], values[1], values[2], self.last_generator_loss])
    }

    fn validation_losses(&self, real: &Tensor, _phrases: &[Roll]) -> anyhow::Result<Vec<f64>> {
        let batch = real.dim(0)?;
        let z = Tensor::from_vec(noise(7, batch * self.latent), (batch, self.latent), real.device())?;
        let real_score = scalar(&self.critic.forward(real)?.mean_all()?)?;
        let fake_score = scalar(&self.critic.forward(&self.fake(&z, None)?)?.mean_all()?)?;
        Ok(vec![fake_score - real_score, real_score - fake_score, 0.0, -fake_score])
    }

    fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<_> =
            named_vars(&self.varmap).into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect();
        tensors.extend(self.critic_adam.state("adam_critic"));
        tensors.extend(self.generator_adam.state("adam_generator"));
        tensors.push((
            "trainer.generator_loss".into(),
            Tensor::new(&[self.last_generator_loss as f32], &Device::Cpu).expect("one value"),
        ));
        tensors
    }

    fn load_weights(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        restore_vars(&self.varmap, tensors)
    }

    fn restore(&mut self, tensors: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        self.load_weights(tensors)?;
        self.critic_adam.restore("adam_critic", tensors)?;
        self.generator_adam.restore("adam_generator", tensors)?;
        if let Some(loss) = tensors.get("trainer.generator_loss") {
            self.last_generator_loss = f64::from(loss.to_vec1::<f32>()?[0]);
        }
        Ok(())
    }

    fn generator(&self) -> &Generator {
        &self.generator
    }

    fn weights(&self, prefix: &str) -> Vec<(String, Tensor)> {
        weights_under(&self.varmap, prefix)
    }

    fn encode(&self, _batch: &Tensor) -> anyhow::Result<Option<Tensor>> {
        Ok(None)
    }
}
