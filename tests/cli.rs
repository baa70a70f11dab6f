//! The `dreamroll` command as a user runs it.

use dreamroll::roll::read_midi;
use std::process::{Command, Output};

fn dreamroll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dreamroll")).args(args).output().expect("dreamroll runs")
}

fn render(dir: &std::path::Path, name: &str, extra: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let output = dreamroll(&[&["render", "-o", path.to_str().unwrap()], extra].concat());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(path).unwrap()
}

#[test]
fn render_with_the_embedded_model_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--bars", "8", "--seed", "42", "--bpm", "97", "--knob", "1=1.5", "--knob", "3=-2"];
    let first = render(dir.path(), "a.mid", &args);
    assert_eq!(first, render(dir.path(), "b.mid", &args), "same seed and knobs, same bytes");
    assert_ne!(first, render(dir.path(), "c.mid", &["--bars", "8", "--seed", "43", "--bpm", "97"]));
    let score = read_midi(&first).unwrap();
    assert_eq!(score.tempos, vec![(0, 618_557)], "97 BPM");
    assert!(!score.notes.is_empty());
    let bar_ticks = 4 * u64::from(score.ticks_per_quarter);
    assert_eq!(score.end, 8 * bar_ticks, "eight whole bars");
}

#[test]
fn temperature_samples_reproducibly_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--seed", "5", "--temperature", "0.8"];
    assert_eq!(render(dir.path(), "a.mid", &args), render(dir.path(), "b.mid", &args));
}

#[test]
fn bad_requests_are_refused_in_words() {
    let refusal = |args: &[&str]| {
        let output = dreamroll(args);
        assert!(!output.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--knob", "1"]).contains("NUMBER=VALUE"));
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--knob", "99=1"]).contains("this model has knobs 1 to"));
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--knob", "1=7"]).contains("-3 to 3"));
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--bars", "0"]).contains("--bars"));
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--model", "/nonexistent"]).contains("model.json: cannot read"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.json"), "{\"schema_version\": 99}").unwrap();
    assert!(refusal(&["inspect", dir.path().to_str().unwrap()]).contains("schema version 99"));
}

#[test]
fn inspect_describes_a_model() {
    let output = dreamroll(&["inspect", concat!(env!("CARGO_MANIFEST_DIR"), "/models/chorales-satb")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("tracks: Soprano (channel 1)"), "{text}");
    assert!(text.contains("Macro 1"));
}
