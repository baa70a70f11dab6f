//! A producer's own notes as a model reads them: a MIDI file (or a take) on the model's grid,
//! from its start, whole bars, each channel on its track — with every note that could not
//! be read counted and named, since a clip that silently loses notes is worse than none.

use super::import::{score_to_piece, TrackAssignment};
use super::midi_file::{read_midi, MidiError, Score, ScoreNote, MOST_MIDI_FILE_BYTES};
use super::piano_roll::Roll;
use super::representation::{Meter, Representation};
use crate::files::{read_limited, FileError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a clip cannot be used at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("{0}")]
    Midi(#[from] MidiError),
    #[error("the clip begins in {found}; this model writes {wanted}")]
    Meter { found: Meter, wanted: Meter },
    #[error("the clip has no notes this model can read ({0})")]
    Nothing(String),
}

/// Why a MIDI file a user names cannot be a take.
#[derive(Debug, thiserror::Error)]
pub enum ClipFileError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: {error}")]
    Midi { path: PathBuf, error: MidiError },
}

/// A clip on a model's grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// Whole bars from the file's start.
    pub roll: Roll,
    /// The tracks that hold notes: the parts the producer gave.
    pub tracks_given: Vec<usize>,
    /// What was left out, in words (empty when every note was read).
    pub left_out: Vec<String>,
}

/// A producer's notes before any model reads them: the whole bars of a take recorded from
/// the host, or the start of a MIDI file, in the meter they begin in. A project saves this,
/// not a roll, so that its clip outlives a change of model and each model reads it afresh.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Take {
    pub ticks_per_quarter: u16,
    pub meter: Meter,
    pub bars: u32,
    /// Sorted by start.
    pub notes: Vec<TakeNote>,
    /// Notes of the source that were not kept: after its meter changed, or past its bars.
    pub after_meter_change: u32,
    pub after_last_bar: u32,
    /// Notes with a pitch over 127 or a channel over 16, which no instrument can play.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unplayable: u32,
    /// Notes past the [`MOST_TAKE_NOTES`] a take holds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub past_note_cap: u32,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeNote {
    /// The MIDI track (chunk) the note came from; a recorded note's channel.
    pub track: u16,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
    pub start: u64,
    pub end: u64,
}

/// Longest take a project holds: past the longest loop, and a bound on what a hostile
/// project can make a model read.
pub const MOST_TAKE_BARS: u32 = 64;
pub const MOST_TAKE_NOTES: usize = 20_000;

impl Take {
    /// The first `most_bars` bars of a MIDI file (at most [`MOST_TAKE_BARS`]), counting what is cut.
    pub fn from_midi(bytes: &[u8], most_bars: u32) -> Result<Take, ClipError> {
        Ok(Take::from_score(&read_midi(bytes)?, most_bars))
    }

    /// [`Take::from_midi`] of a file a user names, refused unread when it is not a regular
    /// file or is over [`MOST_MIDI_FILE_BYTES`].
    pub fn from_midi_file(path: &Path, most_bars: u32) -> Result<Take, ClipFileError> {
        let bytes = read_limited(path, MOST_MIDI_FILE_BYTES)?;
        let score = read_midi(&bytes).map_err(|error| ClipFileError::Midi { path: path.to_path_buf(), error })?;
        Ok(Take::from_score(&score, most_bars))
    }

    /// The first `most_bars` bars of a score (at most [`MOST_TAKE_BARS`]) in the meter it begins in.
    pub fn from_score(score: &Score, most_bars: u32) -> Take {
        let meter = score.meters.first().filter(|&&(tick, _)| tick == 0).map_or(Meter::COMMON, |&(_, meter)| meter);
        let meter_changes =
            score.meters.iter().find(|&&(tick, other)| tick > 0 && other != meter).map_or(u64::MAX, |&(tick, _)| tick);
        let bar = ticks_per_bar(score.ticks_per_quarter, meter);
        let in_meter = meter_changes.min(score.end);
        let bars = (in_meter.div_ceil(bar) as u32).clamp(1, most_bars.clamp(1, MOST_TAKE_BARS));
        let cut = meter_changes.min(u64::from(bars) * bar);
        let mut take = Take {
            ticks_per_quarter: score.ticks_per_quarter,
            meter,
            bars,
            notes: Vec::new(),
            after_meter_change: 0,
            after_last_bar: 0,
            unplayable: 0,
            past_note_cap: 0,
        };
        // A note-on and its note-off on one tick (drum exports write hits so) sounds for a step.
        let sixteenth = (u64::from(score.ticks_per_quarter) / 4).max(1);
        for note in &score.notes {
            if note.start >= meter_changes {
                take.after_meter_change += 1;
            } else if note.start >= cut {
                take.after_last_bar += 1;
            } else if note.pitch > 127 || note.channel > 15 {
                take.unplayable += 1;
            } else if take.notes.len() == MOST_TAKE_NOTES {
                take.past_note_cap += 1;
            } else {
                let track = u16::try_from(note.track).unwrap_or(u16::MAX);
                let end = if note.end > note.start { note.end } else { note.start.saturating_add(sixteenth) };
                let velocity = note.velocity.clamp(1, 127);
                take.notes.push(TakeNote {
                    track,
                    channel: note.channel,
                    pitch: note.pitch,
                    velocity,
                    start: note.start,
                    end: end.min(cut),
                });
            }
        }
        take
    }

    fn ticks_per_bar(&self) -> u64 {
        ticks_per_bar(self.ticks_per_quarter, self.meter)
    }

    /// Everything a model and a scheduler will trust, checked: a take from a saved project
    /// may be damaged or hostile.
    pub fn check(&self) -> Result<(), String> {
        if self.ticks_per_quarter == 0 {
            return Err("a take of 0 ticks per quarter note".into());
        }
        Meter::new(self.meter.numerator, self.meter.denominator)
            .map_err(|e| format!("a take in {}: {e}", self.meter))?;
        if !(1..=MOST_TAKE_BARS).contains(&self.bars) || self.notes.len() > MOST_TAKE_NOTES {
            return Err(format!("a take of {} bars and {} notes", self.bars, self.notes.len()));
        }
        let end = u64::from(self.bars) * self.ticks_per_bar();
        match self.notes.iter().find(|n| {
            n.channel > 15 || n.pitch > 127 || !(1..=127).contains(&n.velocity) || n.start >= n.end || n.end > end
        }) {
            Some(note) => Err(format!("an impossible note in the take {note:?}")),
            None => Ok(()),
        }
    }

    /// The take as `representation`'s model reads it: its first `bars` bars, each note on
    /// its part, and every note that could not be read counted in words.
    pub fn clip(
        &self,
        representation: &Arc<Representation>,
        assignment: TrackAssignment,
        bars: usize,
    ) -> Result<Clip, ClipError> {
        if !self.meter.reads_as(representation.meter) {
            return Err(ClipError::Meter { found: self.meter, wanted: representation.meter });
        }
        let kept_bars = bars.clamp(1, self.bars as usize);
        let cut = kept_bars as u64 * self.ticks_per_bar();
        let (kept, later): (Vec<&TakeNote>, Vec<&TakeNote>) = self.notes.iter().partition(|note| note.start < cut);
        let tracks = self.notes.iter().map(|note| usize::from(note.track) + 1).max().unwrap_or(0);
        let score = Score {
            ticks_per_quarter: self.ticks_per_quarter,
            tempos: Vec::new(),
            meters: vec![(0, self.meter)],
            notes: kept
                .into_iter()
                .map(|n| ScoreNote {
                    track: usize::from(n.track),
                    channel: n.channel,
                    pitch: n.pitch,
                    velocity: n.velocity,
                    start: n.start,
                    end: n.end.min(cut),
                })
                .collect(),
            track_names: vec![String::new(); tracks],
            programs: [None; 16],
            end: cut,
            unterminated_notes: 0,
        };
        let piece = score_to_piece(&score, representation, assignment);
        let report = &piece.report;
        let mut left_out = Vec::new();
        let mut count = |n: usize, why: &str| {
            if n > 0 {
                left_out.push(format!("{n} {} {why}", if n == 1 { "note" } else { "notes" }));
            }
        };
        count(
            report.outside_window,
            &format!(
                "outside the model's pitches ({}..{})",
                representation.lowest_pitch,
                u16::from(representation.lowest_pitch) + u16::from(representation.pitch_count)
            ),
        );
        count(report.no_track, "on channels the model has no part for");
        count(self.after_meter_change as usize, "after the meter changes");
        count(later.len() + self.after_last_bar as usize, &format!("after the first {kept_bars} bars"));
        count(self.unplayable as usize, "with a pitch over 127 or a channel over 16");
        count(self.past_note_cap as usize, &format!("past the {MOST_TAKE_NOTES} a clip holds"));
        let Some(roll) = piece.segments.into_iter().next().filter(|roll| !roll.notes().is_empty()) else {
            return Err(ClipError::Nothing(if left_out.is_empty() {
                "it is empty".into()
            } else {
                left_out.join(", ")
            }));
        };
        let tracks_given = roll.sounding_tracks();
        Ok(Clip { roll, tracks_given, left_out })
    }
}

/// Ticks in a bar of `meter`; a meter that does not divide the file's resolution rounds down.
fn ticks_per_bar(ticks_per_quarter: u16, meter: Meter) -> u64 {
    (u64::from(ticks_per_quarter) * 4 * u64::from(meter.numerator) / u64::from(meter.denominator)).max(1)
}

/// The first `bars` bars (at most) of a MIDI file's bytes on `representation`'s grid.
pub fn read_clip(
    bytes: &[u8],
    representation: &Arc<Representation>,
    assignment: TrackAssignment,
    bars: usize,
) -> Result<Clip, ClipError> {
    Take::from_midi(bytes, bars.try_into().unwrap_or(u32::MAX))?.clip(representation, assignment, bars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::{write_midi, TrackToWrite};

    const TPQ: u16 = 480;
    const BAR: u64 = 4 * TPQ as u64;

    /// Lead and bass on channels 1 and 2, pitches 48..72, 4/4 at 4 steps a beat.
    fn two_parts() -> Arc<Representation> {
        Arc::new(crate::model::card::test_card().representation)
    }

    /// A file in `meter` with (channel, start tick, length, pitch) notes.
    fn file(meter: Meter, notes: &[(u8, u64, u64, u8)]) -> Vec<u8> {
        let tracks: Vec<TrackToWrite> = (0..3u8)
            .map(|channel| TrackToWrite {
                name: format!("ch{channel}"),
                channel,
                notes: notes
                    .iter()
                    .filter(|n| n.0 == channel)
                    .map(|&(_, start, length, pitch)| (start, length, pitch, 100))
                    .collect(),
            })
            .collect();
        write_midi(TPQ, 500_000, meter, &tracks, 8 * BAR)
    }

    #[test]
    fn a_clip_is_read_from_its_start_and_what_is_left_out_is_counted() {
        let bytes = file(
            Meter::COMMON,
            &[(0, 0, BAR, 60), (0, BAR, BAR, 62), (0, 3 * BAR, BAR, 64), (0, 0, BAR, 100), (2, 0, BAR, 50)],
        );
        let clip = read_clip(&bytes, &two_parts(), TrackAssignment::ByChannel, 2).unwrap();
        assert_eq!(clip.roll.steps(), 32, "its first two bars");
        assert_eq!(clip.roll.notes().iter().map(|n| n.pitch).collect::<Vec<_>>(), vec![60, 62]);
        assert_eq!(clip.tracks_given, vec![0], "only the lead plays");
        assert_eq!(
            clip.left_out,
            vec![
                "1 note outside the model's pitches (48..72)",
                "1 note on channels the model has no part for",
                "1 note after the first 2 bars"
            ]
        );
    }

    #[test]
    fn a_clip_the_model_cannot_read_is_refused_in_words() {
        let waltz = file(Meter::new(3, 4).unwrap(), &[(0, 0, TPQ as u64, 60)]);
        assert_eq!(
            read_clip(&waltz, &two_parts(), TrackAssignment::ByChannel, 4).unwrap_err().to_string(),
            "the clip begins in 3/4; this model writes 4/4"
        );
        let too_high = file(Meter::COMMON, &[(0, 0, BAR, 100)]);
        let error = read_clip(&too_high, &two_parts(), TrackAssignment::ByChannel, 4).unwrap_err().to_string();
        assert_eq!(error, "the clip has no notes this model can read (1 note outside the model's pitches (48..72))");
        assert!(read_clip(b"not midi", &two_parts(), TrackAssignment::ByChannel, 4).is_err());
    }

    #[test]
    fn a_take_keeps_whole_bars_of_its_first_meter_and_counts_the_rest() {
        let mut score =
            read_midi(&file(Meter::COMMON, &[(0, 0, BAR, 60), (0, BAR, 2 * BAR, 62), (0, 3 * BAR, BAR, 64)])).unwrap();
        let take = Take::from_score(&score, 2);
        assert_eq!((take.bars, take.after_last_bar), (2, 1));
        assert_eq!(
            take.notes.iter().map(|n| (n.start, n.end)).collect::<Vec<_>>(),
            vec![(0, BAR), (BAR, 2 * BAR)],
            "a note over the cut ends there"
        );
        assert!(take.check().is_ok());
        score.meters.push((2 * BAR, Meter::new(3, 4).unwrap()));
        let take = Take::from_score(&score, 8);
        assert_eq!((take.bars, take.after_meter_change), (2, 1), "the waltz after bar 2 is not the take's");
        let clip = take.clip(&two_parts(), TrackAssignment::ByChannel, 8).unwrap();
        assert_eq!(clip.left_out, vec!["1 note after the meter changes"]);
        assert_eq!(Take::from_score(&score, 500).bars, 2, "however many bars are asked for");
    }

    #[test]
    fn a_take_is_sound_however_odd_the_notes_it_is_made_from() {
        let note = |channel, pitch, velocity, start, end| ScoreNote { track: 0, channel, pitch, velocity, start, end };
        let notes = vec![
            note(0, 50, 100, 0, 0),
            note(0, 60, 0, TPQ as u64, 2 * TPQ as u64),
            note(1, 62, 200, TPQ as u64, 2 * TPQ as u64),
            note(0, 200, 90, TPQ as u64, 2 * TPQ as u64),
            note(20, 60, 90, TPQ as u64, 2 * TPQ as u64),
            note(1, 55, 90, BAR - 1, BAR - 1),
        ];
        let score = Score {
            ticks_per_quarter: TPQ,
            tempos: vec![],
            meters: vec![(0, Meter::COMMON)],
            notes,
            track_names: vec![String::new()],
            programs: [None; 16],
            end: BAR,
            unterminated_notes: 0,
        };
        let take = Take::from_score(&score, 1);
        take.check().unwrap();
        let kept: Vec<(u8, u8, u64, u64)> = take.notes.iter().map(|n| (n.pitch, n.velocity, n.start, n.end)).collect();
        let (q, sixteenth) = (TPQ as u64, TPQ as u64 / 4);
        assert_eq!(
            kept,
            vec![(50, 100, 0, sixteenth), (60, 1, q, 2 * q), (62, 127, q, 2 * q), (55, 90, BAR - 1, BAR)],
            "a zero-length note sounds for a step, within the take"
        );
        let clip = take.clip(&two_parts(), TrackAssignment::ByChannel, 1).unwrap();
        assert_eq!(clip.left_out, vec!["2 notes with a pitch over 127 or a channel over 16"]);
        let crowded = Score {
            notes: (0..MOST_TAKE_NOTES as u64 + 3).map(|k| note(0, 60, 90, k % BAR, k % BAR + 1)).collect(),
            ..score
        };
        let take = Take::from_score(&crowded, 1);
        take.check().unwrap();
        assert_eq!((take.notes.len(), take.past_note_cap), (MOST_TAKE_NOTES, 3));
        assert!(take
            .clip(&two_parts(), TrackAssignment::ByChannel, 1)
            .unwrap()
            .left_out
            .contains(&"3 notes past the 20000 a clip holds".to_string()));
    }

    #[test]
    fn a_damaged_take_is_refused_before_a_model_reads_it() {
        let take = Take::from_score(&read_midi(&file(Meter::COMMON, &[(0, 0, BAR, 60)])).unwrap(), 4);
        let broken = |edit: fn(&mut Take)| {
            let mut t = take.clone();
            edit(&mut t);
            t.check().unwrap_err()
        };
        assert!(broken(|t| t.ticks_per_quarter = 0).contains("0 ticks"));
        assert!(broken(|t| t.bars = 10_000).contains("10000 bars"));
        assert!(broken(|t| t.notes[0].end = u64::MAX).contains("impossible note"), "past the take's end");
        assert!(broken(|t| t.notes[0].velocity = 0).contains("impossible note"));
        assert!(broken(|t| t.meter.denominator = 3).contains("3"));
    }
}
