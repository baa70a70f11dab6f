//! A roll back to a standard MIDI file.

use super::midi_file::{write_midi, TrackToWrite};
use super::piano_roll::Roll;
use super::representation::Representation;

/// The resolution files are written at: 480 ticks per quarter note where every step is a
/// whole number of ticks there (any grid a DAW user meets), else one fine enough that it is.
pub fn ticks_per_quarter_for(representation: &Representation) -> u16 {
    let (steps, quarters) = representation.steps_per_quarter();
    if (480 * quarters) % steps == 0 {
        480
    } else {
        (steps * 4) as u16
    }
}

/// A standard MIDI file of the roll at `bpm`: tempo and meter, one track per roll track on
/// its channel, velocities as rolled. The file lasts the whole roll, trailing silence
/// included, so an exported loop keeps its length.
pub fn roll_to_midi(roll: &Roll, bpm: f64) -> Vec<u8> {
    let representation = roll.representation();
    let ticks_per_quarter = ticks_per_quarter_for(representation);
    let (steps, quarters) = representation.steps_per_quarter();
    let ticks_per_step = u64::from(ticks_per_quarter) * quarters / steps;
    let mut tracks: Vec<TrackToWrite> = representation
        .tracks
        .iter()
        .map(|spec| TrackToWrite { name: spec.name.clone(), channel: spec.channel, notes: Vec::new() })
        .collect();
    for note in roll.notes() {
        let (start, length) = (note.start as u64 * ticks_per_step, note.length as u64 * ticks_per_step);
        tracks[note.track].notes.push((start, length, note.pitch, note.velocity));
    }
    let microseconds_per_quarter = (60_000_000.0 / bpm.clamp(1.0, 1000.0)).round() as u32;
    let end = roll.steps() as u64 * ticks_per_step;
    write_midi(ticks_per_quarter, microseconds_per_quarter, representation.meter, &tracks, end)
}
