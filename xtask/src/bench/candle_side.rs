//! The project's side of `bench --vs-pytorch`: the reference numbers the PyTorch twin must
//! reproduce (a *fixture*), and the timed worker that runs in a process of its own so that
//! its memory is its own.

use crate::train::objective::{self, restore_vars, vae_loss, Objective};
use crate::train::voices::{given_mask, negative_log_likelihood, Choices};
use crate::train::warm_start::read_trained_model;
use crate::train::{prior_latents, RunConfig, ShapeArgs};
use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clap::{Args, ValueEnum};
use dreamroll::model::generator::{Generator, CARD_FILE, DECODER_FILE, ENCODER_FILE};
use dreamroll::model::layers::Shape;
use dreamroll::model::rolls::{rolls_to_tensor, DecodeOptions};
use dreamroll::model::vae::{bce_with_logits, reparameterise, Encoder};
use dreamroll::model::{ModelCard, Preset};
use dreamroll::roll::Roll;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model folder's card and every weight of its encoder and decoder, by name.
pub struct TrainedModel {
    pub card: ModelCard,
    pub weights: HashMap<String, Tensor>,
}

impl TrainedModel {
    pub fn load(folder: &Path) -> anyhow::Result<TrainedModel> {
        let (card, weights) = read_trained_model(folder)?;
        if !matches!(card.preset, Preset::Vae | Preset::Voices) {
            bail!(
                "{}: the comparison with PyTorch covers the presets that ship models (vae, voices), not {:?}",
                folder.display(),
                card.preset
            );
        }
        Ok(TrainedModel { card, weights })
    }

    /// The same architecture for phrases of `bars` bars, with fresh weights from `seed` where
    /// a size depends on the phrase length (the scaling runs need no trained weights).
    pub fn with_bars(&self, bars: u16, seed: u64) -> anyhow::Result<TrainedModel> {
        let mut card = self.card.clone();
        card.representation.bars_per_phrase = bars;
        let objective = objective::build(&run_config(&card, 64, seed), &card, &Device::Cpu)?;
        let weights = objective.weights("").into_iter().collect();
        Ok(TrainedModel { card, weights })
    }

    pub fn write(&self, folder: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(folder)?;
        std::fs::write(folder.join(CARD_FILE), self.card.to_json())?;
        for (file, prefix) in [(ENCODER_FILE, "encoder."), (DECODER_FILE, "decoder.")] {
            let part: HashMap<String, Tensor> = self
                .weights
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(n, t)| (n.clone(), t.clone()))
                .collect();
            candle_core::safetensors::save(&part, folder.join(file))?;
        }
        Ok(())
    }

    /// A trainer's objective holding these weights.
    pub fn objective(&self, batch: usize) -> anyhow::Result<Box<dyn Objective>> {
        let mut objective = objective::build(&run_config(&self.card, batch, 0), &self.card, &Device::Cpu)?;
        objective.load_weights(&self.weights)?;
        Ok(objective)
    }

    /// `count` phrases of the card's length, written by the model itself from the prior (so
    /// that the bench needs no corpus); longer phrases join shorter ones.
    pub fn phrases(&self, count: usize) -> anyhow::Result<Vec<Roll>> {
        let objective = self.objective(count)?;
        let generator = objective.generator();
        let steps = self.card.representation.steps_per_phrase();
        let options = DecodeOptions::from_card(&self.card.decoding);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut phrases = generator.generate(&prior_latents(count, self.card.latent_size, 0), &options, &mut rng)?;
        while phrases[0].steps() < steps {
            let more = generator.generate(
                &prior_latents(count, self.card.latent_size, phrases[0].steps() as u64 * 1000),
                &options,
                &mut rng,
            )?;
            phrases = phrases
                .iter()
                .zip(&more)
                .map(|(a, b)| Roll::concat(&[a.clone(), b.clone()]).expect("two phrases"))
                .collect();
        }
        Ok(phrases.iter().map(|p| p.slice(0..steps)).collect())
    }
}

/// What the trainer would run with for this card; the loss weights are those the shipped
/// models were trained with (they change no cost).
fn run_config(card: &ModelCard, batch: usize, seed: u64) -> RunConfig {
    let mut shape = ShapeArgs::defaults();
    (shape.beta, shape.free_bits, shape.kl_warmup) = (0.5, 0.25, 1000);
    RunConfig { preset: card.preset, data: PathBuf::new(), epochs: 1, batch, lr: 1e-3, seed, shape, warm_start: None }
}

/// KL weight and free bits of the fixture's loss.
const FIXTURE_BETA: f64 = 0.5;
const FIXTURE_FREE_BITS: f64 = 0.25;

/// One training step's inputs, the decoder's output, the losses and every weight's gradient,
/// as candle computes them, for the twin to reproduce: `input.*`, `output.*`, `grad.*`.
pub fn fixture(model: &TrainedModel, phrases: &[Roll], seed: u64) -> anyhow::Result<HashMap<String, Tensor>> {
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let encoder = Encoder::new(Shape::of(&model.card), vb.pp("encoder"))?;
    let generator = Generator::build(model.card.clone(), vb, &device)?;
    restore_vars(&varmap, &model.weights)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let batch = rolls_to_tensor(&phrases.iter().collect::<Vec<_>>(), &device)?;
    let eps = objective::gaussian(&mut rng, phrases.len(), model.card.latent_size, &device)?;
    let mut tensors = HashMap::new();
    let (mean, log_variance) = encoder.forward(&batch)?;
    let z = reparameterise(&mean, &log_variance, &eps)?;
    let (logits, reconstruction) = match model.card.preset {
        Preset::Voices => {
            let choices = Choices::of(&model.card);
            let masks: Vec<Vec<bool>> = phrases.iter().map(|_| given_mask(&mut rng, choices.shape())).collect();
            let targets = choices.targets(phrases, &masks, &device)?;
            let network = generator.voice_network().expect("a voices generator");
            let scores = network.forward(&z, &targets.batch)?;
            let reconstruction = negative_log_likelihood(&scores, &targets)?;
            let given = &targets.batch.given;
            for (name, tensor) in [
                ("sounding", &targets.batch.sounding),
                ("age", &targets.batch.age),
                ("given_sounding", &given.sounding),
                ("given_age", &given.age),
                ("given_mask", &given.mask),
            ] {
                tensors.insert(format!("input.{name}"), tensor.clone());
            }
            tensors.insert("input.tokens".into(), targets.tokens()?);
            tensors.insert("input.scored".into(), targets.scored()?);
            tensors.insert("input.barred".into(), targets.barred()?);
            (scores, reconstruction)
        }
        _ => {
            let logits = generator.logits(&z)?;
            let reconstruction = bce_with_logits(&logits, &batch)?;
            (logits, reconstruction)
        }
    };
    let (loss, kl) = vae_loss(&reconstruction, &mean, &log_variance, FIXTURE_FREE_BITS, FIXTURE_BETA)?;
    let gradients = loss.backward()?;
    for (name, var) in objective::named_vars(&varmap) {
        let gradient = gradients.get(var.as_tensor()).with_context(|| format!("no gradient reaches `{name}`"))?;
        tensors.insert(format!("grad.{name}"), gradient.clone());
    }
    let scalar = |value: f64| Tensor::new(&[value as f32], &device);
    tensors.insert("input.batch".into(), batch);
    tensors.insert("input.eps".into(), eps);
    tensors.insert("input.beta".into(), scalar(FIXTURE_BETA)?);
    tensors.insert("input.free_bits".into(), scalar(FIXTURE_FREE_BITS)?);
    tensors.insert("output.logits".into(), logits);
    tensors.insert("output.loss".into(), loss);
    tensors.insert("output.reconstruction".into(), reconstruction);
    tensors.insert("output.kl".into(), kl);
    Ok(tensors)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    /// Load the model and decode phrases at batch 1 and 16 (an inference process).
    Decode,
    /// Training steps at the given batch.
    Train,
    /// Square f32 matrix products of side `GEMM_SIDE` (the CPU's peak as candle reaches it).
    Gemm,
}

/// The side of the square products `Job::Gemm` times: large enough that the product, not
/// its setup, is timed.
pub const GEMM_SIDE: usize = 2048;

/// `cargo xtask bench-worker`: one side's timings, printed as one JSON line.
#[derive(Args)]
pub struct WorkerArgs {
    /// The model folder (the decode and train jobs).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub job: Job,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
}

/// A measure is repeated at least `--repeats` times and, when that takes less, until this
/// long has been timed (at most `SHORT_MEASURE_REPEATS` times): a decode of a fraction of a
/// millisecond timed eight times gave medians that moved by half from one run to the next.
/// The twin's worker follows the same rule.
const SHORT_MEASURE_SECONDS: f64 = 0.25;
const SHORT_MEASURE_REPEATS: usize = 1000;

/// Seconds per repetition of each measure, and the process's peak resident memory.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Timings {
    pub seconds: HashMap<String, Vec<f64>>,
    pub peak_rss_mb: f64,
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let mut timings = Timings::default();
    let mut time = |name: &str,
                    repeats: usize,
                    warmup: usize,
                    run: &mut dyn FnMut() -> anyhow::Result<()>|
     -> anyhow::Result<()> {
        for _ in 0..warmup {
            run()?;
        }
        let mut seconds = Vec::with_capacity(repeats);
        let timing = Instant::now();
        while seconds.len() < repeats
            || (timing.elapsed().as_secs_f64() < SHORT_MEASURE_SECONDS && seconds.len() < SHORT_MEASURE_REPEATS)
        {
            let start = Instant::now();
            run()?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        timings.seconds.insert(name.to_string(), seconds);
        Ok(())
    };
    let model = || args.model.as_deref().context("--model: the decode and train jobs read a model folder");
    match args.job {
        Job::Decode => {
            // What the plugin loads, and nothing more: this process's memory is an inference's.
            let generator = Generator::from_dir(model()?)?;
            let card = generator.card();
            let options = DecodeOptions::from_card(&card.decoding);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            for batch in [1, 16] {
                let latents = prior_latents(batch, card.latent_size, 7);
                time(&format!("decode_{batch}"), args.repeats, args.warmup, &mut || {
                    std::hint::black_box(generator.generate(&latents, &options, &mut rng)?);
                    Ok(())
                })?;
            }
        }
        Job::Gemm => {
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let a = objective::gaussian(&mut rng, GEMM_SIDE, GEMM_SIDE, &Device::Cpu)?;
            let b = objective::gaussian(&mut rng, GEMM_SIDE, GEMM_SIDE, &Device::Cpu)?;
            time("gemm", args.repeats, args.warmup, &mut || {
                std::hint::black_box(a.matmul(&b)?);
                Ok(())
            })?;
        }
        Job::Train => {
            let model = TrainedModel::load(model()?)?;
            let phrases = model.phrases(args.batch)?;
            let batch = rolls_to_tensor(&phrases.iter().collect::<Vec<_>>(), &Device::Cpu)?;
            let mut objective = model.objective(args.batch)?;
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let mut step = 0;
            time("train_step", args.repeats, args.warmup, &mut || {
                step += 1;
                objective.train_step(&batch, &phrases, step, &mut rng)?;
                Ok(())
            })?;
        }
    }
    timings.peak_rss_mb = peak_rss_mb()?;
    println!("{}", serde_json::to_string(&timings)?);
    Ok(())
}

/// The process's high-water mark of resident memory (Linux: VmHWM).
fn peak_rss_mb() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (resident memory is read on Linux)")?;
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .context("no VmHWM line in /proc/self/status")?;
    Ok(kilobytes / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> TrainedModel {
        TrainedModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(name)).unwrap()
    }

    /// The twin is checked against these numbers, so every weight must have its gradient and
    /// the inputs must be all the twin needs to recompute the loss.
    #[test]
    fn a_fixture_carries_every_gradient_and_input() {
        for (name, inputs) in [
            (
                "chorales-satb",
                &[
                    "batch",
                    "eps",
                    "sounding",
                    "age",
                    "given_sounding",
                    "given_age",
                    "given_mask",
                    "tokens",
                    "scored",
                    "barred",
                ][..],
            ),
            ("chorales-satb-vae", &["batch", "eps"][..]),
        ] {
            let model = shipped(name);
            let phrases = model.phrases(3).unwrap();
            let tensors = fixture(&model, &phrases, 5).unwrap();
            for weight in model.weights.keys() {
                let gradient = tensors
                    .get(&format!("grad.{weight}"))
                    .unwrap_or_else(|| panic!("{name}: no gradient for {weight}"));
                assert_eq!(gradient.dims(), model.weights[weight].dims());
            }
            for input in inputs {
                assert!(tensors.contains_key(&format!("input.{input}")), "{name}: no input {input}");
            }
            let loss = tensors["output.loss"].to_scalar::<f32>().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{name}: loss {loss}");
        }
    }

    #[test]
    fn longer_phrases_join_the_models_own() {
        let model = shipped("chorales-satb").with_bars(8, 1).unwrap();
        let phrases = model.phrases(2).unwrap();
        assert_eq!(phrases[0].steps(), 8 * 16);
        assert!(
            model.weights.keys().any(|k| k.starts_with("encoder."))
                && model.weights.keys().any(|k| k.starts_with("decoder."))
        );
    }
}
