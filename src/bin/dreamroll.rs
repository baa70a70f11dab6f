//! `dreamroll`: render MIDI with a decoder, or read a model's card, from the command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use dreamroll::model::generator::{Generator, RenderRequest};
use dreamroll::roll::roll_to_midi;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "dreamroll", version, about = "Music from a learned piano-roll decoder")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
        /// How far each phrase wanders from the one before: 0 repeats, 1 is unrelated.
        #[arg(long, default_value_t = 0.3)]
        variation: f32,
        /// 0 plays the likeliest notes, higher values sample more freely [default: the model's].
        #[arg(long)]
        temperature: Option<f32>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print a model folder's card.
    Inspect { model: PathBuf },
}

fn parse_knobs(specs: &[String], available: usize) -> anyhow::Result<Vec<f32>> {
    let mut knobs = vec![0.0; available];
    for spec in specs {
        let (number, value) = spec.split_once('=').with_context(|| format!("--knob {spec}: write it as NUMBER=VALUE, e.g. 2=1.5"))?;
        let number: usize = number.trim().parse().with_context(|| format!("--knob {spec}: `{number}` is not a knob number"))?;
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

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Render { model, bars, seed, bpm, knobs, variation, temperature, output } => {
            let generator = match &model {
                Some(dir) => Generator::from_dir(dir).with_context(|| format!("loading the model in {}", dir.display()))?,
                None => dreamroll::model::default_generator()?,
            };
            if bars == 0 || bars > 1024 {
                bail!("--bars must be 1..=1024");
            }
            if temperature.is_some_and(|t| !(0.0..=4.0).contains(&t)) {
                bail!("--temperature must be 0..=4");
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
            };
            let roll = generator.render(&request)?;
            std::fs::write(&output, roll_to_midi(&roll, bpm)).with_context(|| format!("writing {}", output.display()))?;
            println!("{}: {} bars, {} notes, model {}", output.display(), bars, roll.notes().len(), generator.card().name);
        }
        Command::Inspect { model } => {
            let generator = Generator::from_dir(&model).with_context(|| format!("loading the model in {}", model.display()))?;
            print!("{}", generator.card());
        }
    }
    Ok(())
}
