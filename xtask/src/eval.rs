//! `cargo xtask eval`: the objective metrics of a folder of MIDI files (`--midi`), or of a
//! trained model's phrases beside its training data's (`--model`), with a classifier
//! two-sample test of phrases and its control between two halves of the corpus.

use crate::train::{augment, DEFAULT_TRANSPOSE};
use anyhow::{bail, Context};
use clap::Args;
use dreamroll::corpus::{read_folder, PartReading};
use dreamroll::metrics::band::{BandAccumulator, BandSummary, LaneSummary};
use dreamroll::metrics::seams::{played_twice, JunctionAccumulator, JunctionSummary, MoveSummary};
use dreamroll::metrics::two_sample::classifier_accuracy;
use dreamroll::metrics::voices::{VoiceStatistics, VoiceSummary};
use dreamroll::metrics::{copy_rate, MetricsAccumulator, MetricsSummary};
use dreamroll::model::generator::DEFAULT_VARIATION;
use dreamroll::model::generator::{Generator, RenderRequest};
use dreamroll::model::latent::noise;
use dreamroll::model::rolls::DecodeOptions;
use dreamroll::model::source::Source;
use dreamroll::roll::{Meter, Representation, Roll, TrackAssignment};
use rand::seq::SliceRandom;
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
    /// Phrases a side for the classifier two-sample test (fewer when the corpus has fewer).
    #[arg(long, default_value_t = 2000)]
    test_phrases: usize,
    /// Also write the metrics as JSON here (with --model: default <model>/metrics.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Loops of each length (8 and 16 bars) that --model renders as the plugin does, seeds
    /// 1..=N, for the seams, the wrap and the cadences.
    #[arg(long, default_value_t = 125, value_parser = clap::value_parser!(u64).range(1..))]
    loops: u64,
    /// How much a seam opening's own likelihood counts beside the notes after it when --model
    /// joins its loops' phrases (0 to 4) [default: the card's `seam_opening_weight`]: to
    /// measure a model's seams and wrap at other weights before setting its card.
    #[arg(long, requires = "model")]
    seam_opening_weight: Option<f32>,
    /// Logits added to a seam opening's every new note more than a fifth from its voice's
    /// last when --model joins its loops' phrases (within ±6; negative leaps less) [default:
    /// the card's `seam_leap_bias`]: to measure a model's seams and wrap at other biases
    /// before setting its card.
    #[arg(long, requires = "model", allow_negative_numbers = true)]
    seam_leap_bias: Option<f32>,
    /// Draws of each phrase's close (from its last strong beat) when --model renders its
    /// loops, the likeliest kept (0 or 1: one draw) [default: the card's
    /// `cadence_candidates`]: to measure a model's cadences and seams at other counts before
    /// setting its card.
    #[arg(long, requires = "model")]
    cadence_candidates: Option<u8>,
}

/// Bars per phrase of the two-sample test for --midi (a model's tests use its phrase length).
const TEST_BARS: usize = 4;

/// The loop lengths --model renders: the plugin's longest, and twice that (`dreamroll render`
/// makes any length), so that seams are heard both next to the wrap and away from it.
const LOOP_BARS: [usize; 2] = [8, 16];

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
        tracks: scores.tracks(args.parts, PartReading::Cells),
    });
    representation.validate()?;
    let corpus = scores.into_corpus(&representation, args.parts);
    println!("{corpus}");
    for error in corpus.skipped.iter().take(10) {
        println!("  skipped {error}");
    }
    let summary = measure(corpus.pieces.iter().flat_map(|(_, piece)| &piece.segments));
    print!("{}", table(&summary));
    let phrases_by_piece: Vec<Vec<Roll>> =
        corpus.pieces.iter().map(|(_, piece)| piece.phrases(TEST_BARS, TEST_BARS)).collect();
    let control = half_corpus_control(&phrases_by_piece, args.test_phrases, args.seed);
    println!("\n{control}");
    if let Some(path) = &args.json {
        write_json(path, &FolderMetrics { metrics: summary, half_corpus_control: control })?;
    }
    Ok(())
}

fn measure<'a>(rolls: impl IntoIterator<Item = &'a Roll>) -> MetricsSummary {
    let mut metrics = MetricsAccumulator::default();
    rolls.into_iter().for_each(|roll| metrics.add(roll));
    metrics.summary()
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// A folder's metrics as JSON: the summary's fields, then the control.
#[derive(Serialize)]
struct FolderMetrics {
    #[serde(flatten)]
    metrics: MetricsSummary,
    half_corpus_control: TwoSampleTest,
}

/// How well a classifier tells two sets of phrases apart (see
/// [`dreamroll::metrics::two_sample`]).
#[derive(Serialize)]
struct TwoSampleTest {
    sets: [String; 2],
    phrases_per_side: usize,
    bars_per_phrase: usize,
    /// Cross-validated accuracy: 0.5 when the sets look alike, 1.0 when they differ plainly.
    accuracy: f64,
    /// How the real phrases' keys were spread.
    transposition: String,
}

impl std::fmt::Display for TwoSampleTest {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "classifier two-sample test, {} vs {}: {:.1} % accuracy ({} {}-bar phrases a side, {})",
            self.sets[0],
            self.sets[1],
            100.0 * self.accuracy,
            self.phrases_per_side,
            self.bars_per_phrase,
            self.transposition
        )
    }
}

/// One side of a two-sample test: its name, its phrases in groups that the test keeps
/// together (a piece's phrases; a generated phrase alone), and whether to move each phrase as
/// the trainer does, so that real phrases are in the keys a model learnt.
struct Side<'a> {
    name: &'a str,
    groups: Vec<Vec<&'a Roll>>,
    transpose: bool,
}

/// The test on as many phrases a side as the smaller side holds (at most `most`): whole
/// groups in a random order, the last one cut to fit.
fn two_sample_test(sides: [Side; 2], most: usize, seed: u64) -> TwoSampleTest {
    let available = |side: &Side| side.groups.iter().map(Vec::len).sum::<usize>();
    let count = sides.iter().map(available).min().unwrap_or(0).min(most);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let [first, second] = sides.each_ref().map(|side| {
        let mut order: Vec<&Vec<&Roll>> = side.groups.iter().collect();
        order.shuffle(&mut rng);
        let moved = |phrase: &Roll, rng: &mut ChaCha8Rng| {
            if side.transpose {
                augment(phrase, DEFAULT_TRANSPOSE, rng)
            } else {
                phrase.clone()
            }
        };
        let mut drawn: Vec<Vec<Roll>> = Vec::new();
        let mut left = count;
        for group in order {
            if left == 0 {
                break;
            }
            let taken = group.len().min(left);
            left -= taken;
            drawn.push(group[..taken].iter().map(|phrase| moved(phrase, &mut rng)).collect());
        }
        drawn
    });
    let transposed: Vec<&str> = sides.iter().filter(|side| side.transpose).map(|side| side.name).collect();
    TwoSampleTest {
        sets: sides.map(|side| side.name.to_string()),
        phrases_per_side: count,
        bars_per_phrase: first.iter().flatten().next().map_or(0, Roll::bar_count),
        accuracy: classifier_accuracy(&first, &second, seed),
        transposition: format!(
            "the {} phrases each moved by a random transposition within ±{DEFAULT_TRANSPOSE} semitones, as the trainer augments; folds keep a piece's phrases together",
            transposed.join(" and ")
        ),
    }
}

/// A corpus's phrases, a group per piece.
fn by_piece(phrases_by_piece: &[Vec<Roll>]) -> Vec<Vec<&Roll>> {
    phrases_by_piece.iter().map(|piece| piece.iter().collect()).collect()
}

/// The test between the odd- and the even-numbered pieces' phrases (at most `most` a side),
/// both moved alike: two sets of real music, which should score about 0.5; more would mean the
/// test sees something other than the difference between real and generated music.
fn half_corpus_control(phrases_by_piece: &[Vec<Roll>], most: usize, seed: u64) -> TwoSampleTest {
    let pieces = by_piece(phrases_by_piece);
    let half = |parity: usize| -> Vec<Vec<&Roll>> { pieces.iter().skip(parity).step_by(2).cloned().collect() };
    two_sample_test(
        [
            Side { name: "odd pieces", groups: half(0), transpose: true },
            Side { name: "even pieces", groups: half(1), transpose: true },
        ],
        most,
        seed,
    )
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
    /// The same between real pieces: the odd-numbered pieces' disjoint phrases against every
    /// phrase of the even-numbered ones (tunes of one tradition share whole phrases).
    corpus_phrase_copy_rate: Option<f64>,
    generated: MetricsSummary,
    training: MetricsSummary,
    two_sample_test: TwoSampleTest,
    half_corpus_control: TwoSampleTest,
    loops: LoopMetrics,
}

/// Whole loops rendered as the plugin plays them, heard repeating, beside the training pieces.
#[derive(Serialize)]
struct LoopMetrics {
    /// Loops of each length, seeds 1..=loops.
    loops: u64,
    variation: f32,
    /// `None` plays the card's own, as the plugin does at ×1.
    temperature: Option<f32>,
    bars_per_phrase: usize,
    generated: Vec<LoopJunctions>,
    training: JunctionSummary,
    /// Generated against training on windows of two phrases that hold two seams each (see
    /// [`seam_windows`]).
    seam_test: TwoSampleTest,
    /// The same between the odd- and even-numbered pieces' windows, as many a side.
    seam_control: TwoSampleTest,
    /// For a model with drums or a bass: how the band plays in the loops and in the pieces.
    band: Option<[BandSummary; 2]>,
}

/// Loops of one length.
#[derive(Serialize)]
struct LoopJunctions {
    bars: usize,
    #[serde(flatten)]
    junctions: JunctionSummary,
}

fn eval_model(folder: &Path, args: &EvalArgs) -> anyhow::Result<()> {
    let mut generator =
        Generator::from_dir(folder).with_context(|| format!("loading the model in {}", folder.display()))?;
    // The decoding flags, each beside what the card has, checked as a card's would be.
    let carded = generator.card().decoding.clone();
    let mut decoding = carded.clone();
    if let Some(weight) = args.seam_opening_weight {
        decoding.seam_opening_weight = weight;
        let carded = carded.seam_opening_weight;
        println!("seam openings chosen with their own likelihood weighted {weight} (the card has {carded})");
    }
    if let Some(bias) = args.seam_leap_bias {
        decoding.seam_leap_bias = bias;
        let carded = carded.seam_leap_bias;
        println!("seam openings' leaps past a fifth moved by {bias} logits (the card has {carded})");
    }
    if let Some(candidates) = args.cadence_candidates {
        decoding.cadence_candidates = candidates;
        let carded = carded.cadence_candidates;
        println!("each phrase's close drawn {candidates} time(s), the likeliest kept (the card has {carded})");
    }
    if decoding != carded {
        generator = generator
            .with_decoding(decoding)
            .context("--seam-opening-weight, --seam-leap-bias or --cadence-candidates")?;
    }
    let card = generator.card().clone();
    let representation = Arc::new(card.representation.clone());
    let bars_per_phrase = usize::from(representation.bars_per_phrase);
    let corpus = training_corpus(&card, args.data.as_deref())?;
    println!("training data: {corpus}");
    // The statistics read the phrases as the trainer cuts them, one starting at every bar.
    // The two-sample test keeps disjoint phrases, so that no two of a side overlap.
    let cut = |bars: usize, hop: usize| -> Vec<Vec<Roll>> {
        corpus.pieces.iter().map(|(_, piece)| piece.phrases(bars, hop)).collect()
    };
    let phrases_by_piece = cut(bars_per_phrase, bars_per_phrase);
    let learned_by_piece = cut(bars_per_phrase, 1);
    let learned_phrases: Vec<Roll> = learned_by_piece.iter().flatten().cloned().collect();
    // Bars are cut once; the corpus-against-itself copy rate splits them by piece.
    let bars_by_piece = cut(1, 1);
    let training_bars: Vec<Roll> = bars_by_piece.iter().flatten().cloned().collect();
    let half_bars =
        |parity: usize| -> Vec<Roll> { bars_by_piece.iter().skip(parity).step_by(2).flatten().cloned().collect() };

    // The test may want more phrases than the metrics; the first phrases are the same either way.
    let measured_phrases = args.bars.div_ceil(bars_per_phrase);
    let phrases = measured_phrases.max(args.test_phrases.min(phrases_by_piece.iter().map(Vec::len).sum()));
    let mut options = DecodeOptions::from_card(&card.decoding);
    if let Some(temperature) = args.temperature {
        options.temperature = temperature;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut generated = Vec::with_capacity(phrases);
    for first in (0..phrases).step_by(256) {
        let latents: Vec<Vec<f32>> = (first..(first + 256).min(phrases))
            .map(|i| noise(args.seed.wrapping_mul(1 << 32) + i as u64, card.latent_size))
            .collect();
        generated.extend(generator.generate(&latents, &options, &mut rng)?);
    }
    let two_sample_test = two_sample_test(
        [
            Side { name: "generated", groups: generated.iter().map(|phrase| vec![phrase]).collect(), transpose: false },
            Side { name: "training", groups: by_piece(&phrases_by_piece), transpose: true },
        ],
        args.test_phrases,
        args.seed,
    );
    generated.truncate(measured_phrases);
    let generated_bars: Vec<Roll> = generated.iter().flat_map(|p| p.phrases(1, 1)).collect();
    let report = ModelMetrics {
        model: card.name.clone(),
        seed: args.seed,
        generated_bars: generated_bars.len(),
        training_bars: training_bars.len(),
        copy_rate: copy_rate(&generated_bars, &training_bars).mean(),
        corpus_copy_rate: copy_rate(&half_bars(1), &half_bars(0)).mean(),
        phrase_copy_rate: copy_rate(&generated, &learned_phrases).mean(),
        corpus_phrase_copy_rate: copy_rate(
            &phrases_by_piece.iter().skip(1).step_by(2).flatten().cloned().collect::<Vec<_>>(),
            &learned_by_piece.iter().step_by(2).flatten().cloned().collect::<Vec<_>>(),
        )
        .mean(),
        generated: measure(&generated),
        training: measure(&learned_phrases),
        two_sample_test,
        half_corpus_control: half_corpus_control(&phrases_by_piece, args.test_phrases, args.seed),
        loops: loops_as_played(&generator, &corpus, args)?,
    };
    let mut markdown = side_by_side(&report) + &loops_section(&report.loops);
    if let Some(band) = &report.loops.band {
        markdown += &band_section(band);
    }
    print!("{markdown}");
    std::fs::write(folder.join("metrics.md"), &markdown)?;
    write_json(&args.json.clone().unwrap_or_else(|| folder.join("metrics.json")), &report)
}

/// Renders --loops loops of each of [`LOOP_BARS`] as the plugin's Dream source does with its
/// knobs where a fresh plugin has them (only the seed and the loop length turned), and
/// measures their seams, wrap and cadences, and a two-sample test on windows across seams,
/// beside the training pieces read the same way.
fn loops_as_played(
    generator: &Generator,
    corpus: &dreamroll::corpus::Corpus,
    args: &EvalArgs,
) -> anyhow::Result<LoopMetrics> {
    let bars_per_phrase = usize::from(generator.card().representation.bars_per_phrase);
    let mut generated = Vec::new();
    // A seed's loops of every length begin with the same phrases (one latent walk, one stream
    // per phrase), so their windows are near twins: they are one group, or a classifier that
    // has learnt one recognises its twin in another fold and the test scores memory.
    let mut windows_by_seed: Vec<Vec<Roll>> = vec![Vec::new(); args.loops as usize];
    let (mut band_loops, mut band_pieces) = (BandAccumulator::default(), BandAccumulator::default());
    for bars in LOOP_BARS {
        let mut junctions = JunctionAccumulator::default();
        for seed in 1..=args.loops {
            let request = RenderRequest {
                bars,
                seed,
                knobs: vec![],
                variation: DEFAULT_VARIATION,
                temperature: args.temperature,
                density: 0.0,
                named: vec![],
                style: None,
            };
            let looped = generator
                .render_from(&request, &Source::default(), None)
                .with_context(|| format!("rendering the {bars}-bar loop of seed {seed}"))?;
            junctions.add_loop(&looped);
            band_loops.add(&looped, bars_per_phrase);
            windows_by_seed[(seed - 1) as usize].extend(seam_windows(
                &played_twice(&looped),
                bars_per_phrase,
                looped.steps(),
            ));
        }
        generated.push(LoopJunctions { bars, junctions: junctions.summary() });
    }
    let mut training = JunctionAccumulator::default();
    let mut windows_by_piece: Vec<Vec<Roll>> = Vec::new();
    for (_, piece) in &corpus.pieces {
        piece.segments.iter().for_each(|segment| training.add_piece(segment));
        piece.segments.iter().for_each(|segment| band_pieces.add(segment, bars_per_phrase));
        windows_by_piece.push(
            piece.segments.iter().flat_map(|segment| seam_windows(segment, bars_per_phrase, segment.steps())).collect(),
        );
    }
    let seam_test = two_sample_test(
        [
            Side { name: "generated loops", groups: by_piece(&windows_by_seed), transpose: false },
            Side { name: "training", groups: by_piece(&windows_by_piece), transpose: true },
        ],
        args.test_phrases,
        args.seed,
    );
    let seam_control = half_corpus_control(&windows_by_piece, seam_test.phrases_per_side, args.seed);
    Ok(LoopMetrics {
        loops: args.loops,
        variation: DEFAULT_VARIATION,
        temperature: args.temperature,
        bars_per_phrase,
        generated,
        training: training.summary(),
        seam_test,
        seam_control,
        band: is_band(&generator.card().representation).then(|| [band_loops.summary(), band_pieces.summary()]),
    })
}

/// A model that plays drums or a bass, whose loops the band measures describe.
fn is_band(representation: &Representation) -> bool {
    representation.tracks.iter().any(|t| t.is_drum || t.name.to_lowercase().contains("bass"))
}

/// The band measures of the loops beside the pieces', as a drummer and a bass player read
/// them.
fn band_section(band: &[BandSummary; 2]) -> String {
    let [loops, pieces] = band;
    let mut out = String::from("\n## How the band plays (loops as played | training pieces)\n");
    let spread = |lane: Option<&LaneSummary>| {
        lane.and_then(|l| l.velocity_spread).map_or("–".to_string(), |v| format!("{v:.1}"))
    };
    // A model with a bass and no drum lanes (a chorale's bass voice, a bass-and-keys model)
    // has no lanes to list and no drum rows to fill: only what applies is shown.
    if !pieces.lanes.is_empty() {
        out += "\n| lane | hits per bar, loops | pieces | velocity spread, loops | pieces |\n|---|---|---|---|---|\n";
    }
    for lane in &pieces.lanes {
        let played = loops.lanes.iter().find(|l| l.lane == lane.lane);
        out += &format!(
            "| {} | {} | {:.2} | {} | {} |\n",
            lane.lane,
            played.map_or("–".to_string(), |l| format!("{:.2}", l.hits_per_bar)),
            lane.hits_per_bar,
            spread(played),
            spread(Some(lane))
        );
    }
    out += "\n| | loops | pieces |\n|---|---|---|\n";
    for (name, played, heard) in [
        ("kick on the downbeat", loops.kick_on_downbeats, pieces.kick_on_downbeats),
        ("snare, rim or clap on the backbeat", loops.snare_on_backbeats, pieces.snare_on_backbeats),
        ("fills: last bar of a phrase", loops.fills_at_phrase_ends, pieces.fills_at_phrase_ends),
        ("fills: other bars", loops.fills_elsewhere, pieces.fills_elsewhere),
        ("bass on a chord tone of the comping, strong beats", loops.bass_on_chord_tones, pieces.bass_on_chord_tones),
    ]
    .into_iter()
    .filter(|(_, played, heard)| played.is_some() || heard.is_some())
    {
        out += &format!("| {name} | {} | {} |\n", cell(played, true), cell(heard, true));
    }
    out
}

/// The windows of two phrases' length that start half a phrase into a phrase (bars 3, 11,
/// 19 … of 4-bar phrases) and start before `starts_before`: each holds two seams, at its
/// bars 3 and 7, with the bars either side, always in the same places, so that a classifier
/// reading them step by step sees what happens at a seam. Of a loop played twice, with
/// `starts_before` its length, each window of the loop heard repeating once (one holds the
/// wrap).
fn seam_windows(roll: &Roll, bars_per_phrase: usize, starts_before: usize) -> Vec<Roll> {
    let bar = roll.representation().steps_per_bar();
    let (length, offset) = (2 * bars_per_phrase * bar, bars_per_phrase / 2 * bar);
    (offset..)
        .step_by(length)
        .take_while(|&start| start < starts_before && start + length <= roll.steps())
        .map(|start| roll.slice(start..start + length))
        .collect()
}

/// The loops' seams, wrap and cadences beside the training pieces', as Markdown.
fn loops_section(loops: &LoopMetrics) -> String {
    let phrase = loops.bars_per_phrase;
    let temperature = loops.temperature.map_or("the card's temperature".to_string(), |t| format!("temperature {t}"));
    let mut out = format!(
        "\n## Loops as the plugin plays them: seams, wrap, cadences\n\n{} loops of each length (seeds 1..={}, variation {:.0} %, {temperature}, every other knob at rest), each heard repeating, beside the training pieces ({} segments) in {phrase}-bar phrases from their first bar. A move is between consecutive notes of a voice, across rests, pooled over voices; a repeated pitch is a move of 0. A seam is the move onto a phrase's first note (bars {}); the wrap, onto the loop's first note from its last.\n\n",
        loops.loops,
        loops.loops,
        100.0 * loops.variation,
        loops.training.rolls,
        (1..4).map(|k| (k * phrase + 1).to_string()).collect::<Vec<_>>().join(", ") + ", …",
    );
    out += "| moves | set | moves | leaps > a 5th | mean interval (semitones) |\n|---|---|---|---|---|\n";
    let mut sets: Vec<(String, &JunctionSummary)> =
        loops.generated.iter().map(|set| (format!("{}-bar loops", set.bars), &set.junctions)).collect();
    sets.push(("training".into(), &loops.training));
    let moves = |out: &mut String, kind: &str, set: &str, moves: &MoveSummary| {
        *out += &format!(
            "| {kind} | {set} | {} | {} | {} |\n",
            moves.moves,
            cell(moves.leaps, true),
            cell(moves.mean_semitones, false)
        );
    };
    for (name, set) in &sets {
        moves(&mut out, "seams", name, &set.seams);
    }
    for (name, set) in sets.iter().filter(|(_, set)| set.wrap.moves > 0) {
        moves(&mut out, "wrap", name, &set.wrap);
    }
    for (name, set) in &sets {
        moves(&mut out, "within phrases", name, &set.within);
    }
    let chords = loops.training.triads.is_some();
    out += &format!(
        "\nCadences: a phrase's end is what sounds at its last onset (the last chord struck, wherever in the bar it falls); the key is read from the whole loop or piece.{}\n\n",
        if chords { "" } else { " One voice sounds no chord: only its final note is judged." }
    );
    let names: Vec<&str> = sets.iter().map(|(name, _)| name.as_str()).collect();
    out += &format!("| phrase ends | {} |\n|---|{}\n", names.join(" | "), "---|".repeat(names.len()));
    let mut row = |name: &str, pick: fn(&JunctionSummary) -> Option<f64>| {
        let cells: Vec<String> = sets.iter().map(|(_, set)| cell(pick(set), true)).collect();
        out += &format!("| {name} | {} |\n", cells.join(" | "));
    };
    if chords {
        row("on a major or minor triad", |s| s.triads);
        row("triad with its root in the bass", |s| s.bass_on_root);
        row("bass reached by a 4th or 5th", |s| s.bass_by_fourth_or_fifth);
    }
    row("top voice on the tonic", |s| s.top_on_tonic);
    row("top voice reached by step", |s| s.top_by_step);
    let counts: Vec<String> = sets.iter().map(|(_, set)| set.phrase_ends.to_string()).collect();
    out += &format!("| (phrase ends) | {} |\n", counts.join(" | "));
    out + &format!(
        "\nOn windows of {} bars that start {} bars into a phrase, so that each holds two seams (a loop's window that reaches past its end holds the wrap):\n{}\n{}\n",
        2 * phrase,
        phrase / 2,
        loops.seam_test,
        loops.seam_control
    )
}

/// A model's training music on its grid: from `data`, or the folder `cargo xtask corpus`
/// makes under the card's data name.
/// The folder a model learnt from: `data`, or where `cargo xtask corpus` puts its corpus.
pub fn training_folder(card: &dreamroll::model::ModelCard, data: Option<&Path>) -> PathBuf {
    data.map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/corpus").join(&card.training.data),
        Path::to_path_buf,
    )
}

pub fn training_corpus(
    card: &dreamroll::model::ModelCard,
    data: Option<&Path>,
) -> anyhow::Result<dreamroll::corpus::Corpus> {
    let data = training_folder(card, data);
    Ok(read_folder(&data)
        .with_context(|| {
            format!("reading the training data (pass --data DIR; `cargo xtask corpus` makes {})", data.display())
        })?
        .into_corpus(&Arc::new(card.representation.clone()), card.training.track_assignment))
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
    let (gv, tv) = (&g.voices.mean, &t.voices.mean);
    for (name, pick, percent) in VOICE_COLUMNS {
        row(format!("{name}, mean of voices"), pick(gv), pick(tv), percent);
    }
    if !g.voices.pairs.is_empty() {
        row("voice crossings (all pairs)".into(), g.voices.crossings, t.voices.crossings, true);
        row("parallel 5ths/8ves per move (all pairs)".into(), g.voices.parallels, t.voices.parallels, true);
    }
    out += "\nper voice, generated / training:\n";
    out += &voice_header();
    for (gt, tt) in g.voices.tracks.iter().zip(&t.voices.tracks) {
        out += &voice_row(&gt.name, &[(gt.notes, &gt.statistics), (tt.notes, &tt.statistics)]);
    }
    if !g.voices.pairs.is_empty() {
        out += "\n| voice pair | crossings | parallels per move |\n|---|---|---|\n";
        for (gp, tp) in g.voices.pairs.iter().zip(&t.voices.pairs) {
            out += &format!(
                "| {} / {} | {} / {} | {} / {} |\n",
                gp.voices[0],
                gp.voices[1],
                cell(gp.crossings, true),
                cell(tp.crossings, true),
                cell(gp.parallels, true),
                cell(tp.parallels, true)
            );
        }
    }
    out += &overlap_note(&g.voices, "generated ");
    out += &overlap_note(&t.voices, "training ");
    out += &format!("\n{}\n{}\n", report.two_sample_test, report.half_corpus_control);
    out += &format!(
        "\ncopy rate: {} of generated bars equal a corpus bar up to transposition (between the corpus's own pieces: {})\n",
        cell(report.copy_rate, true),
        cell(report.corpus_copy_rate, true)
    );
    out += &format!(
        "phrase copy rate: {} of generated phrases equal a corpus phrase up to transposition (between the corpus's own pieces: {})\n",
        cell(report.phrase_copy_rate, true),
        cell(report.corpus_phrase_copy_rate, true)
    );
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
    out + &voice_table(&summary.voices)
}

/// The per-voice statistics as table columns: heading, value, shown as a percentage.
type VoiceColumn = (&'static str, fn(&VoiceStatistics) -> Option<f64>, bool);

const VOICE_COLUMNS: [VoiceColumn; 6] = [
    ("note length (16ths)", |s| s.note_length_sixteenths, false),
    ("notes ≤ a 16th", |s| s.short_notes, true),
    ("rests", |s| s.rests, true),
    ("repeated pitch", |s| s.repeated_pitches, true),
    ("stepwise", |s| s.stepwise_motion, true),
    ("leaps > a 5th", |s| s.leaps, true),
];

fn voice_header() -> String {
    let names: Vec<&str> = VOICE_COLUMNS.iter().map(|column| column.0).collect();
    format!("\n| voice | notes | {} |\n|---|---|{}\n", names.join(" | "), "---|".repeat(names.len()))
}

/// One voice's row; with several sets of statistics, their cells joined by " / ".
fn voice_row(name: &str, sets: &[(usize, &VoiceStatistics)]) -> String {
    let joined = |cells: Vec<String>| cells.join(" / ");
    let mut out = format!("| {name} | {} |", joined(sets.iter().map(|(notes, _)| notes.to_string()).collect()));
    for (_, pick, percent) in VOICE_COLUMNS {
        out += &format!(" {} |", joined(sets.iter().map(|(_, statistics)| cell(pick(statistics), percent)).collect()));
    }
    out + "\n"
}

/// How many notes the highest-note reading of chords touched, when any; `set` names whose
/// notes they are ("generated ", or nothing).
fn overlap_note(voices: &VoiceSummary, set: &str) -> String {
    match voices.overlapping_notes {
        0 => String::new(),
        overlapping => format!(
            "\n{overlapping} of {} {set}notes sound together with another of their own track; such a track's voice is its highest note\n",
            voices.notes
        ),
    }
}

/// The voice statistics: per voice and their mean, then per pair of voices.
fn voice_table(voices: &VoiceSummary) -> String {
    let mut out = voice_header();
    for track in &voices.tracks {
        out += &voice_row(&track.name, &[(track.notes, &track.statistics)]);
    }
    if voices.tracks.len() > 1 {
        out += &voice_row("mean of voices", &[(voices.notes, &voices.mean)]);
        out += "\n| voice pair | crossings | parallels per move | moves |\n|---|---|---|---|\n";
        for pair in &voices.pairs {
            let moves = pair.moves;
            out += &format!(
                "| {} / {} | {} | {} | {moves} |\n",
                pair.voices[0],
                pair.voices[1],
                cell(pair.crossings, true),
                cell(pair.parallels, true)
            );
        }
        let moves: usize = voices.pairs.iter().map(|pair| pair.moves).sum();
        out +=
            &format!("| all pairs | {} | {} | {moves} |\n", cell(voices.crossings, true), cell(voices.parallels, true));
    }
    out + &overlap_note(voices, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use dreamroll::roll::{GridNote, TrackSpec};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        eval: EvalArgs,
    }

    fn args(extra: &[&str]) -> EvalArgs {
        Cli::parse_from(["eval", "--midi", "unused"].iter().chain(extra)).eval
    }

    /// One-bar phrases, each holding `pitch` for the whole bar.
    fn phrases(pitch: u8, count: usize) -> Vec<Roll> {
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 36,
            pitch_count: 60,
            tracks: vec![TrackSpec::new("Melody", 0)],
        });
        (0..count)
            .map(|_| {
                let mut roll = Roll::new(representation.clone(), 16);
                roll.place(GridNote { track: 0, start: 0, pitch, length: 16, velocity: 90 }).unwrap();
                roll
            })
            .collect()
    }

    #[test]
    fn the_test_draws_equal_sides_in_whole_groups_and_says_how_keys_were_spread() {
        let (low, high) = (phrases(48, 30), phrases(84, 12));
        let low_pieces: Vec<Vec<&Roll>> = low.chunks(3).map(|piece| piece.iter().collect()).collect();
        let sides = [
            Side { name: "low", groups: low_pieces, transpose: true },
            Side { name: "high", groups: high.iter().map(|phrase| vec![phrase]).collect(), transpose: false },
        ];
        let test = two_sample_test(sides, 2000, 0);
        assert_eq!((test.phrases_per_side, test.bars_per_phrase), (12, 1));
        assert_eq!(test.accuracy, 1.0, "two octaves and more apart, whatever the transposition");
        assert!(test.transposition.starts_with("the low phrases each moved"), "{}", test.transposition);
        let capped = two_sample_test(
            [
                Side { name: "a", groups: vec![low.iter().collect()], transpose: true },
                Side { name: "b", groups: vec![high.iter().collect()], transpose: true },
            ],
            5,
            0,
        );
        assert_eq!(capped.phrases_per_side, 5);
    }

    #[test]
    fn loops_are_125_of_each_length_unless_asked_and_never_none() {
        assert_eq!(args(&[]).loops, 125);
        assert_eq!(args(&["--loops", "3"]).loops, 3);
        let refused = Cli::try_parse_from(["eval", "--model", "m", "--loops", "0"]).err().unwrap().to_string();
        assert!(refused.contains("--loops") && refused.contains("0 is not in 1.."), "{refused}");
    }

    #[test]
    fn seam_windows_start_half_a_phrase_in_and_a_loops_reach_past_its_end_once() {
        // 20 one-bar rolls joined, bar b holding pitch 40 + b; 4-bar phrases, 8-bar windows.
        let bars: Vec<Roll> = (0..20u8).map(|bar| phrases(40 + bar, 1).remove(0)).collect();
        let piece = Roll::concat(&bars).unwrap();
        let first_pitches = |windows: Vec<Roll>| -> Vec<(usize, u8)> {
            windows.iter().map(|window| (window.bar_count(), window.notes()[0].pitch)).collect()
        };
        assert_eq!(first_pitches(seam_windows(&piece, 4, piece.steps())), vec![(8, 42), (8, 50)], "bars 3-10, 11-18");
        let twice_sixteen = Roll::concat(&[bars[..16].to_vec(), bars[..16].to_vec()].concat()).unwrap();
        assert_eq!(first_pitches(seam_windows(&twice_sixteen, 4, 16 * 16)), vec![(8, 42), (8, 50)]);
        let twice_eight = Roll::concat(&[bars[..8].to_vec(), bars[..8].to_vec()].concat()).unwrap();
        let across_the_wrap = seam_windows(&twice_eight, 4, 8 * 16);
        assert_eq!(first_pitches(across_the_wrap.clone()), vec![(8, 42)]);
        assert_eq!(across_the_wrap[0].notes()[6].pitch, 40, "bars 3-8, then 1-2 again");
    }
}
