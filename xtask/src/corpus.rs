//! `cargo xtask corpus` (being written).
use clap::Args;

#[derive(Args)]
pub struct CorpusArgs {}

pub fn run(_args: CorpusArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
