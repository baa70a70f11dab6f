//! Presets: a model and the parameter values that show one side of it, named and described.
//! Values are kept as the text a host shows ("7", "1.50 σ", "Dorian", "bossanova"), so a
//! preset file reads like the editor and survives a parameter's range changing. The factory
//! presets are data (`bundled/presets.json`, built into the plugin); a producer's own are
//! files in the user presets folder, saved from the editor.
//!
//! A host loads a preset as plugin state ([`preset_state`]): the parameters and a session with
//! the preset's pattern already written, the same state a project saved with that preset
//! holds. CLAP's preset-load and the `.vstpreset` files `cargo xtask install` writes both
//! carry it, so every host hears the same notes the editor's preset menu gives.

use super::params::{settings_for, DreamrollParams, ShapingVisitor};
use super::session::{parse_session, Session, SESSION_FIELD, SESSION_VERSION};
use super::Dreamroll;
use crate::engine::models::{scan_models, user_data_dir, ModelSource};
use crate::engine::pattern::build_pattern;
use crate::engine::worker::clip_for;
use crate::model::completion::SourceError;
use crate::roll::Roll;
use nice_plug::params::internals::ParamPtr;
use nice_plug::params::persist::{deserialize_field, serialize_field};
use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::{Param, Params, Plugin, Vst3Plugin};
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
        match read_preset_file(&path) {
            Ok(preset) => presets.push(preset),
            Err(problem) => problems.push(problem),
        }
    }
    presets.sort_by_key(|preset| preset.name.to_lowercase());
    (presets, problems)
}

/// The preset in the file at `path`, or why it is not one.
pub fn read_preset_file(path: &Path) -> Result<Preset, String> {
    let read = std::fs::read_to_string(path).map_err(|e| e.to_string());
    read.and_then(|text| serde_json::from_str::<Preset>(&text).map_err(|e| e.to_string()))
        .map_err(|reason| format!("{} is no Dreamroll preset ({reason})", path.display()))
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
    /// has no parameter for, or cannot read, in words. A preset is a whole sound, so a shaping
    /// parameter it does not name is at its default, the same whatever played before; only
    /// the parts' routing (mute, MIDI channel) is the producer's setup and stays unless named.
    pub fn preset_values(&self, preset: &Preset) -> Result<BTreeMap<String, f32>, String> {
        struct Read<'a> {
            preset: &'a Preset,
            values: BTreeMap<String, f32>,
            unread: Vec<String>,
            named: usize,
        }
        impl ShapingVisitor for Read<'_> {
            fn visit<P: Param>(&mut self, id: &str, param: &P) {
                let Some(text) = self.preset.values.get(id) else {
                    if !is_routing(id) {
                        self.values.insert(id.to_string(), param.default_normalized_value());
                    }
                    return;
                };
                match param.string_to_normalized_value(text) {
                    Some(value) => {
                        self.values.insert(id.to_string(), value);
                        self.named += 1;
                    }
                    None => self.unread.push(format!("{} {text:?}", param.name())),
                }
            }
        }
        let mut read = Read { preset, values: BTreeMap::new(), unread: Vec::new(), named: 0 };
        self.visit_shaping(&mut read);
        let unknown = preset.values.len() - read.named - read.unread.len();
        if unknown > 0 {
            read.unread.push(format!("{unknown} values for parameters this Dreamroll does not have"));
        }
        match read.unread.is_empty() {
            true => Ok(read.values),
            false => Err(format!("preset {:?} cannot be read: {}", preset.name, read.unread.join(", "))),
        }
    }
}

/// A part's mute and MIDI channel: how the producer wired Dreamroll into the song.
fn is_routing(id: &str) -> bool {
    id.starts_with("mute_") || id.starts_with("channel_")
}

/// The installed models by name: the built-in one and the folders of `models` (the folder the
/// model picker lists), the first of each name as the picker lists them. Only their cards are
/// read.
pub fn installed_models(models: Option<&Path>) -> BTreeMap<String, ModelSource> {
    let mut found = BTreeMap::new();
    scan_models(models, &std::sync::atomic::AtomicBool::new(false), |entry| {
        if let Ok(name) = entry.status {
            found.entry(name).or_insert(entry.source);
        }
    });
    found
}

/// The plugin state that plays `preset`: its parameter values, and a session holding its model
/// and the pattern it writes, so the notes are there the moment the host loads it. `live` is
/// the state of the instance loading it, whose clip, morph points and history are the
/// producer's and stay; without it (a preset file for any instance) there are none. The model
/// is looked for in `models` (see [`installed_models`]).
pub fn preset_state(preset: &Preset, live: Option<&PluginState>, models: Option<&Path>) -> Result<PluginState, String> {
    let source = installed_models(models).remove(&preset.model).ok_or_else(|| {
        format!("preset {:?} is for the model {:?}, which is not installed here", preset.name, preset.model)
    })?;
    let generator = source.load().map_err(|e| format!("preset {:?}: {e}", preset.name))?;
    let card = generator.card();
    let params = DreamrollParams::default();
    params.style_names.show(card.styles.iter().map(|style| &style.name));
    let values = params.preset_values(preset)?;
    // A persisted field is kept as JSON of its value, here the session's own text.
    let live_session = live.and_then(|state| state.fields.get(SESSION_FIELD));
    let live_session = live_session.and_then(|field| deserialize_field::<String>(field).ok()).filter(|t| !t.is_empty());
    let kept = match live_session {
        Some(text) => {
            Some(parse_session(&text).map_err(|e| format!("preset {:?} cannot keep the clip: {e}", preset.name))?)
        }
        None => None,
    };
    if let Some(kept) = &kept {
        params.clip.set(kept.clip.clone().map(std::sync::Arc::new));
        params.morph_points.set(kept.morph_points.clone());
    }
    params.takes.store(preset.take, std::sync::atomic::Ordering::Release);
    let state_params = set_and_list(&params, &values);
    let settings = settings_for(&params, card);
    let clip = clip_for(&generator, &settings)
        .map_err(|e| format!("preset {:?}: the clip cannot be used: {e}", preset.name))?;
    let roll = match generator.render_from(&settings.request, &settings.source, clip.as_ref()) {
        Ok(roll) => roll,
        // A preset that answers what the producer plays (Follow chords, a clip source) is
        // silent until they do, as a fresh instance in that mode is.
        Err(SourceError::NoChord | SourceError::NoClip(_)) => {
            let representation = std::sync::Arc::new(card.representation.clone());
            Roll::new(representation, settings.request.bars * card.representation.steps_per_bar())
        }
        Err(e) => return Err(format!("preset {:?} cannot be written: {e}", preset.name)),
    };
    let pattern = build_pattern(&roll, &settings.voicing);
    let (clip, morph_points, history) = match kept {
        Some(kept) => (kept.clip, kept.morph_points, kept.history),
        None => Default::default(),
    };
    let session = Session {
        schema_version: SESSION_VERSION,
        model: source,
        settings,
        takes: preset.take,
        pattern,
        clip,
        morph_points,
        history,
    };
    let session = serde_json::to_string(&session)
        .and_then(|text| serialize_field(&text))
        .map_err(|e| format!("preset {:?}: {e}", preset.name))?;
    Ok(PluginState {
        version: env!("CARGO_PKG_VERSION").to_string(),
        params: state_params,
        fields: BTreeMap::from([(SESSION_FIELD.to_string(), session)]),
    })
}

/// Sets `values` (normalised, by shaping ID) on `params`, a set of its own no host sees, and
/// lists them as plugin state lists parameters: plain values under the host-facing IDs.
/// nice-plug sets a parameter only from a host or an editor, or through its raw pointer.
#[allow(unsafe_code)]
fn set_and_list(params: &DreamrollParams, values: &BTreeMap<String, f32>) -> BTreeMap<String, ParamValue> {
    struct Set<'a> {
        values: &'a BTreeMap<String, f32>,
        set: Vec<(ParamPtr, f32)>,
    }
    impl ShapingVisitor for Set<'_> {
        fn visit<P: Param>(&mut self, id: &str, param: &P) {
            if let Some(&value) = self.values.get(id) {
                self.set.push((param.as_ptr(), value));
            }
        }
    }
    let mut set = Set { values, set: Vec::new() };
    params.visit_shaping(&mut set);
    let host_ids: std::collections::HashMap<ParamPtr, String> =
        params.param_map().into_iter().map(|(id, ptr, _)| (ptr, id)).collect();
    set.set
        .into_iter()
        .filter_map(|(ptr, value)| {
            // SAFETY: `ptr` points into `params`, borrowed for this whole call, and no other
            // thread has it.
            let (plain, enum_id) = unsafe {
                ptr._internal_set_normalized_value(value);
                let enum_id = match ptr {
                    ParamPtr::EnumParam(param) => (*param).unmodulated_plain_id().map(str::to_string),
                    _ => None,
                };
                (ptr.unmodulated_plain_value(), enum_id)
            };
            // As nice-plug saves them, so a preset file reads like a saved project.
            let saved = match (ptr, enum_id) {
                (ParamPtr::FloatParam(_), _) => ParamValue::F32(plain),
                (ParamPtr::EnumParam(_), Some(id)) => ParamValue::String(id),
                (ParamPtr::IntParam(_) | ParamPtr::EnumParam(_), _) => ParamValue::I32(plain.round() as i32),
                (ParamPtr::BoolParam(_), _) => ParamValue::Bool(plain > 0.5),
            };
            Some((host_ids.get(&ptr)?.clone(), saved))
        })
        .collect()
}

/// Dreamroll's folder in a VST3 preset folder, `<root>/<vendor>/<plugin>` as the SDK lays out.
pub fn vst3_preset_folder(root: &Path) -> PathBuf {
    root.join(<Dreamroll as Plugin>::VENDOR).join(<Dreamroll as Plugin>::NAME)
}

/// A VST3 preset file (Steinberg's `.vstpreset`: a header with the plugin's class ID, the
/// component's state as a chunk, and a chunk list) holding `state`. The state is nice-plug's,
/// as its VST3 `getState` writes it: the plugin state as JSON. The class ID is written as the
/// hex of its 16 bytes on every OS: nice-plug shuffles the ID's bytes on Windows so that the
/// SDK's COM-ordered string of them is this same text there.
pub fn vst3_preset_file(state: &PluginState) -> Vec<u8> {
    let class_id = <Dreamroll as Vst3Plugin>::VST3_CLASS_ID;
    const HEADER_BYTES: u64 = 4 + 4 + 32 + 8;
    let chunk = serde_json::to_vec(state).expect("plugin state is plain data");
    let list_at = HEADER_BYTES + chunk.len() as u64;
    let mut file = Vec::with_capacity(list_at as usize + 32);
    file.extend_from_slice(b"VST3");
    file.extend_from_slice(&1i32.to_le_bytes());
    file.extend(class_id.iter().flat_map(|byte| format!("{byte:02X}").into_bytes()));
    file.extend_from_slice(&(list_at as i64).to_le_bytes());
    file.extend_from_slice(&chunk);
    file.extend_from_slice(b"List");
    file.extend_from_slice(&1i32.to_le_bytes());
    file.extend_from_slice(b"Comp");
    file.extend_from_slice(&(HEADER_BYTES as i64).to_le_bytes());
    file.extend_from_slice(&(chunk.len() as i64).to_le_bytes());
    file
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
            assert!(preset.values.keys().all(|id| values.contains_key(id)), "{}: every value read", preset.name);
            assert!(!values.keys().any(|id| is_routing(id) && !preset.values.contains_key(id)), "routing stays");
            if !preset.values.contains_key("humanise") {
                assert_eq!(values["humanise"], params.humanise.default_normalized_value(), "unnamed: the default");
            }
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

    fn shipped_models() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
    }

    /// The session a preset's state carries, read as the plugin reads a project's.
    fn session_of(state: &PluginState) -> Session {
        let text: String = deserialize_field(&state.fields[SESSION_FIELD]).unwrap();
        parse_session(&text).unwrap()
    }

    #[test]
    fn a_preset_state_sets_its_values_and_carries_its_model_and_the_pattern_they_write() {
        let factory = factory();
        let bossa = factory.iter().find(|p| p.name == "Bossa nova").unwrap();
        let state = preset_state(bossa, None, Some(&shipped_models())).unwrap();
        assert!(matches!(state.params["seed"], ParamValue::I32(2)), "{:?}", state.params["seed"]);
        assert!(matches!(&state.params["source"], ParamValue::String(_) | ParamValue::I32(0)), "Dream");
        assert!(!state.params.contains_key("channel_1"), "routing stays as the producer set it");
        let session = session_of(&state);
        assert!(matches!(&session.model, ModelSource::Folder(dir) if dir.ends_with("band")), "{:?}", session.model);
        assert_eq!(session.settings.request.style.as_deref(), Some("bossanova"));
        assert!(!session.pattern.notes.is_empty());
        assert_eq!(session.pattern, session_of(&preset_state(bossa, None, Some(&shipped_models())).unwrap()).pattern);

        // Following chords with none held yet: silent until the producer plays one.
        let on_chords = factory.iter().find(|p| p.values.get("source").is_some_and(|s| s == "Follow chords")).unwrap();
        let session = session_of(&preset_state(on_chords, None, Some(&shipped_models())).unwrap());
        assert!(session.pattern.notes.is_empty() && session.pattern.bars > 0, "{:?}", session.pattern.bars);

        let missing = Preset { model: "no-such-model".into(), ..bossa.clone() };
        let error = preset_state(&missing, None, Some(&shipped_models())).unwrap_err();
        assert!(error.contains("\"no-such-model\", which is not installed here"), "{error}");
    }

    #[test]
    fn a_preset_loaded_into_an_instance_keeps_its_clip() {
        let factory = factory();
        let bossa = factory.iter().find(|p| p.name == "Bossa nova").unwrap();
        let clip = crate::plugin::session::tests::one_note_take();
        let chorale = factory.iter().find(|p| p.model == "chorales-satb").unwrap();
        let mut live = preset_state(chorale, None, Some(&shipped_models())).unwrap();
        let mut session = session_of(&live);
        session.clip = Some(clip.clone());
        let text = serde_json::to_string(&session).unwrap();
        live.fields.insert(SESSION_FIELD.into(), serialize_field(&text).unwrap());
        let loaded = session_of(&preset_state(bossa, Some(&live), Some(&shipped_models())).unwrap());
        assert_eq!(loaded.clip, Some(clip), "the producer's clip stays");
        assert_eq!(loaded.settings.request.style.as_deref(), Some("bossanova"));
    }

    #[test]
    fn a_vst3_preset_file_has_the_sdks_header_chunk_and_chunk_list() {
        let state = PluginState { version: "1".into(), params: BTreeMap::new(), fields: BTreeMap::new() };
        let file = vst3_preset_file(&state);
        let chunk = serde_json::to_vec(&state).unwrap();
        assert_eq!(&file[..4], b"VST3");
        assert_eq!(i32::from_le_bytes(file[4..8].try_into().unwrap()), 1);
        assert_eq!(&file[8..40], b"447265616D726F6C6C4D69646947656E", "the class ID, as hex of its 16 bytes");
        let list_at = i64::from_le_bytes(file[40..48].try_into().unwrap()) as usize;
        assert_eq!(&file[48..list_at], chunk.as_slice(), "the component state: nice-plug's JSON");
        assert_eq!(&file[list_at..list_at + 8], b"List\x01\0\0\0");
        assert_eq!(&file[list_at + 8..list_at + 12], b"Comp");
        assert_eq!(i64::from_le_bytes(file[list_at + 12..list_at + 20].try_into().unwrap()), 48);
        assert_eq!(i64::from_le_bytes(file[list_at + 20..list_at + 28].try_into().unwrap()) as usize, chunk.len());
        assert_eq!(file.len(), list_at + 28);
        assert!(vst3_preset_folder(Path::new("/p")).ends_with("Dreamroll/Dreamroll"));
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
