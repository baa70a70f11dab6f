//! Where models come from: the one compiled into the binary, a user models folder, or any
//! folder a user points at. Broken folders are listed with the reason rather than hidden, so
//! a user who dropped a model in sees why it does not load.

use crate::files::read_limited;
use crate::model::generator::{Generator, ModelError, CARD_FILE, DECODER_FILE, MAX_CARD_BYTES, MAX_WEIGHTS_BYTES};
use crate::model::ModelCard;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    match std::env::var_os(MODELS_DIR_VARIABLE) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => user_data_dir().map(|dir| dir.join("models")),
    }
}

/// Dreamroll's folder in the user's data folder, as each OS keeps one.
pub fn user_data_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("Dreamroll"))
    } else if cfg!(target_os = "macos") {
        home.map(|h| h.join("Library/Application Support/Dreamroll"))
    } else {
        let data =
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).or_else(|| home.map(|h| h.join(".local/share")));
        data.map(|d| d.join("dreamroll"))
    }
}

/// The built-in model, then every sub-folder of `dir` holding a `model.json`, each handed to
/// `listed` as it is read. Only the cards are read and checked, and the weights' size: a
/// model folder's weights (up to a few hundred megabytes, perhaps on a network) are read
/// when the user picks it, and then a fault in them is reported. The scan ends early once
/// `stop` is set, so that closing an instance never waits for it. A missing `dir` is not an
/// error: it just has no models yet.
pub fn scan_models(dir: Option<&Path>, stop: &AtomicBool, mut listed: impl FnMut(ModelEntry)) {
    let embedded_name =
        ModelCard::from_json(crate::model::DEFAULT_CARD).map(|card| card.name).map_err(|e| e.to_string());
    listed(ModelEntry { source: ModelSource::Embedded, status: embedded_name });
    let Some(dir) = dir else { return };
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    let mut folders: Vec<PathBuf> =
        listing.flatten().map(|entry| entry.path()).filter(|path| path.join(CARD_FILE).is_file()).collect();
    folders.sort();
    for folder in folders {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let status = card_of(&folder).map(|card| card.name);
        listed(ModelEntry { source: ModelSource::Folder(folder), status });
    }
}

/// A model folder's card, checked, with its weights' file there and not too large to load.
fn card_of(folder: &Path) -> Result<ModelCard, String> {
    let path = folder.join(CARD_FILE);
    let bytes = read_limited(&path, MAX_CARD_BYTES).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
    let card = ModelCard::from_json(&text).map_err(|e| e.to_string())?;
    let weights = folder.join(DECODER_FILE);
    let bytes = std::fs::metadata(&weights)
        .map_err(|source| ModelError::Io { path: weights.clone(), source }.to_string())?
        .len();
    if bytes > MAX_WEIGHTS_BYTES {
        return Err(ModelError::TooLarge { path: weights, bytes }.to_string());
    }
    Ok(card)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(dir: &Path) -> Vec<ModelEntry> {
        let mut entries = Vec::new();
        scan_models(Some(dir), &AtomicBool::new(false), |entry| entries.push(entry));
        entries
    }

    fn shipped(model: &str, file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(model).join(file)
    }

    /// A folder `name` in `dir` with the folk model's card and weights made by `weights`.
    fn folder(dir: &Path, name: &str, card: &str, weights: &dyn Fn(&Path)) -> PathBuf {
        let folder = dir.join(name);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join(CARD_FILE), card).unwrap();
        weights(&folder.join(DECODER_FILE));
        folder
    }

    #[test]
    fn a_scan_reads_the_cards_and_leaves_the_weights_until_a_model_is_picked() {
        let dir = tempfile::tempdir().unwrap();
        let card = std::fs::read_to_string(shipped("folk-melody", CARD_FILE)).unwrap();
        folder(dir.path(), "a-good", &card, &|to| {
            std::fs::copy(shipped("folk-melody", DECODER_FILE), to).unwrap();
        });
        let truncated = folder(dir.path(), "b-truncated", &card, &|to| {
            let weights = std::fs::read(shipped("folk-melody", DECODER_FILE)).unwrap();
            std::fs::write(to, &weights[..weights.len() / 2]).unwrap();
        });
        folder(dir.path(), "c-future", &card.replacen("\"schema_version\": ", "\"schema_version\": 9", 1), &|_| {});
        folder(dir.path(), "d-no-weights", &card, &|_| {});
        folder(dir.path(), "e-enormous", &card, &|to| {
            std::fs::File::create(to).unwrap().set_len(MAX_WEIGHTS_BYTES + 1).unwrap()
        });
        std::fs::create_dir(dir.path().join("f-not-a-model")).unwrap();

        let entries = scan(dir.path());
        let status = |i: usize| entries[i].status.clone();
        assert_eq!(entries.len(), 6, "built in and five folders; a folder with no card is not a model");
        let embedded = crate::model::default_generator().unwrap().card().name.clone();
        assert_eq!((entries[0].source.clone(), status(0)), (ModelSource::Embedded, Ok(embedded)));
        assert_eq!(status(1), Ok("folk-melody".into()));
        assert_eq!(status(2), Ok("folk-melody".into()), "its weights are not read to list it");
        assert!(status(3).unwrap_err().contains("schema"), "{:?}", status(3));
        assert!(status(4).unwrap_err().contains(DECODER_FILE), "{:?}", status(4));
        assert!(status(5).unwrap_err().contains("more than a model file can be"), "{:?}", status(5));
        let picked = ModelSource::Folder(truncated).load().err().unwrap().to_string();
        assert!(picked.contains(DECODER_FILE), "picking it reads the weights and says what is wrong: {picked}");
    }

    #[test]
    fn a_scan_stops_between_folders_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            folder(dir.path(), &format!("model-{i}"), "{}", &|_| {});
        }
        let stop = AtomicBool::new(false);
        let mut listed = 0;
        scan_models(Some(dir.path()), &stop, |_| {
            listed += 1;
            stop.store(listed == 4, Ordering::Release);
        });
        assert_eq!(listed, 4, "the built-in model and three folders, then the stop");
    }

    #[test]
    fn hostile_weights_are_refused_with_their_reasons_when_picked() {
        let dir = tempfile::tempdir().unwrap();
        let card = std::fs::read_to_string(shipped("folk-melody", CARD_FILE)).unwrap();
        // A folk card with chorale weights: every tensor is there, in the wrong shape.
        let mismatched = folder(dir.path(), "mismatched", &card, &|to| {
            std::fs::copy(shipped("chorales-satb", DECODER_FILE), to).unwrap();
        });
        // The right weights with one tensor poisoned.
        let nan_filled = folder(dir.path(), "nan-filled", &card, &|to| {
            let device = candle_core::Device::Cpu;
            let mut tensors = candle_core::safetensors::load(shipped("folk-melody", DECODER_FILE), &device).unwrap();
            let name = tensors.keys().min().unwrap().clone();
            let poisoned = (tensors[&name].ones_like().unwrap() * f64::NAN).unwrap();
            tensors.insert(name, poisoned);
            candle_core::safetensors::save(&tensors, to).unwrap();
        });
        let reason = |folder: PathBuf| ModelSource::Folder(folder).load().err().unwrap().to_string();
        assert!(reason(mismatched).contains("do not fit the card"));
        assert!(reason(nan_filled).contains("NaN or infinite"));
    }

    #[test]
    fn a_missing_models_folder_lists_only_the_built_in_model() {
        assert_eq!(scan(Path::new("/no/such/folder")).len(), 1);
    }
}
