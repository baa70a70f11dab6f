//! The plugin as a host sees it, through the CLAP ABI (the tests' host): the cost of one
//! 512-sample block of `process()` and of the costliest block a host can ask for, the time
//! from loading to the first note, the time from a knob change to the new pattern being ready,
//! and the memory one loaded instance takes.

#[path = "../tests/clap_host/mod.rs"]
mod clap_host;

use clap_host::{ClapInstance, Transport};
use criterion::{criterion_group, criterion_main, Criterion};
use dreamroll::engine::models::ModelSource;
use dreamroll::engine::worker::{Engine, Polled, Settings, Watch};
use dreamroll::model::card::ModelCard;
use dreamroll::model::default_generator;
use dreamroll::plugin::params::{settings_for, DreamrollParams};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The plugin library this bench build made (`target/release/libdreamroll.so` and kin).
fn plugin_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench has a path");
    let profile_dir = exe.ancestors().nth(2).expect("target/<profile>/deps/<bench>");
    profile_dir.join(clap_host::PLUGIN_LIBRARY)
}

/// Resident memory of this process, in bytes (Linux; elsewhere 0).
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn process_block(c: &mut Criterion) {
    let library = plugin_library();
    let before = resident_bytes();
    let mut plugin = ClapInstance::load(&library);
    plugin.activate(48_000.0, 512);
    let quarters_per_block = 512.0 * 120.0 / 60.0 / 48_000.0;
    let mut index = 0u64;
    let mut block = |plugin: &mut ClapInstance| {
        let beats = (index % 1500) as f64 * quarters_per_block;
        index += 1;
        plugin.process(512, &Transport::four_four(beats, 120.0, true), &[]).0.len()
    };
    for _ in 0..200 {
        block(&mut plugin);
    }
    eprintln!(
        "resident memory of one loaded, playing instance: {:.1} MB",
        (resident_bytes().saturating_sub(before)) as f64 / 1e6
    );
    c.bench_function("plugin process() 512-sample block", |b| b.iter(|| block(&mut plugin)));
    let preview = plugin.change("Preview synth", "On");
    plugin.flush_params(&[preview]);
    c.bench_function("plugin process() 512-sample block, preview synth on", |b| b.iter(|| block(&mut plugin)));
}

/// The most work one block can ask for: a transport whose 4 096-sample block spans just under
/// the most bars a block may (`MOST_BARS_PER_BLOCK`; past it the block plays as stopped), so
/// that every bar's notes are looked at, up to the most a block looks at, with the preview on.
/// Hostile transports beyond it (a tempo of 1e300, a sample rate of 1 Hz with a long block,
/// positions of 1e300 beats) cost less: they are stopped blocks.
fn worst_block(c: &mut Criterion) {
    const FRAMES: u32 = 4096;
    let rate = 48_000.0;
    let tempo = 0.999 * dreamroll::schedule::MOST_BARS_PER_BLOCK * 4.0 * 60.0 * rate / f64::from(FRAMES);
    let mut plugin = ClapInstance::load(&plugin_library());
    let preview = plugin.change("Preview synth", "On");
    plugin.flush_params(&[preview]);
    plugin.activate(rate, FRAMES);
    let quarters_per_block = f64::from(FRAMES) * tempo / 60.0 / rate;
    let mut index = 0u64;
    let mut block = |plugin: &mut ClapInstance| {
        let beats = (index % 64) as f64 * quarters_per_block;
        index += 1;
        let transport = Transport { tempo, ..Transport::four_four(beats, 120.0, true) };
        plugin.process(FRAMES, &transport, &[]).0.len()
    };
    assert!(block(&mut plugin) > 1000, "the block is full of notes");
    c.bench_function("plugin process() worst block: 4096 samples over 1023 bars, preview on", |b| {
        b.iter(|| block(&mut plugin))
    });
}

fn load_to_first_note(c: &mut Criterion) {
    let library = plugin_library();
    let mut group = c.benchmark_group("plugin load");
    group.sample_size(10);
    group.bench_function("load, activate, first note", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let mut plugin = ClapInstance::load(&library);
                plugin.activate(48_000.0, 512);
                let (played, _) = plugin.process(512, &Transport::four_four(0.0, 120.0, true), &[]);
                total += started.elapsed();
                assert!(played.iter().any(|p| p.on && p.sample == 0), "the first block starts the first notes");
            }
            total
        })
    });
    group.finish();
}

/// The default parameters with macro knob 1 at the value whose bits are in `knob`, which is
/// also the fingerprint.
struct KnobWatch {
    params: DreamrollParams,
    knob: Arc<AtomicU32>,
    polled: u32,
}

impl Watch for KnobWatch {
    fn poll(&mut self) -> Polled {
        self.polled = self.knob.load(Ordering::Acquire);
        Polled { fingerprint: u64::from(self.polled), problem: None }
    }

    fn settings(&mut self, card: &ModelCard) -> Settings {
        let mut settings = settings_for(&self.params, card);
        settings.request.knobs[0] = f32::from_bits(self.polled);
        settings
    }
}

/// From a knob change to the new pattern in the audio thread's ring: the engine's poll of the
/// parameters plus one render of the default model's 8-bar loop.
fn knob_to_pattern(c: &mut Criterion) {
    let knob = Arc::new(AtomicU32::new(0f32.to_bits()));
    let watch = KnobWatch { params: DreamrollParams::default(), knob: knob.clone(), polled: 0 };
    let (_engine, mut audio) =
        Engine::spawn(default_generator().unwrap(), ModelSource::Embedded, Some(Box::new(watch)));
    let mut group = c.benchmark_group("engine");
    group.sample_size(30);
    let mut turn = 0u32;
    group.bench_function("knob change to new pattern ready", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                turn += 1;
                let value = (-2.9f32 + (turn % 580) as f32 * 0.01).to_bits();
                let started = Instant::now();
                knob.store(value, Ordering::Release);
                while audio.answered.load(Ordering::Acquire) != u64::from(value) {
                    std::hint::spin_loop();
                }
                total += started.elapsed();
                while let Ok(update) = audio.patterns.pop() {
                    let _ = audio.used.push(update);
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, process_block, worst_block, load_to_first_note, knob_to_pattern);
criterion_main!(benches);
