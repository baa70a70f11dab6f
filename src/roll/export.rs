//! A roll back to a standard MIDI file.

use super::midi_file::{write_midi, TrackToWrite};
use super::piano_roll::Roll;
use super::representation::Representation;
use crate::schedule::Pattern;

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

/// The pattern the plugin plays, as a file: one track per MIDI channel it uses, named from
/// `track_names` (per channel) where known, swung as it plays. Swung positions and humanised
/// delays are rounded to the nearest tick.
pub fn pattern_to_midi(pattern: &Pattern, bpm: f64, track_names: &[(u8, String)]) -> Vec<u8> {
    let steps_per_whole = u32::from(pattern.meter.denominator) * pattern.steps_per_beat;
    // 480 where a step is a whole number of ticks, else one tick per quarter step.
    let ticks_per_quarter: u16 = if 1920 % steps_per_whole == 0 { 480 } else { steps_per_whole as u16 };
    let ticks_per_step = u64::from(ticks_per_quarter) * 4 / u64::from(steps_per_whole);
    let mut channels: Vec<u8> = pattern.notes.iter().map(|n| n.channel).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut tracks: Vec<TrackToWrite> = channels
        .iter()
        .map(|&channel| {
            let name = track_names
                .iter()
                .find(|(c, _)| *c == channel)
                .map_or_else(|| format!("Channel {}", channel + 1), |(_, n)| n.clone());
            TrackToWrite { name, channel, notes: Vec::new() }
        })
        .collect();
    let quarters_per_step = pattern.quarters_per_step();
    let bar_quarters = f64::from(pattern.steps_per_bar()) * quarters_per_step;
    let tick_of = |step: u32| {
        let quarters = pattern.swing.place(f64::from(step) * quarters_per_step, bar_quarters);
        (quarters * f64::from(ticks_per_quarter)).round() as u64
    };
    for note in &pattern.notes {
        let track = channels.binary_search(&note.channel).expect("every channel has a track");
        let delay = (u64::from(note.delay) * ticks_per_step + 128) / 256;
        let (start, end) = (tick_of(note.start) + delay, tick_of(note.start + note.length) + delay);
        tracks[track].notes.push((start, end - start, note.pitch, note.velocity));
    }
    let microseconds_per_quarter = (60_000_000.0 / bpm.clamp(1.0, 1000.0)).round() as u32;
    let end = u64::from(pattern.bars * pattern.steps_per_bar()) * ticks_per_step;
    write_midi(ticks_per_quarter, microseconds_per_quarter, pattern.meter, &tracks, end)
}

#[cfg(test)]
mod pattern_tests {
    use super::*;
    use crate::roll::swing::Swing;
    use crate::roll::{read_midi, Meter};
    use crate::schedule::PatternNote;

    #[test]
    fn an_exported_pattern_reads_back_note_for_note() {
        let note = |start, channel, pitch, delay| PatternNote { start, length: 3, channel, pitch, velocity: 77, delay };
        let pattern = Pattern {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars: 2,
            notes: vec![note(0, 0, 60, 0), note(5, 3, 40, 128), note(31, 0, 64, 0)],
            swing: Swing::STRAIGHT,
        };
        let score = read_midi(&pattern_to_midi(&pattern, 97.0, &[(3, "Bass".into())])).unwrap();
        let notes: Vec<(u64, u8, u8)> = score.notes.iter().map(|n| (n.start, n.channel, n.pitch)).collect();
        assert_eq!(notes, vec![(0, 0, 60), (5 * 120 + 60, 3, 40), (31 * 120, 0, 64)], "a half-step delay is 60 ticks");
        assert!(score.track_names.iter().any(|name| name == "Bass"));
    }
}
