//! From a trained objective to a model folder: the calibrated card, macro knobs, weights
//! and samples.

use super::data::TrainingData;
use super::objective::Objective;
use super::{checkpoint, plot, prior_latents, representation_of, LoopState, RunConfig};
use anyhow::Context;
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
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;

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
        },
        latent_center: vec![0.0; shape.latent],
        macro_knobs: Vec::new(),
        // Learned afterwards from the trained encoder: `cargo xtask knobs --write`.
        named_knobs: Vec::new(),
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

/// The voice decoder's rest bias at which phrases from the prior rest (the mean over voices
/// of the share of steps each rests, up to its last note) as often as the `training` phrases.
pub fn calibrate_rest_bias(generator: &Generator, card: &ModelCard, training: &[Roll]) -> anyhow::Result<f32> {
    calibrate_bias(
        generator,
        card,
        training,
        |summary| summary.mean.rests,
        |options, bias| DecodeOptions { rest_bias: bias, ..options.clone() },
    )
}

/// The voice decoder's crossing bias at which phrases from the prior cross voices as often as
/// the `training` phrases (0 for a single voice, which has nothing to cross).
pub fn calibrate_crossing_bias(generator: &Generator, card: &ModelCard, training: &[Roll]) -> anyhow::Result<f32> {
    calibrate_bias(
        generator,
        card,
        training,
        |summary| summary.crossings,
        |options, bias| DecodeOptions { crossing_bias: bias, ..options.clone() },
    )
}

/// The bias at which phrases from the prior show `statistic` at the `training` phrases'
/// rate. It only grows with the bias, so it is found by bisection, on the same latents and
/// random stream each time; the card's other settings stay as they are.
fn calibrate_bias(
    generator: &Generator,
    card: &ModelCard,
    training: &[Roll],
    statistic: impl Fn(&VoiceSummary) -> Option<f64>,
    with_bias: impl Fn(&DecodeOptions, f32) -> DecodeOptions,
) -> anyhow::Result<f32> {
    let Some(target) = statistic(&voice_summary(training)) else { return Ok(0.0) };
    // Rests and part-writing faults come in clumps (a part out for a bar), so it takes a
    // thousand phrases for the rate to settle within a tenth of itself.
    let latents = prior_latents(1024, card.latent_size, 1_000_000);
    let base = DecodeOptions::from_card(&card.decoding);
    let (mut low, mut high) = (-BIAS_LIMIT, BIAS_LIMIT);
    for _ in 0..12 {
        let middle = 0.5 * (low + high);
        let phrases = generator.generate(&latents, &with_bias(&base, middle), &mut ChaCha8Rng::seed_from_u64(0))?;
        if statistic(&voice_summary(&phrases)).unwrap_or(1.0) < target {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(0.5 * (low + high))
}

/// The voice decoder's parallel bias at which phrases from the prior move in parallel
/// fifths and octaves as often as the `training` phrases (0 for a single voice).
pub fn calibrate_parallel_bias(generator: &Generator, card: &ModelCard, training: &[Roll]) -> anyhow::Result<f32> {
    calibrate_bias(
        generator,
        card,
        training,
        |summary| summary.parallels,
        |options, bias| DecodeOptions { parallel_bias: bias, ..options.clone() },
    )
}

/// Phrases from the prior at the current state, decoded as calibrated on them (onset
/// density, then sounding time, then pitch variety), with the decoding settings found.
fn sample_phrases(
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

/// Writes the model folder: calibrated `model.json` with macro knobs, weights, samples.
pub fn finish(
    objective: &dyn Objective,
    data: &TrainingData,
    config: &RunConfig,
    state: &LoopState,
    card: &ModelCard,
    out: &Path,
    device: &Device,
) -> anyhow::Result<()> {
    let mut card = card.clone();
    if card.preset == Preset::Voices {
        // Rests, crossings and parallels move each other a little: each is calibrated with
        // the others as found so far, then rests again with everything as it will be played.
        let generator = objective.generator();
        card.decoding.rest_bias = calibrate_rest_bias(generator, &card, &data.train)?;
        card.decoding.crossing_bias = calibrate_crossing_bias(generator, &card, &data.train)?;
        card.decoding.parallel_bias = calibrate_parallel_bias(generator, &card, &data.train)?;
        card.decoding.rest_bias = calibrate_rest_bias(generator, &card, &data.train)?;
    }
    let (phrases, options) = sample_phrases(objective, data, &card, 8)?;
    card.decoding.onset_threshold = options.onset_threshold;
    card.decoding.sustain_threshold = options.sustain_threshold;
    card.decoding.temperature = options.temperature;
    let mut codes: Vec<Vec<f32>> = Vec::new();
    for chunk in data.train.chunks(256) {
        let batch = rolls_to_tensor(&chunk.iter().collect::<Vec<_>>(), device)?;
        match objective.encode(&batch)? {
            Some(means) => codes.extend(means.to_dtype(DType::F32)?.to_vec2::<f32>()?),
            None => break,
        }
    }
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

    type Calibration = fn(&Generator, &ModelCard, &[Roll]) -> anyhow::Result<f32>;
    /// A bias's name, options made with it, and its calibration.
    type Case<'a> = (&'a str, &'a dyn Fn(f32) -> DecodeOptions, Calibration);

    #[test]
    fn the_part_writing_biases_are_found_again_from_phrases_made_with_them() {
        let (card, objective) = crate::train::small_voices_objective(true, 3);
        let generator = objective.generator();
        let with_rest = |bias| DecodeOptions { rest_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let with_crossing = |bias| DecodeOptions { crossing_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let with_parallels = |bias| DecodeOptions { parallel_bias: bias, ..DecodeOptions::from_card(&card.decoding) };
        let cases: [Case; 3] = [
            ("rest", &with_rest, calibrate_rest_bias),
            ("crossing", &with_crossing, calibrate_crossing_bias),
            ("parallel", &with_parallels, calibrate_parallel_bias),
        ];
        for (name, options, calibrate) in cases {
            for known in [-1.5f32, 2.0] {
                let training = generator
                    .generate(
                        &prior_latents(400, card.latent_size, 7),
                        &options(known),
                        &mut ChaCha8Rng::seed_from_u64(9),
                    )
                    .unwrap();
                let found = calibrate(generator, &card, &training).unwrap();
                assert!((found - known).abs() < 0.4, "{name} bias: made with {known}, found {found}");
            }
        }
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
