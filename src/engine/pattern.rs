//! A decoded roll made playable: transposed, locked to a key and scale, given velocities and
//! channels. Pure, and run off the audio thread.

use crate::model::latent::unit_interval;
use crate::roll::swing::Swing;
use crate::roll::Roll;
use crate::schedule::{Pattern, PatternNote, MAX_DELAY};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Scales a pattern can be locked to, as pitch classes above the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scale {
    Chromatic,
    Major,
    Minor,
    Dorian,
    Mixolydian,
    HarmonicMinor,
    MajorPentatonic,
    MinorPentatonic,
}

impl Scale {
    pub const ALL: [Scale; 8] = [
        Scale::Chromatic,
        Scale::Major,
        Scale::Minor,
        Scale::Dorian,
        Scale::Mixolydian,
        Scale::HarmonicMinor,
        Scale::MajorPentatonic,
        Scale::MinorPentatonic,
    ];

    pub fn degrees(self) -> &'static [u8] {
        match self {
            Scale::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            Scale::Major => &[0, 2, 4, 5, 7, 9, 11],
            Scale::Minor => &[0, 2, 3, 5, 7, 8, 10],
            Scale::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Scale::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Scale::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Scale::MajorPentatonic => &[0, 2, 4, 7, 9],
            Scale::MinorPentatonic => &[0, 3, 5, 7, 10],
        }
    }

    /// Display names, in the order of [`Scale::ALL`].
    pub const NAMES: [&'static str; 8] = [
        "Chromatic",
        "Major",
        "Minor",
        "Dorian",
        "Mixolydian",
        "Harmonic minor",
        "Major pentatonic",
        "Minor pentatonic",
    ];
    /// The stable names projects and the command line use, in the same order.
    pub const IDS: [&'static str; 8] = [
        "chromatic",
        "major",
        "minor",
        "dorian",
        "mixolydian",
        "harmonic-minor",
        "major-pentatonic",
        "minor-pentatonic",
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn id(self) -> &'static str {
        Scale::IDS[self.index()]
    }

    pub fn from_id(id: &str) -> Option<Scale> {
        Scale::ALL.into_iter().find(|s| s.id().eq_ignore_ascii_case(id.trim()))
    }

    pub fn name(self) -> &'static str {
        Scale::NAMES[self.index()]
    }
}

/// The nearest pitch of the scale on `key` (0 = C); between two, the lower, so that a
/// locked line never climbs where the model did not. Out-of-scale notes are moved, never
/// dropped.
pub fn snap_to_scale(pitch: u8, key: u8, scale: Scale) -> u8 {
    let in_scale = |p: i32| scale.degrees().contains(&(((p - i32::from(key)).rem_euclid(12)) as u8));
    let pitch = i32::from(pitch);
    let nearest = (0..=6)
        .flat_map(|distance| [pitch - distance, pitch + distance])
        .find(|&p| (0..=127).contains(&p) && in_scale(p))
        .unwrap_or(pitch);
    nearest as u8
}

/// The velocity of a plain note in a model's roll (the card's default velocity, which every
/// trained model has): such a note plays at the *Velocity* parameter, and a note the model
/// plays louder or softer (an accent, a ghost note) plays as much louder or softer.
pub const PLAIN_VELOCITY: u8 = 90;

/// How a roll becomes a pattern.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatternOptions {
    pub key: u8,
    pub scale: Scale,
    pub transpose: i8,
    /// Velocity of an unaccented note, 1..=127.
    pub velocity: u8,
    /// 0..=1: how much velocities and timing vary, drawn from the seed so that recall is
    /// exact. Timing only ever lags (up to a quarter step at 1), so no note leaves its step
    /// and none is heard before the bar line a new pattern starts on.
    pub humanise: f32,
    pub seed: u64,
    /// Per roll track: its MIDI channel (0-based) and whether it is muted.
    pub channels: Vec<u8>,
    pub muted: Vec<bool>,
    #[serde(default)]
    pub swing: Swing,
}

impl PatternOptions {
    /// The notes as the model wrote them: no scale lock, transposition or humanising, at
    /// velocity 90, each track on `channels[track]`, none muted.
    pub fn plain(channels: Vec<u8>) -> PatternOptions {
        let muted = vec![false; channels.len()];
        PatternOptions {
            key: 0,
            scale: Scale::Chromatic,
            transpose: 0,
            velocity: 90,
            humanise: 0.0,
            seed: 1,
            channels,
            muted,
            swing: Swing::STRAIGHT,
        }
    }
}

/// The pattern of a roll: every note moved, locked, voiced and put on its track's channel. Notes
/// that land on one step, channel and pitch (two pitches locked to one, two tracks on one
/// channel) are one note: the first, in the roll's order.
pub fn build_pattern(roll: &Roll, options: &PatternOptions) -> Pattern {
    let representation = roll.representation();
    let steps_per_beat = u32::from(representation.steps_per_beat);
    let steps_per_bar = representation.steps_per_bar();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut notes: Vec<PatternNote> = Vec::new();
    for note in roll.notes() {
        // One draw per note whether or not it plays, so muting a track changes no other velocity.
        let spread: f32 = rng.random::<f32>() * 2.0 - 1.0;
        let lag: f32 = rng.random::<f32>();
        if options.muted.get(note.track).copied().unwrap_or(false) {
            continue;
        }
        // A drum's pitch is its sound: key, scale and transposition are not a drum's.
        let pitch = match representation.tracks[note.track].is_drum {
            true => note.pitch,
            false => {
                let moved = (i32::from(note.pitch) + i32::from(options.transpose)).clamp(0, 127) as u8;
                snap_to_scale(moved, options.key % 12, options.scale)
            }
        };
        let downbeat = note.start % steps_per_bar == 0;
        let accent = if downbeat { 8.0 } else { 0.0 };
        let humanise = unit_interval(options.humanise);
        // The model's loudness for the note, as the Velocity parameter scales it.
        let loudness = f32::from(note.velocity) * f32::from(options.velocity) / f32::from(PLAIN_VELOCITY);
        let velocity = (loudness + accent + humanise * 24.0 * spread).round().clamp(1.0, 127.0) as u8;
        notes.push(PatternNote {
            start: note.start as u32,
            length: note.length as u32,
            channel: options.channels.get(note.track).copied().unwrap_or(representation.tracks[note.track].channel),
            pitch,
            velocity,
            delay: (humanise * lag * f32::from(MAX_DELAY)).round() as u8,
        });
    }
    notes.sort_by_key(|n| (n.start, n.channel, n.pitch));
    notes.dedup_by_key(|n| (n.start, n.channel, n.pitch));
    Pattern {
        steps_per_beat,
        meter: representation.meter,
        bars: (roll.steps() / steps_per_bar) as u32,
        notes,
        swing: options.swing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::{GridNote, Meter, Representation, TrackSpec};
    use std::sync::Arc;

    fn options() -> PatternOptions {
        PatternOptions::plain(vec![0, 1])
    }

    fn roll(notes: &[(usize, usize, u8)]) -> Roll {
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 2,
            lowest_pitch: 36,
            pitch_count: 60,
            tracks: vec![TrackSpec::new("Lead", 0), TrackSpec::new("Bass", 1)],
        });
        let mut roll = Roll::new(representation, 32);
        for &(track, start, pitch) in notes {
            roll.place(GridNote { track, start, pitch, length: 2, velocity: 90 }).unwrap();
        }
        roll
    }

    #[test]
    fn drums_keep_their_sounds_under_transposition_and_scale_lock() {
        let representation =
            crate::roll::one_bar_grid(vec![TrackSpec::new("Bass", 0), TrackSpec::drums("Snare", vec![37, 38])]);
        let mut roll = Roll::new(representation, 16);
        roll.place(GridNote { track: 0, start: 0, pitch: 37, length: 2, velocity: 90 }).unwrap();
        roll.place(GridNote { track: 1, start: 4, pitch: 37, length: 1, velocity: 90 }).unwrap();
        let mut o = PatternOptions::plain(vec![0, crate::roll::DRUM_CHANNEL]);
        (o.key, o.scale, o.transpose) = (0, Scale::Major, 2);
        let pitches: Vec<(u8, u8)> = build_pattern(&roll, &o).notes.iter().map(|n| (n.channel, n.pitch)).collect();
        assert_eq!(
            pitches,
            vec![(0, 38), (crate::roll::DRUM_CHANNEL, 37)],
            "the bass moves and locks, the side stick stays"
        );
    }

    #[test]
    fn snapping_moves_to_the_nearest_degree_and_down_on_a_tie() {
        assert_eq!(snap_to_scale(61, 0, Scale::Major), 60, "C# between C and D goes down");
        assert_eq!(snap_to_scale(66, 0, Scale::Major), 65, "F# between F and G goes down");
        assert_eq!(snap_to_scale(64, 0, Scale::Major), 64, "in scale, unchanged");
        assert_eq!(snap_to_scale(63, 9, Scale::MinorPentatonic), 62, "D# in A minor pentatonic: between D and E, down");
        assert_eq!(snap_to_scale(65, 9, Scale::MinorPentatonic), 64, "F: E is nearer than G");
        assert_eq!(snap_to_scale(70, 2, Scale::Dorian), 69, "Bb in D dorian -> A");
        for scale in Scale::ALL {
            for key in 0..12 {
                for pitch in 0..=127u8 {
                    let snapped = snap_to_scale(pitch, key, scale);
                    assert!(scale.degrees().contains(&((i32::from(snapped) - i32::from(key)).rem_euclid(12) as u8)));
                    assert!((i32::from(snapped) - i32::from(pitch)).abs() <= 2, "{} moved too far", scale.name());
                }
            }
        }
    }

    #[test]
    fn notes_are_transposed_locked_and_channelled() {
        let mut o = options();
        o.scale = Scale::Major;
        o.transpose = 1;
        o.channels = vec![4, 7];
        let pattern = build_pattern(&roll(&[(0, 0, 64), (1, 4, 47)]), &o);
        let got: Vec<(u32, u8, u8)> = pattern.notes.iter().map(|n| (n.start, n.channel, n.pitch)).collect();
        assert_eq!(got, vec![(0, 4, 65), (4, 7, 48)], "E+1 = F in C major; B+1 = C");
        assert_eq!(pattern.bars, 2);
    }

    #[test]
    fn muting_drops_a_track_without_changing_the_others() {
        let full = roll(&[(0, 0, 60), (1, 0, 40), (0, 5, 62)]);
        let mut o = options();
        o.humanise = 1.0;
        let all = build_pattern(&full, &o);
        o.muted = vec![false, true];
        let lead_only = build_pattern(&full, &o);
        assert_eq!(lead_only.notes.len(), 2);
        let lead: Vec<_> = all.notes.iter().filter(|n| n.channel == 0).copied().collect();
        assert_eq!(lead_only.notes, lead);
    }

    #[test]
    fn humanised_timing_only_lags_within_a_quarter_step_and_is_fixed_by_the_seed() {
        let notes = roll(&(0..16).map(|i| (i % 2, i * 2, 60 + i as u8)).collect::<Vec<_>>());
        assert!(build_pattern(&notes, &options()).notes.iter().all(|n| n.delay == 0), "no humanise, on the grid");
        let mut o = options();
        o.humanise = 1.0;
        let humanised = build_pattern(&notes, &o);
        assert!(humanised.notes.iter().all(|n| n.delay <= MAX_DELAY));
        assert!(humanised.notes.iter().filter(|n| n.delay > 8).count() >= 8, "most notes move: {:?}", humanised.notes);
        assert_eq!(humanised, build_pattern(&notes, &o));
        o.humanise = 0.5;
        assert!(build_pattern(&notes, &o).notes.iter().all(|n| n.delay <= MAX_DELAY / 2));
    }

    #[test]
    fn a_nan_humanise_is_no_humanising() {
        let notes = roll(&[(0, 0, 60), (0, 6, 62)]);
        let mut o = options();
        o.humanise = f32::NAN;
        assert_eq!(build_pattern(&notes, &o), build_pattern(&notes, &options()), "velocity 0 is no note to play");
    }

    #[test]
    fn notes_locked_or_channelled_onto_one_key_are_one_note() {
        let mut o = options();
        o.scale = Scale::Major;
        o.channels = vec![3, 3];
        let pattern = build_pattern(&roll(&[(0, 0, 60), (0, 0, 61), (1, 0, 60), (1, 4, 62)]), &o);
        assert_eq!(
            pattern.notes.iter().map(|n| (n.start, n.channel, n.pitch)).collect::<Vec<_>>(),
            vec![(0, 3, 60), (4, 3, 62)]
        );
    }

    #[test]
    fn velocities_accent_downbeats_and_humanise_by_seed() {
        let notes = roll(&[(0, 0, 60), (0, 6, 62)]);
        let plain = build_pattern(&notes, &options());
        assert_eq!(plain.notes.iter().map(|n| n.velocity).collect::<Vec<_>>(), vec![98, 90]);
        let mut o = options();
        o.humanise = 1.0;
        let a = build_pattern(&notes, &o);
        assert_eq!(a, build_pattern(&notes, &o), "the same seed, the same velocities");
        o.seed = 2;
        assert_ne!(a, build_pattern(&notes, &o));
        assert!(a.notes.iter().all(|n| (1..=127).contains(&n.velocity)));
    }
}
