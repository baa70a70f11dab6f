//! Presets: a model and the parameter values that show one side of it, named and described.
//! Values are kept as the text a host shows ("7", "1.50 σ", "Dorian", "bossanova"), so a
//! preset file reads like the editor and survives a parameter's range changing. The factory
//! presets are data (`bundled/presets.json`, built into the plugin); a producer's own are
//! files in the user presets folder, saved from the editor.

use super::params::{DreamrollParams, ShapingVisitor};
use crate::engine::models::user_data_dir;
use nice_plug::prelude::Param;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The factory presets, as shipped.
const FACTORY: &str = include_str!("../../bundled/presets.json");
/// Overrides the user presets folder (tests, portable installs).
pub const PRESETS_DIR_VARIABLE: &str = "DREAMROLL_PRESETS";
/// A user preset's file extension.
pub const EXTENSION: &str = "dreamroll-preset";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub name: String,
    pub description: String,
    /// The model's name, as its card and the model picker give it.
    pub model: String,
    /// Shaping parameters by stable ID (see [`DreamrollParams::visit_shaping`]), as text; the
    /// others stay as they are.
    pub values: BTreeMap<String, String>,
    /// The seed's take ("New seed" presses).
    #[serde(default)]
    pub take: u32,
}

/// The factory presets.
pub fn factory() -> Vec<Preset> {
    serde_json::from_str(FACTORY).expect("bundled/presets.json is checked by the tests")
}

/// Where the producer's presets are kept.
pub fn user_presets_dir() -> Option<PathBuf> {
    match std::env::var_os(PRESETS_DIR_VARIABLE) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => user_data_dir().map(|dir| dir.join("presets")),
    }
}

/// The presets in `dir`, by name, and a sentence for each file that could not be read. A
/// missing folder holds none.
pub fn read_user_presets(dir: &Path) -> (Vec<Preset>, Vec<String>) {
    let (mut presets, mut problems) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(dir) else { return (presets, problems) };
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.extension().is_none_or(|extension| extension != EXTENSION) {
            continue;
        }
        let read = std::fs::read_to_string(&path).map_err(|e| e.to_string());
        match read.and_then(|text| serde_json::from_str::<Preset>(&text).map_err(|e| e.to_string())) {
            Ok(preset) => presets.push(preset),
            Err(reason) => problems.push(format!("{} is no Dreamroll preset ({reason})", path.display())),
        }
    }
    presets.sort_by_key(|preset| preset.name.to_lowercase());
    (presets, problems)
}

/// Writes `preset` into `dir` (made if missing) as a file named after it; returns its path.
pub fn save_user_preset(dir: &Path, preset: &Preset) -> Result<PathBuf, String> {
    let stem: String =
        preset.name.trim().chars().map(|c| if c.is_alphanumeric() || " -_".contains(c) { c } else { '_' }).collect();
    if !stem.chars().any(char::is_alphanumeric) {
        return Err("a preset needs a name with a letter or a digit in it".to_string());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.{EXTENSION}", stem.trim()));
    let text = serde_json::to_string_pretty(preset).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

impl DreamrollParams {
    /// What the shaping parameters are now, as a preset of `model`.
    pub fn preset_of_now(&self, name: &str, description: &str, model: &str) -> Preset {
        struct Texts(BTreeMap<String, String>);
        impl ShapingVisitor for Texts {
            fn visit<P: Param>(&mut self, id: &str, param: &P) {
                self.0.insert(
                    id.to_string(),
                    param.normalized_value_to_string(param.unmodulated_normalized_value(), true),
                );
            }
        }
        let mut texts = Texts(BTreeMap::new());
        self.visit_shaping(&mut texts);
        Preset {
            name: name.to_string(),
            description: description.to_string(),
            model: model.to_string(),
            values: texts.0,
            take: self.takes.load(std::sync::atomic::Ordering::Acquire),
        }
    }

    /// `preset`'s values as normalised parameter values, read as the parameters read typed
    /// text (for the model loaded now: a style is one of its names); the values this Dreamroll
    /// has no parameter for, or cannot read, in words.
    pub fn preset_values(&self, preset: &Preset) -> Result<BTreeMap<String, f32>, String> {
        struct Read<'a> {
            preset: &'a Preset,
            values: BTreeMap<String, f32>,
            unread: Vec<String>,
        }
        impl ShapingVisitor for Read<'_> {
            fn visit<P: Param>(&mut self, id: &str, param: &P) {
                let Some(text) = self.preset.values.get(id) else { return };
                match param.string_to_normalized_value(text) {
                    Some(value) => {
                        self.values.insert(id.to_string(), value);
                    }
                    None => self.unread.push(format!("{} {text:?}", param.name())),
                }
            }
        }
        let mut read = Read { preset, values: BTreeMap::new(), unread: Vec::new() };
        self.visit_shaping(&mut read);
        let unknown = preset.values.keys().filter(|id| !read.values.contains_key(*id)).count() - read.unread.len();
        if unknown > 0 {
            read.unread.push(format!("{unknown} values for parameters this Dreamroll does not have"));
        }
        match read.unread.is_empty() {
            true => Ok(read.values),
            false => Err(format!("preset {:?} cannot be read: {}", preset.name, read.unread.join(", "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::generator::Generator;

    fn shipped_model(name: &str) -> Option<Generator> {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        std::fs::read_dir(&models)
            .ok()?
            .flatten()
            .filter_map(|entry| Generator::from_dir(&entry.path()).ok())
            .find(|generator| generator.card().name == name)
    }

    #[test]
    fn every_factory_preset_is_for_a_shipped_model_and_every_value_reads() {
        let presets = factory();
        assert!(presets.len() >= 10, "a handful a model: {}", presets.len());
        for preset in &presets {
            assert!(!preset.description.is_empty(), "{} says what it is", preset.name);
            let generator =
                shipped_model(&preset.model).unwrap_or_else(|| panic!("{}: no model {}", preset.name, preset.model));
            let params = DreamrollParams::default();
            params.style_names.show(generator.card().styles.iter().map(|style| &style.name));
            let values = params.preset_values(preset).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(values.len(), preset.values.len());
        }
        let models: std::collections::BTreeSet<&str> = presets.iter().map(|p| p.model.as_str()).collect();
        assert_eq!(models.len(), 5, "every shipped model has presets: {models:?}");
    }

    #[test]
    fn a_saved_preset_reads_back_as_the_parameters_were() {
        let params = DreamrollParams::default();
        let preset = params.preset_of_now("My groove / take 2", "saved in a test", "band");
        let dir = tempfile::tempdir().unwrap();
        let path = save_user_preset(dir.path(), &preset).unwrap();
        assert_eq!(path.file_name().unwrap(), "My groove _ take 2.dreamroll-preset");
        std::fs::write(dir.path().join("broken.dreamroll-preset"), "{").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a preset").unwrap();
        let (read, problems) = read_user_presets(dir.path());
        assert_eq!(read, vec![preset.clone()]);
        assert!(problems.len() == 1 && problems[0].contains("broken.dreamroll-preset"), "{problems:?}");
        let values = params.preset_values(&preset).unwrap();
        assert_eq!(values, params.moment().values, "every shaping value comes back as it was");
        assert!(read_user_presets(&dir.path().join("missing")).0.is_empty());
        assert!(save_user_preset(dir.path(), &Preset { name: " / ".into(), ..preset }).is_err());
    }

    #[test]
    fn a_preset_with_values_this_dreamroll_cannot_read_says_which() {
        let params = DreamrollParams::default();
        let mut preset = params.preset_of_now("odd", "", "band");
        preset.values.insert("seed".into(), "many".into());
        preset.values.insert("warp-drive".into(), "on".into());
        let error = params.preset_values(&preset).unwrap_err();
        assert!(error.contains("Seed \"many\"") && error.contains("1 values for parameters"), "{error}");
    }
}
