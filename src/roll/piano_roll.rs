//! The piano roll: tracks x steps x pitches.
//!
//! Two planes rather than one, because a single "is sounding" plane cannot tell two repeated
//! eighth notes from one quarter note: `onsets` marks where notes start (holding their
//! velocity, so velocities survive without a third plane to keep in step), `sustain` marks
//! every step a note sounds, its onset step included.

use super::representation::Representation;
use std::ops::Range;
use std::sync::Arc;

/// A note on the grid, in roll terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GridNote {
    pub track: usize,
    pub start: usize,
    pub pitch: u8,
    /// In steps, at least 1.
    pub length: usize,
    /// 1..=127.
    pub velocity: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roll {
    representation: Arc<Representation>,
    steps: usize,
    onsets: Vec<u8>,
    sustain: Vec<bool>,
}

/// Why a note could not be placed in a roll.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("pitch {pitch} lies outside the roll's window {low}..{high}")]
    OutsideWindow { pitch: u8, low: u8, high: u16 },
    #[error("a note at step {start} lasting {length} steps does not fit a roll of {steps} steps")]
    OutsideRoll { start: usize, length: usize, steps: usize },
    #[error("track {track} does not exist in a roll of {tracks} tracks")]
    NoSuchTrack { track: usize, tracks: usize },
    #[error("velocity must be 1..=127, not {0}")]
    Velocity(u8),
}

impl Roll {
    /// An empty roll. The representation is assumed valid (see [`Representation::validate`]).
    pub fn new(representation: Arc<Representation>, steps: usize) -> Roll {
        let cells = representation.track_count() * steps * representation.pitch_count();
        Roll { representation, steps, onsets: vec![0; cells], sustain: vec![false; cells] }
    }

    pub fn representation(&self) -> &Arc<Representation> {
        &self.representation
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn track_count(&self) -> usize {
        self.representation.track_count()
    }

    pub fn pitch_count(&self) -> usize {
        self.representation.pitch_count()
    }

    /// Whole bars in this roll (a trailing partial bar is not counted).
    pub fn bar_count(&self) -> usize {
        self.steps / self.representation.steps_per_bar()
    }

    fn cell(&self, track: usize, step: usize, row: usize) -> usize {
        (track * self.steps + step) * self.pitch_count() + row
    }

    /// Velocity of the note starting at this cell, 0 where none starts.
    pub fn onset(&self, track: usize, step: usize, row: usize) -> u8 {
        self.onsets[self.cell(track, step, row)]
    }

    pub fn is_sounding(&self, track: usize, step: usize, row: usize) -> bool {
        self.sustain[self.cell(track, step, row)]
    }

    /// The rows sounding at one step of one track, as a slice indexed by row.
    pub fn sounding_at(&self, track: usize, step: usize) -> &[bool] {
        let start = self.cell(track, step, 0);
        &self.sustain[start..start + self.pitch_count()]
    }

    /// The onset velocities at one step of one track, indexed by row.
    pub fn onsets_at(&self, track: usize, step: usize) -> &[u8] {
        let start = self.cell(track, step, 0);
        &self.onsets[start..start + self.pitch_count()]
    }

    /// Places a note. A note placed over a sounding one of the same pitch cuts it there,
    /// as a repeated key does on a keyboard.
    pub fn place(&mut self, note: GridNote) -> Result<(), PlaceError> {
        let representation = &self.representation;
        if note.track >= representation.track_count() {
            return Err(PlaceError::NoSuchTrack { track: note.track, tracks: representation.track_count() });
        }
        let row = representation.pitch_row(note.pitch).ok_or(PlaceError::OutsideWindow {
            pitch: note.pitch,
            low: representation.lowest_pitch,
            high: u16::from(representation.lowest_pitch) + u16::from(representation.pitch_count),
        })?;
        if note.length == 0 || note.start.checked_add(note.length).is_none_or(|end| end > self.steps) {
            return Err(PlaceError::OutsideRoll { start: note.start, length: note.length, steps: self.steps });
        }
        if note.velocity == 0 || note.velocity > 127 {
            return Err(PlaceError::Velocity(note.velocity));
        }
        let onset = self.cell(note.track, note.start, row);
        self.onsets[onset] = note.velocity;
        for step in note.start..note.start + note.length {
            let cell = self.cell(note.track, step, row);
            self.sustain[cell] = true;
        }
        Ok(())
    }

    /// Marks a note that began before this roll and sounds into it for `length` steps: it
    /// sounds, but has no onset here. Cutting pieces into bars makes such notes.
    pub fn place_tied_in(&mut self, track: usize, pitch: u8, length: usize) {
        let Some(row) = self.representation.pitch_row(pitch) else { return };
        for step in 0..length.min(self.steps) {
            let cell = self.cell(track, step, row);
            if step > 0 && self.onsets[cell] > 0 {
                break;
            }
            self.sustain[cell] = true;
        }
    }

    /// The notes that start in this roll, sorted by track, start, pitch. A note lasts from its
    /// onset while the pitch keeps sounding and no new onset of it comes; sounding cells with
    /// no onset before them (notes tied in from before the roll) start no note.
    pub fn notes(&self) -> Vec<GridNote> {
        let mut notes = Vec::new();
        for track in 0..self.track_count() {
            for start in 0..self.steps {
                for (row, &velocity) in self.onsets_at(track, start).iter().enumerate() {
                    if velocity == 0 {
                        continue;
                    }
                    let mut end = start + 1;
                    while end < self.steps && self.is_sounding(track, end, row) && self.onset(track, end, row) == 0 {
                        end += 1;
                    }
                    notes.push(GridNote {
                        track,
                        start,
                        pitch: self.representation.pitch_of_row(row),
                        length: end - start,
                        velocity,
                    });
                }
            }
        }
        notes
    }

    /// A copy of the steps in `range`, with notes crossing its start kept as tied-in sound.
    pub fn slice(&self, range: Range<usize>) -> Roll {
        assert!(range.start <= range.end && range.end <= self.steps, "slice {range:?} of {} steps", self.steps);
        let mut part = Roll::new(self.representation.clone(), range.len());
        for track in 0..self.track_count() {
            let from = self.cell(track, range.start, 0);
            let to = part.cell(track, 0, 0);
            let cells = range.len() * self.pitch_count();
            part.onsets[to..to + cells].copy_from_slice(&self.onsets[from..from + cells]);
            part.sustain[to..to + cells].copy_from_slice(&self.sustain[from..from + cells]);
        }
        part
    }

    /// Consecutive `bars`-bar pieces of this roll, starting every `hop` bars; a remainder
    /// shorter than `bars` is left out.
    pub fn phrases(&self, bars: usize, hop: usize) -> Vec<Roll> {
        self.phrases_starting_at_or_after(0, bars, hop)
    }

    /// The phrases `phrases` cuts, less those that begin before the roll's first sound. A
    /// file pads its pickup with silence to a whole bar, and that silence is not the music: a
    /// model that learns from it learns to begin a phrase by waiting (one fine-tuned with it
    /// wrote a wholly silent phrase for one seed in forty).
    pub fn phrases_from_first_sound(&self, bars: usize, hop: usize) -> Vec<Roll> {
        let first_sound =
            (0..self.steps).find(|&step| (0..self.track_count()).any(|t| self.sounding_at(t, step).contains(&true)));
        self.phrases_starting_at_or_after(first_sound.unwrap_or(self.steps), bars, hop)
    }

    fn phrases_starting_at_or_after(&self, earliest: usize, bars: usize, hop: usize) -> Vec<Roll> {
        let bar = self.representation.steps_per_bar();
        let (length, hop) = (bars * bar, hop.max(1) * bar);
        (0..)
            .map(|k| k * hop)
            .take_while(|start| start + length <= self.steps)
            .filter(|&start| start >= earliest)
            .map(|start| self.slice(start..start + length))
            .collect()
    }

    /// Rolls of one representation one after another, as one roll (phrases into a piece).
    pub fn concat(rolls: &[Roll]) -> Option<Roll> {
        let first = rolls.first()?;
        let mut joined = Roll::new(first.representation.clone(), rolls.iter().map(Roll::steps).sum());
        let mut offset = 0;
        for roll in rolls {
            assert_eq!(roll.representation, first.representation, "concatenated rolls share one grid");
            for track in 0..roll.track_count() {
                let from = roll.cell(track, 0, 0);
                let to = joined.cell(track, offset, 0);
                let cells = roll.steps * roll.pitch_count();
                joined.onsets[to..to + cells].copy_from_slice(&roll.onsets[from..from + cells]);
                joined.sustain[to..to + cells].copy_from_slice(&roll.sustain[from..from + cells]);
            }
            offset += roll.steps;
        }
        Some(joined)
    }

    /// The roll moved by `semitones`, or `None` when a sounding note would leave the window
    /// (augmentation should skip such a shift rather than mangle the music). Drum tracks stay
    /// as they are: their pitches are sounds, not notes of a key.
    pub fn transposed(&self, semitones: i32) -> Option<Roll> {
        let pitches = self.pitch_count() as i64;
        let mut moved = Roll::new(self.representation.clone(), self.steps);
        for track in 0..self.track_count() {
            let shift = if self.representation.tracks[track].is_drum { 0 } else { i64::from(semitones) };
            for step in 0..self.steps {
                for row in 0..self.pitch_count() {
                    let from = self.cell(track, step, row);
                    if !self.sustain[from] {
                        continue;
                    }
                    let target = row as i64 + shift;
                    if !(0..pitches).contains(&target) {
                        return None;
                    }
                    let to = moved.cell(track, step, target as usize);
                    moved.sustain[to] = true;
                    moved.onsets[to] = self.onsets[from];
                }
            }
        }
        Some(moved)
    }

    /// True when no note sounds in `steps` of `track`.
    pub fn is_silent(&self, track: usize, steps: Range<usize>) -> bool {
        steps.into_iter().all(|step| !self.sounding_at(track, step).contains(&true))
    }

    /// The tracks in which something sounds.
    pub fn sounding_tracks(&self) -> Vec<usize> {
        (0..self.track_count()).filter(|&track| !self.is_silent(track, 0..self.steps())).collect()
    }

    /// The same grid holding only the notes that `keep` accepts.
    pub fn only_notes(&self, keep: impl Fn(&GridNote) -> bool) -> Roll {
        let mut kept = Roll::new(self.representation.clone(), self.steps);
        for note in self.notes().into_iter().filter(|note| keep(note)) {
            kept.place(note).expect("a note of a roll of the same shape");
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::{Meter, TrackSpec};

    fn representation() -> Arc<Representation> {
        Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 2,
            lowest_pitch: 60,
            pitch_count: 12,
            tracks: vec![TrackSpec::new("Lead", 0), TrackSpec::new("Bass", 1)],
        })
    }

    fn note(track: usize, start: usize, pitch: u8, length: usize) -> GridNote {
        GridNote { track, start, pitch, length, velocity: 80 }
    }

    #[test]
    fn repeated_notes_of_one_pitch_stay_separate() {
        let mut roll = Roll::new(representation(), 16);
        roll.place(note(0, 0, 64, 2)).unwrap();
        roll.place(note(0, 2, 64, 2)).unwrap();
        roll.place(note(0, 4, 64, 4)).unwrap();
        assert_eq!(roll.notes(), vec![note(0, 0, 64, 2), note(0, 2, 64, 2), note(0, 4, 64, 4)]);
    }

    #[test]
    fn a_new_onset_cuts_the_sounding_note() {
        let mut roll = Roll::new(representation(), 16);
        roll.place(note(0, 0, 64, 8)).unwrap();
        roll.place(note(0, 3, 64, 2)).unwrap();
        assert_eq!(roll.notes(), vec![note(0, 0, 64, 3), note(0, 3, 64, 5)]);
    }

    #[test]
    fn velocities_are_kept() {
        let mut roll = Roll::new(representation(), 16);
        roll.place(GridNote { velocity: 17, ..note(1, 5, 61, 1) }).unwrap();
        assert_eq!(roll.notes()[0].velocity, 17);
        assert_eq!(roll.onset(1, 5, 1), 17);
    }

    #[test]
    fn placing_outside_the_roll_says_why() {
        let mut roll = Roll::new(representation(), 16);
        assert_eq!(roll.place(note(0, 0, 72, 1)), Err(PlaceError::OutsideWindow { pitch: 72, low: 60, high: 72 }));
        assert_eq!(roll.place(note(0, 15, 60, 2)), Err(PlaceError::OutsideRoll { start: 15, length: 2, steps: 16 }));
        assert_eq!(roll.place(note(2, 0, 60, 1)), Err(PlaceError::NoSuchTrack { track: 2, tracks: 2 }));
        assert_eq!(roll.place(GridNote { velocity: 0, ..note(0, 0, 60, 1) }), Err(PlaceError::Velocity(0)));
        assert_eq!(roll.place(note(0, 0, 60, 0)), Err(PlaceError::OutsideRoll { start: 0, length: 0, steps: 16 }));
        assert!(roll.notes().is_empty(), "a refused note leaves nothing behind");
    }

    #[test]
    fn slicing_keeps_notes_that_cross_the_cut_as_sound_without_onsets() {
        let mut roll = Roll::new(representation(), 32);
        roll.place(note(0, 14, 62, 4)).unwrap();
        roll.place(note(1, 16, 63, 1)).unwrap();
        let second_bar = roll.slice(16..32);
        assert!(second_bar.is_sounding(0, 0, 2) && second_bar.is_sounding(0, 1, 2));
        assert!(!second_bar.is_sounding(0, 2, 2));
        assert_eq!(second_bar.notes(), vec![note(1, 0, 63, 1)], "a tied-in note starts nothing");
        assert!(!second_bar.is_silent(0, 0..16));
    }

    #[test]
    fn phrases_are_whole_and_hop_by_bars() {
        let roll = Roll::new(representation(), 16 * 5);
        assert_eq!(roll.bar_count(), 5);
        assert_eq!(roll.phrases(2, 2).len(), 2);
        assert_eq!(roll.phrases(2, 1).len(), 4);
        assert!(roll.phrases(2, 1).iter().all(|phrase| phrase.steps() == 32));
        assert_eq!(roll.phrases(6, 1).len(), 0);
    }

    #[test]
    fn the_silence_before_a_pickup_starts_no_phrase() {
        let mut roll = Roll::new(representation(), 16 * 4);
        roll.place(note(1, 12, 60, 4)).unwrap();
        let phrases = roll.phrases_from_first_sound(2, 1);
        assert_eq!(phrases.len(), 2, "the bars from the first downbeat after the pickup");
        assert_eq!(phrases[0].notes(), roll.slice(16..48).notes());
        let on_the_downbeat = {
            let mut r = Roll::new(representation(), 16 * 4);
            r.place(note(0, 0, 60, 4)).unwrap();
            r
        };
        assert_eq!(on_the_downbeat.phrases_from_first_sound(2, 1).len(), 3);
        assert!(
            Roll::new(representation(), 64).phrases_from_first_sound(1, 1).is_empty(),
            "a silent roll has no music to cut"
        );
    }

    #[test]
    fn concatenation_is_the_inverse_of_slicing() {
        let mut roll = Roll::new(representation(), 48);
        roll.place(note(0, 14, 62, 4)).unwrap();
        roll.place(note(1, 40, 63, 8)).unwrap();
        let parts = [roll.slice(0..16), roll.slice(16..32), roll.slice(32..48)];
        assert_eq!(Roll::concat(&parts).unwrap(), roll);
        assert!(Roll::concat(&[]).is_none());
    }

    #[test]
    fn transposing_moves_every_plane_or_refuses() {
        let mut roll = Roll::new(representation(), 16);
        roll.place(note(0, 0, 60, 2)).unwrap();
        roll.place(GridNote { velocity: 99, ..note(1, 4, 65, 3) }).unwrap();
        let up = roll.transposed(5).unwrap();
        assert_eq!(up.notes(), vec![note(0, 0, 65, 2), GridNote { velocity: 99, ..note(1, 4, 70, 3) }]);
        assert!(roll.transposed(7).is_none(), "70 + 7 leaves the window");
        assert!(roll.transposed(-1).is_none(), "60 - 1 leaves the window");
        assert_eq!(up.transposed(-5).unwrap(), roll);
    }

    #[test]
    fn transposing_leaves_drums_where_they_are() {
        let representation =
            crate::roll::one_bar_grid(vec![TrackSpec::drums("Kick", vec![36]), TrackSpec::new("Bass", 0)]);
        let mut roll = Roll::new(representation, 16);
        roll.place(GridNote { track: 0, start: 0, pitch: 36, length: 1, velocity: 100 }).unwrap();
        roll.place(GridNote { track: 1, start: 0, pitch: 40, length: 4, velocity: 80 }).unwrap();
        let up = roll.transposed(3).unwrap();
        assert_eq!(
            up.notes(),
            vec![
                GridNote { track: 0, start: 0, pitch: 36, length: 1, velocity: 100 },
                GridNote { track: 1, start: 0, pitch: 43, length: 4, velocity: 80 }
            ]
        );
    }
}
