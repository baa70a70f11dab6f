//! What the audio thread would play equals what `dreamroll render` writes: the same notes on
//! the same samples, whatever the block sizes.

use dreamroll::engine::pattern::{build_pattern, PatternOptions, Scale};
use dreamroll::model::default_generator;
use dreamroll::model::generator::RenderRequest;
use dreamroll::roll::{read_midi, roll_to_midi, Meter};
use dreamroll::schedule::{Scheduler, Window};

#[test]
fn scheduled_onsets_fall_on_the_samples_the_rendered_file_implies() {
    let generator = default_generator().unwrap();
    let request = RenderRequest {
        bars: 8,
        seed: 42,
        knobs: vec![1.0],
        variation: 0.3,
        temperature: None,
        density: 0.0,
        named: Vec::new(),
    };
    let roll = generator.render(&request).unwrap();
    let (bpm, rate) = (97.0, 44_100.0);

    let score = read_midi(&roll_to_midi(&roll, bpm)).unwrap();
    let samples_per_tick = rate * 60.0 / bpm / f64::from(score.ticks_per_quarter);
    let mut expected: Vec<(u64, u8, u8)> =
        score.notes.iter().map(|n| ((n.start as f64 * samples_per_tick).round() as u64, n.channel, n.pitch)).collect();
    expected.sort();

    let tracks = generator.card().representation.tracks.len();
    let options = PatternOptions {
        key: 0,
        scale: Scale::Chromatic,
        transpose: 0,
        velocity: 90,
        humanise: 0.0,
        seed: 42,
        channels: generator.card().representation.tracks.iter().map(|t| t.channel).collect(),
        muted: vec![false; tracks],
    };
    let pattern = build_pattern(&roll, &options);
    let mut scheduler = Scheduler::new();
    let total = (8.0 * 4.0 * rate * 60.0 / bpm) as u64;
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
        for event in scheduler.process(&pattern, &window, false).iter().filter(|e| e.is_on()) {
            got.push((position + u64::from(event.offset), event.channel, event.pitch));
        }
        position += u64::from(size);
        quarters = window.end();
    }
    got.retain(|e| e.0 < total);
    got.sort();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "0 samples apart");
}
