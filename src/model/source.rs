//! The source modes a render can have, as plain data: where the notes come from, what a
//! mode reads (the clip, a held chord, morph points) and the points a morph moves between.
//! No framework derives here: the plugin's parameter and the CLI implement their traits at
//! their own edges.

use crate::metrics::chords::PitchClasses;
use crate::roll::Take;
use serde::{Deserialize, Serialize};

/// Where the notes come from: the producer's choice, one type for the plugin's parameter
/// (whose stable IDs projects store), the command line's `--source` and saved settings. The
/// frameworks' traits (nice-plug's `Enum`, the CLI's parser) are implemented where they are
/// needed, from [`SourceMode::IDS`] and [`SourceMode::LABELS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    /// From the latent alone: the seed, the knobs.
    #[default]
    Dream,
    /// The clip written again, a distance away.
    Vary,
    /// The clip's parts kept, the others written around them.
    Harmonise,
    /// The bars that follow the clip.
    Continue,
    /// From the latent, with strong beats on the chord the producer holds (or the clip's
    /// chord in each bar, a chord track).
    FollowChords,
}

impl SourceMode {
    pub const ALL: [SourceMode; 5] =
        [SourceMode::Dream, SourceMode::Vary, SourceMode::Harmonise, SourceMode::Continue, SourceMode::FollowChords];
    /// Stable forever: projects (the parameter and the saved settings) and `--source` name
    /// modes by these.
    pub const IDS: [&'static str; 5] = ["dream", "vary", "harmonise", "continue", "follow-chords"];
    /// As the editor and hosts show them.
    pub const LABELS: [&'static str; 5] = ["Dream", "Vary", "Harmonise", "Continue", "Follow chords"];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn id(self) -> &'static str {
        Self::IDS[self.index()]
    }

    pub fn from_id(id: &str) -> Option<SourceMode> {
        Self::ALL.into_iter().find(|mode| mode.id() == id)
    }

    /// The mode in a sentence.
    pub fn name(self) -> &'static str {
        match self {
            SourceMode::Dream => "dream",
            SourceMode::Vary => "vary",
            SourceMode::Harmonise => "harmonise",
            SourceMode::Continue => "continue",
            SourceMode::FollowChords => "follow chords",
        }
    }

    /// Whether a render in this mode reads the producer's clip: every mode but Dream, and
    /// Follow chords only as a chord track, when no chord is held. The one place that says
    /// so, for the parameters, the engine, the editor and the command line.
    pub fn reads_clip(self, chord_held: bool) -> bool {
        match self {
            SourceMode::Dream => false,
            SourceMode::FollowChords => !chord_held,
            SourceMode::Vary | SourceMode::Harmonise | SourceMode::Continue => true,
        }
    }

    /// Whether a chord held on the input steers a render in this mode.
    pub fn follows_chords(self) -> bool {
        self == SourceMode::FollowChords
    }

    /// Whether morph points steer a render in this mode.
    pub fn morphs(self) -> bool {
        self == SourceMode::Dream
    }
}

/// The source of a render and how it reads the clip.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub mode: SourceMode,
    /// Vary: 0 plays the clip as the model reads it, 1 is unrelated to it.
    pub distance: f32,
    /// Harmonise: the parts to keep; empty keeps every part the clip plays.
    pub keep: Vec<usize>,
    /// Follow chords: one chord per bar, repeating (pitch classes, bit c for pitch class c);
    /// empty reads each bar's chord from the clip.
    #[serde(default)]
    pub chords: Vec<PitchClasses>,
    /// Dream: between two stored points rather than from the seed alone.
    #[serde(default)]
    pub morph: Option<Morph>,
}

/// A point in the latent space a producer stores to morph from or to: the seed and knobs of
/// a pattern they liked, or a clip as the encoder reads it. Stored as what made it, not as
/// numbers, so that it means the same music after a project is reopened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MorphPoint {
    Dream {
        seed: u64,
        knobs: Vec<f32>,
        named: Vec<f32>,
        /// The style it was dreamed in (points from before styles have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        style: Option<String>,
    },
    Clip(Take),
}

/// Two points and how far from the first to the second (0 is A, 1 is B).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Morph {
    pub a: MorphPoint,
    pub b: MorphPoint,
    pub amount: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_what_saved_settings_call_the_modes() {
        for mode in SourceMode::ALL {
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{}\"", mode.id()));
            assert_eq!(SourceMode::from_id(mode.id()), Some(mode));
            assert_eq!(SourceMode::ALL[mode.index()], mode);
        }
        assert_eq!(SourceMode::from_id("Dream"), None, "ids, not labels");
    }

    #[test]
    fn follow_chords_reads_the_clip_only_while_no_chord_is_held() {
        let reading = |held| SourceMode::ALL.into_iter().filter(|m| m.reads_clip(held)).collect::<Vec<_>>();
        assert_eq!(
            reading(false),
            [SourceMode::Vary, SourceMode::Harmonise, SourceMode::Continue, SourceMode::FollowChords]
        );
        assert_eq!(reading(true), [SourceMode::Vary, SourceMode::Harmonise, SourceMode::Continue]);
    }
}
