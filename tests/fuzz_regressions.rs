//! Replays, on the stable toolchain, every input kept for the fuzz targets: the seeds each
//! run starts from (`tests/fuzz/seeds/<target>/`) and every input that ever crashed or hung a
//! target (`tests/fuzz/regressions/<target>/`). Each must pass through without a panic.
//!
//! The seeds of the targets for the clip, the session, the capture and chord names are
//! written here (`DREAMROLL_WRITE_SEEDS=1 cargo test --release --test fuzz_regressions`), and
//! a test checks the committed files are still what this file writes.

use dreamroll::engine::models::ModelSource;
use dreamroll::engine::pattern::{PatternOptions, Scale};
use dreamroll::engine::worker::Settings;
use dreamroll::fuzzing::{encode_host_run, record, HostBlock, PlayedNote};
use dreamroll::metrics::chords::parse_chord;
use dreamroll::model::generator::RenderRequest;
use dreamroll::model::source::{Morph, MorphPoint, Source, SourceMode};
use dreamroll::plugin::session::{Session, SESSION_VERSION};
use dreamroll::roll::swing::Swing;
use dreamroll::roll::{write_midi, Meter, Take, TrackToWrite, DRUM_CHANNEL};
use dreamroll::schedule::{Pattern, PatternNote};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Far past what any kept input takes (milliseconds), so only an input that never ends trips
/// it: a hang then fails the test with the file's name instead of stalling the whole run.
const HANG: Duration = Duration::from_secs(120);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let bytes = std::fs::read(&path).unwrap();
            let (done, finished) = mpsc::channel();
            let run = std::thread::spawn(move || {
                body(&bytes);
                let _ = done.send(());
            });
            match finished.recv_timeout(HANG) {
                Ok(()) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let panic = run.join().expect_err("the body ended without saying so, so it panicked");
                    std::panic::resume_unwind(panic)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("{} has run for {HANG:?}: it hangs", path.display()),
            }
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn kept_midi_inputs_import_without_panicking() {
    assert!(replay("midi_import", dreamroll::fuzzing::midi_import) > 0, "the seeds are there");
}

#[test]
fn kept_model_inputs_load_without_panicking() {
    assert!(replay("model_load", dreamroll::fuzzing::model_load) > 0);
}

#[test]
fn kept_session_inputs_load_and_play_without_panicking() {
    assert!(replay("plugin_state", dreamroll::fuzzing::plugin_state) > 0);
}

#[test]
fn kept_clip_inputs_make_takes_that_pass_their_check() {
    assert!(replay("clip", dreamroll::fuzzing::clip) > 0);
}

#[test]
fn kept_sessions_with_clips_and_morph_points_reopen_and_render() {
    assert!(replay("session_restore", dreamroll::fuzzing::session_restore) > 0);
}

#[test]
fn kept_host_runs_record_takes_that_pass_their_check() {
    assert!(replay("capture", dreamroll::fuzzing::capture) > 0);
}

#[test]
fn kept_chord_names_read_back_as_themselves() {
    assert!(replay("chord_names", dreamroll::fuzzing::chord_names) > 0);
}

const TPQ: u16 = 480;
const BAR: u64 = 4 * TPQ as u64;

/// A format 1 file of `meter` with (channel, start tick, length, pitch, velocity) notes.
fn midi(meter: Meter, bars: u64, notes: &[(u8, u64, u64, u8, u8)]) -> Vec<u8> {
    let mut channels: Vec<u8> = notes.iter().map(|n| n.0).collect();
    channels.sort_unstable();
    channels.dedup();
    let tracks: Vec<TrackToWrite> = channels
        .iter()
        .map(|&channel| TrackToWrite {
            name: format!("channel {}", channel + 1),
            channel,
            notes: notes
                .iter()
                .filter(|n| n.0 == channel)
                .map(|&(_, start, length, pitch, velocity)| (start, length, pitch, velocity))
                .collect(),
        })
        .collect();
    write_midi(
        TPQ,
        500_000,
        meter,
        &tracks,
        bars * u64::from(TPQ) * 4 * u64::from(meter.numerator) / u64::from(meter.denominator),
    )
}

/// Soprano and bass in the default model's range: a chorale's opening bars.
fn two_part_file() -> Vec<u8> {
    let q = u64::from(TPQ);
    midi(
        Meter::COMMON,
        2,
        &[
            (0, 0, q, 67, 90),
            (0, q, q, 69, 80),
            (0, 2 * q, 2 * q, 71, 90),
            (0, BAR, 4 * q, 72, 100),
            (3, 0, 2 * q, 43, 70),
            (3, 2 * q, 2 * q, 47, 70),
            (3, BAR, BAR, 48, 80),
        ],
    )
}

/// Seeds for `clip`: bytes 0-2 are the bars asked of the file, of the clip and the small grid.
fn clip_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let q = u64::from(TPQ);
    let waltz = Meter::new(3, 4).unwrap();
    let seven_eight = Meter::new(7, 8).unwrap();
    let with = |prefix: [u8; 3], file: Vec<u8>| [prefix.as_slice(), &file].concat();
    vec![
        ("two-parts-4-4-two-bars", with([8, 4, 3], two_part_file())),
        (
            "waltz-with-drums-cut-after-two-bars",
            with(
                [2, 4, 10],
                midi(
                    waltz,
                    4,
                    &[
                        (0, 0, 3 * q, 72, 100),
                        (0, 3 * q, 3 * q, 74, 100),
                        (DRUM_CHANNEL, 0, q / 4, 36, 120),
                        (DRUM_CHANNEL, q, q / 4, 38, 110),
                        (0, 9 * q, 3 * q, 76, 90),
                    ],
                ),
            ),
        ),
        (
            "seven-eight-note-over-the-last-bar-line",
            with([1, 1, 25], midi(seven_eight, 2, &[(1, 0, q / 2, 60, 64), (1, 3 * q / 2, 3 * q, 62, 64)])),
        ),
        (
            "outside-the-default-grid-and-channels",
            with(
                [4, 8, 7],
                midi(
                    Meter::COMMON,
                    1,
                    &[(0, 0, q, 20, 50), (12, q, q, 60, 50), (0, 2 * q, q, 127, 127), (0, 3 * q, q, 0, 1)],
                ),
            ),
        ),
    ]
}

fn take(file: &[u8], bars: u32) -> Take {
    Take::from_midi(file, bars).unwrap()
}

/// A session as the plugin saves it with the default model, with `source` and a clip.
fn session(source: Source, with_clip: bool) -> Session {
    let clip = take(&two_part_file(), 2);
    let reads_clip = with_clip && source.mode != SourceMode::Dream;
    Session {
        schema_version: SESSION_VERSION,
        model: ModelSource::Embedded,
        settings: Settings {
            request: RenderRequest {
                bars: 2,
                seed: 7,
                knobs: vec![0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                variation: 0.3,
                temperature: Some(0.8),
                density: 0.1,
                named: vec![0.0, 1.0],
                style: None,
            },
            voicing: PatternOptions {
                key: 7,
                scale: Scale::Major,
                transpose: -2,
                velocity: 90,
                humanise: 0.4,
                seed: 7,
                channels: vec![0, 1, 2, 3],
                muted: vec![false, false, true, false],
                swing: Swing::new(62),
            },
            source,
            clip: reads_clip.then(|| Arc::new(clip.clone())),
        },
        takes: 3,
        pattern: Pattern {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars: 2,
            notes: vec![
                PatternNote { start: 0, length: 4, channel: 0, pitch: 67, velocity: 98, delay: 3 },
                PatternNote { start: 16, length: 16, channel: 3, pitch: 48, velocity: 90, delay: 0 },
            ],
            swing: Swing::new(62),
        },
        clip: with_clip.then_some(clip.clone()),
        morph_points: [
            Some(MorphPoint::Dream { seed: 11, knobs: vec![1.0, 0.0, -0.5], named: vec![0.5], style: None }),
            with_clip.then_some(MorphPoint::Clip(clip)),
        ],
        history: Default::default(),
    }
}

fn session_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let source = |mode: SourceMode| Source { mode, ..Source::default() };
    let chords = ["C", "Am", "F", "G7"].map(|name| parse_chord(name).unwrap()).to_vec();
    let clip_point = MorphPoint::Clip(take(&two_part_file(), 2));
    let sessions = [
        ("dream-with-a-clip-and-morph-points", session(source(SourceMode::Dream), true)),
        ("vary-the-clip", session(Source { distance: 0.3, ..source(SourceMode::Vary) }, true)),
        ("harmonise-the-soprano", session(Source { keep: vec![0], ..source(SourceMode::Harmonise) }, true)),
        ("continue-the-clip", session(source(SourceMode::Continue), true)),
        ("follow-c-am-f-g7", session(Source { chords, ..source(SourceMode::FollowChords) }, false)),
        (
            "morph-from-a-dream-to-a-clip",
            session(
                Source {
                    morph: Some(Morph {
                        a: MorphPoint::Dream { seed: 3, knobs: vec![2.0], named: Vec::new(), style: None },
                        b: clip_point,
                        amount: 0.25,
                    }),
                    ..source(SourceMode::Dream)
                },
                true,
            ),
        ),
    ];
    sessions.into_iter().map(|(name, session)| (name, serde_json::to_vec(&session).unwrap())).collect()
}

/// 120 BPM at 48 kHz: a quarter note is 24 000 samples.
const QUARTER: u32 = 24_000;

/// `blocks` blocks of `samples` that follow on, with `notes` (sample, pitch, length in
/// samples) played on channel 1 into the block they fall in.
fn run(blocks: u32, samples: u32, notes: &[(u32, u8, u32)], edit: impl Fn(u32, &mut HostBlock)) -> Vec<HostBlock> {
    let edges: Vec<(u32, u8, u8)> =
        notes.iter().flat_map(|&(at, pitch, length)| [(at, pitch, 100), (at + length, pitch, 0)]).collect();
    (0..blocks)
        .map(|index| {
            let mut block = HostBlock::running(samples);
            let from = index * samples;
            block.notes = edges
                .iter()
                .filter(|&&(at, ..)| (from..from + samples).contains(&at))
                .map(|&(at, pitch, velocity)| PlayedNote { offset: at - from, channel: 0, pitch, velocity })
                .collect();
            edit(index, &mut block);
            block
        })
        .collect()
}

fn capture_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let bar = 4 * QUARTER;
    let melody =
        [(0, 60, QUARTER), (QUARTER, 64, QUARTER / 2), (2 * QUARTER, 67, 2 * QUARTER), (bar + QUARTER, 72, bar)];
    // 3/4 from its bar 0, looped over two bars: the host jumps back and says where the bar is.
    let waltz = run(
        12,
        QUARTER,
        &[(0, 62, QUARTER), (4 * QUARTER, 66, QUARTER), (6 * QUARTER, 69, 2 * QUARTER)],
        |index, block| {
            block.meter = Some((3, 4));
            if index % 6 == 0 {
                block.follows_on = false;
                block.position = 0.0;
                block.bar = Some((0.0, 0));
            }
        },
    );
    // 7/8 at 140 BPM given in seconds, stopped for a block in the middle.
    let seven_eight =
        run(16, 12_000, &[(6_000, 55, 20_000), (40_000, 57, 30_000), (100_000, 59, 40_000)], |index, block| {
            block.meter = Some((7, 8));
            block.tempo = Some(140.0);
            block.playing = index != 3;
            if index == 4 {
                block.follows_on = false;
                block.in_seconds = true;
                block.position = 0.0;
            }
        });
    // Windows as given, a tempo ramp with no bar from the host.
    let ramp = run(16, 12_000, &[(0, 60, 30_000), (50_000, 62, 10_000)], |index, block| {
        block.raw_window = true;
        block.tempo = Some(110.0 + 2.0 * f64::from(index));
    });
    vec![
        ("one-bar-takes-in-4096-sample-blocks", encode_host_run(1, &run(2 * bar / 4096 + 1, 4096, &melody, |_, _| {}))),
        (
            "a-two-bar-take-at-one-sample-a-block-edge",
            encode_host_run(
                2,
                &run(2 * bar / 8192 + 2, 8192, &melody, |index, block| {
                    block.samples = if index == 5 { 1 } else { 8192 }
                }),
            ),
        ),
        ("a-looped-waltz", encode_host_run(2, &waltz)),
        ("seven-eight-stopped-and-restarted-in-seconds", encode_host_run(1, &seven_eight)),
        ("raw-windows-a-tempo-ramp", encode_host_run(1, &ramp)),
    ]
}

fn chord_seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("pop-progression", b"C Am F G7".to_vec()),
        ("jazz-qualities-comma-separated", b"Bb,Ebmaj7,F#m7b5,Cdim7, Abm7".to_vec()),
        ("the-rest-of-the-qualities", b"Caug Dsus4 Esus2 A5 Dbm".to_vec()),
        // C E G over E, then raw bytes: a first inversion to name.
        ("c-major-over-e", vec![0x91, 0x00, 4]),
        ("c-d-f-sharp-spelled-out", vec![0x45, 0x00, 0x3c]),
    ]
}

/// A target's seeds: each file's name and bytes.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn written_seeds() -> Vec<(&'static str, Seeds)> {
    vec![
        ("clip", clip_seeds()),
        ("session_restore", session_seeds()),
        ("capture", capture_seeds()),
        ("chord_names", chord_seeds()),
    ]
}

#[test]
fn the_committed_seeds_are_the_ones_written_here() {
    let write = std::env::var_os("DREAMROLL_WRITE_SEEDS").is_some();
    for (target, seeds) in written_seeds() {
        let folder = fuzz_dir().join("seeds").join(target);
        if write {
            std::fs::create_dir_all(&folder).unwrap();
        }
        for (name, bytes) in seeds {
            let path = folder.join(name);
            if write {
                std::fs::write(&path, &bytes).unwrap();
            }
            let committed = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (DREAMROLL_WRITE_SEEDS=1 writes it)", path.display()));
            assert!(
                committed == bytes,
                "{} is not what this file writes (DREAMROLL_WRITE_SEEDS=1 writes it)",
                path.display()
            );
        }
    }
}

#[test]
fn the_seeds_reach_what_each_target_checks() {
    for (name, bytes) in clip_seeds() {
        assert!(Take::from_midi(&bytes[3..], u32::from(bytes[0])).is_ok(), "{name} is a MIDI file");
    }
    for (name, bytes) in session_seeds() {
        assert!(
            dreamroll::plugin::session::parse_session(std::str::from_utf8(&bytes).unwrap()).is_ok(),
            "{name} is a session the plugin accepts"
        );
    }
    for (name, bytes) in capture_seeds() {
        assert!(!record(&bytes).is_empty(), "{name} records a take");
    }
    for (name, bytes) in chord_seeds().into_iter().take(3) {
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.split([' ', ',']).filter(|n| !n.is_empty()).all(|n| parse_chord(n).is_ok()),
            "{name} is all chords"
        );
    }
}
