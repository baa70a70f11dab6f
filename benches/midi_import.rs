//! MIDI -> rolls over the whole folk corpus on one core: the trainer and the evaluator read
//! it at every start, so it must take seconds, not minutes (goal: at most 3 s).
//!
//! Reads `$DREAMROLL_CORPUS/folk` (default `data/corpus/folk`, made by `cargo xtask corpus`).
//!
//! Also a hostile file: 100 000 note-ons of one pitch before their note-offs, which pairing
//! notes by shifting a stack made take minutes (goal: well under a second).

use criterion::{criterion_group, criterion_main, Criterion};
use dreamroll::corpus::midi_files;
use dreamroll::roll::{
    read_midi, score_to_piece, write_midi, Meter, Representation, TrackAssignment, TrackSpec, TrackToWrite,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn folk_folder() -> PathBuf {
    let root = std::env::var_os("DREAMROLL_CORPUS")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/corpus"), PathBuf::from);
    root.join("folk")
}

fn midi_to_rolls(c: &mut Criterion) {
    let folder = folk_folder();
    let files = match midi_files(&folder) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("skipping the corpus benchmark: {error} (run `cargo xtask corpus` first)");
            return;
        }
    };
    let bytes: Vec<Vec<u8>> = files.iter().map(|path| std::fs::read(path).expect("readable corpus file")).collect();
    let megabytes = bytes.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    eprintln!("{} files, {megabytes:.1} MB from {}", bytes.len(), folder.display());
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 4,
        lowest_pitch: 48,
        pitch_count: 48,
        tracks: vec![TrackSpec::new("Melody", 0)],
    });
    let mut group = c.benchmark_group("corpus");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("folk midi to rolls", |b| {
        b.iter(|| {
            let mut bars = 0;
            for file in &bytes {
                if let Ok(score) = read_midi(file) {
                    bars += score_to_piece(&score, &representation, TrackAssignment::ByChannel).bar_count();
                }
            }
            bars
        })
    });
    group.finish();
}

fn stacked_note_ons(c: &mut Criterion) {
    let stacked = 100_000u64;
    let notes = (0..stacked).map(|tick| (tick, stacked, 60, 100)).collect();
    let bytes = write_midi(
        480,
        500_000,
        Meter::COMMON,
        &[TrackToWrite { name: "stack".into(), channel: 0, notes }],
        2 * stacked,
    );
    let mut group = c.benchmark_group("hostile");
    group.sample_size(10);
    group.bench_function("100 000 stacked note-ons", |b| {
        b.iter(|| read_midi(&bytes).expect("a readable file").notes.len())
    });
    group.finish();
}

criterion_group!(benches, midi_to_rolls, stacked_note_ons);
criterion_main!(benches);
