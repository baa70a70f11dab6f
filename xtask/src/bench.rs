//! `cargo xtask bench`: the speed targets, measured with criterion rather than asserted in
//! timed tests, because shared machines are too noisy for a test to fail on time.

use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;
use std::process::Command;

#[derive(Args)]
pub struct BenchArgs {
    /// Corpus folder the corpus benchmarks read (default: data/corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Extra arguments for criterion, e.g. a benchmark name filter.
    #[arg(trailing_var_arg = true)]
    criterion: Vec<String>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
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
