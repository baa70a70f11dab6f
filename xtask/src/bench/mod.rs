//! `cargo xtask bench`: the speed targets, measured with criterion rather than asserted in
//! timed tests, because shared machines are too noisy for a test to fail on time; and, with
//! `--vs-pytorch`, the trainer and decoder against a PyTorch twin on the same CPU.

pub mod candle_side;
mod pytorch;

use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;
use std::process::Command;

#[derive(Args)]
pub struct BenchArgs {
    /// Corpus folder the corpus benchmarks read (default: data/corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Instead of the criterion benchmarks: each model against its PyTorch twin (creates a
    /// venv with torch in target/pytorch-venv the first time).
    #[arg(long)]
    vs_pytorch: bool,
    /// --vs-pytorch: model folders to compare (default: every shipped vae and voices model).
    #[arg(long = "model")]
    models: Vec<PathBuf>,
    /// --vs-pytorch: rounds, each running both sides in turn (the order alternates).
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// --vs-pytorch: timed repetitions of each measure per round.
    #[arg(long, default_value_t = 8)]
    repeats: usize,
    /// --vs-pytorch: the training step's batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// --vs-pytorch: threads on both sides.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// --vs-pytorch: skip the runs over batch sizes and phrase lengths.
    #[arg(long)]
    no_scaling: bool,
    /// --vs-pytorch: where the report, JSON and plots go.
    #[arg(long, default_value = "target/vs-pytorch")]
    out: PathBuf,
    /// Extra arguments for criterion, e.g. a benchmark name filter.
    #[arg(trailing_var_arg = true)]
    criterion: Vec<String>,
}

/// The shipped models the comparison covers by default.
const SHIPPED: [&str; 4] =
    ["models/chorales-satb", "models/folk-melody", "models/chorales-satb-vae", "models/folk-melody-vae"];

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.vs_pytorch {
        let models = if args.models.is_empty() { SHIPPED.iter().map(PathBuf::from).collect() } else { args.models };
        if args.rounds == 0 || args.repeats == 0 || args.batch == 0 || args.threads == 0 {
            bail!("--rounds, --repeats, --batch and --threads must be at least 1");
        }
        return pytorch::run_comparison(pytorch::VsPytorch {
            models,
            rounds: args.rounds,
            repeats: args.repeats,
            batch: args.batch,
            threads: args.threads,
            out: args.out,
            scaling: !args.no_scaling,
        });
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["bench", "--package", "dreamroll", "--"]).args(&args.criterion);
    if let Some(corpus) = &args.corpus {
        command.env("DREAMROLL_CORPUS", corpus);
    }
    let status = command.status().context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed ({status})");
    }
    Ok(())
}
