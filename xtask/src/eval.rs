//! `cargo xtask eval`: the objective metrics of a folder of MIDI files (`--midi`), or of a
//! trained model's phrases beside its training data's (`--model`).

use anyhow::{bail, Context};
use clap::Args;
use dreamroll::corpus::read_folder;
use dreamroll::metrics::{copy_rate, MetricsAccumulator, MetricsSummary};
use dreamroll::model::generator::Generator;
use dreamroll::model::latent::noise;
use dreamroll::model::rolls::DecodeOptions;
use dreamroll::roll::{Meter, Representation, Roll, TrackAssignment};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of MIDI files to measure (searched recursively).
    #[arg(long, conflicts_with = "model", required_unless_present = "model")]
    midi: Option<PathBuf>,
    /// Model folder to measure against its training data.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The model's training MIDI folder (default: data/corpus/<the card's data name>).
    #[arg(long, requires = "model")]
    data: Option<PathBuf>,
    /// Bars to generate from noise.
    #[arg(long, default_value_t = 2000)]
    bars: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Decoding temperature for --model (0 decodes by threshold) [default: the card's].
    #[arg(long)]
    temperature: Option<f32>,
    /// Grid resolution for --midi; MuseGAN's metrics are defined at 24 steps per quarter note.
    #[arg(long, default_value_t = 24)]
    steps_per_beat: u16,
    /// Only spans in this meter are measured (--midi).
    #[arg(long, default_value = "4/4")]
    meter: Meter,
    /// How notes find their part in --midi files: by `channel` or by `track` order.
    #[arg(long, default_value = "channel")]
    parts: TrackAssignment,
    /// Also write the metrics as JSON here (with --model: default <model>/metrics.json).
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    match (&args.midi, &args.model) {
        (Some(folder), _) => eval_folder(folder, &args),
        (None, Some(model)) => eval_model(model, &args),
        (None, None) => bail!("give --midi DIR or --model DIR"),
    }
}

fn eval_folder(folder: &Path, args: &EvalArgs) -> anyhow::Result<()> {
    let scores = read_folder(folder)?;
    let representation = Arc::new(Representation {
        steps_per_beat: args.steps_per_beat,
        meter: args.meter,
        bars_per_phrase: 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks: scores.tracks(args.parts),
    });
    representation.validate()?;
    let corpus = scores.into_corpus(&representation, args.parts);
    println!("{corpus}");
    for error in corpus.skipped.iter().take(10) {
        println!("  skipped {error}");
    }
    let summary = measure(corpus.pieces.iter().flat_map(|(_, piece)| &piece.segments));
    print!("{}", table(&summary));
    if let Some(path) = &args.json {
        write_json(path, &summary)?;
    }
    Ok(())
}

fn measure<'a>(rolls: impl IntoIterator<Item = &'a Roll>) -> MetricsSummary {
    let mut metrics = MetricsAccumulator::default();
    rolls.into_iter().for_each(|roll| metrics.add(roll));
    metrics.summary()
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Generated and training metrics side by side, and how often the model copies.
#[derive(Serialize)]
struct ModelMetrics {
    model: String,
    seed: u64,
    generated_bars: usize,
    training_bars: usize,
    copy_rate: Option<f64>,
    /// The same measure between real pieces (the odd-numbered pieces' bars against the
    /// even-numbered ones'): how often new music of this corpus repeats a known bar anyway.
    corpus_copy_rate: Option<f64>,
    /// Generated whole phrases equal to a corpus phrase (starting at any bar) up to transposition.
    phrase_copy_rate: Option<f64>,
    generated: MetricsSummary,
    training: MetricsSummary,
}

fn eval_model(folder: &Path, args: &EvalArgs) -> anyhow::Result<()> {
    let generator = Generator::from_dir(folder).with_context(|| format!("loading the model in {}", folder.display()))?;
    let card = generator.card().clone();
    let data = match &args.data {
        Some(data) => data.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/corpus").join(&card.training.data),
    };
    let representation = Arc::new(card.representation.clone());
    let bars_per_phrase = usize::from(representation.bars_per_phrase);
    let corpus = read_folder(&data)
        .with_context(|| format!("reading the training data (pass --data DIR; `cargo xtask corpus` makes {})", data.display()))?
        .into_corpus(&representation, card.training.track_assignment);
    println!("training data: {corpus}");
    let training_phrases: Vec<Roll> = corpus.pieces.iter().flat_map(|(_, piece)| piece.phrases(bars_per_phrase, bars_per_phrase)).collect();
    // Bars are cut once; the corpus-against-itself copy rate splits them by piece.
    let bars_by_piece: Vec<Vec<Roll>> = corpus.pieces.iter().map(|(_, piece)| piece.phrases(1, 1)).collect();
    let training_bars: Vec<Roll> = bars_by_piece.iter().flatten().cloned().collect();
    let half_bars = |parity: usize| -> Vec<Roll> { bars_by_piece.iter().skip(parity).step_by(2).flatten().cloned().collect() };

    let phrases = args.bars.div_ceil(bars_per_phrase);
    let mut options = DecodeOptions::from_card(&card.decoding);
    if let Some(temperature) = args.temperature {
        options.temperature = temperature;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut generated = Vec::with_capacity(phrases);
    for first in (0..phrases).step_by(256) {
        let latents: Vec<Vec<f32>> = (first..(first + 256).min(phrases)).map(|i| noise(args.seed.wrapping_mul(1 << 32) + i as u64, card.latent_size)).collect();
        generated.extend(generator.generate(&latents, &options, &mut rng)?);
    }
    let generated_bars: Vec<Roll> = generated.iter().flat_map(|p| p.phrases(1, 1)).collect();
    let report = ModelMetrics {
        model: card.name.clone(),
        seed: args.seed,
        generated_bars: generated_bars.len(),
        training_bars: training_bars.len(),
        copy_rate: copy_rate(&generated_bars, &training_bars).mean(),
        corpus_copy_rate: copy_rate(&half_bars(1), &half_bars(0)).mean(),
        phrase_copy_rate: copy_rate(&generated, &corpus.pieces.iter().flat_map(|(_, p)| p.phrases(bars_per_phrase, 1)).collect::<Vec<_>>()).mean(),
        generated: measure(&generated),
        training: measure(&training_phrases),
    };
    let markdown = side_by_side(&report);
    print!("{markdown}");
    std::fs::write(folder.join("metrics.md"), &markdown)?;
    write_json(&args.json.clone().unwrap_or_else(|| folder.join("metrics.json")), &report)
}

fn cell(value: Option<f64>, percent: bool) -> String {
    match value {
        Some(v) if percent => format!("{:.1} %", 100.0 * v),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// Generated beside training, with the relative difference, as Markdown.
fn side_by_side(report: &ModelMetrics) -> String {
    let (g, t) = (&report.generated, &report.training);
    let mut out = format!(
        "\n## {}: {} generated bars (seed {}) vs {} training bars\n\n| metric | generated | training | difference |\n|---|---|---|---|\n",
        report.model, report.generated_bars, report.seed, report.training_bars
    );
    let mut row = |name: String, generated: Option<f64>, training: Option<f64>, percent: bool| {
        let difference = match (generated, training) {
            (Some(a), Some(b)) if (a - b).abs() < 5e-4 => "±0".to_string(),
            (Some(a), Some(b)) if percent => format!("{:+.1} points", 100.0 * (a - b)),
            (Some(a), Some(b)) if b != 0.0 => format!("{:+.1} %", 100.0 * (a - b) / b),
            _ => "-".into(),
        };
        out += &format!("| {name} | {} | {} | {difference} |\n", cell(generated, percent), cell(training, percent));
    };
    for (gt, tt) in g.tracks.iter().zip(&t.tracks) {
        row(format!("EB {}", gt.name), gt.empty_bars, tt.empty_bars, true);
        row(format!("UPC {}", gt.name), gt.used_pitch_classes, tt.used_pitch_classes, false);
    }
    row("EB (all tracks)".into(), g.empty_bars, t.empty_bars, true);
    row("UPC (all tracks)".into(), g.used_pitch_classes, t.used_pitch_classes, false);
    row("QN".into(), g.qualified_notes, t.qualified_notes, false);
    row("PP".into(), g.polyphony, t.polyphony, false);
    row("empty beats".into(), g.empty_beats, t.empty_beats, true);
    row("pitch-class entropy".into(), g.pitch_class_entropy, t.pitch_class_entropy, false);
    row("scale consistency".into(), g.scale_consistency, t.scale_consistency, false);
    row("groove consistency".into(), g.groove_consistency, t.groove_consistency, false);
    row("TD (mean of pairs)".into(), g.tonal_distance, t.tonal_distance, false);
    out += &format!(
        "\ncopy rate: {} of generated bars equal a corpus bar up to transposition (between the corpus's own pieces: {})\n",
        cell(report.copy_rate, true),
        cell(report.corpus_copy_rate, true)
    );
    out += &format!("phrase copy rate: {} of generated phrases equal a corpus phrase up to transposition\n", cell(report.phrase_copy_rate, true));
    out
}

/// The summary as a Markdown table: one row per track, one for all tracks.
pub fn table(summary: &MetricsSummary) -> String {
    let mut out = format!("\n{} rolls, {} bars\n\n", summary.rolls, summary.bars);
    out += "| track | EB | UPC | QN | empty beats |\n|---|---|---|---|---|\n";
    for track in &summary.tracks {
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            track.name,
            cell(track.empty_bars, true),
            cell(track.used_pitch_classes, false),
            cell(track.qualified_notes, true),
            cell(track.empty_beats, true)
        );
    }
    out += &format!(
        "| all | {} | {} | {} | {} |\n\n",
        cell(summary.empty_bars, true),
        cell(summary.used_pitch_classes, false),
        cell(summary.qualified_notes, true),
        cell(summary.empty_beats, true)
    );
    out += "| PP | pitch-class entropy | scale consistency | groove consistency | TD (mean of pairs) |\n|---|---|---|---|---|\n";
    out += &format!(
        "| {} | {} | {} | {} | {} |\n",
        cell(summary.polyphony, false),
        cell(summary.pitch_class_entropy, false),
        cell(summary.scale_consistency, false),
        cell(summary.groove_consistency, false),
        cell(summary.tonal_distance, false)
    );
    if summary.tonal_distance_pairs.len() > 1 {
        out += "\n| TD pair | distance |\n|---|---|\n";
        for pair in &summary.tonal_distance_pairs {
            out += &format!("| {} / {} | {} |\n", pair.tracks[0], pair.tracks[1], cell(pair.distance, false));
        }
    }
    out
}
