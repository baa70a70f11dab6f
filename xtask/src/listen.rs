//! `cargo xtask listen`: how a model writes from a producer's notes, measured on the pieces
//! it never learned from (the trainer's validation pieces): vary (note F1 of a clip written
//! again at each distance, which should start near 1 and fall) and harmonise (the top part
//! given: the other parts' voice statistics beside the composer's, and the share of beats
//! whose chord is the composer's).

use crate::train::{is_validation_piece, ShapeArgs};
use anyhow::{bail, Context};
use clap::Args;
use dreamroll::metrics::agreement::{beat_chord_agreement, note_f1};
use dreamroll::metrics::chords::{
    bar_key_scales, key_scale, key_weighing_cadences, parse_chord, strong_beat_chord_tones, CadenceWeights, Key,
};
use dreamroll::metrics::voices::{VoiceAccumulator, VoiceStatistics};
use dreamroll::model::card::{Decoding, BIAS_LIMIT};
use dreamroll::model::generator::{Generator, RenderRequest, CARD_FILE};
use dreamroll::model::rolls::DecodeOptions;
use dreamroll::roll::Roll;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args)]
pub struct ListenArgs {
    /// Model folder (a voices model with an encoder does every mode).
    #[arg(long)]
    model: PathBuf,
    /// The model's training MIDI folder (default: data/corpus/<the card's data name>).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Held-out phrases to write from (fewer when the held-out pieces have fewer).
    #[arg(long, default_value_t = 200)]
    phrases: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the JSON goes [default: <model>/listen.json].
    #[arg(long)]
    json: Option<PathBuf>,
    /// First calibrate the card's harmonise biases on the training phrases (never the
    /// held-out ones) and write them into the model's card.
    #[arg(long)]
    calibrate: bool,
}

/// One of the card's harmonise biases, and the statistic of the written parts it steers.
struct HarmoniseBias {
    name: &'static str,
    bias: fn(&mut Decoding) -> &mut f32,
    statistic: fn(&VoiceStatistics) -> Option<f64>,
    /// Whether the statistic rises as the bias does.
    rises: bool,
}

const HARMONISE_BIASES: [HarmoniseBias; 5] = [
    HarmoniseBias {
        name: "new-note",
        bias: |d| &mut d.harmonise_bias,
        statistic: |s| s.note_length_sixteenths,
        rises: false,
    },
    HarmoniseBias {
        name: "short-note",
        bias: |d| &mut d.harmonise_short_note_bias,
        statistic: |s| s.short_notes,
        rises: true,
    },
    HarmoniseBias { name: "rest", bias: |d| &mut d.harmonise_rest_bias, statistic: |s| s.rests, rises: true },
    HarmoniseBias {
        name: "repeat",
        bias: |d| &mut d.harmonise_repeat_bias,
        statistic: |s| s.repeated_pitches,
        rises: true,
    },
    HarmoniseBias { name: "leap", bias: |d| &mut d.harmonise_leap_bias, statistic: |s| s.leaps, rises: true },
];

/// Most rounds of bisection over the biases in turn: each moves the others' statistics a
/// little, so rounds go on until every statistic is within `CALIBRATION_TOLERANCE` of the
/// composer's (relative).
const CALIBRATION_ROUNDS: usize = 6;
const CALIBRATION_TOLERANCE: f64 = 0.03;

/// The harmonise biases at which the parts written under the training phrases' top part
/// hold their notes as long as the composer's, break as few off after a step, rest, repeat
/// a pitch and leap as often (means over the written parts). Each statistic is monotone in its own bias, so each is
/// found by bisection with the others held, on the same phrases and seeds each time.
fn calibrate_harmonise_biases(generator: Generator, training: &[Roll], seed: u64) -> anyhow::Result<Generator> {
    let lower_parts = |rolls: &[Roll]| {
        let mut accumulator = VoiceAccumulator::default();
        rolls.iter().for_each(|roll| accumulator.add(roll));
        VoiceStatistics::mean_of(&accumulator.summary().tracks[1..])
    };
    let composer = lower_parts(training);
    let bars = usize::from(generator.card().representation.bars_per_phrase);
    let harmonised = |generator: &Generator| -> anyhow::Result<VoiceStatistics> {
        let mut written = Vec::with_capacity(training.len());
        for (k, phrase) in training.iter().enumerate() {
            let request = RenderRequest::new(bars, seed + k as u64);
            written.push(generator.render_harmonised(&request, phrase, &[0])?);
        }
        Ok(lower_parts(&written))
    };
    let mut decoding = generator.card().decoding.clone();
    let mut generator = generator;
    let settled = |written: &VoiceStatistics| {
        HARMONISE_BIASES.iter().all(|c| match ((c.statistic)(written), (c.statistic)(&composer)) {
            (Some(written), Some(target)) => (written - target).abs() <= CALIBRATION_TOLERANCE * target,
            _ => false,
        })
    };
    for round in 1..=CALIBRATION_ROUNDS {
        for calibrated in &HARMONISE_BIASES {
            let target = (calibrated.statistic)(&composer)
                .with_context(|| format!("the training phrases' lower parts have no {} statistic", calibrated.name))?;
            let (mut low, mut high) = (-BIAS_LIMIT, BIAS_LIMIT);
            for _ in 0..10 {
                let middle = 0.5 * (low + high);
                *(calibrated.bias)(&mut decoding) = middle;
                generator = generator.with_decoding(decoding.clone())?;
                let written = (calibrated.statistic)(&harmonised(&generator)?).unwrap_or(0.0);
                if (written < target) == calibrated.rises {
                    low = middle;
                } else {
                    high = middle;
                }
            }
            *(calibrated.bias)(&mut decoding) = 0.5 * (low + high);
            generator = generator.with_decoding(decoding.clone())?;
        }
        if settled(&harmonised(&generator)?) {
            println!("harmonise biases settled after {round} rounds");
            break;
        }
    }
    let written = harmonised(&generator)?;
    for calibrated in &HARMONISE_BIASES {
        println!(
            "harmonise {} bias {:+.3}: written {:.4}, composer {:.4}",
            calibrated.name,
            *(calibrated.bias)(&mut decoding),
            (calibrated.statistic)(&written).unwrap_or(f64::NAN),
            (calibrated.statistic)(&composer).unwrap_or(f64::NAN)
        );
    }
    println!("(on {} training phrases)", training.len());
    Ok(generator)
}

/// Harmonisations of each held-out phrase (seeds of their own): the held-out phrases are
/// few, and one take of each leaves rare events (short notes, rests) to chance.
const HARMONISE_TAKES: usize = 4;

const DISTANCES: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

#[derive(Serialize)]
struct VaryRow {
    distance: f32,
    /// Note F1 to the clip, taking the likeliest choices (temperature 0).
    f1_strict: f64,
    /// The same, sampling at the model's temperature.
    f1_sampled: f64,
}

/// How often the key read from the top part alone (what harmonise keeps to) is the key of the
/// composer's setting: the key read the same way (sounding time and cadences) from all of
/// its parts.
#[derive(Default, Serialize)]
struct KeyAgreement {
    clips: usize,
    /// Clips whose key is the setting's.
    right: usize,
    bars: usize,
    /// Bars whose key (read from the bars around it in the clip) is the setting's there.
    bars_right: usize,
}

impl KeyAgreement {
    fn add(&mut self, clip: &Roll) {
        let every_part: Vec<usize> = (0..clip.track_count()).collect();
        let (Some(setting), Some(setting_bars)) = (key_scale(clip, &every_part), bar_key_scales(clip, &every_part))
        else {
            return;
        };
        self.clips += 1;
        self.right += usize::from(key_scale(clip, &[0]) == Some(setting));
        let top_bars = bar_key_scales(clip, &[0]).unwrap_or_default();
        self.bars += setting_bars.len();
        self.bars_right += top_bars.iter().zip(&setting_bars).filter(|(top, all)| top == all).count();
    }

    fn share(&self) -> (f64, f64) {
        (self.right as f64 / self.clips.max(1) as f64, self.bars_right as f64 / self.bars.max(1) as f64)
    }
}

/// Folds of the cross-validated key reading.
const KEY_FOLDS: usize = 10;

/// How often the top part's key is the setting's over every piece, training and held out,
/// with the weights of its cadences (`CadenceWeights`) chosen again in each of `KEY_FOLDS`
/// folds from the pieces outside it: the held-out pieces alone are few (one more read right
/// moves the share by 3 points), and the weights were chosen on the training pieces.
#[derive(Serialize)]
struct CrossValidatedKeys {
    pieces: usize,
    right: usize,
    /// Each fold's weights.
    chosen: Vec<CadenceWeights>,
}

impl CrossValidatedKeys {
    fn of(pieces: &[Roll], seed: u64) -> CrossValidatedKeys {
        let grid: Vec<CadenceWeights> = CadenceWeights::grid().collect();
        // Per piece, which weights read its top part in the key of its setting.
        let right_with: Vec<Vec<bool>> = pieces
            .iter()
            .filter_map(|piece| {
                let every_part: Vec<usize> = (0..piece.track_count()).collect();
                let setting = key_scale(piece, &every_part)?;
                Some(
                    grid.iter()
                        .map(|&weights| key_weighing_cadences(piece, &[0], weights).map(Key::scale) == Some(setting))
                        .collect(),
                )
            })
            .collect();
        let mut order: Vec<usize> = (0..right_with.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let fold_of = |piece: usize| order[piece] % KEY_FOLDS;
        let (mut right, mut chosen) = (0, Vec::with_capacity(KEY_FOLDS));
        for fold in 0..KEY_FOLDS {
            let read_right = |g: usize, in_fold: bool| {
                (0..right_with.len()).filter(|&p| (fold_of(p) == fold) == in_fold && right_with[p][g]).count()
            };
            // The first of the best, as the grid's smaller weights read short clips better.
            let best = (0..grid.len()).rev().max_by_key(|&g| read_right(g, false)).expect("a grid");
            right += read_right(best, true);
            chosen.push(grid[best]);
        }
        CrossValidatedKeys { pieces: right_with.len(), right, chosen }
    }
}

#[derive(Serialize)]
struct Harmonisation {
    /// Of the held-out phrases read alone, as harmonise reads a phrase given to it.
    phrase_keys: KeyAgreement,
    /// Of the held-out pieces read whole (their spans in the model's meter one after
    /// another): a piece's key so read is the key of its signature.
    piece_keys: KeyAgreement,
    /// Of every piece read whole, the cadences' weights chosen without it.
    piece_keys_cross_validated: CrossValidatedKeys,
    /// Each phrase is harmonised this many times.
    takes: usize,
    /// Beats at which the composer's chord (pitch classes of every part) is written.
    chord_agreement: f64,
    /// Over every take.
    beats: usize,
    written: VoiceStatistics,
    composer: VoiceStatistics,
    written_crossings: Option<f64>,
    composer_crossings: Option<f64>,
    written_parallels: Option<f64>,
    composer_parallels: Option<f64>,
}

#[derive(Serialize)]
struct ChordFollowing {
    /// Renders, each of `bars` bars over one of four common progressions in a key of its own.
    renders: usize,
    bars: usize,
    /// Share of strong-beat notes that are tones of their bar's chord, following the chords
    /// and not (the same seeds and knobs, chords ignored).
    with_chords: f64,
    without_chords: f64,
    strong_beat_notes_with: usize,
    strong_beat_notes_without: usize,
    /// The same, following the chords, part by part (a band's bass and comping apart).
    by_part: Vec<(String, f64, usize)>,
}

/// The progressions followed, a chord a bar, in C; each render transposes one.
const PROGRESSIONS: [[&str; 4]; 4] =
    [["C", "G", "Am", "F"], ["Am", "F", "C", "G"], ["C", "F", "G7", "C"], ["Dm7", "G7", "C", "Am"]];

/// Strong-beat chord tones with and without following, over `renders` renders.
fn chord_following(generator: &Generator, renders: usize, seed: u64) -> anyhow::Result<ChordFollowing> {
    let bars = 8;
    let (mut with, mut without) = ((0, 0), (0, 0));
    let representation = &generator.card().representation;
    let parts: Vec<Vec<usize>> =
        representation.parts().into_iter().filter(|part| !representation.tracks[part[0]].is_drum).collect();
    let mut by_part = vec![(0, 0); parts.len()];
    for k in 0..renders {
        let shift = (k * 7 % 12) as u32;
        let chords: Vec<u16> = PROGRESSIONS[k % PROGRESSIONS.len()]
            .iter()
            .map(|name| {
                parse_chord(name).map(|c| ((u32::from(c) << shift | u32::from(c) >> (12 - shift)) & 0xfff) as u16)
            })
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        let request = RenderRequest::new(bars, seed + k as u64);
        let following = generator.render_following(&request, &chords)?;
        let (a, b) = (
            strong_beat_chord_tones(&following, &chords),
            strong_beat_chord_tones(&generator.render(&request)?, &chords),
        );
        for (part, sum) in parts.iter().zip(by_part.iter_mut()) {
            let (tones, all) = strong_beat_chord_tones(&following.only_notes(|n| part.contains(&n.track)), &chords);
            *sum = (sum.0 + tones, sum.1 + all);
        }
        with = (with.0 + a.0, with.1 + a.1);
        without = (without.0 + b.0, without.1 + b.1);
    }
    let share = |(tones, all): (usize, usize)| tones as f64 / all.max(1) as f64;
    Ok(ChordFollowing {
        renders,
        bars,
        with_chords: share(with),
        without_chords: share(without),
        strong_beat_notes_with: with.1,
        strong_beat_notes_without: without.1,
        by_part: parts
            .iter()
            .zip(by_part)
            .map(|(part, counts)| (representation.part_name(part), share(counts), counts.1))
            .collect(),
    })
}

#[derive(Serialize)]
struct ListenReport {
    model: String,
    held_out_pieces: usize,
    phrases: usize,
    /// Note F1 of each phrase decoded (likeliest choices) from the encoder's mean alone:
    /// how much of the notes the latent itself carries.
    latent_reconstruction_f1: Option<f64>,
    vary: Vec<VaryRow>,
    harmonise: Option<Harmonisation>,
    follow_chords: Option<ChordFollowing>,
}

pub fn run(args: ListenArgs) -> anyhow::Result<()> {
    let mut generator =
        Generator::from_dir(&args.model).with_context(|| format!("loading the model in {}", args.model.display()))?;
    let mut card = generator.card().clone();
    let representation = card.representation.clone();
    let corpus = crate::eval::training_corpus(&card, args.data.as_deref())?;
    let share = ShapeArgs::defaults().validation_share;
    if args.calibrate && representation.track_count() > 1 && generator.voice_network().is_some() {
        let bars = usize::from(representation.bars_per_phrase);
        let trained: Vec<Roll> = corpus
            .pieces
            .iter()
            .filter(|(path, _)| !is_validation_piece(path, card.training.seed, share))
            .flat_map(|(_, piece)| piece.phrases(bars, bars))
            .collect();
        let step = trained.len().div_ceil(args.phrases.max(1)).max(1);
        generator = calibrate_harmonise_biases(
            generator,
            &trained.into_iter().step_by(step).collect::<Vec<_>>(),
            args.seed + 1_000_000,
        )?;
        card = generator.card().clone();
        std::fs::write(args.model.join(CARD_FILE), card.to_json())
            .with_context(|| format!("writing {}", args.model.join(CARD_FILE).display()))?;
    }
    let held_out: Vec<&_> =
        corpus.pieces.iter().filter(|(path, _)| is_validation_piece(path, card.training.seed, share)).collect();
    let bars = usize::from(representation.bars_per_phrase);
    let all: Vec<Roll> = held_out.iter().flat_map(|(_, piece)| piece.phrases(bars, bars)).collect();
    if all.is_empty() {
        bail!("none of the training pieces was held out from training with seed {}", card.training.seed);
    }
    // Spread over every held-out piece rather than the first few.
    let step = all.len().div_ceil(args.phrases.max(1)).max(1);
    let clips: Vec<Roll> = all.into_iter().step_by(step).collect();
    println!("{} held-out pieces, {} of their {}-bar phrases", held_out.len(), clips.len(), bars);
    let request = |k: usize, temperature: Option<f32>| RenderRequest {
        bars,
        seed: args.seed + k as u64,
        knobs: Vec::new(),
        variation: 0.3,
        temperature,
        density: 0.0,
        named: Vec::new(),
        style: None,
    };

    let latent_reconstruction_f1 = match generator.encode(&clips)? {
        Some(codes) => {
            let strict = DecodeOptions { temperature: 0.0, ..DecodeOptions::from_card(&card.decoding) };
            let decoded = generator.generate(&codes, &strict, &mut ChaCha8Rng::seed_from_u64(args.seed))?;
            Some(
                clips.iter().zip(&decoded).map(|(clip, written)| note_f1(clip, written)).sum::<f64>()
                    / clips.len() as f64,
            )
        }
        None => None,
    };
    let mut vary = Vec::new();
    if latent_reconstruction_f1.is_some() {
        for distance in DISTANCES {
            let f1 = |temperature: Option<f32>| -> anyhow::Result<f64> {
                let mut sum = 0.0;
                for (k, clip) in clips.iter().enumerate() {
                    sum += note_f1(clip, &generator.render_varied(&request(k, temperature), clip, distance)?);
                }
                Ok(sum / clips.len() as f64)
            };
            vary.push(VaryRow { distance, f1_strict: f1(Some(0.0))?, f1_sampled: f1(None)? });
        }
    }

    let harmonise = if representation.track_count() > 1 && generator.voice_network().is_some() {
        let (mut agreeing, mut beats) = (0, 0);
        let (mut written, mut composer) = (VoiceAccumulator::default(), VoiceAccumulator::default());
        for (k, clip) in clips.iter().enumerate() {
            for take in 0..HARMONISE_TAKES {
                let harmonised = generator.render_harmonised(&request(k + take * clips.len(), None), clip, &[0])?;
                let (a, b) = beat_chord_agreement(clip, &harmonised);
                (agreeing, beats) = (agreeing + a, beats + b);
                written.add(&harmonised);
            }
            composer.add(clip);
        }
        let (written, composer) = (written.summary(), composer.summary());
        let (mut phrase_keys, mut piece_keys) = (KeyAgreement::default(), KeyAgreement::default());
        clips.iter().for_each(|clip| phrase_keys.add(clip));
        for (_, piece) in &held_out {
            if let Some(whole) = Roll::concat(&piece.segments) {
                piece_keys.add(&whole);
            }
        }
        let wholes: Vec<Roll> = corpus.pieces.iter().filter_map(|(_, piece)| Roll::concat(&piece.segments)).collect();
        Some(Harmonisation {
            phrase_keys,
            piece_keys,
            piece_keys_cross_validated: CrossValidatedKeys::of(&wholes, args.seed),
            takes: HARMONISE_TAKES,
            chord_agreement: agreeing as f64 / beats.max(1) as f64,
            beats,
            written_crossings: written.crossings,
            composer_crossings: composer.crossings,
            written_parallels: written.parallels,
            composer_parallels: composer.parallels,
            // The written parts: every one but the given top part.
            written: VoiceStatistics::mean_of(&written.tracks[1..]),
            composer: VoiceStatistics::mean_of(&composer.tracks[1..]),
        })
    } else {
        None
    };
    let follow_chords =
        if generator.voice_network().is_some() { Some(chord_following(&generator, 100, args.seed)?) } else { None };
    let report = ListenReport {
        model: card.name.clone(),
        held_out_pieces: held_out.len(),
        phrases: clips.len(),
        latent_reconstruction_f1,
        vary,
        harmonise,
        follow_chords,
    };
    print!("{}", markdown(&report));
    let path = args.json.clone().unwrap_or_else(|| args.model.join("listen.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn markdown(report: &ListenReport) -> String {
    let percent = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.1} %", 100.0 * v));
    let mut text = format!(
        "\n## {}: writing from {} held-out phrases ({} pieces)\n\n",
        report.model, report.phrases, report.held_out_pieces
    );
    if !report.vary.is_empty() {
        text += "vary: note F1 to the clip (onset step and pitch exact)\n\n| distance | likeliest choices | sampled |\n|---|---|---|\n";
        for row in &report.vary {
            text += &format!("| {:.2} | {:.3} | {:.3} |\n", row.distance, row.f1_strict, row.f1_sampled);
        }
    }
    if let Some(f1) = report.latent_reconstruction_f1 {
        text +=
            &format!("\neach phrase decoded from the encoder's reading alone (likeliest choices): note F1 {f1:.3}\n");
    }
    if let Some(f) = &report.follow_chords {
        text += &format!(
            "\nfollow chords ({} renders of {} bars over common progressions): strong-beat notes on the chord {:.1} % following it ({} notes), {:.1} % not ({} notes)\n",
            f.renders,
            f.bars,
            100.0 * f.with_chords,
            f.strong_beat_notes_with,
            100.0 * f.without_chords,
            f.strong_beat_notes_without
        );
        if f.by_part.len() > 1 {
            for (name, share, notes) in &f.by_part {
                text += &format!("  {name}: {:.1} % of {notes} strong-beat notes on the chord\n", 100.0 * share);
            }
        }
    }
    if let Some(h) = &report.harmonise {
        let ((phrases, phrase_bars), (pieces, piece_bars)) = (h.phrase_keys.share(), h.piece_keys.share());
        text += &format!(
            "\nharmonise (top part given, {} takes of each phrase): the composer's chord on {:.1} % of {} beats\n\
             the key read from the top part alone is the key read from all the composer's parts (sounding time and cadences; of a whole piece, its signature's key): \
             of {} phrases read alone {:.1} %, of their bars {:.1} %; of {} whole pieces {:.1} %, of their bars {:.1} %; \
             of all {} pieces, training and held out, with the cadences' weights chosen again in each of {KEY_FOLDS} folds from the pieces outside it, {:.1} % ({} read right)\n\n\
             | lower parts | written | composer |\n|---|---|---|\n",
            h.takes,
            100.0 * h.chord_agreement,
            h.beats,
            h.phrase_keys.clips,
            100.0 * phrases,
            100.0 * phrase_bars,
            h.piece_keys.clips,
            100.0 * pieces,
            100.0 * piece_bars,
            h.piece_keys_cross_validated.pieces,
            100.0 * h.piece_keys_cross_validated.right as f64 / h.piece_keys_cross_validated.pieces.max(1) as f64,
            h.piece_keys_cross_validated.right,
        );
        let rows: [(&str, Option<f64>, Option<f64>, bool); 8] = [
            ("note length (16ths)", h.written.note_length_sixteenths, h.composer.note_length_sixteenths, false),
            ("notes ≤ a 16th", h.written.short_notes, h.composer.short_notes, true),
            ("rests", h.written.rests, h.composer.rests, true),
            ("repeated pitch", h.written.repeated_pitches, h.composer.repeated_pitches, true),
            ("stepwise", h.written.stepwise_motion, h.composer.stepwise_motion, true),
            ("leaps > a 5th", h.written.leaps, h.composer.leaps, true),
            ("voice crossings (all pairs)", h.written_crossings, h.composer_crossings, true),
            ("parallel 5ths/8ves per move (all pairs)", h.written_parallels, h.composer_parallels, true),
        ];
        for (name, written, composer, is_share) in &rows {
            let show =
                |v: Option<f64>| if *is_share { percent(v) } else { v.map_or("–".into(), |v| format!("{v:.2}")) };
            text += &format!("| {name} | {} | {} |\n", show(*written), show(*composer));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use dreamroll::roll::{GridNote, Meter, Representation, TrackSpec};
    use std::sync::Arc;

    /// Two parts: a scale up from `tonic` and down, closing on it for a bar (sung by the top
    /// part, or by nobody when `sung` is false), over the tonic and then its fifth in every
    /// bar of the bass.
    fn piece(tonic: u8, sung: bool) -> Roll {
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 4,
            lowest_pitch: 36,
            pitch_count: 60,
            tracks: vec![TrackSpec::new("Soprano", 0), TrackSpec::new("Bass", 1)],
        });
        let mut roll = Roll::new(representation, 64);
        let line = [0, 2, 4, 5, 7, 9, 11, 12, 11, 7, 5, 2].map(|degree| tonic + 12 + degree);
        let notes = line.iter().enumerate().map(|(k, &pitch)| (4 * k, pitch, 4)).chain([(48, tonic + 12, 16)]);
        for (start, pitch, length) in notes.filter(|_| sung) {
            roll.place(GridNote { track: 0, start, pitch, length, velocity: 90 }).unwrap();
        }
        for bar in 0..4 {
            roll.place(GridNote { track: 1, start: 16 * bar, pitch: tonic, length: 8, velocity: 90 }).unwrap();
            roll.place(GridNote { track: 1, start: 16 * bar + 8, pitch: tonic + 7, length: 8, velocity: 90 }).unwrap();
        }
        roll
    }

    #[test]
    fn every_piece_is_read_once_with_weights_chosen_in_each_fold() {
        let pieces: Vec<Roll> =
            (48..60).map(|tonic| piece(tonic, true)).chain((48..53).map(|t| piece(t, false))).collect();
        let keys = CrossValidatedKeys::of(&pieces, 3);
        assert_eq!(keys.pieces, 17, "a silent top part still has a setting");
        assert_eq!(keys.right, 12, "each sung scale read once in its key, the silent ones never");
        assert_eq!(keys.chosen.len(), KEY_FOLDS);
        assert!(
            keys.chosen.iter().all(|&weights| weights == CadenceWeights::grid().next().unwrap()),
            "ties go to the least weight"
        );
        assert!(
            CadenceWeights::grid().any(|weights| weights == CadenceWeights::CHOSEN),
            "the card's weights are on the grid"
        );
    }
}
