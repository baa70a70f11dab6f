//! What the audio thread would play equals what `dreamroll render` writes: the same notes on
//! the same samples, whatever the block sizes.

use dreamroll::engine::pattern::{build_pattern, PatternOptions};
use dreamroll::model::default_generator;
use dreamroll::model::generator::RenderRequest;
use dreamroll::roll::swing::Swing;
use dreamroll::roll::{pattern_to_midi, read_midi, roll_to_midi, Meter};
use dreamroll::schedule::{Pattern, Scheduler, Window};

/// The note-ons the scheduler plays over `bars` bars of 4/4, in blocks of every size a host
/// sends, as (sample, channel, pitch).
fn scheduled_ons(pattern: &Pattern, bars: u32, bpm: f64, rate: f64) -> Vec<(u64, u8, u8)> {
    let mut scheduler = Scheduler::new();
    let total = (f64::from(bars) * 4.0 * rate * 60.0 / bpm) as u64;
    let (mut position, mut quarters, mut got) = (0u64, 0.0, Vec::new());
    let sizes = [1u32, 64, 511, 512, 4096, 33, 8192, 2];
    let mut index = 0;
    while position < total {
        let size = sizes[index % sizes.len()];
        index += 1;
        let window = Window {
            playing: true,
            sample_rate: rate,
            tempo: bpm,
            start: quarters,
            bar_start: (quarters / 4.0).floor() * 4.0,
            bar_number: (quarters / 4.0).floor() as i64,
            meter: Meter::COMMON,
            samples: size,
        };
        for event in scheduler.process(pattern, &window, false).iter().filter(|e| e.is_on()) {
            got.push((position + u64::from(event.offset), event.channel, event.pitch));
        }
        position += u64::from(size);
        quarters = window.end();
    }
    got.retain(|e| e.0 < total);
    got.sort();
    got
}

/// A file's note-ons as (sample, channel, pitch).
fn file_ons(midi: &[u8], bpm: f64, rate: f64) -> Vec<(u64, u8, u8)> {
    let score = read_midi(midi).unwrap();
    let samples_per_tick = rate * 60.0 / bpm / f64::from(score.ticks_per_quarter);
    let mut ons: Vec<(u64, u8, u8)> =
        score.notes.iter().map(|n| ((n.start as f64 * samples_per_tick).round() as u64, n.channel, n.pitch)).collect();
    ons.sort();
    ons
}

fn request() -> RenderRequest {
    RenderRequest { knobs: vec![1.0], ..RenderRequest::new(8, 42) }
}

fn plain_voicing(channels: Vec<u8>, swing: Swing) -> PatternOptions {
    PatternOptions { swing, ..PatternOptions::plain(channels) }
}

#[test]
fn scheduled_onsets_fall_on_the_samples_the_rendered_file_implies() {
    let generator = default_generator().unwrap();
    let roll = generator.render(&request()).unwrap();
    let (bpm, rate) = (97.0, 44_100.0);
    let expected = file_ons(&roll_to_midi(&roll, bpm), bpm, rate);
    let tracks = &generator.card().representation.tracks;
    let options = plain_voicing(tracks.iter().map(|t| t.channel).collect(), Swing::STRAIGHT);
    let got = scheduled_ons(&build_pattern(&roll, &options), 8, bpm, rate);
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "0 samples apart");
}

#[test]
fn swung_onsets_fall_where_the_exported_file_puts_them_and_only_off_beats_move() {
    let generator = default_generator().unwrap();
    let roll = generator.render(&request()).unwrap();
    // 120 BPM at 48 kHz: a tick of 480 a quarter is 50 samples, and a 60 % swing puts every
    // 16th on a whole tick (0.3, 0.6 and 0.8 of the beat), so file and play agree exactly.
    let (bpm, rate) = (120.0, 48_000.0);
    let tracks = &generator.card().representation.tracks;
    let channels: Vec<u8> = tracks.iter().map(|t| t.channel).collect();
    let straight = build_pattern(&roll, &plain_voicing(channels.clone(), Swing::STRAIGHT));
    let swung = build_pattern(&roll, &plain_voicing(channels, Swing::new(60)));
    let played = scheduled_ons(&swung, 8, bpm, rate);
    assert_eq!(played, file_ons(&pattern_to_midi(&swung, bpm, &[]), bpm, rate), "0 samples apart");
    let before = scheduled_ons(&straight, 8, bpm, rate);
    assert_eq!(played.len(), before.len());
    let beat = 24_000u64;
    let mut moved = 0;
    for (swung, straight) in played.iter().zip(&before) {
        let within = straight.0 % beat;
        let expected = match within {
            0 => 0,
            w if w == beat / 4 => beat * 3 / 10,
            w if w == beat / 2 => beat * 6 / 10,
            w if w == beat * 3 / 4 => beat * 8 / 10,
            w => panic!("a 16th grid onset at {w} samples into the beat"),
        };
        assert_eq!(swung.0, straight.0 - within + expected, "{straight:?} swung to {swung:?}");
        moved += usize::from(within != 0);
    }
    assert!(moved >= 10, "the chorales have off-beats to swing ({moved})");
}
