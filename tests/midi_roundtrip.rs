//! MIDI -> roll -> MIDI -> roll is the identity for music on the grid, and the reader treats
//! the odd corners of the MIDI standard as sequencers do.

mod common;

use common::*;
use dreamroll::roll::{
    read_midi, roll_to_midi, score_to_piece, GridNote, Meter, Representation, Roll, TrackAssignment, TrackSpec,
};
use midly::Format;
use proptest::prelude::*;
use std::sync::Arc;

fn representation(steps_per_beat: u16, meter: Meter, tracks: usize) -> Arc<Representation> {
    Arc::new(Representation {
        steps_per_beat,
        meter,
        bars_per_phrase: 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks: (0..tracks).map(|t| TrackSpec::new(format!("Part {t}"), t as u8)).collect(),
    })
}

fn only_segment(bytes: &[u8], representation: &Arc<Representation>) -> Roll {
    let piece = score_to_piece(&read_midi(bytes).unwrap(), representation, TrackAssignment::ByChannel);
    assert_eq!(piece.segments.len(), 1, "one meter, one segment");
    piece.segments.into_iter().next().unwrap()
}

/// A grid, a file layout and notes that never overlap on one pitch of one track.
#[derive(Debug, Clone)]
struct GridSong {
    ticks_per_quarter: u16,
    steps_per_beat: u16,
    meter: Meter,
    tracks: usize,
    format_0: bool,
    offs_as_zero_velocity: bool,
    notes: Vec<GridNote>,
}

fn grid_song() -> impl Strategy<Value = GridSong> {
    let grids = prop_oneof![
        Just((480u16, 4u16, Meter::COMMON)),
        Just((96, 24, Meter::COMMON)),
        Just((960, 3, Meter { numerator: 6, denominator: 8 })),
        Just((120, 2, Meter { numerator: 3, denominator: 4 })),
        Just((384, 12, Meter { numerator: 7, denominator: 8 })),
        Just((480, 1, Meter { numerator: 2, denominator: 2 })),
    ];
    (grids, 1usize..=4, any::<bool>(), any::<bool>()).prop_flat_map(
        |((tpq, spb, meter), tracks, format_0, zero_offs)| {
            let lane = (0..tracks, 20u8..100, proptest::collection::vec((0usize..12, 1usize..10, 1u8..=127), 1..8));
            proptest::collection::vec(lane, 1..10).prop_map(move |lanes| {
                let mut notes = Vec::new();
                let mut used = std::collections::HashSet::new();
                for (track, pitch, runs) in lanes {
                    if !used.insert((track, pitch)) {
                        continue;
                    }
                    let mut step = 0;
                    for (gap, length, velocity) in runs {
                        step += gap;
                        notes.push(GridNote { track, start: step, pitch, length, velocity });
                        step += length;
                    }
                }
                notes.sort();
                GridSong {
                    ticks_per_quarter: tpq,
                    steps_per_beat: spb,
                    meter,
                    tracks,
                    format_0,
                    offs_as_zero_velocity: zero_offs,
                    notes,
                }
            })
        },
    )
}

fn write_song(song: &GridSong) -> Vec<u8> {
    let ticks_per_step =
        u64::from(song.ticks_per_quarter) * 4 / (u64::from(song.meter.denominator) * u64::from(song.steps_per_beat));
    let conductor = vec![tempo(0, 612_345), meter(0, song.meter.numerator, song.meter.denominator)];
    let mut parts: Vec<Vec<Timed>> = vec![Vec::new(); song.tracks];
    for note in &song.notes {
        let channel = note.track as u8;
        let (on, off) = (note.start as u64 * ticks_per_step, (note.start + note.length) as u64 * ticks_per_step);
        parts[note.track].push(note_on(on, channel, note.pitch, note.velocity));
        parts[note.track].push(if song.offs_as_zero_velocity {
            note_on(off, channel, note.pitch, 0)
        } else {
            note_off(off, channel, note.pitch)
        });
    }
    if song.format_0 {
        let mut all = conductor;
        parts.into_iter().for_each(|part| all.extend(part));
        smf(Format::SingleTrack, song.ticks_per_quarter, vec![all])
    } else {
        smf(Format::Parallel, song.ticks_per_quarter, std::iter::once(conductor).chain(parts).collect())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn grid_aligned_midi_round_trips_through_rolls(song in grid_song()) {
        let representation = representation(song.steps_per_beat, song.meter, song.tracks);
        let first = only_segment(&write_song(&song), &representation);
        prop_assert_eq!(first.notes(), song.notes.clone());
        let last_end = song.notes.iter().map(|n| n.start + n.length).max().unwrap();
        prop_assert_eq!(first.steps(), last_end.div_ceil(representation.steps_per_bar()) * representation.steps_per_bar());
        let again = only_segment(&roll_to_midi(&first, 97.0), &representation);
        prop_assert_eq!(again, first);
    }
}

#[test]
fn exported_files_carry_tempo_meter_names_and_trailing_silence() {
    let representation = representation(3, Meter { numerator: 6, denominator: 8 }, 2);
    let mut roll = Roll::new(representation.clone(), 36);
    roll.place(GridNote { track: 1, start: 0, pitch: 45, length: 3, velocity: 33 }).unwrap();
    let score = read_midi(&roll_to_midi(&roll, 97.0)).unwrap();
    assert_eq!(score.tempos, vec![(0, 618_557)]);
    assert_eq!(score.meters, vec![(0, Meter { numerator: 6, denominator: 8 })]);
    assert_eq!(score.track_names, vec!["", "Part 0", "Part 1"]);
    assert_eq!(score.notes.len(), 1);
    assert_eq!((score.notes[0].channel, score.notes[0].velocity), (1, 33));
    assert_eq!(score.end, 2 * 3 * 480, "two bars of 6/8, the second silent");
    assert_eq!(score_to_piece(&score, &representation, TrackAssignment::ByChannel).bar_count(), 2);
}

#[test]
fn overlapping_notes_of_one_pitch_close_first_in_first_out() {
    let bytes = smf(
        Format::SingleTrack,
        480,
        vec![vec![note_on(0, 0, 60, 100), note_on(480, 0, 60, 50), note_off(960, 0, 60), note_off(1440, 0, 60)]],
    );
    let score = read_midi(&bytes).unwrap();
    let spans: Vec<_> = score.notes.iter().map(|n| (n.start, n.end, n.velocity)).collect();
    assert_eq!(spans, vec![(0, 960, 100), (480, 1440, 50)]);
    // On the grid the second onset cuts the first note, and the second lasts to its own end.
    let roll = only_segment(&bytes, &representation(4, Meter::COMMON, 1));
    let notes: Vec<_> = roll.notes().iter().map(|n| (n.start, n.length, n.velocity)).collect();
    assert_eq!(notes, vec![(0, 4, 100), (4, 8, 50)]);
}

#[test]
fn notes_never_ended_are_closed_at_the_end_of_their_track_and_counted() {
    let bytes = smf(
        Format::SingleTrack,
        480,
        vec![vec![note_on(0, 0, 60, 100), note_on(0, 0, 64, 100), note_off(960, 0, 64), (1920, tempo(0, 500_000).1)]],
    );
    let score = read_midi(&bytes).unwrap();
    assert_eq!(score.unterminated_notes, 1);
    let hanging = score.notes.iter().find(|n| n.pitch == 60).unwrap();
    assert_eq!((hanging.start, hanging.end), (0, 1920));
    let piece = score_to_piece(&score, &representation(4, Meter::COMMON, 1), TrackAssignment::ByChannel);
    assert_eq!(piece.report.unterminated, 1);
}

#[test]
fn a_format_0_file_splits_into_tracks_by_channel() {
    let bytes = smf(
        Format::SingleTrack,
        480,
        vec![vec![note_on(0, 2, 40, 90), note_on(0, 0, 76, 90), note_off(480, 0, 76), note_off(1920, 2, 40)]],
    );
    let representation = Arc::new(Representation {
        tracks: vec![TrackSpec::new("Melody", 0), TrackSpec::new("Bass", 2)],
        ..(*representation(4, Meter::COMMON, 1)).clone()
    });
    let roll = only_segment(&bytes, &representation);
    let notes: Vec<_> = roll.notes().iter().map(|n| (n.track, n.pitch, n.length)).collect();
    assert_eq!(notes, vec![(0, 76, 4), (1, 40, 16)]);
}
