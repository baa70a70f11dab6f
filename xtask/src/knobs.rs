//! `cargo xtask knobs`: named knobs learned from a model's corpus (MusicVAE's attribute
//! vectors) and checked by sweeping them.
//!
//! Every training phrase is read by the encoder; for each attribute the knob's direction is
//! the mean latent of the phrases in its top quarter minus that of its bottom quarter, so a
//! position +1 moves a phrase by half that gap. Each direction is then swept from −2 to 2
//! with the others at 0, over phrases from many seeds. The knob's reach is the widest
//! symmetric part of the sweep whose ends keep the voice statistics inside the corpus's
//! spread (±2 σ of its phrases), and the card's knob spans that reach from −2 to 2; within
//! it, the attribute measured on what the decoder writes should rise with the knob
//! (Spearman's ρ ≥ 0.9). Only knobs that pass are written into the card (`--write`); the
//! report says why the others were not.

use anyhow::{bail, Context};
use clap::Args;
use dreamroll::metrics::attributes::{spearman, Attribute};
use dreamroll::metrics::voices::{VoiceAccumulator, VoiceStatistics};
use dreamroll::model::card::{ModelCard, NamedKnob, Style};
use dreamroll::model::generator::{Generator, RenderRequest, CARD_FILE};
use dreamroll::model::latent::{noise, phrase_latents, Knobs};
use dreamroll::model::rolls::DecodeOptions;
use dreamroll::roll::Roll;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct KnobsArgs {
    /// Model folder with an encoder (encoder.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The model's training MIDI folder (default: data/corpus/<the card's data name>).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Phrases written at each knob position (one seed each).
    #[arg(long, default_value_t = 96)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the knobs that pass into the model's card.
    #[arg(long)]
    write: bool,
    /// Also learn the model's styles: each folder of the training data with at least
    /// `MOST_STYLE_PHRASES` phrases (an MMA groove family, a game's soundtrack), as the region
    /// where the encoder reads its phrases; checked by dreaming in each and reading back.
    #[arg(long)]
    styles: bool,
}

/// Fewer phrases than this say too little of a style's region to dream in.
const LEAST_STYLE_PHRASES: usize = 16;

/// The style a training file belongs to: the folder that holds it, below the data folder.
pub fn style_of(path: &Path, root: &Path) -> Option<String> {
    let parent = path.parent()?;
    (parent != root && parent.starts_with(root)).then(|| parent.file_name()?.to_str().map(str::to_string)).flatten()
}

/// Each style's mean code and per-dimension spread (held to at most the prior's 1), from
/// the codes of its phrases; styles with too few phrases are left out.
pub fn styles_from(codes: &[(Option<String>, Vec<f32>)]) -> Vec<Style> {
    let mut names: Vec<&String> = codes.iter().filter_map(|(style, _)| style.as_ref()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let of: Vec<&Vec<f32>> = codes.iter().filter(|(s, _)| s.as_ref() == Some(name)).map(|(_, c)| c).collect();
            (of.len() >= LEAST_STYLE_PHRASES).then(|| {
                let size = of[0].len();
                let n = of.len() as f32;
                let center: Vec<f32> = (0..size).map(|d| of.iter().map(|c| c[d]).sum::<f32>() / n).collect();
                let spread: Vec<f32> = (0..size)
                    .map(|d| (of.iter().map(|c| (c[d] - center[d]).powi(2)).sum::<f32>() / n).sqrt().min(1.0))
                    .collect();
                Style { name: name.clone(), center, spread, phrases: of.len() }
            })
        })
        .collect()
}

/// The style whose region holds `code` best: the least squared distance from its centre in
/// units of its spread (plus the log of the spread, as a Gaussian's likelihood weighs it).
fn nearest_styles(code: &[f32], styles: &[Style]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = styles
        .iter()
        .enumerate()
        .map(|(i, style)| {
            let cost = code
                .iter()
                .zip(&style.center)
                .zip(&style.spread)
                .map(|((z, c), s)| {
                    let s = s.max(0.05);
                    ((z - c) / s).powi(2) + 2.0 * s.ln()
                })
                .sum::<f32>();
            (cost, i)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// How well the styles can be told apart: of `codes` (each with the style it should be),
/// the share read as that style first, and among the first five.
fn style_accuracy<'a>(codes: impl IntoIterator<Item = (usize, &'a Vec<f32>)>, styles: &[Style]) -> (f64, f64, usize) {
    let (mut first, mut five, mut count) = (0usize, 0usize, 0usize);
    for (truth, code) in codes {
        let ranked = nearest_styles(code, styles);
        first += usize::from(ranked[0] == truth);
        five += usize::from(ranked.iter().take(5).any(|&i| i == truth));
        count += 1;
    }
    (first as f64 / count.max(1) as f64, five as f64 / count.max(1) as f64, count)
}

/// Knob positions swept, in units of half the quartile gap.
pub const SWEEP: [f32; 9] = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0];
/// Below this correlation a knob does not do what its name says.
const LEAST_RHO: f64 = 0.9;

#[derive(Serialize)]
struct KnobReport {
    attribute: Attribute,
    name: &'static str,
    /// The corpus's phrases: bottom-quarter and top-quarter means of the attribute.
    corpus_low: f64,
    corpus_high: f64,
    /// The attribute's mean over the written phrases at each sweep position.
    sweep: Vec<f64>,
    /// The widest |position| whose ends keep the corpus's style: the card's knob at ±2.
    reach: f32,
    /// Spearman's ρ between knob position and the mean attribute, and over every phrase,
    /// within the reach.
    rho_of_means: f64,
    rho_of_phrases: f64,
    /// Voice statistics at the knob's ends that left the corpus's ±2 σ.
    outside_at_ends: Vec<String>,
    passed: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    corpus_phrases: usize,
    seeds: u64,
    knobs: Vec<KnobReport>,
}

/// The voice statistics checked at the knob ends, by name.
fn statistics(stats: &VoiceStatistics) -> [(&'static str, Option<f64>); 6] {
    [
        ("note length", stats.note_length_sixteenths),
        ("short notes", stats.short_notes),
        ("rests", stats.rests),
        ("repeated pitch", stats.repeated_pitches),
        ("stepwise", stats.stepwise_motion),
        ("leaps", stats.leaps),
    ]
}

fn phrase_statistics(roll: &Roll) -> VoiceStatistics {
    let mut accumulator = VoiceAccumulator::default();
    accumulator.add(roll);
    accumulator.summary().mean
}

fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

pub fn run(args: KnobsArgs) -> anyhow::Result<()> {
    let generator =
        Generator::from_dir(&args.model).with_context(|| format!("loading the model in {}", args.model.display()))?;
    let card = generator.card().clone();
    let root = crate::eval::training_folder(&card, args.data.as_deref());
    let corpus = crate::eval::training_corpus(&card, Some(&root))?;
    let bars = usize::from(card.representation.bars_per_phrase);
    let (phrase_styles, phrases): (Vec<Option<String>>, Vec<Roll>) = corpus
        .pieces
        .iter()
        .flat_map(|(path, piece)| {
            let style = style_of(path, &root);
            piece.phrases(bars, bars).into_iter().map(move |phrase| (style.clone(), phrase))
        })
        .unzip();
    let mut codes = Vec::with_capacity(phrases.len());
    for chunk in phrases.chunks(512) {
        match generator.encode(chunk)? {
            Some(mut read) => codes.append(&mut read),
            None => bail!("model {} has no encoder to read its corpus with", card.name),
        }
    }
    println!("{}: {} corpus phrases of {bars} bars read by the encoder", card.name, phrases.len());
    let corpus_stats: Vec<VoiceStatistics> = phrases.iter().map(phrase_statistics).collect();
    let spread_of = |index: usize| -> Option<(f64, f64)> {
        let values: Vec<f64> = corpus_stats.iter().filter_map(|s| statistics(s)[index].1).collect();
        (!values.is_empty()).then(|| mean_and_sd(&values))
    };
    let options = DecodeOptions::from_card(&card.decoding);
    let mut reports = Vec::new();
    let mut passing = Vec::new();
    for attribute in Attribute::ALL.into_iter().filter(|a| card.representation.track_count() > 1 || !a.needs_parts()) {
        let mut measured: Vec<(f64, &Vec<f32>)> = phrases
            .iter()
            .zip(&codes)
            .filter_map(|(phrase, code)| attribute.measure(phrase).map(|v| (v, code)))
            .collect();
        measured.sort_by(|a, b| a.0.total_cmp(&b.0));
        let quarter = measured.len() / 4;
        if quarter == 0 {
            continue;
        }
        let mean_of = |part: &[(f64, &Vec<f32>)]| -> (f64, Vec<f32>) {
            let mut z = vec![0.0f32; card.latent_size];
            for (_, code) in part {
                for (zi, ci) in z.iter_mut().zip(code.iter()) {
                    *zi += ci / part.len() as f32;
                }
            }
            (part.iter().map(|(v, _)| v).sum::<f64>() / part.len() as f64, z)
        };
        let (low, low_z) = mean_of(&measured[..quarter]);
        let (high, high_z) = mean_of(&measured[measured.len() - quarter..]);
        let gap: Vec<f32> = high_z.iter().zip(&low_z).map(|(h, l)| h - l).collect();
        let norm = gap.iter().map(|g| g * g).sum::<f32>().sqrt();
        let knob =
            NamedKnob { attribute, direction: gap.iter().map(|g| g / norm).collect(), spread: norm / 2.0, rho: 0.0 };

        let (mut positions, mut values, mut sweep) = (Vec::new(), Vec::new(), Vec::new());
        // Per position, the voice statistics that leave the corpus's ±2 σ there.
        let mut outside = Vec::new();
        for &position in &SWEEP {
            let latents: Vec<Vec<f32>> = (0..args.seeds)
                .map(|s| {
                    noise(args.seed + s, card.latent_size)
                        .iter()
                        .zip(&knob.direction)
                        .map(|(z, d)| z + position * knob.spread * d)
                        .collect()
                })
                .collect();
            let written = generator.generate(&latents, &options, &mut ChaCha8Rng::seed_from_u64(args.seed))?;
            let at_position: Vec<f64> = written.iter().filter_map(|roll| attribute.measure(roll)).collect();
            sweep.push(at_position.iter().sum::<f64>() / at_position.len().max(1) as f64);
            positions.extend(std::iter::repeat_n(f64::from(position), at_position.len()));
            values.extend(at_position);
            let mut accumulator = VoiceAccumulator::default();
            written.iter().for_each(|roll| accumulator.add(roll));
            let mut here = Vec::new();
            for (index, (name, value)) in statistics(&accumulator.summary().mean).into_iter().enumerate() {
                if let (Some(value), Some((mean, sd))) = (value, spread_of(index)) {
                    if (value - mean).abs() > 2.0 * sd {
                        here.push(format!("{name} {value:.3} at {position:+} (corpus {mean:.3} ± {:.3})", 2.0 * sd));
                    }
                }
            }
            outside.push(here);
        }
        // The knob's reach: the widest symmetric part of the sweep whose ends keep the
        // corpus's style; the card's knob spans it from -2 to 2.
        let inside =
            |reach: f32| SWEEP.iter().zip(&outside).filter(|(p, _)| p.abs() == reach).all(|(_, o)| o.is_empty());
        let reach = [2.0, 1.5, 1.0, 0.5].into_iter().find(|&r| inside(r)).unwrap_or(0.5);
        let within: Vec<usize> = (0..SWEEP.len()).filter(|&i| SWEEP[i].abs() <= reach).collect();
        let rho_of_means = spearman(
            &within.iter().map(|&i| f64::from(SWEEP[i])).collect::<Vec<_>>(),
            &within.iter().map(|&i| sweep[i]).collect::<Vec<_>>(),
        )
        .unwrap_or(0.0);
        let in_reach: Vec<usize> = (0..positions.len()).filter(|&i| positions[i].abs() <= f64::from(reach)).collect();
        let rho_of_phrases = spearman(
            &in_reach.iter().map(|&i| positions[i]).collect::<Vec<_>>(),
            &in_reach.iter().map(|&i| values[i]).collect::<Vec<_>>(),
        )
        .unwrap_or(0.0);
        let outside_at_ends: Vec<String> =
            SWEEP.iter().zip(&outside).filter(|(p, _)| p.abs() == reach).flat_map(|(_, o)| o.clone()).collect();
        let passed = rho_of_means >= LEAST_RHO && outside_at_ends.is_empty();
        if passed {
            passing.push(NamedKnob { rho: rho_of_means, spread: knob.spread * reach / 2.0, ..knob });
        }
        reports.push(KnobReport {
            attribute,
            name: attribute.knob_name(),
            corpus_low: low,
            corpus_high: high,
            sweep,
            reach,
            rho_of_means,
            rho_of_phrases,
            outside_at_ends,
            passed,
        });
    }
    let styles = match args.styles {
        true => learn_styles(&generator, &phrase_styles, &codes, &args)?,
        false => card.styles.clone(),
    };
    let report = Report { model: card.name.clone(), corpus_phrases: phrases.len(), seeds: args.seeds, knobs: reports };
    print!("{}", markdown(&report));
    std::fs::write(args.model.join("knobs.json"), serde_json::to_string_pretty(&report)?)?;
    if args.write {
        let card = ModelCard { named_knobs: passing, styles, ..card };
        card.validate().context("the card with its named knobs")?;
        std::fs::write(args.model.join(CARD_FILE), card.to_json())
            .with_context(|| format!("writing {}", args.model.join(CARD_FILE).display()))?;
        println!("wrote {} named knobs into {}", card.named_knobs.len(), args.model.join(CARD_FILE).display());
        // The knobs as the product turns them: the folder loaded again, `render` with each
        // knob at five positions, the others at 0.
        let written = Generator::from_dir(&args.model)?;
        println!("\nas rendered (`dreamroll render --named`, {} seeds of {bars} bars at each position):\n\n| knob | −2 | −1 | 0 | +1 | +2 | ρ (means) |\n|---|---|---|---|---|---|---|", args.seeds);
        for knob in &written.card().named_knobs {
            let mut means = Vec::new();
            for position in [-2.0f32, -1.0, 0.0, 1.0, 2.0] {
                let mut named = vec![0.0; Attribute::ALL.len()];
                named[knob.attribute.index()] = position;
                let mut values = Vec::new();
                for s in 0..args.seeds {
                    let request = RenderRequest {
                        bars,
                        seed: args.seed + s,
                        knobs: Vec::new(),
                        variation: 0.3,
                        temperature: None,
                        density: 0.0,
                        named: named.clone(),
                        style: None,
                    };
                    values.extend(knob.attribute.measure(&written.render(&request)?));
                }
                means.push(values.iter().sum::<f64>() / values.len().max(1) as f64);
            }
            let rho = spearman(&[-2.0, -1.0, 0.0, 1.0, 2.0], &means).unwrap_or(0.0);
            println!(
                "| {} | {} | {rho:.3} |",
                knob.attribute.knob_name(),
                means.iter().map(|m| format!("{m:.2}")).collect::<Vec<_>>().join(" | ")
            );
        }
    }
    Ok(())
}

/// The styles of the corpus, and how far each can be told apart: the corpus's own phrases
/// read by the nearest style region (the ceiling), then phrases dreamed in each style (one
/// seed each) written, read back by the encoder and placed the same way.
fn learn_styles(
    generator: &Generator,
    phrase_styles: &[Option<String>],
    codes: &[Vec<f32>],
    args: &KnobsArgs,
) -> anyhow::Result<Vec<Style>> {
    let labelled: Vec<(Option<String>, Vec<f32>)> = phrase_styles.iter().cloned().zip(codes.iter().cloned()).collect();
    let styles = styles_from(&labelled);
    if styles.len() < 2 {
        bail!(
            "{} style(s) with {LEAST_STYLE_PHRASES} phrases or more: styles need sub-folders of the data",
            styles.len()
        );
    }
    let index_of = |name: &str| styles.iter().position(|s| s.name == name);
    let corpus = style_accuracy(
        labelled.iter().filter_map(|(style, code)| style.as_deref().and_then(index_of).map(|i| (i, code))),
        &styles,
    );
    let card = ModelCard { styles: styles.clone(), ..generator.card().clone() };
    let options = DecodeOptions::from_card(&card.decoding);
    let per_style = args.seeds.div_ceil(4).max(4);
    let mut dreamed: Vec<(usize, Vec<f32>)> = Vec::new();
    for (i, style) in styles.iter().enumerate() {
        let knobs = Knobs { style: Some(style), ..Knobs::default() };
        let latents: Vec<Vec<f32>> =
            (0..per_style).map(|s| phrase_latents(&card, args.seed + s, knobs, 0.0, 1).swap_remove(0)).collect();
        let written = generator.generate(&latents, &options, &mut ChaCha8Rng::seed_from_u64(args.seed))?;
        let read = generator.encode(&written)?.expect("a model with styles has an encoder");
        dreamed.extend(read.into_iter().map(|code| (i, code)));
    }
    let written = style_accuracy(dreamed.iter().map(|(i, code)| (*i, code)), &styles);
    println!(
        "\n## styles: {} with {LEAST_STYLE_PHRASES}+ phrases\n\n| read back as its style | first | among the first 5 | phrases |\n|---|---|---|---|\n\
         | the corpus's own phrases | {:.1} % | {:.1} % | {} |\n| dreamed in the style ({per_style} seeds each) | {:.1} % | {:.1} % | {} |\n\n\
         chance: {:.1} % first, {:.1} % among 5",
        styles.len(),
        100.0 * corpus.0,
        100.0 * corpus.1,
        corpus.2,
        100.0 * written.0,
        100.0 * written.1,
        written.2,
        100.0 / styles.len() as f64,
        500.0 / styles.len() as f64
    );
    Ok(styles)
}

fn markdown(report: &Report) -> String {
    let mut text = format!(
        "\n## {}: named knobs ({} corpus phrases; {} phrases at each position)\n\n| knob | corpus low / high quarter | −2 | −1 | 0 | +1 | +2 | reach | ρ (means) | ρ (phrases) | at the reach's ends |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        report.model, report.corpus_phrases, report.seeds
    );
    for knob in &report.knobs {
        let at = |position: f32| knob.sweep[SWEEP.iter().position(|&p| p == position).expect("a swept position")];
        text += &format!(
            "| {} | {:.2} / {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | ±{} | {:.3} | {:.3} | {} |\n",
            knob.name,
            knob.corpus_low,
            knob.corpus_high,
            at(-2.0),
            at(-1.0),
            at(0.0),
            at(1.0),
            at(2.0),
            knob.reach,
            knob.rho_of_means,
            knob.rho_of_phrases,
            if knob.outside_at_ends.is_empty() { "inside ±2 σ".to_string() } else { knob.outside_at_ends.join("; ") }
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_style_is_the_folder_below_the_data_that_holds_a_file() {
        let root = Path::new("/data/band");
        assert_eq!(style_of(&root.join("mma/bossanova/Bossa-ii-C.mid"), root).as_deref(), Some("bossanova"));
        assert_eq!(style_of(&root.join("freedoom/D_E1M1.mid"), root).as_deref(), Some("freedoom"));
        assert_eq!(style_of(&root.join("loose.mid"), root), None, "a file in the data folder itself has none");
    }

    #[test]
    fn styles_are_the_mean_and_spread_of_their_codes_and_small_ones_are_left_out() {
        let mut codes: Vec<(Option<String>, Vec<f32>)> = Vec::new();
        for i in 0..LEAST_STYLE_PHRASES {
            let x = if i % 2 == 0 { 1.0 } else { 3.0 };
            codes.push((Some("rock".into()), vec![x, 0.0]));
            codes.push((Some("bossa".into()), vec![-2.0, 10.0 * x]));
        }
        codes.push((Some("polka".into()), vec![0.0, 0.0]));
        codes.push((None, vec![5.0, 5.0]));
        let styles = styles_from(&codes);
        assert_eq!(styles.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["bossa", "rock"]);
        let rock = &styles[1];
        assert_eq!((rock.center.clone(), rock.spread.clone(), rock.phrases), (vec![2.0, 0.0], vec![1.0, 0.0], 16));
        assert_eq!(styles[0].spread, vec![0.0, 1.0], "a spread wider than the prior's is held to 1");
        let near_rock = vec![2.1, 0.05];
        assert_eq!(nearest_styles(&near_rock, &styles)[0], 1);
        assert_eq!(style_accuracy([(1, &near_rock), (0, &near_rock)], &styles), (0.5, 1.0, 2));
    }
}
