//! `cargo xtask bench --vs-pytorch`: each shipped model against its PyTorch twin
//! (`xtask/pytorch/twin.py`, built from the same `model.json` and weights, running the same
//! algebra) on the same CPU, the twin twice: written plainly (*eager*) and as an expert would
//! (*expert*: compiled by inductor, fused Adam, inference mode, candle's tabulated sampler).
//!
//! First both flavours must agree with candle (logits, losses and every gradient of one
//! training step within 1e-4 relative), and the twin's sampler must make candle's choices
//! from the same uniforms, or nothing is timed: a faster twin of a different network proves
//! nothing. Then the three sides run in separate processes with the same threads and
//! allocator settings, interleaved round by round in rotating order, so that a noisy
//! neighbour slows all alike.

use super::candle_side::{fixture, Job, Timings, TrainedModel, GEMM_SIDE};
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Candle,
    /// The twin in plain eager PyTorch.
    Eager,
    /// The twin as an expert writes it.
    Expert,
}

impl Side {
    const ALL: [Side; 3] = [Side::Candle, Side::Eager, Side::Expert];

    fn name(self) -> &'static str {
        match self {
            Side::Candle => "candle",
            Side::Eager => "eager",
            Side::Expert => "expert",
        }
    }

    /// Round `round`'s order: each side goes first, second and last in turn.
    fn order(round: usize) -> [Side; 3] {
        let mut order = Side::ALL;
        order.rotate_left(round % 3);
        order
    }
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
        self.with_threads(&mut command);
        command
    }

    /// Every thread pool either side might start gets the same count.
    fn with_threads(&self, command: &mut Command) {
        for pool in ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
            command.env(pool, self.threads.to_string());
        }
    }

    /// One worker process's timings.
    fn time(&self, side: Side, model: &Path, fixture: &Path, job: Job, repeats: usize) -> anyhow::Result<Timings> {
        let job_name = match job {
            Job::Decode => "decode",
            Job::Train => "train",
            Job::Gemm => bail!("a gemm reads no model: see gemm_peak"),
        };
        let mut command = match side {
            Side::Candle => {
                let mut command = Command::new(&self.xtask);
                command.arg("bench-worker");
                command
            }
            Side::Eager | Side::Expert => {
                let mut command = self.twin();
                command.arg("worker").arg("--fixture").arg(fixture).arg("--threads").arg(self.threads.to_string());
                command.args(["--flavour", side.name()]);
                command
            }
        };
        command.arg("--model").arg(model).args(["--job", job_name, "--repeats", &repeats.to_string()]);
        self.with_threads(&mut command);
        let batch = fixture_batch(fixture)?;
        command.args(["--batch", &batch.to_string()]);
        let stdout = run(&mut command, &format!("the {} {job_name} worker on {}", side.name(), model.display()))?;
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

/// The sampler parity check's report, as the twin prints it.
#[derive(serde::Deserialize, Serialize)]
struct SamplerParity {
    draws: usize,
    differing: usize,
}

/// What the comparison ran on, as the twin reports it.
#[derive(serde::Deserialize, Serialize)]
struct Machine {
    torch: String,
    torch_config: String,
    torch_parallel: String,
    cpu: String,
    glibc: String,
    python: String,
}

/// The CPU's measured peak: the best square f32 product on the comparison's threads, in
/// GFLOP/s, by MKL (torch's) and by candle's gemm.
#[derive(Serialize)]
struct GemmPeak {
    mkl: f64,
    candle: f64,
}

/// A training step's matrix-product work, as the twin's flop counter counts it.
#[derive(serde::Deserialize, Serialize)]
struct StepWork {
    gflop: f64,
    by_op: HashMap<String, f64>,
}

/// One model's results on every side.
#[derive(Default, Serialize)]
struct ModelResult {
    name: String,
    batch: usize,
    bars_per_phrase: usize,
    /// flavour -> the twin's parity with candle.
    parity: Vec<(String, Parity)>,
    work: Option<StepWork>,
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
    let machine: Machine = serde_json::from_str(run(sides.twin().arg("config"), "the twin's config")?.trim())?;
    let sampler = sampler_parity(&sides, &settings.out)?;
    let peak = gemm_peak(&sides, settings.repeats)?;
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

        let parity_fixture = write_fixture(&model, &work.join("parity-b16.safetensors"), 16)?;
        for flavour in [Side::Eager, Side::Expert] {
            eprintln!("{name}: parity of one training step (batch 16), {}", flavour.name());
            let parity: Parity = serde_json::from_str(
                run(
                    sides
                        .twin()
                        .arg("parity")
                        .arg("--model")
                        .arg(folder)
                        .arg("--fixture")
                        .arg(&parity_fixture)
                        .args(["--flavour", flavour.name()]),
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
                bail!("{name}: the {} PyTorch twin differs from candle by {:.2e} relative in {} (more than {PARITY_TOLERANCE:.0e}); fix the twin before timing it", flavour.name(), parity.max_relative, parity.worst);
            }
            result.parity.push((flavour.name().to_string(), parity));
        }

        let train_fixture =
            write_fixture(&model, &work.join(format!("train-b{}.safetensors", settings.batch)), settings.batch)?;
        result.work = Some(serde_json::from_str(
            run(
                sides.twin().arg("flops").arg("--model").arg(folder).arg("--fixture").arg(&train_fixture),
                "the twin's flop count",
            )?
            .trim(),
        )?);
        for round in 0..settings.rounds {
            for side in Side::order(round) {
                eprintln!("{name}: round {} of {}, {}", round + 1, settings.rounds, side.name());
                // Decoding reads no fixture; the worker's command line takes one all the same.
                for (job, fixture) in [(Job::Decode, &parity_fixture), (Job::Train, &train_fixture)] {
                    let timings = sides.time(side, folder, fixture, job, settings.repeats)?;
                    let per_side = result.samples.entry(side.name().to_string()).or_default();
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
                let mut pooled: HashMap<String, Vec<f64>> = HashMap::new();
                for round in 0..settings.rounds.div_ceil(2) {
                    for side in Side::order(round) {
                        let timings = sides.time(side, &folder, &fixture, Job::Train, settings.repeats.div_ceil(2))?;
                        pooled.entry(side.name().to_string()).or_default().extend(&timings.seconds["train_step"]);
                    }
                }
                let quartiles = pooled.into_iter().map(|(side, seconds)| (side, quartiles(&seconds))).collect();
                result.scaling.push(ScalingPoint { batch, bars, quartiles });
            }
        }
        results.push(result);
    }
    let report = report(&machine, &sampler, &peak, settings.threads, &results);
    println!("{report}");
    std::fs::write(settings.out.join("report.md"), &report)?;
    std::fs::write(
        settings.out.join("results.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({ "machine": machine, "sampler": sampler, "gemm_peak": peak, "models": results }),
        )?,
    )?;
    if settings.scaling {
        plot_scaling(&results, &settings.out)?;
    }
    eprintln!("wrote {}/report.md, results.json and scaling PNGs", settings.out.display());
    Ok(())
}

/// Scores, uniforms and the choices candle's sampler makes from them, at the temperatures a
/// producer sets; the twin's sampler must make the same choices.
const SAMPLER_DRAWS: usize = 20_000;
const SAMPLER_CLASSES: usize = 46;

fn sampler_parity(sides: &Sides, out: &Path) -> anyhow::Result<SamplerParity> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut checked = SamplerParity { draws: 0, differing: 0 };
    for temperature in [0.5f32, 1.0, 1.5] {
        let mut scores = Vec::with_capacity(SAMPLER_DRAWS * SAMPLER_CLASSES);
        let mut uniforms = Vec::with_capacity(SAMPLER_DRAWS);
        let mut choices = Vec::with_capacity(SAMPLER_DRAWS);
        for _ in 0..SAMPLER_DRAWS {
            // Scores as a network's are: a few likely choices, and hold barred now and then.
            let mut row: Vec<f32> = (0..SAMPLER_CLASSES).map(|_| rng.random::<f32>() * 12.0 - 8.0).collect();
            if rng.random::<f32>() < 0.3 {
                row[1] = f32::NEG_INFINITY;
            }
            scores.extend_from_slice(&row);
            let uniform = rng.random::<f32>();
            uniforms.push(uniform);
            choices.push(dreamroll::model::voices::sampler::draw_at(&mut row, temperature, || uniform));
        }
        let fixture = out.join(format!("sampler-t{temperature}.safetensors"));
        let device = candle_core::Device::Cpu;
        let tensors = HashMap::from([
            (
                "sampler.scores".to_string(),
                candle_core::Tensor::from_vec(scores, (SAMPLER_DRAWS, SAMPLER_CLASSES), &device)?,
            ),
            ("sampler.uniforms".to_string(), candle_core::Tensor::from_vec(uniforms, SAMPLER_DRAWS, &device)?),
            ("sampler.choices".to_string(), candle_core::Tensor::from_vec(choices, SAMPLER_DRAWS, &device)?),
            ("sampler.temperature".to_string(), candle_core::Tensor::new(&[temperature], &device)?),
        ]);
        candle_core::safetensors::save(&tensors, &fixture)?;
        let twin: SamplerParity = serde_json::from_str(
            run(sides.twin().arg("sampler-parity").arg("--fixture").arg(&fixture), "the twin's sampler parity check")?
                .trim(),
        )?;
        checked.draws += twin.draws;
        checked.differing += twin.differing;
    }
    eprintln!("sampler parity: {} of {} draws differ", checked.differing, checked.draws);
    if checked.differing > 0 {
        bail!("the twin's sampler chose otherwise than candle's in {} of {} draws from the same uniforms; fix it before timing it", checked.differing, checked.draws);
    }
    Ok(checked)
}

fn gemm_peak(sides: &Sides, repeats: usize) -> anyhow::Result<GemmPeak> {
    #[derive(serde::Deserialize)]
    struct Gflops {
        gflops: f64,
    }
    let mkl: Gflops = serde_json::from_str(
        run(
            sides.twin().arg("gemm").args(["--threads", &sides.threads.to_string(), "--size", &GEMM_SIDE.to_string()]),
            "the twin's gemm",
        )?
        .trim(),
    )?;
    let mut candle = Command::new(&sides.xtask);
    candle.args(["bench-worker", "--job", "gemm", "--repeats", &repeats.to_string()]);
    sides.with_threads(&mut candle);
    let candle: Timings = serde_json::from_str(
        run(&mut candle, "the candle gemm worker")?.lines().last().context("the gemm worker printed nothing")?,
    )?;
    let best = candle.seconds["gemm"].iter().copied().fold(f64::INFINITY, f64::min);
    let peak = GemmPeak { mkl: mkl.gflops, candle: 2.0 * (GEMM_SIDE as f64).powi(3) / best / 1e9 };
    eprintln!("gemm peak on {} threads: MKL {:.0} GFLOP/s, candle {:.0} GFLOP/s", sides.threads, peak.mkl, peak.candle);
    Ok(peak)
}

fn write_fixture(model: &TrainedModel, path: &Path, batch: usize) -> anyhow::Result<PathBuf> {
    let phrases = model.phrases(batch)?;
    candle_core::safetensors::save(&fixture(model, &phrases, 1)?, path)?;
    Ok(path.to_path_buf())
}

/// The least-squares line through `(x, y)` points: (intercept, slope).
fn line_fit(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (mean_x, mean_y) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let covariance: f64 = points.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    let slope = covariance / variance;
    (mean_y - slope * mean_x, slope)
}

fn report(
    machine: &Machine,
    sampler: &SamplerParity,
    peak: &GemmPeak,
    threads: usize,
    results: &[ModelResult],
) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "CPU: {}; {}; Python {}; torch {}; {threads} threads a side (RAYON_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS); both sides keep freed memory in the heap (the same mallopt settings).\n",
        machine.cpu, machine.glibc, machine.python, machine.torch
    );
    let _ = writeln!(
        text,
        "*eager*: the twin in plain PyTorch (no_grad, multinomial, foreach Adam). *expert*: its loss under torch.compile (inductor), fused Adam, inference_mode, its decoding step compiled with candle's tables and inverse-CDF draw. Both run candle's algebra (picked rows of projected tables into the GRU, the bar projected once per bar).\n"
    );
    let _ = writeln!(
        text,
        "Sampler parity: the twin's draw chose as candle's in all but {} of {} draws from the same scores and uniforms (temperatures 0.5, 1, 1.5).",
        sampler.differing, sampler.draws
    );
    let _ = writeln!(
        text,
        "\nThe CPU's peak on these threads (the best {GEMM_SIDE}² f32 product): MKL {:.0} GFLOP/s, candle's gemm {:.0} GFLOP/s.",
        peak.mkl, peak.candle
    );
    let ms = |x: f64| x * 1e3;
    for result in results {
        let _ =
            writeln!(text, "\n### {} (batch {}, {}-bar phrases)\n", result.name, result.batch, result.bars_per_phrase);
        for (flavour, parity) in &result.parity {
            let _ = writeln!(
                text,
                "Parity, {flavour}: {} tensors (logits, losses, every gradient) agree within {:.1e} relative (worst: {}).",
                parity.tensors, parity.max_relative, parity.worst
            );
        }
        let samples = |side: Side, measure: &str| result.samples.get(side.name()).and_then(|s| s.get(measure));
        let median = |side: Side, measure: &str| samples(side, measure).map(|s| quartiles(&s.seconds).0);
        if let (Some(work), Some(steps)) =
            (&result.work, Side::ALL.iter().map(|&side| median(side, "train_step")).collect::<Option<Vec<_>>>())
        {
            let achieved = steps.iter().map(|seconds| work.gflop / seconds).collect::<Vec<_>>();
            let _ = writeln!(
                text,
                "\nA training step is {:.2} GFLOP of matrix products and convolutions (forward and backward, counted by torch's flop counter on the twin, which runs candle's algebra). Achieved: candle {:.0} GFLOP/s ({:.0} % of the peak), eager {:.0}, expert {:.0}.",
                work.gflop,
                achieved[0],
                100.0 * achieved[0] / peak.mkl.max(peak.candle),
                achieved[1],
                achieved[2]
            );
        }
        let _ = writeln!(
            text,
            "\n| measure | candle: median (p25–p75) | eager | expert | candle / eager time | candle / expert time |"
        );
        let _ = writeln!(text, "|---|---|---|---|---|---|");
        let bars_per_step = (result.batch * result.bars_per_phrase) as f64;
        for (measure, label) in [
            ("decode_1", "decode one phrase, batch 1"),
            ("decode_16", "decode, batch 16 (all 16 phrases)"),
            ("train_step", "training step"),
        ] {
            let Some(sides) = Side::ALL.iter().map(|&side| samples(side, measure)).collect::<Option<Vec<_>>>() else {
                continue;
            };
            let cells: Vec<String> = sides
                .iter()
                .map(|s| {
                    let (m, p25, p75) = quartiles(&s.seconds);
                    format!("{:.2} ms ({:.2}–{:.2})", ms(m), ms(p25), ms(p75))
                })
                .collect();
            let [c, e, x] = [0, 1, 2].map(|i| quartiles(&sides[i].seconds).0);
            let _ = writeln!(
                text,
                "| {label} | {} | {} | {} | {:.2}x | {:.2}x |",
                cells[0],
                cells[1],
                cells[2],
                c / e,
                c / x
            );
            if measure == "train_step" {
                let _ = writeln!(
                    text,
                    "| training bars/s | {:.0} | {:.0} | {:.0} | {:.2}x eager's speed | {:.2}x expert's speed |",
                    bars_per_step / c,
                    bars_per_step / e,
                    bars_per_step / x,
                    e / c,
                    x / c
                );
            }
        }
        if let Some(per_side) = Side::ALL
            .iter()
            .map(|&side| Some((median(side, "decode_1")?, median(side, "decode_16")?)))
            .collect::<Option<Vec<_>>>()
        {
            // decode(b) = fixed + b × per phrase, through batch 1 and 16.
            let cells: Vec<String> = per_side
                .iter()
                .map(|&(one, sixteen)| {
                    let per_phrase = (sixteen - one) / 15.0;
                    format!("{:.2} ms + {:.2} ms a phrase", ms(one - per_phrase), ms(per_phrase))
                })
                .collect();
            let _ = writeln!(text, "| decoding: fixed + per phrase | {} | {} | {} | | |", cells[0], cells[1], cells[2]);
        }
        for (process, label) in
            [("decode_process", "peak RSS, inference process"), ("train_process", "peak RSS, training process")]
        {
            let Some(peaks) = Side::ALL
                .iter()
                .map(|&side| samples(side, process).map(|s| quartiles(&s.peak_rss_mb).0))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let _ = writeln!(
                text,
                "| {label} | {:.0} MB | {:.0} MB | {:.0} MB | {:.2}x | {:.2}x |",
                peaks[0],
                peaks[1],
                peaks[2],
                peaks[0] / peaks[1],
                peaks[0] / peaks[2]
            );
        }
        if !result.scaling.is_empty() {
            let _ = writeln!(text, "\nTraining step by batch and phrase length (medians):\n");
            let _ = writeln!(text, "| batch | bars | candle | eager | expert | candle / eager | candle / expert |");
            let _ = writeln!(text, "|---|---|---|---|---|---|---|");
            for point in &result.scaling {
                let [c, e, x] = Side::ALL.map(|side| point.quartiles[side.name()].0);
                let _ = writeln!(
                    text,
                    "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}x | {:.2}x |",
                    point.batch,
                    point.bars,
                    ms(c),
                    ms(e),
                    ms(x),
                    c / e,
                    c / x
                );
            }
            let by_batch: Vec<&ScalingPoint> =
                result.scaling.iter().filter(|p| usize::from(p.bars) == result.bars_per_phrase).collect();
            if by_batch.len() >= 2 {
                let cells: Vec<String> = Side::ALL
                    .iter()
                    .map(|side| {
                        let points: Vec<(f64, f64)> =
                            by_batch.iter().map(|p| (p.batch as f64, ms(p.quartiles[side.name()].0))).collect();
                        let (fixed, per_phrase) = line_fit(&points);
                        format!("{fixed:.1} ms + {per_phrase:.2} ms a phrase")
                    })
                    .collect();
                let _ = writeln!(
                    text,
                    "\nA training step's fixed cost and its cost per phrase (least squares over the batch sizes): candle {}, eager {}, expert {}.",
                    cells[0], cells[1], cells[2]
                );
            }
        }
    }
    let _ = writeln!(
        text,
        "\n<details><summary>torch's build</summary>\n\n```\n{}\n{}```\n</details>",
        machine.torch_config.trim_end(),
        machine.torch_parallel
    );
    text
}

fn plot_scaling(results: &[ModelResult], out: &Path) -> anyhow::Result<()> {
    for result in results {
        let series = |side: Side, by_batch: bool| -> Vec<(f64, f64)> {
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
                    (
                        if by_batch { point.batch as f64 } else { f64::from(point.bars) },
                        point.quartiles[side.name()].0 * 1e3,
                    )
                })
                .collect::<Vec<_>>();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        };
        for (by_batch, x_desc, file) in
            [(true, "batch (phrases)", "scaling-batch"), (false, "phrase length (bars)", "scaling-bars")]
        {
            let lines: Vec<(&str, Vec<(f64, f64)>)> =
                Side::ALL.iter().map(|&side| (side.name(), series(side, by_batch))).collect();
            line_chart(
                &out.join(format!("{}-{file}.png", result.name)),
                &format!("{}: training step time", result.name),
                x_desc,
                "ms per step",
                &lines,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartiles_line_fits_orders_and_fixture_names() {
        assert_eq!(quartiles(&[5.0, 1.0, 3.0, 2.0, 4.0]), (3.0, 2.0, 4.0));
        let (fixed, slope) = line_fit(&[(16.0, 12.0), (32.0, 20.0), (64.0, 36.0)]);
        assert!((fixed - 4.0).abs() < 1e-9 && (slope - 0.5).abs() < 1e-9, "{fixed} {slope}");
        assert_eq!(Side::order(0), [Side::Candle, Side::Eager, Side::Expert]);
        assert_eq!(Side::order(1), [Side::Eager, Side::Expert, Side::Candle]);
        assert_eq!(Side::order(5), [Side::Expert, Side::Candle, Side::Eager]);
        assert_eq!(fixture_batch(Path::new("out/train-b64.safetensors")).unwrap(), 64);
        assert!(fixture_batch(Path::new("out/train.safetensors")).is_err());
    }
}
