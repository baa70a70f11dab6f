//! Real third-party hosts for the tests: the bundled plugin, and a private Python environment
//! with DawDreamer (a JUCE host) made on first use, so that `cargo test` alone sets up all it
//! needs on a fresh machine.

#![allow(dead_code)] // each test binary uses part of the helpers

use dreamroll::roll::read_midi;
use dreamroll::schedule::{sort_events, NoteEvent};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The host packages, pinned so that a test run means the same thing every time.
const HOST_PACKAGES: [&str; 3] = ["dawdreamer==0.9.0", "numpy==2.4.6", "pedalboard==0.9.26"];

/// `target/` of this build, found from the test binary (`target/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors().nth(3).expect("the test binary lives in target/<profile>/deps").to_path_buf()
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The CLAP and VST3 bundles, built once per test binary with the product's own bundler.
pub fn bundles() -> &'static (PathBuf, PathBuf) {
    static BUNDLES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        run(
            Command::new(env!("CARGO")).current_dir(root).args(["xtask", "bundle", "dreamroll", "--release"]),
            "cargo xtask bundle dreamroll --release",
        );
        let bundled = target_dir().join("bundled");
        (bundled.join("dreamroll.clap"), bundled.join("dreamroll.vst3"))
    })
}

/// The plugin library built with debug assertions and nice-plug's `assert_process_allocs`
/// (any allocation inside process() aborts), once per test binary.
pub fn alloc_checked_plugin() -> &'static PathBuf {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        run(
            Command::new(env!("CARGO")).current_dir(root).args([
                "build",
                "--package",
                "dreamroll",
                "--lib",
                "--profile",
                "alloc-check",
                "--features",
                "assert_process_allocs",
            ]),
            "building the allocation-checked plugin",
        );
        target_dir().join("alloc-check").join(crate::clap_host::PLUGIN_LIBRARY)
    })
}

/// A Python with the host packages, in `target/host-venv`.
pub fn host_python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = target_dir().join("host-venv");
        let python = venv.join("bin/python");
        let ready = venv.join(format!(".ready-{}", HOST_PACKAGES.join("-")));
        if !ready.exists() {
            run(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv (the DawDreamer test needs Python 3.9+ with venv)",
            );
            run(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                    .args(HOST_PACKAGES),
                "pip install of the test hosts",
            );
            std::fs::write(&ready, "").expect("marking the venv ready");
        }
        python
    })
}

/// Runs a host script from `tests/hosts`, returning its stdout.
pub fn run_host_script(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hosts").join(script);
    let output = Command::new(host_python()).arg(path).args(args).output().expect("the host Python starts");
    assert!(output.status.success(), "{script} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("host scripts print UTF-8")
}

/// Little-endian f32 samples, as the host scripts write them.
pub fn read_samples(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("the host wrote its audio");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// The note events a MIDI file implies at `bpm` and `rate`: each note on the sample its ticks
/// fall on (at least one sample long), as absolute offsets, note-offs first at a shared sample.
pub fn events_of_file(midi: &[u8], rate: u32, bpm: f64) -> Vec<NoteEvent> {
    let score = read_midi(midi).expect("the rendered file reads back");
    let samples_per_tick = 60.0 / bpm * f64::from(rate) / f64::from(score.ticks_per_quarter);
    let at = |tick: u64| (tick as f64 * samples_per_tick).round() as u32;
    let mut events: Vec<NoteEvent> = Vec::new();
    for note in &score.notes {
        events.push(NoteEvent {
            offset: at(note.start),
            channel: note.channel,
            pitch: note.pitch,
            velocity: note.velocity,
        });
        events.push(NoteEvent {
            offset: at(note.end).max(at(note.start) + 1),
            channel: note.channel,
            pitch: note.pitch,
            velocity: 0,
        });
    }
    sort_events(&mut events);
    events
}

/// `dreamroll render` with these arguments, returning the file's bytes.
pub fn render_file(dir: &Path, args: &[&str]) -> Vec<u8> {
    let path = dir.join("render.mid");
    let output = Command::new(env!("CARGO_BIN_EXE_dreamroll"))
        .arg("render")
        .args(args)
        .arg("-o")
        .arg(&path)
        .output()
        .expect("dreamroll runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(path).unwrap()
}
