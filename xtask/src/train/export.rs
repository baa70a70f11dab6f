//! From a trained objective to a model folder: the calibrated card, macro knobs, weights
//! and samples.

use super::budget::{stage, CalibrationPlan};
use super::data::TrainingData;
use super::objective::Objective;
use super::{checkpoint, plot, prior, prior_latents, representation_of, LoopState, RunConfig};
use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use dreamroll::metrics::voices::{VoiceAccumulator, VoiceSummary};
use dreamroll::model::card::BIAS_LIMIT;
use dreamroll::model::generator::{Generator, CARD_FILE, DECODER_FILE, ENCODER_FILE};
use dreamroll::model::learned_phrases::LEARNED_PHRASES_FILE;
use dreamroll::model::rolls::{logits_to_roll, rolls_to_tensor, DecodeOptions};
use dreamroll::model::{
    Architecture, Decoding, MacroKnob, ModelCard, Preset, TrainingInfo, VoiceArchitecture, SCHEMA_VERSION,
};
use dreamroll::roll::{roll_to_midi, Roll};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

pub const MACRO_KNOBS: usize = 8;

pub fn initial_card(config: &RunConfig, data: &TrainingData, out: &Path) -> anyhow::Result<ModelCard> {
    let shape = &config.shape;
    let dynamics = match config.preset {
        Preset::Voices => super::data::dynamics(&data.train, data.representation.track_count(), shape.velocity_levels),
        _ => Vec::new(),
    };
    let name = shape.name.clone().unwrap_or_else(|| out.file_name().unwrap_or_default().to_string_lossy().into_owned());
    let card = ModelCard {
        schema_version: SCHEMA_VERSION,
        description: format!(
            "a {} decoder of {}-bar phrases at {} steps per beat, trained on `{}` in {}",
            config.preset,
            shape.bars,
            shape.steps_per_beat,
            config.data.file_name().unwrap_or_default().to_string_lossy(),
            shape.meter
        ),
        name,
        preset: config.preset,
        representation: (*data.representation).clone(),
        latent_size: shape.latent,
        architecture: Architecture {
            hidden: shape.hidden,
            bar_hidden: shape.bar_hidden,
            channels: shape.channels,
            patch: shape.patch,
            track_latents: (config.preset == Preset::Musegan).then(|| shape.track_latents()).transpose()?,
            chord_condition: shape.chord_condition,
            voice: (config.preset == Preset::Voices).then_some(VoiceArchitecture {
                embed: shape.embed,
                age_embed: shape.age_embed,
                position_embed: shape.position_embed,
                context: shape.context,
                head: shape.head,
                leading: shape.voice_leading,
                velocity_levels: if dynamics.is_empty() { 0 } else { usize::from(shape.velocity_levels) },
            }),
        },
        decoding: Decoding {
            onset_threshold: 0.5,
            sustain_threshold: 0.5,
            monophonic: data.monophonic.clone(),
            default_velocity: 90,
            dynamics,
            // The voice decoder's choices are drawn from what it learned; the others start
            // from threshold decoding and are calibrated at the end.
            temperature: if config.preset == Preset::Voices { 1.0 } else { 0.0 },
            rest_bias: 0.0,
            crossing_bias: 0.0,
            parallel_bias: 0.0,
            // Calibrated afterwards with the encoder: `cargo xtask listen --calibrate`.
            harmonise_bias: 0.0,
            harmonise_short_note_bias: 0.0,
            harmonise_rest_bias: 0.0,
            harmonise_repeat_bias: 0.0,
            harmonise_leap_bias: 0.0,
            seam_opening_weight: 0.0,
            seam_leap_bias: 0.0,
            cadence_candidates: 0,
        },
        latent_center: vec![0.0; shape.latent],
        macro_knobs: Vec::new(),
        // Learned afterwards from the trained encoder: `cargo xtask knobs --write`.
        named_knobs: Vec::new(),
        styles: Vec::new(),
        training: TrainingInfo {
            data: config.data.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            terms: shape.data_terms.clone(),
            pieces: data.pieces,
            bars: data.bars,
            batch: config.batch,
            learning_rate: config.lr,
            seed: config.seed,
            track_assignment: shape.parts,
            ..TrainingInfo::default()
        },
    };
    if let Some(mode) = card.architecture.track_latents {
        let tracks = card.representation.track_count();
        if !mode.fits(card.latent_size, tracks) {
            let near: Vec<String> = (1..=2 * card.latent_size)
                .filter(|&latent| mode.fits(latent, tracks) && latent.abs_diff(card.latent_size) <= 12)
                .map(|latent| latent.to_string())
                .collect();
            bail!(
                "--latent {}: {mode:?} latents do not split evenly over {tracks} tracks; try --latent {}",
                card.latent_size,
                near.join(" or ")
            );
        }
    }
    card.validate().context("the training options make an invalid model card")?;
    Ok(card)
}

/// The onset threshold at which phrases from the prior start as many notes per step as the
/// training phrases do: the k-th largest candidate onset logit, where a monophonic track
/// offers its likeliest pitch per step and a polyphonic one every cell.
pub fn calibrate_onset_threshold(card: &ModelCard, logits: &[Vec<f32>], onset_rate: &[f64]) -> f32 {
    let (tracks, pitches) = (card.representation.track_count(), card.representation.pitch_count());
    let mut candidates: Vec<f32> = Vec::new();
    let mut wanted = 0.0;
    for phrase in logits {
        let plane = phrase.len() / (2 * tracks);
        let steps = plane / pitches;
        for track in 0..tracks {
            let onsets = &phrase[track * plane..(track + 1) * plane];
            wanted += onset_rate[track] * steps as f64;
            for step in onsets.chunks(pitches) {
                if card.decoding.monophonic[track] {
                    candidates.push(step.iter().copied().fold(f32::NEG_INFINITY, f32::max));
                } else {
                    candidates.extend_from_slice(step);
                }
            }
        }
    }
    candidates.sort_by(|a, b| b.total_cmp(a));
    let k = (wanted.round() as usize).clamp(1, candidates.len().max(1)) - 1;
    let threshold_logit = candidates.get(k).copied().unwrap_or(0.0);
    (1.0 / (1.0 + (-threshold_logit).exp())).clamp(0.001, 0.999)
}

/// The sustain threshold at which decoded phrases sound for as many steps as the training
/// phrases do, by bisection (sounding time falls as the threshold rises).
pub fn calibrate_sustain_threshold(
    card: &ModelCard,
    logits: &[Vec<f32>],
    onset_threshold: f32,
    sounding_rate: &[f64],
) -> f32 {
    let representation = representation_of(card);
    let target = sounding_rate.iter().sum::<f64>() / sounding_rate.len().max(1) as f64;
    let base = DecodeOptions { onset_threshold, ..DecodeOptions::from_card(&card.decoding) };
    let sounds_too_long = |sustain_threshold: f32| {
        let options = DecodeOptions { sustain_threshold, ..base.clone() };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (mut sounding, mut cells) = (0usize, 0usize);
        for phrase in logits.iter().take(128) {
            let roll = logits_to_roll(&representation, phrase, &options, &mut rng);
            for track in 0..roll.track_count() {
                sounding += (0..roll.steps()).filter(|&s| roll.sounding_at(track, s).contains(&true)).count();
                cells += roll.steps();
            }
        }
        sounding as f64 / cells.max(1) as f64 > target
    };
    bisect(0.01, 0.99, 14, sounds_too_long)
}

/// The point in `low..high` where `below` (true under the point, false over it) turns.
fn bisect(mut low: f32, mut high: f32, iterations: usize, below: impl Fn(f32) -> bool) -> f32 {
    for _ in 0..iterations {
        let middle = 0.5 * (low + high);
        if below(middle) {
            low = middle;
        } else {
            high = middle;
        }
    }
    0.5 * (low + high)
}

/// The temperature at which decoded phrases use as many pitch classes per bar as the
/// training phrases (UPC), by bisection over 0..=1.5: sampling adds variety that threshold
/// decoding lacks, and this finds how much the corpus has.
pub fn calibrate_temperature(card: &ModelCard, logits: &[Vec<f32>], options: &DecodeOptions, training_upc: f64) -> f32 {
    let representation = representation_of(card);
    let upc_at = |temperature: f32| {
        let options = DecodeOptions { temperature, ..options.clone() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut metrics = dreamroll::metrics::MetricsAccumulator::default();
        logits
            .iter()
            .take(128)
            .for_each(|phrase| metrics.add(&logits_to_roll(&representation, phrase, &options, &mut rng)));
        metrics.summary().used_pitch_classes.unwrap_or(0.0)
    };
    if upc_at(0.0) >= training_upc {
        return 0.0;
    }
    bisect(0.0, 1.5, 10, |temperature| upc_at(temperature) < training_upc)
}

/// The top principal directions of the latent codes, by power iteration with deflation
/// (the latent is small, so this is exact enough and needs no linear-algebra crate).
pub fn principal_directions(codes: &[Vec<f32>], count: usize) -> (Vec<f32>, Vec<MacroKnob>) {
    let n = codes.len().max(1) as f64;
    let size = codes.first().map_or(0, Vec::len);
    let mut mean = vec![0f64; size];
    codes.iter().for_each(|c| c.iter().enumerate().for_each(|(i, &v)| mean[i] += f64::from(v) / n));
    let mut covariance = vec![vec![0f64; size]; size];
    for code in codes {
        let centred: Vec<f64> = code.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m).collect();
        for i in 0..size {
            for j in 0..size {
                covariance[i][j] += centred[i] * centred[j] / n;
            }
        }
    }
    let trace: f64 = (0..size).map(|i| covariance[i][i]).sum();
    let mut knobs = Vec::new();
    for k in 0..count.min(size) {
        let mut v: Vec<f64> = (0..size).map(|i| if i == k { 1.0 } else { 0.1 }).collect();
        let mut eigenvalue = 0.0;
        for _ in 0..500 {
            let w: Vec<f64> = (0..size).map(|i| (0..size).map(|j| covariance[i][j] * v[j]).sum()).collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            eigenvalue = norm;
            v = w.into_iter().map(|x| x / norm).collect();
        }
        // A sign convention, so that retraining does not flip knobs at random.
        let largest = v.iter().copied().fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        if largest < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        for i in 0..size {
            for j in 0..size {
                covariance[i][j] -= eigenvalue * v[i] * v[j];
            }
        }
        knobs.push(MacroKnob {
            name: format!("Macro {}", k + 1),
            direction: v.iter().map(|&x| x as f32).collect(),
            spread: eigenvalue.max(0.0).sqrt() as f32,
            variance_share: if trace > 0.0 { (eigenvalue / trace) as f32 } else { 0.0 },
        });
    }
    (mean.iter().map(|&m| m as f32).collect(), knobs)
}

fn voice_summary<'a>(rolls: impl IntoIterator<Item = &'a Roll>) -> VoiceSummary {
    let mut voices = VoiceAccumulator::default();
    rolls.into_iter().for_each(|roll| voices.add(roll));
    voices.summary()
}

/// How a calibration's bisection search runs.
pub struct Search<'a> {
    pub plan: CalibrationPlan,
    /// A step that would not end by then is not started: the search keeps the bias it has
    /// reached (it always takes its first step).
    pub until: Option<Instant>,
    pub threads: usize,
    /// Told of every phrase written; a plain line per step where it is hidden (no terminal).
    pub progress: &'a ProgressBar,
}

/// What a calibration's search found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Found {
    pub bias: f32,
    pub steps: usize,
    /// The statistic at the last step's bias, and the training phrases'.
    pub rate: f64,
    pub target: f64,
}

impl Found {
    fn none() -> Found {
        Found { bias: 0.0, steps: 0, rate: 0.0, target: 0.0 }
    }
}

/// The voice decoder's rest bias at which phrases from the prior rest (the mean over voices
/// of the share of steps each rests, up to its last note) as often as the `training` phrases.
pub fn calibrate_rest_bias(
    generator: &Generator,
    card: &ModelCard,
    training: &VoiceSummary,
    search: &Search,
) -> anyhow::Result<Found> {
    calibrate_bias(
        generator,
        card,
        training,
        |summary| summary.mean.rests,
        |options, bias| DecodeOptions { rest_bias: bias, ..options.clone() },
        search,
    )
}

/// The voice decoder's crossing bias at which phrases from the prior cross voices as often as
/// the `training` phrases (0 for a single voice, which has nothing to cross).
pub fn calibrate_crossing_bias(
    generator: &Generator,
    card: &ModelCard,
    training: &VoiceSummary,
    search: &Search,
) -> anyhow::Result<Found> {
    calibrate_bias(
        generator,
        card,
        training,
        |summary| summary.crossings,
        |options, bias| DecodeOptions { crossing_bias: bias, ..options.clone() },
        search,
    )
}

/// The bias at which phrases from the prior show `statistic` at the `training` phrases'
/// rate. It only grows with the bias, so it is found by bisection, on the same latents and
/// random stream each time; the card's other settings stay as they are. The phrases of a
/// step are written on `search.threads` threads, the same phrases on any number of them.
fn calibrate_bias(
    generator: &Generator,
    card: &ModelCard,
    training: &VoiceSummary,
    statistic: impl Fn(&VoiceSummary) -> Option<f64>,
    with_bias: impl Fn(&DecodeOptions, f32) -> DecodeOptions,
    search: &Search,
) -> anyhow::Result<Found> {
    let Some(target) = statistic(training) else { return Ok(Found::none()) };
    let latents = prior_latents(search.plan.phrases, card.latent_size, 1_000_000);
    let base = DecodeOptions::from_card(&card.decoding);
    let (mut low, mut high) = (-BIAS_LIMIT, BIAS_LIMIT);
    let (mut steps, mut rate, mut last_step) = (0, 0.0, Duration::ZERO);
    while steps < search.plan.steps {
        if steps > 0 && search.until.is_some_and(|until| Instant::now() + last_step > until) {
            break;
        }
        let started = Instant::now();
        let middle = 0.5 * (low + high);
        let phrases = prior::generate(generator, &latents, &with_bias(&base, middle), 0, search.threads, &|count| {
            search.progress.inc(count as u64)
        })?;
        rate = statistic(&voice_summary(&phrases)).unwrap_or(1.0);
        if rate < target {
            low = middle;
        } else {
            high = middle;
        }
        steps += 1;
        last_step = started.elapsed();
        if search.progress.is_hidden() {
            println!(
                "  step {steps}/{}: bias {middle:+.3} gives {:.3} % (the training phrases: {:.3} %), {:.1} s",
                search.plan.steps,
                100.0 * rate,
                100.0 * target,
                last_step.as_secs_f64()
            );
        }
    }
    Ok(Found { bias: 0.5 * (low + high), steps, rate, target })
}

/// The voice decoder's parallel bias at which phrases from the prior move in parallel
/// fifths and octaves as often as the `training` phrases (0 for a single voice).
pub fn calibrate_parallel_bias(
    generator: &Generator,
    card: &ModelCard,
    training: &VoiceSummary,
    search: &Search,
) -> anyhow::Result<Found> {
    calibrate_bias(
        generator,
        card,
        training,
        |summary| summary.parallels,
        |options, bias| DecodeOptions { parallel_bias: bias, ..options.clone() },
        search,
    )
}

/// A bias's name, what it counts, its search, and where the card keeps it.
type PartWritingSearch = (
    &'static str,
    &'static str,
    fn(&Generator, &ModelCard, &VoiceSummary, &Search) -> anyhow::Result<Found>,
    fn(&mut ModelCard) -> &mut f32,
);

/// The voices preset's part-writing biases. Rests, crossings and parallels move each other
/// a little: each is calibrated with the others as found so far, then rests again with
/// everything as it will be played. Each search gets an equal share of the time left until
/// `until`, where there is a deadline.
pub fn calibrate_part_writing(
    generator: &Generator,
    card: &mut ModelCard,
    training: &[Roll],
    plan: CalibrationPlan,
    until: Option<Instant>,
) -> anyhow::Result<()> {
    let searches: [PartWritingSearch; PART_WRITING_SEARCHES] = [
        ("rest bias", "rests", calibrate_rest_bias, |card| &mut card.decoding.rest_bias),
        ("crossing bias", "crossings", calibrate_crossing_bias, |card| &mut card.decoding.crossing_bias),
        ("parallel bias", "parallels", calibrate_parallel_bias, |card| &mut card.decoding.parallel_bias),
        ("rest bias, again", "rests", calibrate_rest_bias, |card| &mut card.decoding.rest_bias),
    ];
    let threads = prior::threads();
    println!(
        "calibrating the decoding: {} searches of {} steps on {} phrases each from the prior ({} phrases), on {threads} thread{}{}",
        searches.len(),
        plan.steps,
        plan.phrases,
        plan.phrases_in_all(searches.len()),
        if threads == 1 { "" } else { "s" },
        match until {
            Some(until) => format!(
                ", within {:.0} s",
                until.saturating_duration_since(Instant::now()).as_secs_f64()
            ),
            None => String::new(),
        }
    );
    let progress = ProgressBar::new(plan.phrases_in_all(searches.len()) as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} phrases, {per_sec}, ETA {eta} | {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let training = voice_summary(training);
    for (index, (name, statistic, calibrate, field)) in searches.into_iter().enumerate() {
        progress.set_message(name);
        if progress.is_hidden() {
            println!("{name} ({} of {}):", index + 1, searches.len());
        }
        let started = Instant::now();
        let left = searches.len() - index;
        let search_until = until.map(|until| started + until.saturating_duration_since(started).div_f64(left as f64));
        let search = Search { plan, until: search_until, threads, progress: &progress };
        let found = calibrate(generator, card, &training, &search)?;
        *field(card) = found.bias;
        // A search cut short leaves its phrases unwritten: the bar counts what is left.
        let unwritten = ((plan.steps - found.steps.min(plan.steps)) * plan.phrases) as u64;
        progress.set_length(progress.length().unwrap_or(0).saturating_sub(unwritten));
        let line = if found.steps == 0 {
            format!("{name}: 0 (the training phrases have no {statistic} to match)")
        } else {
            format!(
                "{name}: {:+.3} after {} of {} steps ({statistic} {:.3} % at the last step, the training phrases {:.3} %), {:.1} s{}",
                found.bias,
                found.steps,
                plan.steps,
                100.0 * found.rate,
                100.0 * found.target,
                started.elapsed().as_secs_f64(),
                if found.steps < plan.steps { "; cut short by the time budget" } else { "" }
            )
        };
        if progress.is_hidden() {
            println!("{line}");
        } else {
            progress.println(line);
        }
    }
    progress.finish_and_clear();
    Ok(())
}

/// The searches [`calibrate_part_writing`] runs.
pub const PART_WRITING_SEARCHES: usize = 4;

/// Wall seconds a calibration spends on a phrase from the prior with this generator:
/// `count` phrases written on every thread and counted, as a search's step does.
pub fn calibration_phrase_seconds(generator: &Generator, card: &ModelCard, count: usize) -> anyhow::Result<f64> {
    let latents = prior_latents(count, card.latent_size, 1_000_000);
    let options = DecodeOptions::from_card(&card.decoding);
    let started = Instant::now();
    let phrases = prior::generate(generator, &latents, &options, 0, prior::threads(), &|_| {})?;
    voice_summary(&phrases);
    Ok(started.elapsed().as_secs_f64() / count.max(1) as f64)
}

/// Phrases from the prior at the current state, decoded as calibrated on them (onset
/// density, then sounding time, then pitch variety), with the decoding settings found.
pub fn sample_phrases(
    objective: &dyn Objective,
    data: &TrainingData,
    card: &ModelCard,
    count: usize,
) -> anyhow::Result<(Vec<Roll>, DecodeOptions)> {
    let latents = prior_latents(256.max(count), card.latent_size, 1_000_000);
    if card.preset == Preset::Voices {
        // Choices drawn from the learned distribution need no thresholds to calibrate.
        let options = DecodeOptions::from_card(&card.decoding);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        return Ok((objective.generator().generate(&latents[..count], &options, &mut rng)?, options));
    }
    let logits = objective.generator().phrase_logits(&latents)?;
    let mut options = DecodeOptions::from_card(&card.decoding);
    options.onset_threshold = calibrate_onset_threshold(card, &logits, &data.onset_rate);
    options.sustain_threshold =
        calibrate_sustain_threshold(card, &logits, options.onset_threshold, &data.sounding_rate);
    options.temperature = calibrate_temperature(card, &logits, &options, data.used_pitch_classes);
    let representation = representation_of(card);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    Ok((logits.iter().take(count).map(|l| logits_to_roll(&representation, l, &options, &mut rng)).collect(), options))
}

fn write_samples(folder: &Path, stem: &str, phrases: &[Roll]) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder)?;
    let joined = Roll::concat(phrases).context("no phrases to write")?;
    std::fs::write(folder.join(format!("{stem}.mid")), roll_to_midi(&joined, 100.0))?;
    plot::piano_rolls(&folder.join(format!("{stem}.png")), phrases)
}

/// Four phrases at a checkpoint, so a person can watch a run learn.
pub fn progress_samples(
    objective: &dyn Objective,
    data: &TrainingData,
    card: &ModelCard,
    folder: &Path,
    step: u64,
) -> anyhow::Result<()> {
    let (phrases, _) = sample_phrases(objective, data, card, 4)?;
    write_samples(folder, &format!("step-{step:06}"), &phrases)
}

fn save_weights(path: &Path, weights: Vec<(String, Tensor)>) -> anyhow::Result<()> {
    checkpoint::write_atomically(path, &weights, HashMap::new())
}

/// How large the voices preset's calibration is, and when it must be done by (with a time
/// budget).
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub plan: CalibrationPlan,
    pub until: Option<Instant>,
}

impl Calibration {
    /// What a run without a time budget does.
    pub const FULL: Calibration = Calibration { plan: CalibrationPlan::FULL, until: None };
}

/// The encoder's latent means of the training phrases (none for a preset without one).
pub fn training_codes(objective: &dyn Objective, train: &[Roll], device: &Device) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut codes: Vec<Vec<f32>> = Vec::new();
    for chunk in train.chunks(CODES_BATCH) {
        let batch = rolls_to_tensor(&chunk.iter().collect::<Vec<_>>(), device)?;
        match objective.encode(&batch)? {
            Some(means) => codes.extend(means.to_dtype(DType::F32)?.to_vec2::<f32>()?),
            None => break,
        }
    }
    Ok(codes)
}

/// Training phrases the encoder reads at once for the macro knobs.
pub const CODES_BATCH: usize = 256;

/// Writes the model folder: calibrated `model.json` with macro knobs, weights, samples.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    objective: &dyn Objective,
    data: &TrainingData,
    config: &RunConfig,
    state: &LoopState,
    card: &ModelCard,
    out: &Path,
    device: &Device,
    calibration: Calibration,
) -> anyhow::Result<()> {
    let mut card = card.clone();
    if card.preset == Preset::Voices {
        calibrate_part_writing(objective.generator(), &mut card, &data.train, calibration.plan, calibration.until)?;
    }
    let what = if card.preset == Preset::Voices {
        "writing sample phrases"
    } else {
        "calibrating the thresholds and temperature on 256 phrases from the prior, and writing samples"
    };
    let (phrases, options) = stage(what, || sample_phrases(objective, data, &card, 8))?;
    card.decoding.onset_threshold = options.onset_threshold;
    card.decoding.sustain_threshold = options.sustain_threshold;
    card.decoding.temperature = options.temperature;
    let what = format!("reading the latent means of the {} training phrases for the macro knobs", data.train.len());
    let codes = stage(&what, || training_codes(objective, &data.train, device))?;
    let (center, knobs, method) = if codes.is_empty() {
        // A GAN's prior is isotropic: every orthonormal basis carries equal variance, so the
        // knobs are the first latent axes (the shared latent first), one prior sigma each.
        let knobs = (0..MACRO_KNOBS.min(card.latent_size))
            .map(|k| MacroKnob {
                name: format!("Macro {}", k + 1),
                direction: (0..card.latent_size).map(|i| f32::from(u8::from(i == k))).collect(),
                spread: 1.0,
                variance_share: 1.0 / card.latent_size as f32,
            })
            .collect();
        (vec![0.0; card.latent_size], knobs, "first latent axes of the isotropic prior (no encoder)".to_string())
    } else {
        let (center, knobs) = principal_directions(&codes, MACRO_KNOBS);
        (center, knobs, format!("principal components of the encoder means of {} training phrases", codes.len()))
    };
    card.latent_center = center;
    card.macro_knobs = knobs;
    card.training.epochs = state.epoch;
    card.training.steps = state.step as usize;
    card.training.wall_seconds = (state.elapsed_seconds * 10.0).round() / 10.0;
    card.training.bars_per_second = ((state.bars_seen as f64 / state.elapsed_seconds.max(1e-9)) * 10.0).round() / 10.0;
    card.training.device = format!("{:?}", device.location());
    card.training.knob_method = method;
    card.validate()?;
    stage("writing the model folder", || {
        save_weights(&out.join(DECODER_FILE), objective.weights("decoder."))?;
        let encoder = objective.weights("encoder.");
        if !encoder.is_empty() {
            save_weights(&out.join(ENCODER_FILE), encoder)?;
        }
        if card.preset == Preset::Voices {
            // Only a decoder that samples can draw again when a phrase matches.
            checkpoint::write_file_atomically(&out.join(LEARNED_PHRASES_FILE), &data.learned.to_bytes())?;
        }
        checkpoint::write_file_atomically(&out.join(CARD_FILE), card.to_json().as_bytes())?;
        write_samples(&out.join("samples"), "prior", &phrases)?;
        for (index, phrase) in phrases.iter().enumerate().take(3) {
            std::fs::write(out.join("samples").join(format!("phrase-{}.mid", index + 1)), roll_to_midi(phrase, 100.0))?;
        }
        Ok(())
    })?;
    println!(
        "wrote {} (onset threshold {:.3}, sustain threshold {:.3}, temperature {:.2}, rest bias {:+.2}, crossing bias {:+.2}, parallel bias {:+.2}; {} macro knobs; run config: {} epochs, batch {}, lr {})",
        out.display(),
        options.onset_threshold,
        options.sustain_threshold,
        options.temperature,
        card.decoding.rest_bias,
        card.decoding.crossing_bias,
        card.decoding.parallel_bias,
        card.macro_knobs.len(),
        config.epochs,
        config.batch,
        config.lr
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Calibrate = fn(&Generator, &ModelCard, &VoiceSummary, &Search) -> anyhow::Result<Found>;
    /// A bias's name, options made with it, and its calibration.
    type Case<'a> = (&'a str, &'a dyn Fn(f32) -> DecodeOptions, Calibrate);

    fn search(plan: CalibrationPlan, until: Option<Instant>, threads: usize, progress: &ProgressBar) -> Search<'_> {
        Search { plan, until, threads, progress }
    }

    /// Training phrases made by the small model itself with its rest bias at `bias`.
    fn made_with_rest_bias(generator: &Generator, card: &ModelCard, bias: f32) -> VoiceSummary {
        let options = DecodeOptions { rest_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let latents = prior_latents(400, card.latent_size, 7);
        voice_summary(&generator.generate(&latents, &options, &mut ChaCha8Rng::seed_from_u64(9)).unwrap())
    }

    #[test]
    fn the_part_writing_biases_are_found_again_from_phrases_made_with_them() {
        let (card, objective) = crate::train::small_voices_objective(true, 0, 3);
        let generator = objective.generator();
        let with_rest = |bias| DecodeOptions { rest_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let with_crossing = |bias| DecodeOptions { crossing_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let with_parallels = |bias| DecodeOptions { parallel_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let cases: [Case; 3] = [
            ("rest", &with_rest, calibrate_rest_bias),
            ("crossing", &with_crossing, calibrate_crossing_bias),
            ("parallel", &with_parallels, calibrate_parallel_bias),
        ];
        let progress = ProgressBar::hidden();
        for (name, options, calibrate) in cases {
            for known in [-1.5f32, 2.0] {
                let training = generator
                    .generate(
                        &prior_latents(400, card.latent_size, 7),
                        &options(known),
                        &mut ChaCha8Rng::seed_from_u64(9),
                    )
                    .unwrap();
                let search = search(CalibrationPlan::FULL, None, 2, &progress);
                let found = calibrate(generator, &card, &voice_summary(&training), &search).unwrap();
                assert_eq!(found.steps, 12);
                assert!((found.bias - known).abs() < 0.4, "{name} bias: made with {known}, found {}", found.bias);
            }
        }
    }

    /// The search as it was before it was shared over threads and bounded: one stream for
    /// the phrases of a step (a thousand of them, `CalibrationPlan::FULL`).
    fn rest_bias_written_one_after_another(
        generator: &Generator,
        card: &ModelCard,
        training: &VoiceSummary,
        plan: CalibrationPlan,
    ) -> f32 {
        let target = training.mean.rests.unwrap();
        let latents = prior_latents(plan.phrases, card.latent_size, 1_000_000);
        let (mut low, mut high) = (-BIAS_LIMIT, BIAS_LIMIT);
        for _ in 0..plan.steps {
            let middle = 0.5 * (low + high);
            let options = DecodeOptions { rest_bias: middle, ..DecodeOptions::from_card(&card.decoding) };
            let phrases = generator.generate(&latents, &options, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
            if voice_summary(&phrases).mean.rests.unwrap_or(1.0) < target {
                low = middle;
            } else {
                high = middle;
            }
        }
        0.5 * (low + high)
    }

    #[test]
    fn a_calibration_finds_the_same_bias_on_one_and_two_threads_as_on_one_stream() {
        let (card, objective) = crate::train::small_voices_objective(true, 0, 3);
        let generator = objective.generator();
        let training = made_with_rest_bias(generator, &card, 0.7);
        // 12 chunks and a part; the full size only takes longer.
        let plan = CalibrationPlan { phrases: 200, steps: 12 };
        let progress = ProgressBar::hidden();
        let on = |threads| {
            calibrate_rest_bias(generator, &card, &training, &search(plan, None, threads, &progress)).unwrap()
        };
        let (one, two) = (on(1), on(2));
        assert_eq!(one, two, "the threads change what is found");
        assert_eq!(one.steps, 12);
        assert_eq!(one.bias, rest_bias_written_one_after_another(generator, &card, &training, plan));
        assert_eq!(progress.position(), 2 * 12 * 200, "every phrase is counted");
    }

    #[test]
    fn a_search_past_its_deadline_stops_after_its_first_step_with_the_bias_it_reached() {
        let (card, objective) = crate::train::small_voices_objective(true, 0, 3);
        let generator = objective.generator();
        let training = made_with_rest_bias(generator, &card, 0.7);
        let progress = ProgressBar::hidden();
        let plan = CalibrationPlan::SMALLEST;
        let found = |plan, until| calibrate_rest_bias(generator, &card, &training, &search(plan, until, 2, &progress));
        let cut = found(plan, Some(Instant::now())).unwrap();
        assert_eq!(cut.steps, 1);
        assert_eq!(cut.bias.abs(), BIAS_LIMIT / 2.0, "the middle of the half the first step kept");
        assert_eq!(cut, found(CalibrationPlan { steps: 1, ..plan }, None).unwrap(), "a one-step search");
        // A deadline far off is no bound.
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(found(plan, Some(later)).unwrap(), found(plan, None).unwrap());
    }

    #[test]
    fn the_part_writing_calibration_sets_every_bias_and_past_its_deadline_takes_a_step_for_each() {
        let (mut card, objective) = crate::train::small_voices_objective(true, 0, 3);
        let generator = objective.generator();
        let options = DecodeOptions { rest_bias: 1.0, ..DecodeOptions::from_card(&card.decoding) };
        let training = generator
            .generate(&prior_latents(300, card.latent_size, 7), &options, &mut ChaCha8Rng::seed_from_u64(9))
            .unwrap();
        let mut rough = card.clone();
        calibrate_part_writing(generator, &mut rough, &training, CalibrationPlan::SMALLEST, Some(Instant::now()))
            .unwrap();
        calibrate_part_writing(generator, &mut card, &training, CalibrationPlan::SMALLEST, None).unwrap();
        for rough in [rough.decoding.rest_bias, rough.decoding.crossing_bias, rough.decoding.parallel_bias] {
            assert_eq!(rough.abs(), BIAS_LIMIT / 2.0, "one step each");
        }
        assert!((card.decoding.rest_bias - 1.0).abs() < 0.5, "made with a rest bias of 1: {}", card.decoding.rest_bias);
    }

    #[test]
    fn principal_directions_find_the_widest_axis_first() {
        // Spread 3 along (1, 1)/sqrt 2, spread 1 along (1, -1)/sqrt 2.
        let codes: Vec<Vec<f32>> = (0..400)
            .map(|i| {
                let a = if i % 2 == 0 { 3.0 } else { -3.0 };
                let b = if (i / 2) % 2 == 0 { 1.0 } else { -1.0 };
                let s = std::f32::consts::FRAC_1_SQRT_2;
                vec![(a + b) * s + 5.0, (a - b) * s]
            })
            .collect();
        let (center, knobs) = principal_directions(&codes, 2);
        assert!((center[0] - 5.0).abs() < 1e-4 && center[1].abs() < 1e-4);
        assert!((knobs[0].spread - 3.0).abs() < 1e-3, "{}", knobs[0].spread);
        assert!((knobs[1].spread - 1.0).abs() < 1e-3);
        assert!((knobs[0].direction[0] - knobs[0].direction[1]).abs() < 1e-3);
        assert!((knobs[0].variance_share - 0.9).abs() < 1e-3);
    }
}
