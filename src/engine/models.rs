//! Where models come from: the one compiled into the binary, a user models folder, or any
//! folder a user points at. Broken folders are listed with the reason rather than hidden, so
//! a user who dropped a model in sees why it does not load.

use crate::model::generator::{Generator, ModelError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A model a session can name and find again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// The default model compiled into the plugin.
    Embedded,
    Folder(PathBuf),
}

impl ModelSource {
    pub fn load(&self) -> Result<Generator, ModelError> {
        match self {
            ModelSource::Embedded => crate::model::default_generator(),
            ModelSource::Folder(path) => Generator::from_dir(path),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ModelSource::Embedded => "built in".to_string(),
            ModelSource::Folder(path) => path.display().to_string(),
        }
    }
}

/// One entry of the model picker.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEntry {
    pub source: ModelSource,
    /// The card's name, or why the folder cannot be used.
    pub status: Result<String, String>,
}

/// Overrides the user models folder (tests, portable installs).
pub const MODELS_DIR_VARIABLE: &str = "DREAMROLL_MODELS";

/// The folder the plugin looks in for models, per platform convention.
pub fn user_models_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(MODELS_DIR_VARIABLE) {
        return Some(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("Dreamroll").join("models"))
    } else if cfg!(target_os = "macos") {
        home.map(|h| h.join("Library/Application Support/Dreamroll/models"))
    } else {
        let data = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).or_else(|| home.map(|h| h.join(".local/share")));
        data.map(|d| d.join("dreamroll/models"))
    }
}

/// The built-in model, then every sub-folder of `dir` holding a `model.json`, each loaded to
/// see whether it works. A missing `dir` is not an error: it just has no models yet.
pub fn scan_models(dir: Option<&Path>) -> Vec<ModelEntry> {
    let embedded_name = crate::model::default_generator().map(|g| g.card().name.clone()).map_err(|e| e.to_string());
    let mut entries = vec![ModelEntry { source: ModelSource::Embedded, status: embedded_name }];
    let Some(dir) = dir else { return entries };
    let Ok(listing) = std::fs::read_dir(dir) else { return entries };
    let mut folders: Vec<PathBuf> = listing
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join(crate::model::generator::CARD_FILE).is_file())
        .collect();
    folders.sort();
    for folder in folders {
        let source = ModelSource::Folder(folder);
        let status = source.load().map(|g| g.card().name.clone()).map_err(|e| e.to_string());
        entries.push(ModelEntry { source, status });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_lists_good_and_broken_folders_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/folk-melody");
        let good = dir.path().join("a-good");
        std::fs::create_dir(&good).unwrap();
        for file in ["model.json", "decoder.safetensors"] {
            std::fs::copy(shipped.join(file), good.join(file)).unwrap();
        }
        let truncated = dir.path().join("b-truncated");
        std::fs::create_dir(&truncated).unwrap();
        std::fs::copy(shipped.join("model.json"), truncated.join("model.json")).unwrap();
        let weights = std::fs::read(shipped.join("decoder.safetensors")).unwrap();
        std::fs::write(truncated.join("decoder.safetensors"), &weights[..weights.len() / 2]).unwrap();
        std::fs::create_dir(dir.path().join("c-not-a-model")).unwrap();

        let entries = scan_models(Some(dir.path()));
        assert_eq!(entries.len(), 3, "built in, good, truncated; a folder with no card is not a model");
        assert_eq!(entries[0].source, ModelSource::Embedded);
        assert!(entries[0].status.is_ok());
        assert_eq!(entries[1].status.as_deref(), Ok("folk-melody"));
        let reason = entries[2].status.as_ref().unwrap_err();
        assert!(reason.contains("decoder.safetensors"), "{reason}");
    }

    #[test]
    fn hostile_model_folders_are_listed_as_broken_with_their_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = |model: &str, file: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(model).join(file);
        let make = |name: &str, card: PathBuf, weights: &dyn Fn(&Path)| {
            let folder = dir.path().join(name);
            std::fs::create_dir(&folder).unwrap();
            std::fs::copy(card, folder.join("model.json")).unwrap();
            weights(&folder.join("decoder.safetensors"));
        };
        // A folk card with chorale weights: every tensor is there, in the wrong shape.
        make("mismatched", shipped("folk-melody", "model.json"), &|to| {
            std::fs::copy(shipped("chorales-satb", "decoder.safetensors"), to).unwrap();
        });
        // The right weights with one tensor poisoned.
        make("nan-filled", shipped("folk-melody", "model.json"), &|to| {
            let device = candle_core::Device::Cpu;
            let mut tensors = candle_core::safetensors::load(shipped("folk-melody", "decoder.safetensors"), &device).unwrap();
            let name = tensors.keys().min().unwrap().clone();
            let poisoned = (tensors[&name].ones_like().unwrap() * f64::NAN).unwrap();
            tensors.insert(name, poisoned);
            candle_core::safetensors::save(&tensors, to).unwrap();
        });
        // Far larger than any model: refused from its size, without being read.
        make("enormous", shipped("folk-melody", "model.json"), &|to| {
            std::fs::File::create(to).unwrap().set_len(300 << 20).unwrap();
        });
        let entries = scan_models(Some(dir.path()));
        let reason = |name: &str| entries.iter().find(|e| e.source == ModelSource::Folder(dir.path().join(name))).unwrap().status.clone().unwrap_err();
        assert!(reason("mismatched").contains("do not fit the card"), "{}", reason("mismatched"));
        assert!(reason("nan-filled").contains("NaN or infinite"), "{}", reason("nan-filled"));
        assert!(reason("enormous").contains("more than a model file can be"), "{}", reason("enormous"));
        assert!(entries[0].status.is_ok(), "the built-in model is still there to play");
    }

    #[test]
    fn a_missing_models_folder_lists_only_the_built_in_model() {
        let entries = scan_models(Some(Path::new("/no/such/folder")));
        assert_eq!(entries.len(), 1);
    }
}
