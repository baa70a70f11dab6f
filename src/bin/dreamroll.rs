//! `dreamroll`: render MIDI with a decoder, or read a model's card, from the command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use dreamroll::engine::pattern::{build_pattern, PatternOptions, Scale};
use dreamroll::metrics::attributes::Attribute;
use dreamroll::metrics::chords::parse_chord;
use dreamroll::model::generator::DEFAULT_VARIATION;
use dreamroll::model::generator::{Generator, RenderRequest};
use dreamroll::model::source::{Morph, MorphPoint, Source, SourceMode};
use dreamroll::roll::swing::Swing;
use dreamroll::roll::{pattern_to_midi, Clip, Roll, Take, MOST_TAKE_BARS};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "dreamroll", version, about = "Music from a learned piano-roll decoder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: boxing the larger argument sets would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Write a standard MIDI file made by a model (the embedded default unless --model).
    Render {
        /// Model folder (model.json + decoder.safetensors).
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 8)]
        bars: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 120.0)]
        bpm: f64,
        /// A macro knob, as NUMBER=VALUE (1-based, -3..3 standard deviations); repeatable.
        #[arg(long = "knob", value_name = "K=V")]
        knobs: Vec<String>,
        /// A named knob, as NAME=VALUE (-2..2): note-density, register, rhythmic-activity,
        /// leaps, spacing, polyphony, intensity or fills, those the model's card has; repeatable.
        #[arg(long = "named", value_name = "NAME=V", allow_hyphen_values = true)]
        named: Vec<String>,
        /// Dream in one of the styles the model learnt (`dreamroll info` lists them): an MMA
        /// groove family such as bossanova or 60srock, or a sub-folder of a user's data.
        #[arg(long)]
        style: Option<String>,
        /// How far each phrase wanders from the one before: 0 repeats, 1 is unrelated.
        #[arg(long, default_value_t = DEFAULT_VARIATION)]
        variation: f32,
        /// 0 plays the likeliest notes, higher values sample more freely [default: the model's].
        #[arg(long)]
        temperature: Option<f32>,
        /// Fewer (-1) or more (1) notes than the model's calibrated threshold gives (0).
        #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
        density: f32,
        /// Lock to this key's scale (C, C#, Db, … B); with --scale.
        #[arg(long, default_value = "C")]
        key: String,
        /// chromatic (no lock), major, minor, dorian, mixolydian, harmonic-minor,
        /// major-pentatonic or minor-pentatonic. Out-of-scale notes are moved, not dropped.
        #[arg(long, default_value = "chromatic")]
        scale: String,
        /// Semitones, -24..24.
        #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
        transpose: i8,
        /// Velocity of an unaccented note, 1..127 (downbeats get 8 more).
        #[arg(long, default_value_t = 90)]
        velocity: u8,
        /// 0..1: how much velocity and timing vary, drawn from the seed.
        #[arg(long, default_value_t = 0.0)]
        humanise: f32,
        /// Where the off-beat eighths fall, in percent of the beat: 50 (straight) to 75; 66
        /// is a triplet shuffle. As the plugin's *Swing*.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(50..=75))]
        swing: u8,
        /// dream (from the latent alone), vary (the clip written again, --distance away),
        /// harmonise (keep the clip's parts and write the others around them), continue
        /// (the bars that follow the clip) or follow-chords (dream, with strong beats on
        /// --chords or the clip's chords). All but dream need --clip; harmonise and continue
        /// a voices model. For harmonise and continue --variation is how far the latent
        /// strays from the encoder's reading of the clip.
        #[arg(long, default_value = "dream", value_parser = source_mode())]
        source: SourceMode,
        /// vary: 0 plays the clip as the model reads it, 1 is unrelated to it.
        #[arg(long, default_value_t = 0.3)]
        distance: f32,
        /// A MIDI file of your own notes, read from its start on the model's grid (each
        /// channel on its part), its first --bars bars.
        #[arg(long)]
        clip: Option<PathBuf>,
        /// harmonise: the parts to keep, by number (1 is the first), comma-separated
        /// [default: every part the clip plays].
        #[arg(long, value_delimiter = ',')]
        keep: Vec<usize>,
        /// follow-chords: a chord per bar, repeating, space- or comma-separated ("C Am F G7");
        /// without it, each bar's chord is read from --clip (a chord track).
        #[arg(long)]
        chords: Option<String>,
        /// dream: morph from this render's seed and knobs (point A) toward point B, 0..1.
        #[arg(long, requires = "morph_to")]
        morph: Option<f32>,
        /// Point B: `seed=N` (with this render's knobs and style), `style=NAME` (this seed and
        /// knobs in another style) or `clip=FILE.mid` (as the encoder reads it).
        #[arg(long, value_name = "seed=N|style=NAME|clip=FILE")]
        morph_to: Option<String>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a model folder's card.
    Inspect { model: PathBuf },
}

/// `--source`, by the IDs projects store, with the choices listed in `--help` and errors.
fn source_mode() -> impl clap::builder::TypedValueParser<Value = SourceMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(SourceMode::IDS)
        .map(|id: String| SourceMode::from_id(&id).expect("one of the possible values"))
}

fn parse_knobs(specs: &[String], available: usize) -> anyhow::Result<Vec<f32>> {
    let mut knobs = vec![0.0; available];
    for spec in specs {
        let (number, value) =
            spec.split_once('=').with_context(|| format!("--knob {spec}: write it as NUMBER=VALUE, e.g. 2=1.5"))?;
        let number: usize =
            number.trim().parse().with_context(|| format!("--knob {spec}: `{number}` is not a knob number"))?;
        let value: f32 = value.trim().parse().with_context(|| format!("--knob {spec}: `{value}` is not a number"))?;
        if number == 0 || number > available {
            bail!("--knob {spec}: this model has knobs 1 to {available}");
        }
        if !(-3.0..=3.0).contains(&value) {
            bail!("--knob {spec}: knobs run from -3 to 3 standard deviations");
        }
        knobs[number - 1] = value;
    }
    Ok(knobs)
}

/// Named-knob positions by attribute, from NAME=VALUE.
fn parse_named(specs: &[String], card: &dreamroll::model::ModelCard) -> anyhow::Result<Vec<f32>> {
    let mut named = vec![0.0; Attribute::ALL.len()];
    let has: Vec<String> = card.named_knobs.iter().map(|k| attribute_id(k.attribute)).collect();
    for spec in specs {
        let (name, value) =
            spec.split_once('=').with_context(|| format!("--named {spec}: write it as NAME=VALUE, e.g. register=1"))?;
        let Some(attribute) = Attribute::ALL.into_iter().find(|&a| attribute_id(a) == name.trim()) else {
            bail!("--named {spec}: `{name}` is not one of {}", Attribute::ALL.map(attribute_id).join(", "));
        };
        if !card.named_knobs.iter().any(|k| k.attribute == attribute) {
            bail!(
                "--named {spec}: model {} has no {name} knob (it has: {})",
                card.name,
                if has.is_empty() { "none".to_string() } else { has.join(", ") }
            );
        }
        let value: f32 = value.trim().parse().with_context(|| format!("--named {spec}: `{value}` is not a number"))?;
        if !(-2.0..=2.0).contains(&value) {
            bail!("--named {spec}: named knobs run from -2 to 2");
        }
        named[attribute.index()] = value;
    }
    Ok(named)
}

/// A morph point from `seed=N`, `style=NAME` (this render's seed in another of the card's
/// styles) or `clip=FILE.mid`.
fn morph_point(spec: &str, request: &RenderRequest, card: &dreamroll::model::ModelCard) -> anyhow::Result<MorphPoint> {
    match spec.split_once('=') {
        Some(("seed", n)) => Ok(MorphPoint::Dream {
            seed: n.trim().parse().with_context(|| format!("--morph-to {spec}: `{n}` is not a seed"))?,
            knobs: request.knobs.clone(),
            named: request.named.clone(),
            style: request.style.clone(),
        }),
        Some(("style", name)) => Ok(MorphPoint::Dream {
            seed: request.seed,
            knobs: request.knobs.clone(),
            named: request.named.clone(),
            style: Some(card.style(name).map_err(|e| anyhow::anyhow!("--morph-to {e}"))?.name.clone()),
        }),
        Some(("clip", path)) => Ok(MorphPoint::Clip(
            Take::from_midi_file(path.as_ref(), MOST_TAKE_BARS)
                .with_context(|| format!("reading the morph point {path}"))?,
        )),
        _ => bail!("--morph-to {spec}: write seed=N, style=NAME or clip=FILE.mid"),
    }
}

/// An attribute as the card and the command line spell it.
fn attribute_id(attribute: Attribute) -> String {
    serde_json::to_value(attribute).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// A key name as musicians write it: C, C#, Db, … B.
fn parse_key(name: &str) -> anyhow::Result<u8> {
    const NAMES: [(&str, u8); 17] = [
        ("C", 0),
        ("C#", 1),
        ("Db", 1),
        ("D", 2),
        ("D#", 3),
        ("Eb", 3),
        ("E", 4),
        ("F", 5),
        ("F#", 6),
        ("Gb", 6),
        ("G", 7),
        ("G#", 8),
        ("Ab", 8),
        ("A", 9),
        ("A#", 10),
        ("Bb", 10),
        ("B", 11),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|&(_, k)| k)
        .with_context(|| format!("--key {name}: write a key as C, C#, Db, … B"))
}

/// The clip file read for the model (its first `bars` bars), with what it left out said on stderr.
fn read_clip_file(path: &std::path::Path, generator: &Generator, bars: usize) -> anyhow::Result<Clip> {
    let take = Take::from_midi_file(path, bars.try_into().unwrap_or(u32::MAX))
        .with_context(|| format!("reading the clip {}", path.display()))?;
    let clip = generator.read_take(&take, bars).with_context(|| format!("the clip {}", path.display()))?;
    for what in &clip.left_out {
        eprintln!("{}: left out {what}", path.display());
    }
    Ok(clip)
}

/// The decoded bars the source asks for.
fn decode(
    generator: &Generator,
    request: &RenderRequest,
    source: Source,
    clip: Option<&PathBuf>,
) -> anyhow::Result<Roll> {
    let name = source.mode.name();
    let clip = match (source.mode, clip) {
        (SourceMode::Dream, Some(_)) => {
            bail!("--clip is read by --source vary, harmonise or continue; dream writes from the latent alone")
        }
        (SourceMode::Dream, None) | (SourceMode::FollowChords, None) => None,
        (_, None) => bail!("--source {name} needs --clip FILE.mid"),
        (_, Some(path)) => Some(read_clip_file(path, generator, request.bars)?),
    };
    Ok(generator.render_from(request, &source, clip.as_ref())?)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Render {
            model,
            bars,
            seed,
            bpm,
            knobs,
            named,
            style,
            variation,
            temperature,
            density,
            key,
            scale,
            transpose,
            velocity,
            humanise,
            swing,
            source,
            distance,
            clip,
            keep,
            chords,
            morph,
            morph_to,
            output,
        } => {
            let generator = match &model {
                Some(dir) => {
                    Generator::from_dir(dir).with_context(|| format!("loading the model in {}", dir.display()))?
                }
                None => dreamroll::model::default_generator()?,
            };
            if bars == 0 || bars > 1024 {
                bail!("--bars must be 1..=1024");
            }
            if temperature.is_some_and(|t| !(0.0..=4.0).contains(&t)) {
                bail!("--temperature must be 0..=4");
            }
            if !(-1.0..=1.0).contains(&density) {
                bail!("--density must be -1..=1");
            }
            if !(bpm > 0.0 && bpm <= 1000.0) {
                bail!("--bpm must be above 0 and at most 1000");
            }
            let request = RenderRequest {
                bars,
                seed,
                knobs: parse_knobs(&knobs, generator.card().macro_knobs.len())?,
                variation,
                temperature,
                density,
                named: parse_named(&named, generator.card())?,
                style: match style {
                    Some(name) => {
                        Some(generator.card().style(&name).map_err(|e| anyhow::anyhow!("--style {e}"))?.name.clone())
                    }
                    None => None,
                },
            };
            let tracks = &generator.card().representation.tracks;
            let voicing = PatternOptions {
                key: parse_key(&key)?,
                scale: Scale::from_id(&scale)
                    .with_context(|| format!("--scale {scale}: not one of {}", Scale::ALL.map(Scale::id).join(", ")))?,
                transpose,
                velocity,
                humanise,
                seed,
                channels: tracks.iter().map(|t| t.channel).collect(),
                muted: vec![false; tracks.len()],
                swing: Swing::new(swing),
            };
            if !(-24..=24).contains(&transpose) || !(1..=127).contains(&velocity) || !(0.0..=1.0).contains(&humanise) {
                bail!("--transpose must be -24..=24, --velocity 1..=127 and --humanise 0..=1");
            }
            // The very path the plugin plays: decode, then voice.
            if keep.contains(&0) {
                bail!("--keep 0: parts are numbered from 1");
            }
            let names = chords.as_deref().unwrap_or_default().split([' ', ',']).filter(|name| !name.is_empty());
            let chords = names
                .map(|name| parse_chord(name).map_err(|e| anyhow::anyhow!("--chords {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if !chords.is_empty() && source != SourceMode::FollowChords {
                bail!("--chords is read by --source follow-chords");
            }
            let morph = match (morph, morph_to.as_deref()) {
                (None, None) => None,
                (None, Some(_)) => bail!("--morph-to needs --morph AMOUNT (0 is this render, 1 is the point)"),
                (Some(_), _) if source != SourceMode::Dream => bail!("--morph is read by --source dream"),
                (Some(amount), to) if (0.0..=1.0).contains(&amount) => {
                    let a = MorphPoint::Dream {
                        seed,
                        knobs: request.knobs.clone(),
                        named: request.named.clone(),
                        style: request.style.clone(),
                    };
                    Some(Morph { a, b: morph_point(to.unwrap_or_default(), &request, generator.card())?, amount })
                }
                (Some(_), _) => bail!("--morph must be 0..=1"),
            };
            let source =
                Source { mode: source, distance, keep: keep.iter().map(|part| part - 1).collect(), chords, morph };
            let pattern = build_pattern(&decode(&generator, &request, source, clip.as_ref())?, &voicing);
            let representation = &generator.card().representation;
            let names: Vec<(u8, String)> = representation
                .parts()
                .iter()
                .map(|part| (tracks[part[0]].channel, representation.part_name(part)))
                .collect();
            std::fs::write(&output, pattern_to_midi(&pattern, bpm, &names))
                .with_context(|| format!("writing {}", output.display()))?;
            println!(
                "{}: {} bars, {} notes, model {}",
                output.display(),
                bars,
                pattern.notes.len(),
                generator.card().name
            );
        }
        Command::Inspect { model } => {
            let generator =
                Generator::from_dir(&model).with_context(|| format!("loading the model in {}", model.display()))?;
            print!("{}", generator.card());
        }
    }
    Ok(())
}
