//! Standard MIDI files built byte by byte for tests, so that each test states exactly the
//! file it reads.
#![allow(dead_code)]

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// An event at an absolute tick.
pub type Timed = (u64, TrackEventKind<'static>);

pub fn note_on(tick: u64, channel: u8, key: u8, vel: u8) -> Timed {
    (
        tick,
        TrackEventKind::Midi {
            channel: u4::new(channel),
            message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) },
        },
    )
}

pub fn note_off(tick: u64, channel: u8, key: u8) -> Timed {
    (
        tick,
        TrackEventKind::Midi {
            channel: u4::new(channel),
            message: MidiMessage::NoteOff { key: u7::new(key), vel: u7::new(64) },
        },
    )
}

pub fn tempo(tick: u64, microseconds_per_quarter: u32) -> Timed {
    (tick, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(microseconds_per_quarter))))
}

pub fn meter(tick: u64, numerator: u8, denominator: u8) -> Timed {
    let exponent = denominator.trailing_zeros() as u8;
    (tick, TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, exponent, 24, 8)))
}

/// A file from tracks of absolute-time events (each track is sorted stably by tick here).
pub fn smf(format: Format, ticks_per_quarter: u16, tracks: Vec<Vec<Timed>>) -> Vec<u8> {
    let mut smf = Smf::new(Header::new(format, Timing::Metrical(u15::new(ticks_per_quarter))));
    for mut events in tracks {
        events.sort_by_key(|(tick, _)| *tick);
        let mut previous = 0;
        let mut track: Vec<TrackEvent<'static>> = events
            .into_iter()
            .map(|(tick, kind)| {
                let delta = u28::new((tick - previous) as u32);
                previous = tick;
                TrackEvent { delta, kind }
            })
            .collect();
        track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        smf.tracks.push(track);
    }
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).unwrap();
    bytes
}

/// A small valid two-part file in 4/4 at 480 ticks per quarter.
pub fn two_part_song() -> Vec<u8> {
    smf(
        Format::Parallel,
        480,
        vec![
            vec![tempo(0, 500_000), meter(0, 4, 4)],
            vec![note_on(0, 0, 72, 90), note_off(480, 0, 72), note_on(480, 0, 74, 80), note_off(1920, 0, 74)],
            vec![note_on(0, 1, 48, 70), note_off(1920, 1, 48)],
        ],
    )
}
