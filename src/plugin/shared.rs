//! The values the plugin's stages share beyond its parameters: the producer's clip, the
//! morph points and the chord heard on the input. The parameters own them, the session saves
//! and restores them, the engine reads them and the editor sets them; living here, below all
//! of those, none of them has to import another for them.

use super::history::History;
use crate::engine::worker::lock;
use crate::model::source::MorphPoint;
use crate::roll::Take;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A chord held on the input, latched: it stays until another of two or more pitch classes
/// is held, so that letting go of the keys does not stop the following.
#[derive(Default)]
pub struct HeardChord(AtomicU32);

impl HeardChord {
    /// Pitch classes (bit c for class c) and the lowest key held, where known (a chord
    /// restored from a project has no keys).
    pub fn get(&self) -> Option<(u16, Option<u8>)> {
        let packed = self.0.load(Ordering::Acquire);
        let bass = (packed >> 16) as u8;
        (packed != 0).then(|| ((packed & 0xfff) as u16, bass.checked_sub(1)))
    }

    pub fn set(&self, chord: Option<(u16, Option<u8>)>) {
        let pack = |(classes, bass): (u16, Option<u8>)| {
            u32::from(classes & 0xfff) | u32::from(bass.map_or(0, |b| b.min(127) + 1)) << 16
        };
        self.0.store(chord.map_or(0, pack), Ordering::Release);
    }

    /// The chord as one number, for a fingerprint.
    pub fn packed(&self) -> u64 {
        u64::from(self.0.load(Ordering::Acquire))
    }
}

/// A value the editor, the engine and the state saver share, with a count of its changes so
/// that a fingerprint (computed on the audio thread too) tells values apart without reading
/// them. The audio thread only ever reads the serial.
#[derive(Default)]
pub struct Shared<T> {
    value: Mutex<T>,
    serial: AtomicU64,
}

impl<T: Clone> Shared<T> {
    pub fn get(&self) -> T {
        lock(&self.value).clone()
    }

    pub fn set(&self, value: T) {
        self.update(|old| *old = value);
    }

    pub fn update(&self, change: impl FnOnce(&mut T)) {
        change(&mut lock(&self.value));
        self.serial.fetch_add(1, Ordering::AcqRel);
    }

    pub fn serial(&self) -> u64 {
        self.serial.load(Ordering::Acquire)
    }
}

/// The producer's clip: the newest take, or a loaded file.
pub type ClipSlot = Shared<Option<Arc<Take>>>;
/// Morph points A (0) and B (1), set from the editor.
pub type MorphPoints = Shared<[Option<MorphPoint>; 2]>;

/// What a saved session restores beyond parameter values, handed to it by the plugin: the
/// seed's take count, the clip, the chord followed, the morph points and the history.
#[derive(Clone, Default)]
pub struct SessionSlots {
    pub takes: Arc<AtomicU32>,
    pub clip: Arc<ClipSlot>,
    pub chord: Arc<HeardChord>,
    pub morph: Arc<MorphPoints>,
    pub history: Arc<HistorySlot>,
}

/// The patterns this session made (see [`History`]): written by the engine's thread as the
/// parameters ask for new ones and by the editor as it steps through them. Not a [`Shared`]:
/// it changes with every pattern, which the audio thread's fingerprint must not count.
pub type HistorySlot = Mutex<History>;

/// The loaded model's style names, for the *Style* parameter to show and read: the parameter
/// is a number to a host, which has no list of the model's styles, and the model can change
/// under it. Written by the engine's thread when it makes settings for a model; read where
/// hosts ask for a parameter's text (never the audio thread).
#[derive(Default)]
pub struct StyleNames(Mutex<Vec<String>>);

impl StyleNames {
    pub fn show(&self, names: impl IntoIterator<Item = impl AsRef<str>>) {
        *lock(&self.0) = names.into_iter().map(|name| name.as_ref().to_string()).collect();
    }

    pub fn names(&self) -> Vec<String> {
        lock(&self.0).clone()
    }

    /// Step `step` of the parameter: 0 is any style, `n` the model's n-th.
    pub fn text(&self, step: i32) -> String {
        match usize::try_from(step) {
            Ok(0) | Err(_) => "Any".to_string(),
            Ok(n) => lock(&self.0).get(n - 1).cloned().unwrap_or_else(|| format!("Style {n}")),
        }
    }

    /// The step a text names: `Any`, a style's name (in any case), or `Style n` / `n`.
    pub fn step(&self, text: &str) -> Option<i32> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("any") {
            return Some(0);
        }
        if let Some(n) = lock(&self.0).iter().position(|name| name.eq_ignore_ascii_case(text)) {
            return i32::try_from(n + 1).ok();
        }
        let number = text.strip_prefix("Style").unwrap_or(text).trim();
        number.parse().ok()
    }

    /// The style a step names, for the model whose names are shown.
    pub fn name(&self, step: i32) -> Option<String> {
        usize::try_from(step).ok().filter(|&n| n > 0).and_then(|n| lock(&self.0).get(n - 1).cloned())
    }
}
