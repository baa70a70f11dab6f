//! `cargo xtask bench --vs-pytorch`: each shipped model against its PyTorch twin
//! (`xtask/pytorch/twin.py`, built from the same `model.json` and weights) on the same CPU.
//!
//! First the twin must agree with candle (logits, losses and every gradient of one training
//! step within 1e-4 relative), or nothing is timed: a faster twin of a different network
//! proves nothing. Then both sides run in separate processes, interleaved round by round in
//! alternating order, so that a noisy neighbour slows both alike.

use super::candle_side::{fixture, Job, Timings, TrainedModel};
use crate::train::plot::line_chart;
use anyhow::{bail, Context};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the twin's code lives, relative to the workspace.
const TWIN_DIR: &str = "xtask/pytorch";
/// The largest relative difference the parity check accepts.
pub const PARITY_TOLERANCE: f64 = 1e-4;
/// Batch sizes and phrase lengths of the scaling runs.
const SCALING_BATCHES: [usize; 4] = [16, 32, 64, 128];
const SCALING_BARS: [u16; 3] = [2, 4, 8];

pub struct VsPytorch {
    pub models: Vec<PathBuf>,
    pub rounds: usize,
    pub repeats: usize,
    pub batch: usize,
    pub threads: usize,
    pub out: PathBuf,
    pub scaling: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    Candle,
    Pytorch,
}

/// Every sample of one measure on one side.
#[derive(Default, Serialize)]
struct Samples {
    seconds: Vec<f64>,
    peak_rss_mb: Vec<f64>,
}

impl Samples {
    fn add(&mut self, seconds: &[f64], peak_rss_mb: f64) {
        self.seconds.extend_from_slice(seconds);
        self.peak_rss_mb.push(peak_rss_mb);
    }
}

/// (median, 25th percentile, 75th percentile).
fn quartiles(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

/// The twin's Python, with torch installed the first time (into `target/`, never into CI:
/// the wheel is gigabytes).
fn python() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join("target/pytorch-venv");
    let python = venv.join("bin/python");
    let requirements = root.join(TWIN_DIR).join("requirements.txt");
    let ready = venv.join(".installed");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    eprintln!("creating the PyTorch venv in {} (a download of about 3 GB, once)", venv.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv (needs Python 3.9 or later)")?;
    run(
        Command::new(&python).args(["-m", "pip", "install", "--quiet", "-r"]).arg(&requirements),
        "pip install of the twin's requirements",
    )?;
    std::fs::write(&ready, wanted)?;
    Ok(python)
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("starting {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

struct Sides {
    python: PathBuf,
    xtask: PathBuf,
    threads: usize,
}

impl Sides {
    fn twin(&self) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(workspace_root().join(TWIN_DIR).join("twin.py"));
        command
    }

    /// One worker process's timings.
    fn time(&self, side: Side, model: &Path, fixture: &Path, job: Job, repeats: usize) -> anyhow::Result<Timings> {
        let job_name = match job {
            Job::Decode => "decode",
            Job::Train => "train",
        };
        let mut command = match side {
            Side::Candle => {
                let mut command = Command::new(&self.xtask);
                command.arg("bench-worker");
                command
            }
            Side::Pytorch => {
                let mut command = self.twin();
                command.arg("worker").arg("--fixture").arg(fixture).arg("--threads").arg(self.threads.to_string());
                command
            }
        };
        command.arg("--model").arg(model).args(["--job", job_name, "--repeats", &repeats.to_string()]);
        command.env("RAYON_NUM_THREADS", self.threads.to_string());
        let batch = fixture_batch(fixture)?;
        command.args(["--batch", &batch.to_string()]);
        let stdout = run(&mut command, &format!("the {side:?} {job_name} worker on {}", model.display()))?;
        let line = stdout.lines().last().context("a worker printed nothing")?;
        serde_json::from_str(line).with_context(|| format!("reading a worker's report: {line}"))
    }
}

/// Fixtures are named `<what>-b<batch>.safetensors`.
fn fixture_batch(fixture: &Path) -> anyhow::Result<usize> {
    let stem = fixture.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    stem.rsplit_once("-b")
        .and_then(|(_, b)| b.parse().ok())
        .with_context(|| format!("{} is not named <what>-b<batch>", fixture.display()))
}

/// The parity check's report, as the twin prints it.
#[derive(serde::Deserialize, Serialize)]
struct Parity {
    max_relative: f64,
    worst: String,
    tensors: usize,
}

/// One model's results on both sides.
#[derive(Default, Serialize)]
struct ModelResult {
    name: String,
    batch: usize,
    bars_per_phrase: usize,
    parity: Option<Parity>,
    /// side -> measure -> samples
    samples: HashMap<String, HashMap<String, Samples>>,
    scaling: Vec<ScalingPoint>,
}

/// A training step's time at one batch size and phrase length: side -> quartiles (seconds).
#[derive(Serialize)]
struct ScalingPoint {
    batch: usize,
    bars: u16,
    quartiles: HashMap<String, (f64, f64, f64)>,
}

pub fn run_comparison(settings: VsPytorch) -> anyhow::Result<()> {
    let sides = Sides { python: python()?, xtask: std::env::current_exe()?, threads: settings.threads };
    std::fs::create_dir_all(&settings.out)?;
    let mut results = Vec::new();
    for folder in &settings.models {
        let model = TrainedModel::load(folder)?;
        let name = model.card.name.clone();
        let work = settings.out.join(&name);
        std::fs::create_dir_all(&work)?;
        let mut result = ModelResult {
            name: name.clone(),
            batch: settings.batch,
            bars_per_phrase: model.card.representation.bars_per_phrase.into(),
            ..Default::default()
        };

        eprintln!("{name}: parity of one training step (batch 16)");
        let parity_fixture = write_fixture(&model, &work.join("parity-b16.safetensors"), 16)?;
        let parity: Parity = serde_json::from_str(
            run(
                sides.twin().arg("parity").arg("--model").arg(folder).arg("--fixture").arg(&parity_fixture),
                "the twin's parity check",
            )?
            .lines()
            .last()
            .unwrap_or(""),
        )?;
        eprintln!(
            "  {} tensors; largest relative difference {:.2e} ({})",
            parity.tensors, parity.max_relative, parity.worst
        );
        if parity.max_relative.is_nan() || parity.max_relative > PARITY_TOLERANCE {
            bail!("{name}: the PyTorch twin differs from candle by {:.2e} relative in {} (more than {PARITY_TOLERANCE:.0e}); fix the twin before timing it", parity.max_relative, parity.worst);
        }
        result.parity = Some(parity);

        let train_fixture =
            write_fixture(&model, &work.join(format!("train-b{}.safetensors", settings.batch)), settings.batch)?;
        for round in 0..settings.rounds {
            let order = if round % 2 == 0 { [Side::Candle, Side::Pytorch] } else { [Side::Pytorch, Side::Candle] };
            for side in order {
                eprintln!("{name}: round {} of {}, {side:?}", round + 1, settings.rounds);
                // Decoding reads no fixture; the worker's command line takes one all the same.
                for (job, fixture) in [(Job::Decode, &parity_fixture), (Job::Train, &train_fixture)] {
                    let timings = sides.time(side, folder, fixture, job, settings.repeats)?;
                    let per_side = result.samples.entry(format!("{side:?}").to_lowercase()).or_default();
                    for (measure, seconds) in &timings.seconds {
                        per_side.entry(measure.clone()).or_default().add(seconds, timings.peak_rss_mb);
                    }
                    per_side
                        .entry(format!("{job:?}_process").to_lowercase())
                        .or_default()
                        .add(&[], timings.peak_rss_mb);
                }
            }
        }

        if settings.scaling {
            // The card's own length is the batch sweep's, with the trained weights; other
            // lengths need weights of other sizes, drawn fresh.
            let card_bars = model.card.representation.bars_per_phrase;
            let other_lengths =
                SCALING_BARS.iter().filter(|&&bars| bars != card_bars).map(|&bars| (settings.batch, Some(bars)));
            let configurations = SCALING_BATCHES.iter().map(|&b| (b, None)).chain(other_lengths);
            for (batch, bars) in configurations {
                let scaled;
                let (folder, model) = match bars {
                    None => (folder.clone(), &model),
                    Some(bars) => {
                        scaled = model.with_bars(bars, 1)?;
                        let scaled_folder = work.join(format!("bars-{bars}"));
                        scaled.write(&scaled_folder)?;
                        (scaled_folder, &scaled)
                    }
                };
                let bars = model.card.representation.bars_per_phrase;
                eprintln!("{name}: scaling, batch {batch}, {bars} bars");
                let fixture =
                    write_fixture(model, &work.join(format!("scaling-{bars}bars-b{batch}.safetensors")), batch)?;
                let mut medians = HashMap::new();
                let mut pooled: HashMap<String, Vec<f64>> = HashMap::new();
                for round in 0..settings.rounds.div_ceil(2) {
                    let order =
                        if round % 2 == 0 { [Side::Candle, Side::Pytorch] } else { [Side::Pytorch, Side::Candle] };
                    for side in order {
                        let timings = sides.time(side, &folder, &fixture, Job::Train, settings.repeats.div_ceil(2))?;
                        pooled
                            .entry(format!("{side:?}").to_lowercase())
                            .or_default()
                            .extend(&timings.seconds["train_step"]);
                    }
                }
                for (side, seconds) in pooled {
                    medians.insert(side, quartiles(&seconds));
                }
                result.scaling.push(ScalingPoint { batch, bars, quartiles: medians });
            }
        }
        results.push(result);
    }
    let report = report(&results);
    println!("{report}");
    std::fs::write(settings.out.join("report.md"), &report)?;
    std::fs::write(settings.out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    if settings.scaling {
        plot_scaling(&results, &settings.out)?;
    }
    eprintln!("wrote {}/report.md, results.json and scaling PNGs", settings.out.display());
    Ok(())
}

fn write_fixture(model: &TrainedModel, path: &Path, batch: usize) -> anyhow::Result<PathBuf> {
    let phrases = model.phrases(batch)?;
    candle_core::safetensors::save(&fixture(model, &phrases, 1)?, path)?;
    Ok(path.to_path_buf())
}

fn report(results: &[ModelResult]) -> String {
    let mut text = String::new();
    for result in results {
        let _ =
            writeln!(text, "\n### {} (batch {}, {}-bar phrases)\n", result.name, result.batch, result.bars_per_phrase);
        if let Some(parity) = &result.parity {
            let _ = writeln!(
                text,
                "Parity: {} tensors (logits, losses, every gradient) agree within {:.1e} relative (worst: {}).\n",
                parity.tensors, parity.max_relative, parity.worst
            );
        }
        let _ = writeln!(
            text,
            "| measure | candle: median (p25–p75) | PyTorch: median (p25–p75) | candle / PyTorch time |"
        );
        let _ = writeln!(text, "|---|---|---|---|");
        let samples = |side: &str, measure: &str| result.samples.get(side).and_then(|s| s.get(measure));
        let bars_per_step = (result.batch * result.bars_per_phrase) as f64;
        for (measure, label) in [
            ("decode_1", "decode one phrase, batch 1"),
            ("decode_16", "decode, batch 16 (all 16 phrases)"),
            ("train_step", "training step"),
        ] {
            let (Some(candle), Some(pytorch)) = (samples("candle", measure), samples("pytorch", measure)) else {
                continue;
            };
            let (c, c25, c75) = quartiles(&candle.seconds);
            let (p, p25, p75) = quartiles(&pytorch.seconds);
            let ms = |x: f64| x * 1e3;
            let _ = writeln!(
                text,
                "| {label} | {:.2} ms ({:.2}–{:.2}) | {:.2} ms ({:.2}–{:.2}) | {:.2}x |",
                ms(c),
                ms(c25),
                ms(c75),
                ms(p),
                ms(p25),
                ms(p75),
                c / p
            );
            if measure == "train_step" {
                let _ = writeln!(
                    text,
                    "| training bars/s | {:.0} | {:.0} | {:.2}x PyTorch's speed |",
                    bars_per_step / c,
                    bars_per_step / p,
                    p / c
                );
            }
        }
        for (process, label) in
            [("decode_process", "peak RSS, inference process"), ("train_process", "peak RSS, training process")]
        {
            let (Some(candle), Some(pytorch)) = (samples("candle", process), samples("pytorch", process)) else {
                continue;
            };
            let (c, p) = (quartiles(&candle.peak_rss_mb).0, quartiles(&pytorch.peak_rss_mb).0);
            let _ = writeln!(text, "| {label} | {c:.0} MB | {p:.0} MB | {:.2}x |", c / p);
        }
        if !result.scaling.is_empty() {
            let _ = writeln!(text, "\nTraining step by batch and phrase length (medians):\n");
            let _ = writeln!(text, "| batch | bars | candle | PyTorch | candle / PyTorch |");
            let _ = writeln!(text, "|---|---|---|---|---|");
            for point in &result.scaling {
                let (c, p) = (point.quartiles["candle"].0, point.quartiles["pytorch"].0);
                let _ = writeln!(
                    text,
                    "| {} | {} | {:.1} ms | {:.1} ms | {:.2}x |",
                    point.batch,
                    point.bars,
                    c * 1e3,
                    p * 1e3,
                    c / p
                );
            }
        }
    }
    text
}

fn plot_scaling(results: &[ModelResult], out: &Path) -> anyhow::Result<()> {
    for result in results {
        let series = |side: &'static str, by_batch: bool| -> (String, Vec<(f64, f64)>) {
            let mut points = result
                .scaling
                .iter()
                .filter(|point| {
                    if by_batch {
                        usize::from(point.bars) == result.bars_per_phrase
                    } else {
                        point.batch == result.batch
                    }
                })
                .map(|point| {
                    (if by_batch { point.batch as f64 } else { f64::from(point.bars) }, point.quartiles[side].0 * 1e3)
                })
                .collect::<Vec<_>>();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (side.to_string(), points)
        };
        for (by_batch, x_desc, file) in
            [(true, "batch (phrases)", "scaling-batch"), (false, "phrase length (bars)", "scaling-bars")]
        {
            let (candle, pytorch) = (series("candle", by_batch), series("pytorch", by_batch));
            line_chart(
                &out.join(format!("{}-{file}.png", result.name)),
                &format!("{}: training step time", result.name),
                x_desc,
                "ms per step",
                &[(candle.0.as_str(), candle.1), (pytorch.0.as_str(), pytorch.1)],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_and_fixture_names() {
        assert_eq!(quartiles(&[5.0, 1.0, 3.0, 2.0, 4.0]), (3.0, 2.0, 4.0));
        assert_eq!(fixture_batch(Path::new("out/train-b64.safetensors")).unwrap(), 64);
        assert!(fixture_batch(Path::new("out/train.safetensors")).is_err());
    }
}
