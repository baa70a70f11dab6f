//! A [`Score`] onto a grid: quantised, split by meter, cut into rolls.

use super::midi_file::{Score, ScoreNote};
use super::piano_roll::{GridNote, Roll};
use super::representation::{Meter, Representation, DRUM_CHANNEL};
use std::sync::Arc;

/// How a file's notes find their roll track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackAssignment {
    /// A note goes to the track on its MIDI channel (format 0 files, and most exports).
    ByChannel,
    /// The n-th MIDI track that holds pitched notes goes to roll track n, whatever its channel
    /// (files whose parts all share one channel). Percussion-channel notes still go to the
    /// drum track.
    ByTrackOrder,
}

/// What the import did with every note that did not land in a roll as it was, so that
/// nothing is dropped without a count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub notes_read: usize,
    pub notes_placed: usize,
    /// Pitches outside the representation's window.
    pub outside_window: usize,
    /// Notes in spans whose meter is not the representation's.
    pub other_meter: usize,
    /// Notes with no roll track to go to (an unused channel, or drums with no drum track).
    pub no_track: usize,
    /// Onsets that were not on a grid step and were moved to the nearest one.
    pub moved_to_grid: usize,
    /// Notes that quantised onto the same step and pitch as another and were merged with it.
    pub merged: usize,
    /// Note-ons the file never ended (closed at the end of their track).
    pub unterminated: usize,
}

impl ImportReport {
    pub fn add(&mut self, other: &ImportReport) {
        self.notes_read += other.notes_read;
        self.notes_placed += other.notes_placed;
        self.outside_window += other.outside_window;
        self.other_meter += other.other_meter;
        self.no_track += other.no_track;
        self.moved_to_grid += other.moved_to_grid;
        self.merged += other.merged;
        self.unterminated += other.unterminated;
    }
}

/// A piece on the grid: one roll per span of the wanted meter, each starting on a bar line
/// and holding whole bars (the last bar padded with silence).
#[derive(Clone, Debug)]
pub struct ImportedPiece {
    pub segments: Vec<Roll>,
    pub report: ImportReport,
}

impl ImportedPiece {
    pub fn bar_count(&self) -> usize {
        self.segments.iter().map(Roll::bar_count).sum()
    }

    /// Every `bars`-bar phrase of the piece, starting every `hop` bars inside each segment.
    pub fn phrases(&self, bars: usize, hop: usize) -> Vec<Roll> {
        self.segments.iter().flat_map(|segment| segment.phrases(bars, hop)).collect()
    }
}

/// Ticks onto steps, exactly: step = tick * steps_per_quarter / ticks_per_quarter.
#[derive(Clone, Copy)]
struct Grid {
    numerator: u64,
    denominator: u64,
}

impl Grid {
    fn new(representation: &Representation, ticks_per_quarter: u16) -> Grid {
        let (steps, quarters) = representation.steps_per_quarter();
        Grid { numerator: steps, denominator: quarters * u64::from(ticks_per_quarter) }
    }

    /// The nearest step; halfway rounds up.
    fn step(self, tick: u64) -> u64 {
        (2 * tick * self.numerator + self.denominator) / (2 * self.denominator)
    }

    fn is_on_grid(self, tick: u64) -> bool {
        tick * self.numerator % self.denominator == 0
    }
}

/// Puts a score on the representation's grid. The representation must be valid.
pub fn score_to_piece(score: &Score, representation: &Arc<Representation>, assignment: TrackAssignment) -> ImportedPiece {
    let grid = Grid::new(representation, score.ticks_per_quarter);
    let mut report = ImportReport {
        notes_read: score.notes.len(),
        unterminated: score.unterminated_notes,
        ..ImportReport::default()
    };
    let track_of = track_lookup(score, representation, assignment);
    let steps_per_bar = representation.steps_per_bar() as u64;
    let mut segments = Vec::new();
    for span in meter_spans(score) {
        let in_span = |note: &&ScoreNote| span.start <= note.start && note.start < span.end;
        if span.meter != representation.meter {
            report.other_meter += score.notes.iter().filter(in_span).count();
            continue;
        }
        let first_step = grid.step(span.start);
        let steps = grid.step(span.end).saturating_sub(first_step).div_ceil(steps_per_bar) * steps_per_bar;
        if steps == 0 {
            continue;
        }
        let mut roll = Roll::new(representation.clone(), steps as usize);
        let mut placed: Vec<GridNote> = Vec::new();
        for note in score.notes.iter().filter(in_span) {
            let Some(track) = track_of(note) else {
                report.no_track += 1;
                continue;
            };
            if representation.pitch_row(note.pitch).is_none() {
                report.outside_window += 1;
                continue;
            }
            if !grid.is_on_grid(note.start) {
                report.moved_to_grid += 1;
            }
            // An onset just before the span's end can round onto it; it belongs to the last step.
            let start = (grid.step(note.start) - first_step).min(steps - 1);
            let end = (grid.step(note.end) - first_step).clamp(start + 1, steps);
            placed.push(GridNote {
                track,
                start: start as usize,
                pitch: note.pitch,
                length: (end - start) as usize,
                velocity: note.velocity,
            });
        }
        report.merged += merge_collisions(&mut placed);
        for note in placed {
            roll.place(note).expect("notes were fitted to the roll above");
            report.notes_placed += 1;
        }
        tie_in_notes_from_before(score, span, grid, first_step, &track_of, &mut roll);
        segments.push(roll);
    }
    ImportedPiece { segments, report }
}

/// Two notes of one pitch quantised onto one step become one: the louder velocity and the
/// longer length. Returns how many were merged away.
fn merge_collisions(notes: &mut Vec<GridNote>) -> usize {
    notes.sort_by_key(|note| (note.track, note.start, note.pitch));
    let before = notes.len();
    notes.dedup_by(|later, kept| {
        let same = (later.track, later.start, later.pitch) == (kept.track, kept.start, kept.pitch);
        if same {
            kept.length = kept.length.max(later.length);
            kept.velocity = kept.velocity.max(later.velocity);
        }
        same
    });
    before - notes.len()
}

/// Notes that start before a span and sound into it: the span hears them, though it does not
/// own their onsets.
fn tie_in_notes_from_before(
    score: &Score,
    span: MeterSpan,
    grid: Grid,
    first_step: u64,
    track_of: &impl Fn(&ScoreNote) -> Option<usize>,
    roll: &mut Roll,
) {
    for note in score.notes.iter().filter(|note| note.start < span.start && note.end > span.start) {
        if let Some(track) = track_of(note) {
            let length = grid.step(note.end).saturating_sub(first_step) as usize;
            roll.place_tied_in(track, note.pitch, length);
        }
    }
}

fn track_lookup<'a>(
    score: &'a Score,
    representation: &'a Representation,
    assignment: TrackAssignment,
) -> impl Fn(&ScoreNote) -> Option<usize> + 'a {
    let drum_track = representation.tracks.iter().position(|track| track.is_drum);
    let mut pitched_tracks: Vec<usize> = score
        .notes
        .iter()
        .filter(|note| note.channel != DRUM_CHANNEL)
        .map(|note| note.track)
        .collect();
    pitched_tracks.sort_unstable();
    pitched_tracks.dedup();
    let melodic_tracks: Vec<usize> = (0..representation.track_count()).filter(|&t| Some(t) != drum_track).collect();
    move |note: &ScoreNote| {
        if note.channel == DRUM_CHANNEL {
            return drum_track;
        }
        match assignment {
            TrackAssignment::ByChannel => representation.tracks.iter().position(|track| track.channel == note.channel),
            TrackAssignment::ByTrackOrder => {
                let order = pitched_tracks.binary_search(&note.track).ok()?;
                melodic_tracks.get(order).copied()
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MeterSpan {
    start: u64,
    end: u64,
    meter: Meter,
}

/// The piece split where its meter changes; 4/4 until the first time signature, as the MIDI
/// standard says.
fn meter_spans(score: &Score) -> Vec<MeterSpan> {
    let mut changes = score.meters.clone();
    if changes.first().is_none_or(|&(tick, _)| tick > 0) {
        changes.insert(0, (0, Meter::COMMON));
    }
    let mut spans: Vec<MeterSpan> = Vec::with_capacity(changes.len());
    for (index, &(start, meter)) in changes.iter().enumerate() {
        let end = changes.get(index + 1).map_or(score.end, |&(next, _)| next);
        if end <= start {
            continue;
        }
        match spans.last_mut() {
            Some(last) if last.meter == meter && last.end == start => last.end = end,
            _ => spans.push(MeterSpan { start, end, meter }),
        }
    }
    spans
}
