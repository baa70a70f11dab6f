//! `cargo xtask install`: bundle the plugin and copy it to the folders hosts scan.

use anyhow::{bail, Context};
use clap::Args;
use dreamroll::engine::models::user_models_dir;
use dreamroll::model::generator::{CARD_FILE, DECODER_FILE, ENCODER_FILE};
use dreamroll::model::learned_phrases::LEARNED_PHRASES_FILE;
use dreamroll::plugin::presets;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct InstallArgs {
    /// Where the CLAP goes [default: the platform's per-user CLAP folder].
    #[arg(long)]
    clap_dir: Option<PathBuf>,
    /// Where the VST3 goes [default: the platform's per-user VST3 folder].
    #[arg(long)]
    vst3_dir: Option<PathBuf>,
    /// Where the shipped models go, for the plugin's model picker [default: the user models
    /// folder the plugin scans, or $DREAMROLL_MODELS].
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Where the factory presets go as .vstpreset files [default: the platform's per-user
    /// VST3 preset folder, <presets>/Dreamroll/Dreamroll].
    #[arg(long)]
    vst3_presets_dir: Option<PathBuf>,
}

/// What a model folder needs to load (`Generator::from_dir`): its card, weights and the
/// fingerprints of its training phrases; not its samples, logs or plots.
const MODEL_FILES: [&str; 4] = [CARD_FILE, DECODER_FILE, ENCODER_FILE, LEARNED_PHRASES_FILE];

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
    let models = args
        .models_dir
        .or_else(user_models_dir)
        .context("there is no user models folder (HOME is not set); pass --models-dir or set DREAMROLL_MODELS")?;
    for installed in install_models(Path::new("models"), &models)? {
        println!("installed the model {}", installed.display());
    }
    let presets = args.vst3_presets_dir.map_or_else(default_vst3_presets_dir, Ok)?;
    // The presets name the models just installed, which the plugin finds in the same folder.
    let written = write_vst3_presets(&presets, &models)?;
    println!("installed {written} VST3 presets in {}", presets.display());
    Ok(())
}

/// Where VST3 hosts look for a plugin's presets, per user, as Steinberg's SDK names them:
/// `<presets>/<vendor>/<plugin>/`.
fn default_vst3_presets_dir() -> anyhow::Result<PathBuf> {
    let user = |variable: &str| {
        std::env::var_os(variable).map(PathBuf::from).with_context(|| {
            format!("{variable} is not set, so there is no per-user preset folder; pass --vst3-presets-dir")
        })
    };
    let root = if cfg!(target_os = "windows") {
        user("USERPROFILE")?.join("Documents/VST3 Presets")
    } else if cfg!(target_os = "macos") {
        user("HOME")?.join("Library/Audio/Presets")
    } else {
        user("HOME")?.join(".vst3/presets")
    };
    Ok(presets::vst3_preset_folder(&root))
}

/// Writes each factory preset as a `.vstpreset` into `dir` (its old ones replaced); returns
/// how many. A preset plays its pattern the moment a host loads it, so each is rendered here.
fn write_vst3_presets(dir: &Path, models: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    for preset in presets::factory() {
        let state = presets::preset_state(&preset, None, Some(models)).map_err(anyhow::Error::msg)?;
        let path = dir.join(format!("{}.vstpreset", preset.name.replace(['/', '\\', ':'], "-")));
        std::fs::write(&path, presets::vst3_preset_file(&state))
            .with_context(|| format!("writing {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}

/// Copies each model folder of `shipped` (the files it needs to load) into `into`, replacing
/// the folder of the same name, so the plugin's picker lists every shipped model beside the
/// one built in. Returns the folders written.
fn install_models(shipped: &Path, into: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut installed = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(shipped)
        .with_context(|| format!("listing the shipped models in {}", shipped.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    folders.sort();
    for folder in folders.into_iter().filter(|f| f.join(CARD_FILE).is_file()) {
        let name = folder.file_name().context("a listed folder has a name")?;
        let staging = into.join(name).with_extension("installing");
        remove(&staging)?;
        std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        for file in MODEL_FILES.iter().map(|f| folder.join(f)).filter(|f| f.is_file()) {
            std::fs::copy(&file, staging.join(file.file_name().expect("a model file has a name")))
                .with_context(|| format!("copying {}", file.display()))?;
        }
        let to = into.join(name);
        remove(&to)?;
        std::fs::rename(&staging, &to).with_context(|| format!("installing {}", to.display()))?;
        installed.push(to);
    }
    Ok(installed)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_are_installed_with_what_they_need_to_load() {
        let shipped = tempfile::tempdir().unwrap();
        let into = tempfile::tempdir().unwrap();
        let model = shipped.path().join("band");
        std::fs::create_dir_all(model.join("samples")).unwrap();
        for file in [CARD_FILE, DECODER_FILE, "train.log", "samples/seed-1.mid"] {
            std::fs::write(model.join(file), file).unwrap();
        }
        std::fs::create_dir(shipped.path().join("not-a-model")).unwrap();
        // An older install of the same model is replaced whole.
        std::fs::create_dir_all(into.path().join("band")).unwrap();
        std::fs::write(into.path().join("band").join(ENCODER_FILE), "old").unwrap();
        let installed = install_models(shipped.path(), into.path()).unwrap();
        assert_eq!(installed, vec![into.path().join("band")]);
        let mut files: Vec<String> = std::fs::read_dir(into.path().join("band"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, vec![DECODER_FILE.to_string(), CARD_FILE.to_string()]);
        assert!(!into.path().join("not-a-model").exists());
    }
}
