//! `cargo xtask eval --midi <dir>`: the objective metrics of a folder of MIDI files.

use anyhow::Context;
use clap::Args;
use dreamroll::corpus::read_folder;
use dreamroll::metrics::{MetricsAccumulator, MetricsSummary};
use dreamroll::roll::{Meter, Representation, TrackAssignment};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of MIDI files (searched recursively).
    #[arg(long)]
    midi: PathBuf,
    /// Grid resolution; MuseGAN's metrics are defined at 24 steps per quarter note.
    #[arg(long, default_value_t = 24)]
    steps_per_beat: u16,
    /// Only spans in this meter are measured.
    #[arg(long, default_value = "4/4")]
    meter: Meter,
    /// Also write the metrics as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let folder = read_folder(&args.midi)?;
    let representation = Arc::new(Representation {
        steps_per_beat: args.steps_per_beat,
        meter: args.meter,
        bars_per_phrase: 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks: folder.tracks_by_channel(),
    });
    representation.validate()?;
    let corpus = folder.into_corpus(&representation, TrackAssignment::ByChannel);
    println!("{corpus}");
    for error in corpus.skipped.iter().take(10) {
        println!("  skipped {error}");
    }
    let mut metrics = MetricsAccumulator::default();
    for segment in corpus.pieces.iter().flat_map(|(_, piece)| &piece.segments) {
        metrics.add(segment);
    }
    let summary = metrics.summary();
    print!("{}", table(&summary));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn cell(value: Option<f64>, percent: bool) -> String {
    match value {
        Some(v) if percent => format!("{:.1} %", 100.0 * v),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
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
