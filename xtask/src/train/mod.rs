//! `cargo xtask train`: learns a decoder from a folder of MIDI files.
//!
//! The loop here is the same for every preset: epochs of shuffled, transposed batches,
//! a CSV log, atomic checkpoints that a `--resume` continues from exactly (weights,
//! optimiser moments, batch order and random state), Ctrl-C that saves before it exits,
//! and a NaN loss that stops with the last good checkpoint kept. What a step computes is
//! the preset's [`Objective`].

mod adam;
mod budget;
pub mod checkpoint;
mod data;
mod export;
pub(crate) mod objective;
pub mod plot;
mod prior;
mod reconstruction;
mod seeded;
pub(crate) mod voices;
pub(crate) mod warm_start;

use anyhow::{bail, Context};
use budget::{stage, Clock, Costs, Split};
use candle_core::{Device, Tensor};
use checkpoint::BEST_WEIGHTS_FILE;
use clap::{Args, ValueEnum};
pub(crate) use data::augment;
pub use data::is_validation_piece;
use data::{GridChoice, TrainingData};
use dreamroll::corpus::PartReading;
use dreamroll::model::rolls::rolls_to_tensor;
use dreamroll::model::{Preset, TrackLatents};
use dreamroll::roll::{Meter, Roll, TrackAssignment};
use indicatif::{ProgressBar, ProgressStyle};
use objective::Objective;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Semitones either way of the random transposition of training phrases, unless told
/// otherwise; the evaluator moves real phrases the same way to compare keys like for like.
pub const DEFAULT_TRANSPOSE: i32 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Model family: voices, vae, musegan, midinet or cnn-lstm.
    #[arg(long, default_value = "vae")]
    pub preset: Preset,
    /// Folder of MIDI files to learn from (searched recursively).
    #[arg(long)]
    pub data: PathBuf,
    /// Model folder to write (`models/<name>`); checkpoints go there too.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Learning rate [default: 1e-3 for vae, 1e-4 for the GAN presets].
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue the run in `--out` from its last checkpoint, exactly where it stopped.
    #[arg(long)]
    pub resume: bool,
    /// Start from a trained model folder's weights (same preset, parts and pitch window),
    /// to fine-tune it on new data or with parts it lacks (those start as new).
    #[arg(long, conflicts_with = "resume")]
    pub warm_start: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Stop (with a checkpoint) after this many steps in all, before the epochs are done.
    #[arg(long)]
    pub max_steps: Option<u64>,
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Take at most this many minutes in all (resumed time counts), the calibration of the
    /// decoding and the written model included: training stops early enough to leave them
    /// their time, then the model is written as if the epochs were done.
    #[arg(long)]
    pub time_budget: Option<f64>,
    #[command(flatten)]
    pub shape: ShapeArgs,
}

/// Everything that fixes what is trained; stored in the checkpoint, so a resumed run is the
/// same run even if the command line forgot a flag.
#[derive(Args, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShapeArgs {
    #[arg(long, default_value_t = 4)]
    pub steps_per_beat: u16,
    #[arg(long, default_value = "4/4")]
    pub meter: Meter,
    /// Bars per phrase.
    #[arg(long, default_value_t = 4)]
    pub bars: u16,
    #[arg(long, default_value_t = 32)]
    pub latent: usize,
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    #[arg(long, default_value_t = 128)]
    pub bar_hidden: usize,
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
    #[arg(long, default_value_t = 4)]
    pub patch: usize,
    /// Random transposition of each training phrase, up to this many semitones either way.
    #[arg(long, default_value_t = DEFAULT_TRANSPOSE)]
    pub transpose: i32,
    #[arg(long, default_value_t = 0.1)]
    pub validation_share: f64,
    /// Bars between the starts of training phrases. 1 starts one at every bar, the most
    /// data; the phrase length cuts each piece into phrases from its first bar, as it falls
    /// into phrases, so that the model learns that a phrase's last bar is where the music
    /// closes (a chorale's fermatas fall every two or four bars).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    #[serde(default = "defaults::hop")]
    pub hop: u16,
    /// VAE: weight of the KL term once warmed up.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// VAE: steps over which the KL weight rises from 0 to beta.
    #[arg(long, default_value_t = 2000)]
    pub kl_warmup: u64,
    /// VAE: nats per latent dimension below which KL is not penalised (free bits).
    #[arg(long, default_value_t = 0.1)]
    pub free_bits: f64,
    /// voices: a pitch's embedding.
    #[arg(long, default_value_t = 24)]
    #[serde(default = "defaults::embed")]
    pub embed: usize,
    /// voices: the embedding of how long a note has sounded.
    #[arg(long, default_value_t = 8)]
    #[serde(default = "defaults::age_embed")]
    pub age_embed: usize,
    /// voices: the embedding of a step's place in its bar.
    #[arg(long, default_value_t = 8)]
    #[serde(default = "defaults::position_embed")]
    pub position_embed: usize,
    /// voices: channels of the reader of given voices and bars.
    #[arg(long, default_value_t = 64)]
    #[serde(default = "defaults::context")]
    pub context: usize,
    /// voices: each voice's output layer.
    #[arg(long, default_value_t = 128)]
    #[serde(default = "defaults::head")]
    pub head: usize,
    /// voices: learned scores for each note's interval from the voice's last one and for its
    /// spacing and parallels with the voices above (`--voice-leading false` to leave them out).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    #[serde(default)]
    pub voice_leading: bool,
    /// voices: loudness levels (ghost, normal, accent…) each voice learns for the notes it
    /// strikes, fitted to the velocities the data plays; 0 plays every note at the *Velocity*
    /// parameter, as does a model of data that plays one velocity throughout.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=8))]
    #[serde(default)]
    pub velocity_levels: u8,
    /// MuseGAN: how tracks share the latent.
    #[arg(long, default_value = "hybrid")]
    pub track_latents: String,
    /// MidiNet: condition each bar on its chord (12 roots + minor), estimated from the data.
    #[arg(long)]
    #[serde(default)]
    pub chord_condition: bool,
    /// How notes find their part: by MIDI `channel`, by `track` order (files whose parts
    /// share one channel), or by `role` (a band: drums, the bass, the comping part).
    #[arg(long, default_value = "channel")]
    #[serde(default)]
    pub parts: TrackAssignment,
    /// Name in the model card (default: the output folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// What the data is and under which terms it may be used, for the model card.
    #[arg(long, default_value = "")]
    pub data_terms: String,
}

/// What checkpoints written before the voices preset existed read as its sizes.
mod defaults {
    pub fn hop() -> u16 {
        1
    }
    pub fn embed() -> usize {
        24
    }
    pub fn age_embed() -> usize {
        8
    }
    pub fn position_embed() -> usize {
        8
    }
    pub fn context() -> usize {
        64
    }
    pub fn head() -> usize {
        128
    }
}

impl ShapeArgs {
    /// The options as a command line without any would give them.
    pub fn defaults() -> ShapeArgs {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            shape: ShapeArgs,
        }
        <Defaults as clap::Parser>::parse_from(["defaults"]).shape
    }

    pub fn track_latents(&self) -> anyhow::Result<TrackLatents> {
        Ok(match self.track_latents.as_str() {
            "jamming" => TrackLatents::Jamming,
            "composer" => TrackLatents::Composer,
            "hybrid" => TrackLatents::Hybrid,
            other => bail!("--track-latents {other}: choose jamming, composer or hybrid"),
        })
    }
}

/// The configuration a checkpoint carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub preset: Preset,
    pub data: PathBuf,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    pub shape: ShapeArgs,
    /// The model folder the run started from, if any.
    #[serde(default)]
    pub warm_start: Option<PathBuf>,
}

/// Where the loop is; saved with every checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    pub step: u64,
    pub epoch: usize,
    pub batch_in_epoch: usize,
    /// ChaCha8's position in its stream, as text (JSON numbers stop at 2^53).
    pub rng_word_pos: String,
    pub elapsed_seconds: f64,
    pub bars_seen: u64,
    /// The checkpoint with the lowest validation loss so far, (step, loss); its weights are
    /// in `best.safetensors`.
    #[serde(default)]
    pub best_validation: Option<(u64, f64)>,
}

pub fn device(choice: DeviceChoice) -> anyhow::Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => Device::new_cuda(0).context(
            "no CUDA device: build with `--features cuda` on a machine with an NVIDIA GPU and its driver, or use --device cpu",
        ),
    }
}

/// Set by Ctrl-C; the loop saves a checkpoint and leaves at the next step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    let device = device(args.device)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let checkpoint_path = args.out.join(checkpoint::CHECKPOINT_FILE);
    let (config, resumed) = if args.resume {
        let loaded = checkpoint::read(&checkpoint_path, &device)
            .with_context(|| "--resume needs a checkpoint from an earlier run in --out")?;
        let mut config: RunConfig =
            serde_json::from_str(loaded.metadata.get("config").context("checkpoint has no configuration")?)?;
        // A resumed run may go on longer, or more gently after a NaN; nothing else changes.
        config.epochs = args.epochs.max(config.epochs);
        config.lr = args.lr.unwrap_or(config.lr);
        (config, Some(loaded))
    } else {
        if checkpoint_path.exists() {
            bail!("{} already holds a run; pass --resume to continue it, or choose another --out", args.out.display());
        }
        let lr = args.lr.unwrap_or(if matches!(args.preset, Preset::Vae | Preset::Voices) { 1e-3 } else { 1e-4 });
        (
            RunConfig {
                preset: args.preset,
                data: args.data.clone(),
                epochs: args.epochs,
                batch: args.batch,
                lr,
                seed: args.seed,
                shape: args.shape.clone(),
                warm_start: args.warm_start.clone(),
            },
            None,
        )
    };
    if config.preset.is_adversarial() {
        // The GANs' gradient penalty differentiates a gradient; candle keeps the graph of its
        // backward pass only when told to before the thread's first backward pass. Nothing
        // else needs it, and keeping that graph makes every backward op record itself.
        std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
    }
    if config.batch == 0 || !config.lr.is_finite() || config.lr <= 0.0 {
        bail!("--batch must be at least 1 and --lr above 0");
    }
    let warm = config.warm_start.as_deref().map(warm_start::WarmStart::read).transpose()?;
    let pitch_window =
        resumed.as_ref().and_then(|c| c.metadata.get("pitch_window")).and_then(|w| serde_json::from_str(w).ok());
    let data = TrainingData::load(
        &config.data,
        &GridChoice {
            steps_per_beat: config.shape.steps_per_beat,
            meter: config.shape.meter,
            bars: config.shape.bars,
            pitch_multiple: config.shape.patch,
            pitch_window: pitch_window.or(warm.as_ref().map(warm_start::WarmStart::pitch_window)),
            tracks: None,
            assignment: config.shape.parts,
            reading: match config.preset {
                Preset::Voices => PartReading::Voices,
                _ => PartReading::Cells,
            },
            validation_share: config.shape.validation_share,
            hop: usize::from(config.shape.hop),
            seed: config.seed,
        },
    )?;
    println!("{}", data.summary);
    println!(
        "{} training and {} validation phrases of {} bars; pitches {}..{}; tracks: {}",
        data.train.len(),
        data.validation.len(),
        config.shape.bars,
        data.representation.lowest_pitch,
        u16::from(data.representation.lowest_pitch) + u16::from(data.representation.pitch_count),
        data.representation.tracks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    if config.preset == Preset::Voices {
        println!("{}", voices::chords_within_parts(&data.train));
    }
    let mut card = export::initial_card(&config, &data, &args.out)?;
    let mut objective = objective::build(&config, &card, &device)?;
    if let Some(warm) = &warm {
        card.training.started_from = Some(warm.check_fits(&card)?);
        if resumed.is_none() {
            println!("{}", warm.load_into(objective.as_mut())?);
        }
    }
    let mut state = LoopState::default();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut order: Vec<u32> = Vec::new();
    if let Some(loaded) = &resumed {
        objective.restore(&loaded.tensors)?;
        state = serde_json::from_str(loaded.metadata.get("state").context("checkpoint has no loop state")?)?;
        rng.set_word_pos(state.rng_word_pos.parse().context("checkpoint's random state is damaged")?);
        order = loaded.tensors.get("trainer.order").context("checkpoint has no batch order")?.to_vec1::<u32>()?;
        println!("resuming at step {} (epoch {}, batch {})", state.step, state.epoch + 1, state.batch_in_epoch);
    }
    let log = Log::open(&args.out, state.step, objective.loss_names())?;
    // A resumed run's earlier time is training time: what follows training never ran.
    let clock = Clock::start(started, state.elapsed_seconds);
    let run = Run { config, data, args: &args, device, checkpoint_path, clock };
    run.train(objective.as_mut(), &mut state, &mut rng, &mut order, log, &card)
}

struct Run<'a> {
    config: RunConfig,
    data: TrainingData,
    args: &'a TrainArgs,
    device: Device,
    checkpoint_path: PathBuf,
    /// The whole run's time, for `--time-budget`.
    clock: Clock,
}

/// Files written after training besides what is timed before it: a checkpoint, its plot, a
/// model folder (0.1–0.4 s for the models trained here), in seconds.
const WRITING_SECONDS: f64 = 1.0;

/// Phrases from the prior written before training, to time the calibration by.
const PROBE_CHUNKS_PER_THREAD: usize = 2;

/// Why the loop stopped.
#[derive(PartialEq)]
enum Stop {
    Finished,
    MaxSteps,
    Interrupted,
}

impl Run<'_> {
    /// What a stopped run leaves for the user to go on from.
    fn what_is_kept(&self) -> String {
        if self.checkpoint_path.exists() {
            format!(
                "the last good checkpoint is kept in {} (continue with --resume and a lower --lr)",
                self.checkpoint_path.display()
            )
        } else {
            "no checkpoint had been written yet (start again with a lower --lr)".to_string()
        }
    }

    fn batches_per_epoch(&self) -> usize {
        self.data.train.len().div_ceil(self.config.batch)
    }

    fn train(
        &self,
        objective: &mut dyn Objective,
        state: &mut LoopState,
        rng: &mut ChaCha8Rng,
        order: &mut Vec<u32>,
        mut log: Log,
        card: &dreamroll::model::ModelCard,
    ) -> anyhow::Result<()> {
        let per_epoch = self.batches_per_epoch();
        let total = (self.config.epochs * per_epoch) as u64;
        let limit = self.args.max_steps.map_or(total, |m| m.min(total));
        let progress = ProgressBar::new(limit).with_position(state.step.min(limit));
        progress.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps, {per_sec}, ETA {eta} | {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let split =
            self.args.time_budget.map(|minutes| self.split_budget(60.0 * minutes, objective, card)).transpose()?;
        let started = Instant::now();
        let elapsed_before = state.elapsed_seconds;
        let bars_per_phrase = u64::from(self.config.shape.bars);
        let mut stop = Stop::Finished;
        'epochs: while state.epoch < self.config.epochs {
            if state.batch_in_epoch == 0 {
                *order = (0..self.data.train.len() as u32).collect();
                order.shuffle(rng);
            }
            while state.batch_in_epoch < per_epoch {
                if state.step >= limit {
                    stop = Stop::MaxSteps;
                    break 'epochs;
                }
                if INTERRUPTED.load(Ordering::SeqCst) {
                    stop = Stop::Interrupted;
                    break 'epochs;
                }
                if let Some(split) = split.filter(|split| self.clock.spent() >= split.training_until) {
                    progress.suspend(|| {
                        println!(
                            "training's share of the time budget is spent after {} steps ({:.0} s of the run's {:.0} s); {:.0} s are left for what follows",
                            state.step,
                            self.clock.spent(),
                            split.budget,
                            split.budget - self.clock.spent()
                        )
                    });
                    break 'epochs;
                }
                let chosen = &order[state.batch_in_epoch * self.config.batch
                    ..((state.batch_in_epoch + 1) * self.config.batch).min(order.len())];
                let phrases: Vec<Roll> = chosen
                    .iter()
                    .map(|&i| augment(&self.data.train[i as usize], self.config.shape.transpose, rng))
                    .collect();
                let batch = rolls_to_tensor(&phrases.iter().collect::<Vec<_>>(), &self.device)?;
                let losses = objective.train_step(&batch, &phrases, state.step, rng)?;
                if losses.iter().any(|v| !v.is_finite()) {
                    progress.abandon();
                    bail!(
                        "the loss became {} at step {}; training stopped, and {}",
                        losses[0],
                        state.step + 1,
                        self.what_is_kept()
                    );
                }
                state.step += 1;
                state.batch_in_epoch += 1;
                state.bars_seen += phrases.len() as u64 * bars_per_phrase;
                state.elapsed_seconds = elapsed_before + started.elapsed().as_secs_f64();
                log.train(state, &losses)?;
                progress.set_position(state.step);
                progress.set_message(format!("epoch {} loss {:.3}", state.epoch + 1, losses[0]));
                if state.step.is_multiple_of(self.args.checkpoint_every) {
                    self.checkpoint(objective, state, rng, order, &mut log, card)?;
                }
            }
            state.epoch += 1;
            state.batch_in_epoch = 0;
        }
        progress.finish();
        let what = format!("validating on {} phrases and saving the last checkpoint", self.data.validation.len());
        stage(&what, || self.checkpoint(objective, state, rng, order, &mut log, card))?;
        match stop {
            Stop::Interrupted => {
                println!("interrupted: checkpoint saved at step {}; continue with --resume", state.step)
            }
            Stop::MaxSteps => println!("stopped at step {} as asked; continue with --resume", state.step),
            Stop::Finished => {
                let bars_per_second = state.bars_seen as f64 / state.elapsed_seconds.max(1e-9);
                println!(
                    "trained {} steps in {:.0} s ({bars_per_second:.1} bars/s)",
                    state.step, state.elapsed_seconds
                );
                let mut card = card.clone();
                if let Some((best_step, best_loss)) = state.best_validation.filter(|&(step, _)| step != state.step) {
                    let best = checkpoint::read(&self.best_path(), &self.device)?;
                    stage(&format!("loading the weights of step {best_step}"), || {
                        objective.load_weights(&best.tensors)
                    })?;
                    println!(
                        "kept the weights of step {best_step}, whose validation loss ({best_loss:.3}) was the lowest"
                    );
                    card.training.kept_step = Some(best_step as usize);
                }
                let calibration = match split {
                    Some(split) => self.replan_calibration(objective, &card, split)?,
                    None => export::Calibration::FULL,
                };
                export::finish(
                    objective,
                    &self.data,
                    &self.config,
                    state,
                    &card,
                    &self.args.out,
                    &self.device,
                    calibration,
                )?;
                if let Some(split) = split {
                    println!("the run took {:.0} s of its {:.0} s budget", self.clock.spent(), split.budget);
                }
            }
        }
        Ok(())
    }

    fn checkpoint(
        &self,
        objective: &mut dyn Objective,
        state: &mut LoopState,
        rng: &ChaCha8Rng,
        order: &[u32],
        log: &mut Log,
        card: &dreamroll::model::ModelCard,
    ) -> anyhow::Result<()> {
        let validation = self.validate(objective)?;
        if validation.iter().any(|v| !v.is_finite()) {
            bail!(
                "the weights diverged by step {} (validation loss {}); training stopped, and {}",
                state.step,
                validation[0],
                self.what_is_kept()
            );
        }
        log.validation(state, &validation)?;
        if self.validation_ranks_weights() && state.best_validation.is_none_or(|(_, best)| validation[0] < best) {
            checkpoint::write_atomically(&self.best_path(), &objective.weights(""), HashMap::new())?;
            state.best_validation = Some((state.step, validation[0]));
        }
        state.rng_word_pos = rng.get_word_pos().to_string();
        let mut tensors = objective.tensors();
        tensors.push(("trainer.order".into(), Tensor::from_vec(order.to_vec(), order.len(), &Device::Cpu)?));
        let window = (card.representation.lowest_pitch, card.representation.pitch_count);
        let metadata = HashMap::from([
            ("config".to_string(), serde_json::to_string(&self.config)?),
            ("state".to_string(), serde_json::to_string(state)?),
            ("pitch_window".to_string(), serde_json::to_string(&window)?),
        ]);
        checkpoint::write_atomically(&self.checkpoint_path, &tensors, metadata)?;
        log.plot(&self.args.out.join("loss.png"))?;
        export::progress_samples(objective, &self.data, card, &self.args.out.join("progress"), state.step)
    }

    /// Whether the weights with the lowest validation loss are the ones to keep: a VAE's
    /// validation loss bounds the held-out phrases' likelihood, so when it rises the model is
    /// learning its training pieces by heart (on the 409 chorales that starts within the
    /// first hour). A GAN's losses are a game's score, and rank nothing; nor does a folder
    /// too small to hold validation pieces.
    fn validation_ranks_weights(&self) -> bool {
        matches!(self.config.preset, Preset::Vae | Preset::Voices) && !self.data.validation.is_empty()
    }

    fn best_path(&self) -> PathBuf {
        self.args.out.join(BEST_WEIGHTS_FILE)
    }

    /// Shares the time budget out between the training loop and what follows it, from what
    /// that costs on this model and data ([`Run::measure_costs`]), and says how.
    fn split_budget(
        &self,
        budget: f64,
        objective: &dyn Objective,
        card: &dreamroll::model::ModelCard,
    ) -> anyhow::Result<Split> {
        let measured = Instant::now();
        let costs = self.measure_costs(objective, card)?;
        let split = budget::split(budget, &costs);
        let calibration = if costs.searches > 0 {
            format!(
                "calibrating the decoding on {} phrases from the prior at {:.1} ms a phrase{} (the full calibration: {} phrases, {:.0} s), ",
                split.plan.phrases_in_all(costs.searches),
                1e3 * costs.phrase,
                if split.plan == budget::CalibrationPlan::FULL { "" } else { ", made smaller to fit" },
                budget::CalibrationPlan::FULL.phrases_in_all(costs.searches),
                costs.calibration(budget::CalibrationPlan::FULL),
            )
        } else {
            String::new()
        };
        println!(
            "time budget {budget:.0} s: training until {:.0} s, then {:.0} s (with a margin of {:.0} %) for the last checkpoint, {calibration}the macro knobs and the model's files (measured in {:.1} s)",
            split.training_until,
            split.budget - split.training_until,
            100.0 * (budget::MARGIN - 1.0),
            measured.elapsed().as_secs_f64()
        );
        Ok(split)
    }

    /// The calibration that fits the time left for it now, at the rate phrases are written
    /// now: the machine may have become busier or freer since the budget was shared out.
    fn replan_calibration(
        &self,
        objective: &dyn Objective,
        card: &dreamroll::model::ModelCard,
        split: Split,
    ) -> anyhow::Result<export::Calibration> {
        let until = Some(self.clock.instant_at(split.calibration_until));
        if card.preset != Preset::Voices {
            return Ok(export::Calibration { plan: split.plan, until });
        }
        let count = PROBE_CHUNKS_PER_THREAD * prior::CHUNK * prior::threads();
        let phrase = export::calibration_phrase_seconds(objective.generator(), card, count)?;
        let left = split.calibration_until - self.clock.spent();
        let plan = budget::plan_within(left / budget::MARGIN, phrase, export::PART_WRITING_SEARCHES);
        println!(
            "{:.0} s left for the calibration at {:.1} ms a phrase (measured now): {} phrases a step{}",
            left.max(0.0),
            1e3 * phrase,
            plan.phrases,
            if plan == split.plan { ", as planned".to_string() } else { format!(" (planned: {})", split.plan.phrases) }
        );
        Ok(export::Calibration { plan, until })
    }

    /// What the stages after the loop cost on this run's model and data, in wall seconds: a
    /// validation batch, a batch of the encoder's reading of training phrases and a few
    /// phrases from the prior, each timed and scaled to the whole (their cost does not depend
    /// on what the weights have learned), and the samples as a checkpoint writes them.
    fn measure_costs(&self, objective: &dyn Objective, card: &dreamroll::model::ModelCard) -> anyhow::Result<Costs> {
        fn timed(work: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
            let started = Instant::now();
            work()?;
            Ok(started.elapsed().as_secs_f64())
        }
        let scaled = |phrases: &[Roll], batch: usize, work: &dyn Fn(&[Roll]) -> anyhow::Result<()>| match phrases
            .chunks(batch)
            .next()
        {
            Some(first) => Ok(timed(|| work(first))? * phrases.len().div_ceil(batch) as f64),
            None => Ok::<_, anyhow::Error>(0.0),
        };
        let batch = self.config.batch.max(1);
        let validation =
            scaled(&self.data.validation, batch, &|chunk| self.validate_phrases(objective, chunk).map(drop))?;
        let codes = scaled(&self.data.train, export::CODES_BATCH, &|chunk| {
            export::training_codes(objective, chunk, &self.device).map(drop)
        })?;
        let samples = timed(|| export::sample_phrases(objective, &self.data, card, 8).map(drop))?;
        let (phrase, searches) = if card.preset == Preset::Voices {
            let count = PROBE_CHUNKS_PER_THREAD * prior::CHUNK * prior::threads();
            (export::calibration_phrase_seconds(objective.generator(), card, count)?, export::PART_WRITING_SEARCHES)
        } else {
            (0.0, 0)
        };
        Ok(Costs {
            phrase,
            searches,
            before_calibration: validation + samples + WRITING_SECONDS,
            after_calibration: samples + codes + WRITING_SECONDS,
        })
    }

    /// Mean validation losses over the validation phrases (weighted by batch size).
    fn validate(&self, objective: &dyn Objective) -> anyhow::Result<Vec<f64>> {
        self.validate_phrases(objective, &self.data.validation)
    }

    fn validate_phrases(&self, objective: &dyn Objective, phrases: &[Roll]) -> anyhow::Result<Vec<f64>> {
        let mut sums = vec![0.0; objective.loss_names().len()];
        let mut count = 0usize;
        for chunk in phrases.chunks(self.config.batch.max(1)) {
            let batch = rolls_to_tensor(&chunk.iter().collect::<Vec<_>>(), &self.device)?;
            for (sum, value) in sums.iter_mut().zip(objective.validation_losses(&batch, chunk)?) {
                *sum += value * chunk.len() as f64;
            }
            count += chunk.len();
        }
        // No validation pieces (a tiny folder) is no failure: the losses read 0.
        Ok(sums.into_iter().map(|s| s / count.max(1) as f64).collect())
    }
}

/// `train.csv`: one row per step (training losses) and per checkpoint (validation losses).
struct Log {
    path: PathBuf,
    names: Vec<&'static str>,
    rows: Vec<(u64, &'static str, Vec<f64>, f64)>,
}

impl Log {
    /// Opens the log, keeping only rows up to `step`: a resumed run rewrites what came after
    /// its checkpoint, so the log matches the weights.
    fn open(folder: &Path, step: u64, names: Vec<&'static str>) -> anyhow::Result<Log> {
        let path = folder.join("train.csv");
        let mut rows = Vec::new();
        if step > 0 {
            if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines().skip(1) {
                    let fields: Vec<&str> = line.split(',').collect();
                    let Some(row_step) = fields.first().and_then(|s| s.parse::<u64>().ok()) else { continue };
                    if row_step > step {
                        continue;
                    }
                    let split = if fields.get(1) == Some(&"validation") { "validation" } else { "train" };
                    let values = fields[3..].iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect();
                    rows.push((row_step, split, values, fields.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.0)));
                }
            }
        }
        let log = Log { path, names, rows };
        log.write_all()?;
        Ok(log)
    }

    fn header(&self) -> String {
        format!("step,split,seconds,{}\n", self.names.join(","))
    }

    fn write_all(&self) -> anyhow::Result<()> {
        let mut text = self.header();
        for (step, split, values, seconds) in &self.rows {
            text += &format!(
                "{step},{split},{seconds:.1},{}\n",
                values.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",")
            );
        }
        checkpoint::write_file_atomically(&self.path, text.as_bytes())
    }

    fn append(&mut self, step: u64, split: &'static str, values: &[f64], seconds: f64) -> anyhow::Result<()> {
        self.rows.push((step, split, values.to_vec(), seconds));
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        writeln!(
            file,
            "{step},{split},{seconds:.1},{}",
            values.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>().join(",")
        )?;
        Ok(())
    }

    fn train(&mut self, state: &LoopState, losses: &[f64]) -> anyhow::Result<()> {
        self.append(state.step, "train", losses, state.elapsed_seconds)
    }

    fn validation(&mut self, state: &LoopState, losses: &[f64]) -> anyhow::Result<()> {
        self.append(state.step, "validation", losses, state.elapsed_seconds)
    }

    /// Training loss smoothed over 50 steps, and validation loss.
    fn plot(&self, path: &Path) -> anyhow::Result<()> {
        let series = |split: &str| -> Vec<(f64, f64)> {
            self.rows.iter().filter(|r| r.1 == split).map(|r| (r.0 as f64, r.2[0])).collect()
        };
        let train = series("train");
        let smoothed: Vec<(f64, f64)> = train
            .iter()
            .enumerate()
            .map(|(i, &(x, _))| {
                let window = &train[i.saturating_sub(49)..=i];
                (x, window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64)
            })
            .collect();
        plot::loss_chart(
            path,
            "training loss",
            &[("train (mean of 50 steps)", smoothed), ("validation", series("validation"))],
        )
    }
}

/// Batch of latents from the generator's prior, for samples and calibration.
pub fn prior_latents(count: usize, size: usize, first_seed: u64) -> Vec<Vec<f32>> {
    (0..count as u64).map(|i| dreamroll::model::latent::noise(first_seed + i, size)).collect()
}

pub fn representation_of(card: &dreamroll::model::ModelCard) -> Arc<dreamroll::roll::Representation> {
    Arc::new(card.representation.clone())
}

/// The shipped chorale model's card with small sizes (and `velocity_levels` loudness levels,
/// each part's at 40, 90 and 120), and a fresh objective for it.
#[cfg(test)]
pub(crate) fn small_voices_objective(
    voice_leading: bool,
    velocity_levels: usize,
    seed: u64,
) -> (dreamroll::model::ModelCard, Box<dyn Objective>) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/chorales-satb/model.json")).unwrap();
    let mut card = dreamroll::model::ModelCard::from_json(&text).unwrap();
    (card.architecture.hidden, card.architecture.bar_hidden, card.architecture.channels) = (12, 6, 4);
    card.architecture.voice = Some(dreamroll::model::VoiceArchitecture {
        embed: 3,
        age_embed: 2,
        position_embed: 2,
        context: 4,
        head: 5,
        leading: voice_leading,
        velocity_levels,
    });
    if velocity_levels > 0 {
        card.decoding.dynamics = vec![[40, 90, 120][..velocity_levels.min(3)].to_vec(); 4];
    }
    let config = RunConfig {
        preset: card.preset,
        data: PathBuf::new(),
        epochs: 1,
        batch: 2,
        lr: 1e-3,
        seed,
        shape: ShapeArgs::defaults(),
        warm_start: None,
    };
    let objective = objective::build(&config, &card, &Device::Cpu).unwrap();
    (card, objective)
}
