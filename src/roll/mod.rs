//! Piano rolls and their conversion from and to MIDI.

mod clip;
pub mod drums;
mod export;
mod import;
mod midi_file;
mod piano_roll;
mod representation;
pub mod swing;

pub use clip::{read_clip, Clip, ClipError, ClipFileError, Take, TakeNote, MOST_TAKE_BARS, MOST_TAKE_NOTES};
pub use export::{pattern_to_midi, roll_to_midi, ticks_per_quarter_for};
pub use import::{score_to_piece, ImportReport, ImportedPiece, TrackAssignment};
pub use midi_file::{
    read_midi, write_midi, MidiError, Score, ScoreNote, TrackToWrite, MAX_QUARTERS, MOST_MIDI_FILE_BYTES,
};
pub use piano_roll::{GridNote, PlaceError, Roll};
#[cfg(test)]
pub(crate) use representation::one_bar_grid;
pub use representation::{
    Meter, Representation, RepresentationError, TrackSpec, DRUM_CHANNEL, MAX_BEATS_PER_BAR, MAX_STEPS_PER_BEAT,
};
