//! The trainer end to end on a corpus made here: loss falls, a resumed run equals an
//! uninterrupted one, Ctrl-C saves, and bad folders get errors in words.

use dreamroll::model::generator::Generator;
use dreamroll::roll::{roll_to_midi, GridNote, Meter, Representation, Roll, TrackSpec};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

/// Twelve 8-bar two-part pieces: a scale-wise melody over a held bass, each in its own key.
fn write_corpus(folder: &Path) {
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 1,
        lowest_pitch: 36,
        pitch_count: 48,
        tracks: vec![TrackSpec::new("Melody", 0), TrackSpec::new("Bass", 1)],
    });
    let major = [0u8, 2, 4, 5, 7, 9, 11, 12];
    for piece in 0..12u8 {
        let mut roll = Roll::new(representation.clone(), 8 * 16);
        let key = 55 + piece % 7;
        for bar in 0..8usize {
            for beat in 0..4usize {
                let degree = major[(bar + beat * (1 + usize::from(piece) % 3)) % 8];
                let length = if (bar + beat) % 3 == 0 { 4 } else { 2 };
                roll.place(GridNote {
                    track: 0,
                    start: bar * 16 + beat * 4,
                    pitch: key + degree,
                    length,
                    velocity: 90,
                })
                .unwrap();
            }
            roll.place(GridNote {
                track: 1,
                start: bar * 16,
                pitch: key - 19 + major[bar % 4],
                length: 16,
                velocity: 80,
            })
            .unwrap();
        }
        std::fs::write(folder.join(format!("piece-{piece:02}.mid")), roll_to_midi(&roll, 120.0)).unwrap();
    }
}

/// A temporary folder holding the synthetic corpus in `data/`.
fn corpus_folder() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_corpus(&data);
    (dir, data)
}

const TINY: [&str; 14] = [
    "--latent",
    "8",
    "--hidden",
    "32",
    "--bar-hidden",
    "16",
    "--channels",
    "4",
    "--batch",
    "8",
    "--bars",
    "2",
    "--kl-warmup",
    "20",
];

fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("train")
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(TINY)
        .args(extra)
        .output()
        .expect("the trainer runs")
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "trainer failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn losses(folder: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(folder.join("train.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("train"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect()
}

fn checkpoint_tensors(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(folder.join("checkpoint.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> =
        tensors.tensors().into_iter().map(|(name, view)| (name, view.data().to_vec())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn a_short_run_learns_and_writes_a_loadable_model() {
    let (dir, data) = corpus_folder();
    let out = dir.path().join("model");
    ok(&train(&data, &out, &["--epochs", "8", "--checkpoint-every", "40", "--lr", "0.003"]));
    let losses = losses(&out);
    let mean = |part: &[(u64, f64)]| part.iter().map(|p| p.1).sum::<f64>() / part.len() as f64;
    let (first, last) = (mean(&losses[..5]), mean(&losses[losses.len() - 5..]));
    assert!(last < 0.5 * first, "loss fell only from {first} to {last}");
    for file in [
        "model.json",
        "decoder.safetensors",
        "encoder.safetensors",
        "loss.png",
        "train.csv",
        "samples/prior.mid",
        "samples/prior.png",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let generator = Generator::from_dir(&out).unwrap();
    assert_eq!(generator.card().macro_knobs.len(), 8);
    assert_eq!(generator.card().decoding.monophonic, vec![true, true]);
}

/// The voice decoder's sizes for a tiny run.
const TINY_VOICES: [&str; 12] = [
    "--preset",
    "voices",
    "--embed",
    "6",
    "--age-embed",
    "3",
    "--position-embed",
    "3",
    "--context",
    "8",
    "--head",
    "16",
];

/// The training and validation phrase counts the trainer reports.
fn phrase_counts(output: &Output) -> (usize, usize) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|line| line.contains(" training and ")).expect("the trainer counts its phrases");
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[0].parse().unwrap(), words[3].parse().unwrap())
}

#[test]
fn hop_cuts_training_phrases_as_the_pieces_fall_into_phrases() {
    let (dir, data) = corpus_folder();
    let run = |name: &str, hop: &[&str]| {
        let output = train(&data, &dir.path().join(name), &[&["--epochs", "1"], hop].concat());
        ok(&output);
        phrase_counts(&output)
    };
    // Pieces of 8 bars in phrases of 2: one at every bar is 7 a piece, one every 2 bars 4.
    let ((every_bar, validation), (every_phrase, validation_again)) =
        (run("hop-1", &[]), run("hop-2", &["--hop", "2"]));
    assert_eq!(validation, validation_again, "validation phrases are disjoint either way");
    assert_eq!((every_bar % 7, every_phrase % 4), (0, 0));
    assert_eq!(every_bar / 7, every_phrase / 4, "the same training pieces: {every_bar} and {every_phrase}");
    let refused = train(&data, &dir.path().join("hop-0"), &["--hop", "0"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--hop"), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn the_voice_decoder_learns_and_writes_a_model_that_renders_voices() {
    let (dir, data) = corpus_folder();
    let out = dir.path().join("voices");
    ok(&train(
        &data,
        &out,
        &[&TINY_VOICES[..], &["--epochs", "8", "--checkpoint-every", "40", "--lr", "0.003"]].concat(),
    ));
    let losses = losses(&out);
    let mean = |part: &[(u64, f64)]| part.iter().map(|p| p.1).sum::<f64>() / part.len() as f64;
    let (first, last) = (mean(&losses[..5]), mean(&losses[losses.len() - 5..]));
    assert!(last < 0.5 * first, "loss fell only from {first} to {last}");
    let generator = Generator::from_dir(&out).unwrap();
    assert_eq!(generator.card().preset.to_string(), "voices");
    assert_eq!(generator.card().macro_knobs.len(), 8, "knobs from the encoder's means");
    let request = dreamroll::model::generator::RenderRequest {
        knobs: vec![1.0],
        ..dreamroll::model::generator::RenderRequest::new(6, 4)
    };
    let roll = generator.render(&request).unwrap();
    assert_eq!(roll.steps(), 6 * 16);
    assert_eq!(roll, generator.render(&request).unwrap(), "the same request gives the same notes");
    // Each voice sounds one pitch at a time.
    for track in 0..roll.track_count() {
        assert!((0..roll.steps()).all(|step| roll.sounding_at(track, step).iter().filter(|&&s| s).count() <= 1));
    }
    assert!(roll.notes().len() > 10, "it plays: {} notes", roll.notes().len());
}

#[test]
fn a_voice_run_resumes_exactly_and_a_time_budget_ends_it_with_a_model() {
    let (dir, data) = corpus_folder();
    let (whole, halves) = (dir.path().join("whole"), dir.path().join("halves"));
    let run = |out: &Path, steps: &str, extra: &[&str]| {
        ok(&train(
            &data,
            out,
            &[&TINY_VOICES[..], &["--epochs", "5", "--max-steps", steps, "--checkpoint-every", "100"], extra].concat(),
        ))
    };
    run(&whole, "16", &[]);
    run(&halves, "7", &[]);
    run(&halves, "16", &["--resume"]);
    let (a, b) = (checkpoint_tensors(&whole), checkpoint_tensors(&halves));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "tensor {name} differs after resuming");
    }
    let budget = dir.path().join("budget");
    let output = train(&data, &budget, &[&TINY_VOICES[..], &["--epochs", "1000", "--time-budget", "0"]].concat());
    ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("time budget is spent"));
    assert!(Generator::from_dir(&budget).is_ok(), "the model is written when the budget is spent");
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let (dir, data) = corpus_folder();
    let (whole, halves) = (dir.path().join("whole"), dir.path().join("halves"));
    ok(&train(&data, &whole, &["--epochs", "5", "--max-steps", "24", "--checkpoint-every", "100"]));
    ok(&train(&data, &halves, &["--epochs", "5", "--max-steps", "11", "--checkpoint-every", "100"]));
    ok(&train(&data, &halves, &["--epochs", "5", "--max-steps", "24", "--checkpoint-every", "100", "--resume"]));
    let (a, b) = (checkpoint_tensors(&whole), checkpoint_tensors(&halves));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "tensor {name} differs after resuming");
    }
    assert_eq!(losses(&whole), losses(&halves), "the log continues where it stopped");
}

#[test]
fn resuming_without_a_run_or_starting_over_one_is_refused() {
    let (dir, data) = corpus_folder();
    let out = dir.path().join("model");
    let output = train(&data, &out, &["--resume"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--resume needs a checkpoint"));
    ok(&train(&data, &out, &["--max-steps", "2"]));
    let output = train(&data, &out, &["--max-steps", "2"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("already holds a run; pass --resume"));
}

#[test]
fn folders_without_music_get_errors_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let output = train(&dir.path().join("missing"), &dir.path().join("m1"), &[]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no such folder"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let three_four = dir.path().join("waltzes");
    std::fs::create_dir(&three_four).unwrap();
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::new(3, 4).unwrap(),
        bars_per_phrase: 1,
        lowest_pitch: 48,
        pitch_count: 24,
        tracks: vec![TrackSpec::new("Melody", 0)],
    });
    let mut roll = Roll::new(representation, 48);
    roll.place(GridNote { track: 0, start: 0, pitch: 60, length: 12, velocity: 90 }).unwrap();
    std::fs::write(three_four.join("waltz.mid"), roll_to_midi(&roll, 120.0)).unwrap();
    let output = train(&three_four, &dir.path().join("m2"), &[]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("no usable 2-bar phrases in 4/4"), "{message}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_cleanly() {
    let (dir, data) = corpus_folder();
    let out = dir.path().join("model");
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("train")
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(TINY)
        .args(["--epochs", "100000", "--checkpoint-every", "1000000"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is training (the log has rows), then interrupt it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while losses_or_empty(&out).len() < 3 {
        assert!(std::time::Instant::now() < deadline, "the trainer never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("interrupted: checkpoint saved at step"));
    assert!(out.join("checkpoint.safetensors").is_file());
    ok(&train(&data, &out, &["--resume", "--max-steps", "1"]));
}

fn losses_or_empty(folder: &Path) -> Vec<(u64, f64)> {
    if folder.join("train.csv").is_file() {
        std::panic::catch_unwind(|| losses(folder)).unwrap_or_default()
    } else {
        Vec::new()
    }
}

#[test]
fn every_gan_preset_trains_and_exports_a_loadable_model() {
    let (dir, data) = corpus_folder();
    for (preset, extra) in [
        ("musegan", &["--track-latents", "hybrid"][..]),
        ("midinet", &["--chord-condition"][..]),
        ("cnn-lstm", &[][..]),
    ] {
        let out = dir.path().join(preset);
        ok(&train(&data, &out, &[&["--preset", preset, "--epochs", "1", "--checkpoint-every", "5"], extra].concat()));
        let generator = Generator::from_dir(&out).unwrap_or_else(|e| panic!("{preset}: {e}"));
        assert_eq!(generator.card().preset.to_string(), preset);
        assert!(generator.card().training.knob_method.contains("no encoder"));
        let names: Vec<String> = losses(&out).iter().map(|l| l.0.to_string()).collect();
        assert!(!names.is_empty(), "{preset} logged no steps");
    }
}

#[test]
fn divergence_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let (dir, data) = corpus_folder();
    let out = dir.path().join("model");
    ok(&train(&data, &out, &["--max-steps", "4", "--checkpoint-every", "2"]));
    let good = checkpoint_tensors(&out);
    let output = train(&data, &out, &["--resume", "--lr", "1e30", "--checkpoint-every", "2", "--epochs", "3"]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("became NaN") || message.contains("diverged"), "{message}");
    assert!(message.contains("the last good checkpoint is kept"), "{message}");
    assert!(checkpoint_tensors(&out) == good, "the good checkpoint was overwritten");
    ok(&train(&data, &out, &["--resume", "--lr", "0.001", "--max-steps", "6", "--checkpoint-every", "2"]));
}

/// Kills the trainer with SIGKILL at moments drawn from a fixed seed (in the middle of steps,
/// evaluations and checkpoint writes alike), checks after each kill that the checkpoint on disk
/// is whole, resumes, and at the end compares with a run that was never interrupted.
#[cfg(unix)]
#[test]
fn sigkill_at_random_moments_never_leaves_a_broken_checkpoint_and_resume_continues_exactly() {
    let (dir, data) = corpus_folder();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    let run = ["--epochs", "40", "--max-steps", "60", "--checkpoint-every", "3"];
    ok(&train(&data, &whole, &run));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut trials = 0;
    let mut resumed_from = Vec::new();
    for trial in 0..6 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let resume = killed.join("checkpoint.safetensors").is_file();
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.arg("train").arg("--data").arg(&data).arg("--out").arg(&killed).args(TINY).args(run);
        if resume {
            command.arg("--resume");
        }
        let mut child =
            command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        // Let it get going, then kill it somewhere inside the next stretch of work.
        let rows_before = losses_or_empty(&killed).len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while losses_or_empty(&killed).len() < rows_before + 1 + (state % 4) as usize {
            assert!(std::time::Instant::now() < deadline, "trial {trial}: the trainer never got going");
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_micros(state % 40_000));
        if child.try_wait().unwrap().is_none() {
            Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
            trials += 1;
        }
        child.wait().unwrap();
        // Whatever moment the kill hit, the checkpoint that is there reads back whole.
        let checkpoint = killed.join("checkpoint.safetensors");
        if checkpoint.is_file() {
            let bytes = std::fs::read(&checkpoint).unwrap();
            let tensors = safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("trial {trial}: a broken checkpoint on disk: {e}"));
            assert!(tensors.len() > 10, "trial {trial}: {} tensors", tensors.len());
            let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
            let state: serde_json::Value = metadata
                .metadata()
                .as_ref()
                .and_then(|m| m.get("state"))
                .map(|s| serde_json::from_str(s).unwrap())
                .unwrap();
            resumed_from.push(state["step"].as_u64().unwrap());
        }
    }
    assert!(trials >= 5, "only {trials} kills landed while training");
    ok(&train(&data, &killed, &[&run[..], &["--resume"]].concat()));
    let (a, b) = (checkpoint_tensors(&whole), checkpoint_tensors(&killed));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "tensor {name} differs after {trials} kills and resumes");
    }
    assert_eq!(losses(&whole), losses(&killed), "the log matches an uninterrupted run");
    eprintln!("{trials} kills; the checkpoints on disk after them were at steps {resumed_from:?}");
}

/// Eight 4-bar band pieces: a groove (kick and snare with ghost notes, hats loud and soft),
/// a bass on the chord roots, and triads on a piano, over I-vi-IV-V in a key of its own.
fn write_band_corpus(folder: &Path) {
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 1,
        lowest_pitch: 30,
        pitch_count: 60,
        tracks: vec![TrackSpec::new("Piano", 0), TrackSpec::new("Bass", 1), TrackSpec::drums("Drums", Vec::new())],
    });
    let progression = [[0u8, 4, 7], [9, 12, 16], [5, 9, 12], [7, 11, 14]];
    for piece in 0..8u8 {
        let key = 48 + piece % 5;
        let mut roll = Roll::new(representation.clone(), 4 * 16);
        let mut hit = |track: usize, start: usize, pitch: u8, length: usize, velocity: u8| {
            roll.place(GridNote { track, start, pitch, length, velocity }).unwrap();
        };
        for (bar, chord) in progression.iter().enumerate() {
            let at = bar * 16;
            for beat in 0..4 {
                hit(2, at + beat * 4, if beat % 2 == 0 { 36 } else { 38 }, 1, if beat % 2 == 0 { 110 } else { 100 });
                hit(1, at + beat * 4, key - 12 + chord[0], 3, 90);
            }
            hit(2, at + 7, 38, 1, 35);
            hit(2, at + 15, 38, 1, 35);
            for eighth in 0..8 {
                hit(2, at + eighth * 2, 42, 1, if eighth % 2 == 0 { 90 } else { 50 });
            }
            for &interval in chord {
                hit(0, at, key + interval, 8, 80);
                hit(0, at + 8, key + interval, 6, 80);
            }
        }
        std::fs::write(folder.join(format!("band-{piece:02}.mid")), roll_to_midi(&roll, 100.0)).unwrap();
    }
}

#[test]
fn a_band_is_learned_as_lanes_a_bass_and_comping_voices_with_its_dynamics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("band");
    std::fs::create_dir(&data).unwrap();
    write_band_corpus(&data);
    let out = dir.path().join("model");
    ok(&train(
        &data,
        &out,
        &[&TINY_VOICES[..], &["--parts", "role", "--epochs", "12", "--checkpoint-every", "40", "--lr", "0.003"]]
            .concat(),
    ));
    let generator = Generator::from_dir(&out).unwrap();
    let card = generator.card();
    let tracks: Vec<(&str, u8, &[u8])> =
        card.representation.tracks.iter().map(|t| (t.name.as_str(), t.channel, t.sounds.as_slice())).collect();
    assert_eq!(
        tracks,
        vec![
            ("Comp 1", 1, &[][..]),
            ("Comp 2", 1, &[][..]),
            ("Comp 3", 1, &[][..]),
            ("Bass", 0, &[][..]),
            ("Kick", 9, &[36][..]),
            ("Snare", 9, &[38][..]),
            ("Hi-hat", 9, &[42][..]),
        ],
        "a kit of lanes, a bass, and the piano's triads over three voices"
    );
    let snare = &card.decoding.dynamics[5];
    assert!(snare.len() >= 2 && snare[0] < 50 && *snare.last().unwrap() > 90, "ghost notes and backbeats: {snare:?}");
    let request = dreamroll::model::generator::RenderRequest::new(8, 2);
    let roll = generator.render(&request).unwrap();
    let notes = roll.notes();
    for note in &notes {
        let track = &card.representation.tracks[note.track];
        assert!(track.plays(note.pitch), "{} plays {}", track.name, note.pitch);
    }
    let hats: Vec<u8> = notes.iter().filter(|n| n.track == 6).map(|n| n.velocity).collect();
    assert!(hats.len() > 16, "the hats play: {hats:?}");
    assert!(hats.iter().any(|&v| v < 70) && hats.iter().any(|&v| v > 70), "loud and soft hats: {hats:?}");
}
