//! `cargo xtask install`: bundle the plugin and copy it to the folders hosts scan.

use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct InstallArgs {
    /// Where the CLAP goes [default: the platform's per-user CLAP folder].
    #[arg(long)]
    clap_dir: Option<PathBuf>,
    /// Where the VST3 goes [default: the platform's per-user VST3 folder].
    #[arg(long)]
    vst3_dir: Option<PathBuf>,
}

/// The per-user plugin folders of each platform, as the CLAP and VST3 specifications name them.
fn default_dirs() -> anyhow::Result<(PathBuf, PathBuf)> {
    if cfg!(target_os = "windows") {
        let local = std::env::var_os("LOCALAPPDATA").context("LOCALAPPDATA is not set")?;
        let local = PathBuf::from(local).join("Programs/Common");
        return Ok((local.join("CLAP"), local.join("VST3")));
    }
    let home = PathBuf::from(
        std::env::var_os("HOME")
            .context("HOME is not set, so there is no per-user plugin folder; pass --clap-dir and --vst3-dir")?,
    );
    if cfg!(target_os = "macos") {
        let plugins = home.join("Library/Audio/Plug-Ins");
        Ok((plugins.join("CLAP"), plugins.join("VST3")))
    } else {
        Ok((home.join(".clap"), home.join(".vst3")))
    }
}

pub fn run(args: InstallArgs) -> anyhow::Result<()> {
    nice_plug_xtask::main_with_args("cargo xtask", ["bundle", "dreamroll", "--release"].map(String::from))?;
    let (clap_default, vst3_default) = default_dirs()?;
    let bundled = PathBuf::from("target/bundled");
    for (bundle, dir) in [
        ("dreamroll.clap", args.clap_dir.unwrap_or(clap_default)),
        ("dreamroll.vst3", args.vst3_dir.unwrap_or(vst3_default)),
    ] {
        let from = bundled.join(bundle);
        if !from.exists() {
            bail!("{} was not built; see the bundler's output above", from.display());
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let to = dir.join(bundle);
        replace(&from, &to).with_context(|| format!("installing {}", to.display()))?;
        println!("installed {}", to.display());
    }
    Ok(())
}

/// Copies beside the old install, then swaps, so a host never sees half a plugin.
fn replace(from: &Path, to: &Path) -> anyhow::Result<()> {
    let staging = to.with_extension("installing");
    remove(&staging)?;
    copy_tree(from, &staging)?;
    remove(to)?;
    std::fs::rename(&staging, to)?;
    Ok(())
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}
