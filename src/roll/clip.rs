//! A producer's own notes as a model reads them: a MIDI file (or a take) on the model's grid,
//! from its start, whole bars, each channel on its track — with every note that could not
//! be read counted and named, since a clip that silently loses notes is worse than none.

use super::import::{score_to_piece, TrackAssignment};
use super::midi_file::{read_midi, MidiError};
use super::piano_roll::Roll;
use super::representation::{Meter, Representation};
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

/// The first `bars` bars (at most) of a MIDI file's bytes on `representation`'s grid.
pub fn read_clip(bytes: &[u8], representation: &Arc<Representation>, assignment: TrackAssignment, bars: usize) -> Result<Clip, ClipError> {
    let score = read_midi(bytes)?;
    let first_meter = score.meters.first().filter(|&&(tick, _)| tick == 0).map_or(Meter::COMMON, |&(_, meter)| meter);
    if first_meter != representation.meter {
        return Err(ClipError::Meter { found: first_meter, wanted: representation.meter });
    }
    let piece = score_to_piece(&score, representation, assignment);
    let report = &piece.report;
    let mut left_out = Vec::new();
    let mut count = |n: usize, why: &str| {
        if n > 0 {
            left_out.push(format!("{n} {} {why}", if n == 1 { "note" } else { "notes" }));
        }
    };
    count(report.outside_window, &format!("outside the model's pitches ({}..{})", representation.lowest_pitch, u16::from(representation.lowest_pitch) + u16::from(representation.pitch_count)));
    count(report.no_track, "on channels the model has no part for");
    count(report.other_meter, "after the meter changes");
    let Some(first) = piece.segments.first().filter(|roll| !roll.notes().is_empty()) else {
        return Err(ClipError::Nothing(if left_out.is_empty() { "it is empty".into() } else { left_out.join(", ") }));
    };
    let bar = representation.steps_per_bar();
    let kept_steps = first.steps().min(bars.max(1) * bar);
    let roll = first.slice(0..kept_steps);
    count(first.notes().iter().filter(|note| note.start >= kept_steps).count(), &format!("after the first {} bars", kept_steps / bar));
    let tracks_given = (0..roll.track_count()).filter(|&track| !roll.is_silent(track, 0..roll.steps())).collect();
    Ok(Clip { roll, tracks_given, left_out })
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
                notes: notes.iter().filter(|n| n.0 == channel).map(|&(_, start, length, pitch)| (start, length, pitch, 100)).collect(),
            })
            .collect();
        write_midi(TPQ, 500_000, meter, &tracks, 8 * BAR)
    }

    #[test]
    fn a_clip_is_read_from_its_start_and_what_is_left_out_is_counted() {
        let bytes = file(Meter::COMMON, &[(0, 0, BAR, 60), (0, BAR, BAR, 62), (0, 3 * BAR, BAR, 64), (0, 0, BAR, 100), (2, 0, BAR, 50)]);
        let clip = read_clip(&bytes, &two_parts(), TrackAssignment::ByChannel, 2).unwrap();
        assert_eq!(clip.roll.steps(), 32, "its first two bars");
        assert_eq!(clip.roll.notes().iter().map(|n| n.pitch).collect::<Vec<_>>(), vec![60, 62]);
        assert_eq!(clip.tracks_given, vec![0], "only the lead plays");
        assert_eq!(
            clip.left_out,
            vec!["1 note outside the model's pitches (48..72)", "1 note on channels the model has no part for", "1 note after the first 2 bars"]
        );
    }

    #[test]
    fn a_clip_the_model_cannot_read_is_refused_in_words() {
        let waltz = file(Meter::new(3, 4).unwrap(), &[(0, 0, TPQ as u64, 60)]);
        assert_eq!(read_clip(&waltz, &two_parts(), TrackAssignment::ByChannel, 4).unwrap_err().to_string(), "the clip begins in 3/4; this model writes 4/4");
        let too_high = file(Meter::COMMON, &[(0, 0, BAR, 100)]);
        let error = read_clip(&too_high, &two_parts(), TrackAssignment::ByChannel, 4).unwrap_err().to_string();
        assert_eq!(error, "the clip has no notes this model can read (1 note outside the model's pitches (48..72))");
        assert!(read_clip(b"not midi", &two_parts(), TrackAssignment::ByChannel, 4).is_err());
    }
}
