//! The grid that every roll lives on.
//!
//! A roll's cells mean nothing without the grid they were cut on, so the grid travels with
//! every roll (and, later, with every model card) and is validated once, where it enters.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A time signature. The *beat* of a representation is the denominator's note value, so
/// 6/8 has six eighth-note beats per bar and 4/4 four quarter-note beats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Meter {
    pub numerator: u8,
    pub denominator: u8,
}

impl Meter {
    pub const COMMON: Meter = Meter { numerator: 4, denominator: 4 };

    pub fn new(numerator: u8, denominator: u8) -> Result<Meter, RepresentationError> {
        let meter = Meter { numerator, denominator };
        meter.validate()?;
        Ok(meter)
    }

    /// A bar's length in quarter notes (6/8 is three).
    pub fn quarters_per_bar(self) -> f64 {
        f64::from(self.numerator) * 4.0 / f64::from(self.denominator)
    }

    /// Whether music notated in `self` is the same music in `model`'s bars: the same meter,
    /// or cut time and common time (2/2 and 4/4), which differ only in the beat it is counted
    /// in — the same bar, the same strong first and third quarter, the same 16th grid.
    /// O'Neill's and Ryan's reels are notated in 2/2. Meters of one length but another
    /// grouping (3/4 and 6/8) are different music and stay apart.
    pub fn reads_as(self, model: Meter) -> bool {
        let duple = |m: Meter| m.numerator.is_power_of_two() && m.denominator <= 4;
        self == model || (duple(self) && duple(model) && self.quarters_per_bar() == model.quarters_per_bar())
    }

    /// Any meter a MIDI file can state. Free-metre folk songs notate bars of 116/4, so the
    /// numerator is not bounded here; a representation bounds it (see [`MAX_BEATS_PER_BAR`]).
    fn validate(self) -> Result<(), RepresentationError> {
        if self.numerator == 0 {
            return Err(RepresentationError::new(format!("meter {self}: a bar needs at least one beat")));
        }
        if !self.denominator.is_power_of_two() || self.denominator > 64 {
            return Err(RepresentationError::new(format!(
                "meter {self}: the beat unit must be a power of two up to 64"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

impl std::str::FromStr for Meter {
    type Err = RepresentationError;

    fn from_str(text: &str) -> Result<Meter, RepresentationError> {
        let bad = || RepresentationError::new(format!("`{text}` is not a meter like 4/4 or 6/8"));
        let (numerator, denominator) = text.split_once('/').ok_or_else(bad)?;
        let numerator = numerator.trim().parse().map_err(|_| bad())?;
        let denominator = denominator.trim().parse().map_err(|_| bad())?;
        Meter::new(numerator, denominator)
    }
}

/// One roll track: which instrument part it holds and where its MIDI goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackSpec {
    pub name: String,
    /// MIDI channel, 0-based (0..=15).
    pub channel: u8,
    /// Drum tracks take the notes of the General MIDI percussion channel and are exempt
    /// from pitch metrics that only make sense for pitched parts.
    #[serde(default)]
    pub is_drum: bool,
    /// A drum lane's General MIDI sounds (a kick lane's are 35 and 36): the percussion notes
    /// it takes from a file and the only ones it plays, so that a lane is one voice choosing
    /// among its sounds as a drummer's limb does. Empty for a pitched track, and for a drum
    /// track that takes every sound.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sounds: Vec<u8>,
}

impl TrackSpec {
    pub fn new(name: impl Into<String>, channel: u8) -> TrackSpec {
        TrackSpec { name: name.into(), channel, is_drum: false, sounds: Vec::new() }
    }

    /// A drum track on the percussion channel; `sounds` as the field says.
    pub fn drums(name: impl Into<String>, sounds: Vec<u8>) -> TrackSpec {
        TrackSpec { name: name.into(), channel: DRUM_CHANNEL, is_drum: true, sounds }
    }

    /// Whether this track plays `pitch`: any pitch, unless it is a lane of chosen sounds.
    pub fn plays(&self, pitch: u8) -> bool {
        self.sounds.is_empty() || self.sounds.contains(&pitch)
    }
}

/// General MIDI's percussion channel (channel 10, 0-based 9).
pub const DRUM_CHANNEL: u8 = 9;

/// The shape of a piano roll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representation {
    /// Grid steps per beat (the meter's denominator note).
    pub steps_per_beat: u16,
    pub meter: Meter,
    /// How many bars a model sees at once.
    pub bars_per_phrase: u16,
    /// MIDI pitch of the roll's first pitch row.
    pub lowest_pitch: u8,
    /// Pitch rows; a narrow window fitted to the corpus keeps models small.
    pub pitch_count: u8,
    pub tracks: Vec<TrackSpec>,
}

/// Refuses a grid that cannot be rolled or written back to MIDI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid representation: {0}")]
pub struct RepresentationError(String);

impl RepresentationError {
    fn new(message: String) -> RepresentationError {
        RepresentationError(message)
    }
}

/// The finest grid supported: MuseGAN's 24 steps per quarter note, times four, is enough for
/// any tuplet a bar of real music uses, and keeps MIDI export at whole ticks.
pub const MAX_STEPS_PER_BEAT: u16 = 96;

/// The longest bar a roll holds; longer "bars" are free-metre notation, not a grid to learn.
pub const MAX_BEATS_PER_BAR: u8 = 32;

impl Representation {
    /// Checks every field, so that code downstream can index without checks of its own.
    pub fn validate(&self) -> Result<(), RepresentationError> {
        if self.steps_per_beat == 0 || self.steps_per_beat > MAX_STEPS_PER_BEAT {
            return Err(RepresentationError::new(format!(
                "steps per beat is {}; it must be 1..={MAX_STEPS_PER_BEAT}",
                self.steps_per_beat
            )));
        }
        self.meter.validate()?;
        if self.meter.numerator > MAX_BEATS_PER_BAR || self.meter.denominator > 32 {
            return Err(RepresentationError::new(format!(
                "meter {}: a roll's bar has at most {MAX_BEATS_PER_BAR} beats of at least a 32nd note",
                self.meter
            )));
        }
        if self.bars_per_phrase == 0 || self.bars_per_phrase > 64 {
            return Err(RepresentationError::new(format!(
                "bars per phrase is {}; it must be 1..=64",
                self.bars_per_phrase
            )));
        }
        if self.pitch_count == 0 || u16::from(self.lowest_pitch) + u16::from(self.pitch_count) > 128 {
            return Err(RepresentationError::new(format!(
                "pitch window {}..{} is not inside MIDI's 0..128",
                self.lowest_pitch,
                u16::from(self.lowest_pitch) + u16::from(self.pitch_count)
            )));
        }
        if self.tracks.is_empty() || self.tracks.len() > 16 {
            return Err(RepresentationError::new(format!("{} tracks; a roll has 1..=16", self.tracks.len())));
        }
        for (index, track) in self.tracks.iter().enumerate() {
            if track.name.trim().is_empty() {
                return Err(RepresentationError::new(format!("track {index} has no name")));
            }
            if track.channel > 15 {
                return Err(RepresentationError::new(format!(
                    "track `{}` is on channel {}; channels are 0..=15",
                    track.name, track.channel
                )));
            }
            if track.is_drum != (track.channel == DRUM_CHANNEL) {
                return Err(RepresentationError::new(format!(
                    "track `{}`: drum tracks, and only they, use channel {DRUM_CHANNEL}",
                    track.name
                )));
            }
            if !track.sounds.is_empty() && !track.is_drum {
                return Err(RepresentationError::new(format!(
                    "track `{}` names sounds, which only a drum lane has",
                    track.name
                )));
            }
            if let Some(&pitch) = track.sounds.iter().find(|&&pitch| self.pitch_row(pitch).is_none()) {
                return Err(RepresentationError::new(format!(
                    "drum lane `{}` plays sound {pitch}, outside the pitch window",
                    track.name
                )));
            }
            if let Some(other) = self.tracks[..index].iter().rev().find(|t| t.channel == track.channel) {
                // One channel, several tracks: a drum kit's lanes, which must split its sounds
                // between them, or the voices of one part (a comping hand), which must sit
                // together, highest first, so that a chord is spread over them in order.
                let lanes_apart = track.is_drum
                    && !track.sounds.is_empty()
                    && self.tracks[..index]
                        .iter()
                        .filter(|t| t.channel == track.channel)
                        .all(|t| !t.sounds.is_empty() && t.sounds.iter().all(|s| !track.sounds.contains(s)));
                let voices_together = !track.is_drum && self.tracks[index - 1].channel == track.channel;
                if !(lanes_apart || voices_together) {
                    let why = if track.is_drum {
                        "drum lanes on one channel must each name their own sounds"
                    } else {
                        "the voices of one part must be neighbours"
                    };
                    return Err(RepresentationError::new(format!(
                        "tracks `{}` and `{}` share channel {}: {why}",
                        other.name, track.name, track.channel
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn beats_per_bar(&self) -> usize {
        usize::from(self.meter.numerator)
    }

    pub fn steps_per_beat(&self) -> usize {
        usize::from(self.steps_per_beat)
    }

    pub fn steps_per_bar(&self) -> usize {
        self.beats_per_bar() * self.steps_per_beat()
    }

    pub fn steps_per_phrase(&self) -> usize {
        self.steps_per_bar() * usize::from(self.bars_per_phrase)
    }

    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    pub fn pitch_count(&self) -> usize {
        usize::from(self.pitch_count)
    }

    /// The tracks of the part `track` belongs to: the tracks on its channel. A part is one
    /// track, a drum kit of lanes, or the voices of one hand (highest first).
    pub fn part_of(&self, track: usize) -> Vec<usize> {
        let channel = self.tracks[track].channel;
        (0..self.track_count()).filter(|&t| self.tracks[t].channel == channel).collect()
    }

    /// Every part's tracks, in the order the parts first appear: what a producer mutes and
    /// routes as one (a kit, not its hi-hat lane).
    pub fn parts(&self) -> Vec<Vec<usize>> {
        let mut parts: Vec<Vec<usize>> = Vec::new();
        for track in 0..self.track_count() {
            if !parts.iter().any(|part| part.contains(&track)) {
                parts.push(self.part_of(track));
            }
        }
        parts
    }

    /// A part's name: its track's, a kit's "Drums", or a hand's without its voice numbers
    /// ("Comp" for "Comp 1", "Comp 2", "Comp 3").
    pub fn part_name(&self, part: &[usize]) -> String {
        let first = &self.tracks[part[0]];
        match (part.len(), first.is_drum) {
            (1, _) => first.name.clone(),
            (_, true) => "Drums".to_string(),
            (_, false) => first.name.strip_suffix(" 1").unwrap_or(&first.name).to_string(),
        }
    }

    /// The roll row of a MIDI pitch, or `None` outside the window.
    pub fn pitch_row(&self, pitch: u8) -> Option<usize> {
        let row = usize::from(pitch.checked_sub(self.lowest_pitch)?);
        (row < self.pitch_count()).then_some(row)
    }

    pub fn pitch_of_row(&self, row: usize) -> u8 {
        self.lowest_pitch + row as u8
    }

    /// Steps per quarter note as a fraction (numerator, denominator), since in 6/8 at an odd
    /// number of steps per beat it is not whole.
    pub fn steps_per_quarter(&self) -> (u64, u64) {
        (u64::from(self.steps_per_beat) * u64::from(self.meter.denominator), 4)
    }

    /// A step's length in quarter notes, for metrics defined by duration.
    pub fn quarters_per_step(&self) -> f64 {
        let (num, den) = self.steps_per_quarter();
        den as f64 / num as f64
    }
}

/// One bar of 4/4 in 16ths over pitches 36..60, with `tracks`: the small grid the tests of
/// bands (a bass beside drum lanes) play on.
#[cfg(test)]
pub(crate) fn one_bar_grid(tracks: Vec<TrackSpec>) -> std::sync::Arc<Representation> {
    std::sync::Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 1,
        lowest_pitch: 36,
        pitch_count: 24,
        tracks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn satb() -> Representation {
        Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 4,
            lowest_pitch: 36,
            pitch_count: 48,
            tracks: ["Soprano", "Alto", "Tenor", "Bass"].iter().zip(0..).map(|(n, c)| TrackSpec::new(*n, c)).collect(),
        }
    }

    fn refusal(change: impl FnOnce(&mut Representation)) -> String {
        let mut representation = satb();
        change(&mut representation);
        representation.validate().unwrap_err().to_string()
    }

    #[test]
    fn cut_time_reads_as_common_time_and_compound_meters_stay_apart() {
        let m = |n, d| Meter::new(n, d).unwrap();
        assert!(m(2, 2).reads_as(Meter::COMMON));
        assert!(Meter::COMMON.reads_as(m(2, 2)));
        assert!(m(3, 4).reads_as(m(3, 4)));
        assert!(!m(6, 8).reads_as(m(3, 4)), "one length, another grouping");
        assert!(!m(2, 4).reads_as(Meter::COMMON), "half the bar");
        assert!(!m(8, 8).reads_as(Meter::COMMON), "eighth-note beats are grouped, not counted in quarters");
    }

    #[test]
    fn a_sound_grid_passes_and_measures_itself() {
        let representation = satb();
        representation.validate().unwrap();
        assert_eq!(representation.steps_per_bar(), 16);
        assert_eq!(representation.steps_per_phrase(), 64);
        assert_eq!(representation.pitch_row(36), Some(0));
        assert_eq!(representation.pitch_row(83), Some(47));
        assert_eq!(representation.pitch_row(84), None);
        assert_eq!(representation.pitch_row(35), None);
        assert_eq!(representation.quarters_per_step(), 0.25);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(refusal(|r| r.steps_per_beat = 0).contains("steps per beat is 0"));
        assert!(refusal(|r| r.steps_per_beat = 97).contains("steps per beat is 97"));
        assert!(refusal(|r| r.meter = Meter { numerator: 4, denominator: 3 }).contains("power of two"));
        assert!(refusal(|r| r.meter = Meter { numerator: 0, denominator: 4 }).contains("at least one beat"));
        assert!(refusal(|r| r.meter = Meter { numerator: 33, denominator: 4 }).contains("at most 32 beats"));
        assert!(refusal(|r| r.bars_per_phrase = 0).contains("bars per phrase"));
        assert!(refusal(|r| r.lowest_pitch = 100).contains("not inside MIDI"));
        assert!(refusal(|r| r.pitch_count = 0).contains("not inside MIDI"));
        assert!(refusal(|r| r.tracks.clear()).contains("0 tracks"));
        assert!(refusal(|r| r.tracks[1].name = " ".into()).contains("track 1 has no name"));
        assert!(refusal(|r| r.tracks[1].channel = 16).contains("channel 16"));
        assert!(refusal(|r| r.tracks[2].channel = 0).contains("must be neighbours"));
        assert!(refusal(|r| r.tracks[1].sounds = vec![38]).contains("only a drum lane"));
        assert!(refusal(|r| r.tracks[1].channel = DRUM_CHANNEL).contains("drum tracks"));
        assert!(refusal(|r| r.tracks[1].is_drum = true).contains("drum tracks"));
    }

    #[test]
    fn one_channel_holds_a_kit_of_lanes_or_the_voices_of_one_part() {
        let mut band = satb();
        band.tracks = vec![
            TrackSpec::drums("Kick", vec![36]),
            TrackSpec::drums("Snare", vec![38, 40]),
            TrackSpec::new("Comp 1", 2),
            TrackSpec::new("Comp 2", 2),
            TrackSpec::new("Bass", 3),
        ];
        band.validate().unwrap();
        assert_eq!(band.part_of(1), vec![0, 1]);
        assert_eq!(band.part_of(3), vec![2, 3]);
        assert_eq!(band.part_of(4), vec![4]);
        assert_eq!(band.parts(), vec![vec![0, 1], vec![2, 3], vec![4]]);
        let names: Vec<String> = band.parts().iter().map(|part| band.part_name(part)).collect();
        assert_eq!(names, vec!["Drums", "Comp", "Bass"]);
        let refused = |change: &dyn Fn(&mut Representation)| {
            let mut r = band.clone();
            change(&mut r);
            r.validate().unwrap_err().to_string()
        };
        assert!(refused(&|r| r.tracks[1].sounds = vec![36, 40]).contains("own sounds"));
        assert!(refused(&|r| r.tracks[1].sounds.clear()).contains("own sounds"));
        assert!(refused(&|r| r.tracks[0].sounds = vec![20]).contains("outside the pitch window"));
        assert!(refused(&|r| r.tracks.swap(3, 4)).contains("must be neighbours"));
        assert!(band.tracks[0].plays(36) && !band.tracks[0].plays(38) && band.tracks[4].plays(38));
    }

    #[test]
    fn meters_parse_from_text() {
        assert_eq!("6/8".parse::<Meter>().unwrap(), Meter { numerator: 6, denominator: 8 });
        assert!("6-8".parse::<Meter>().unwrap_err().to_string().contains("not a meter"));
        assert!("3/5".parse::<Meter>().is_err());
        assert_eq!(Meter::new(7, 8).unwrap().to_string(), "7/8");
    }

    #[test]
    fn six_eight_counts_eighth_note_beats() {
        let representation = Representation { meter: Meter::new(6, 8).unwrap(), steps_per_beat: 3, ..satb() };
        representation.validate().unwrap();
        assert_eq!(representation.steps_per_bar(), 18);
        assert_eq!(representation.steps_per_quarter(), (24, 4));
        assert!((representation.quarters_per_step() - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn the_card_form_round_trips_through_json() {
        let json = serde_json::to_string(&satb()).unwrap();
        assert_eq!(serde_json::from_str::<Representation>(&json).unwrap(), satb());
    }
}
