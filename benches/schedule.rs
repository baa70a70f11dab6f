//! The audio thread's cost: one 512-sample block of scheduling for the default model's
//! 8-bar pattern, at 48 kHz and 120 BPM, over a whole loop of blocks.

use criterion::{criterion_group, criterion_main, Criterion};
use dreamroll::engine::pattern::{build_pattern, PatternOptions, Scale};
use dreamroll::model::default_generator;
use dreamroll::model::generator::RenderRequest;
use dreamroll::roll::swing::Swing;
use dreamroll::roll::Meter;
use dreamroll::schedule::{Scheduler, Window};

fn process_block(c: &mut Criterion) {
    let generator = default_generator().expect("the embedded model loads");
    let tracks = generator.card().representation.tracks.len();
    let roll = generator
        .render(&RenderRequest {
            bars: 8,
            seed: 1,
            knobs: vec![],
            variation: 0.3,
            temperature: None,
            density: 0.0,
            named: Vec::new(),
            style: None,
        })
        .expect("renders");
    let options = PatternOptions {
        key: 0,
        scale: Scale::Major,
        transpose: 0,
        velocity: 90,
        humanise: 0.3,
        seed: 1,
        channels: (0..tracks as u8).collect(),
        muted: vec![false; tracks],
        swing: Swing::STRAIGHT,
    };
    let pattern = build_pattern(&roll, &options);
    let (rate, tempo, block) = (48_000.0, 120.0, 512u32);
    let quarters_per_block = f64::from(block) * tempo / 60.0 / rate;
    let loop_blocks = (32.0 / quarters_per_block) as u64;
    let mut scheduler = Scheduler::new();
    let mut index = 0u64;
    c.bench_function("schedule 512-sample block", |b| {
        b.iter(|| {
            let start = (index % loop_blocks) as f64 * quarters_per_block;
            index += 1;
            let window = Window {
                playing: true,
                sample_rate: rate,
                tempo,
                start,
                bar_start: (start / 4.0).floor() * 4.0,
                bar_number: (start / 4.0).floor() as i64,
                meter: Meter::COMMON,
                samples: block,
            };
            scheduler.process(&pattern, &window, false).len()
        })
    });
}

criterion_group!(benches, process_block);
criterion_main!(benches);
