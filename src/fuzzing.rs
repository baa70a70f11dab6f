//! The bodies of the fuzz targets (`tests/fuzz`), kept in the library so that every input that
//! ever crashed one is replayed by the ordinary test suite on a stable toolchain
//! (`tests/fuzz_regressions.rs`). Each takes arbitrary bytes and must neither panic nor hang.

use crate::model::generator::{Generator, RenderRequest};
use crate::plugin::session::parse_session;
use crate::roll::{read_midi, score_to_piece, Meter, Representation, TrackAssignment, TrackSpec};
use crate::schedule::{Scheduler, Window};
use std::sync::Arc;

/// A MIDI file read and imported both ways a training folder can be.
pub fn midi_import(data: &[u8]) {
    let Ok(score) = read_midi(data) else { return };
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 4,
        lowest_pitch: 36,
        pitch_count: 48,
        tracks: vec![TrackSpec::new("One", 0), TrackSpec::new("Two", 1), TrackSpec::new("Drums", crate::roll::DRUM_CHANNEL)],
    });
    for assignment in [TrackAssignment::ByChannel, TrackAssignment::ByTrackOrder] {
        let piece = score_to_piece(&score, &representation, assignment);
        for segment in &piece.segments {
            let _ = segment.phrases(4, 4);
        }
    }
}

/// A model folder's two files, from one input: a little-endian u32 says how long the card is.
pub fn model_load(data: &[u8]) {
    let Some((length, rest)) = data.split_first_chunk::<4>() else { return };
    let (card, weights) = rest.split_at(u32::from_le_bytes(*length) as usize % (rest.len() + 1));
    let Ok(card) = std::str::from_utf8(card) else { return };
    if let Ok(generator) = Generator::from_bytes(card, weights) {
        let _ = generator.render(&RenderRequest { bars: 1, seed: 1, knobs: vec![1.0], variation: 0.5, temperature: Some(0.5), density: 0.3, named: Vec::new() });
    }
}

/// A saved plugin session; one the plugin accepts is played through the scheduler across
/// its loop, as the audio thread would.
pub fn plugin_state(data: &[u8]) {
    let Ok(session) = parse_session(&String::from_utf8_lossy(data)) else { return };
    let pattern = session.pattern;
    let mut scheduler = Scheduler::new();
    let bar_quarters = pattern.meter.quarters_per_bar();
    let loop_quarters = f64::from(pattern.bars) * bar_quarters;
    let blocks = 64;
    for block in 0..blocks {
        let start = loop_quarters * f64::from(block) / f64::from(blocks);
        let window = Window {
            playing: true,
            sample_rate: 48_000.0,
            tempo: 120.0,
            start,
            bar_start: (start / bar_quarters).floor() * bar_quarters,
            bar_number: (start / bar_quarters).floor() as i64,
            meter: pattern.meter,
            samples: 2048,
        };
        let _ = scheduler.process(&pattern, &window, false);
    }
}
