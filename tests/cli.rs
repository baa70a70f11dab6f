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
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--style", "bossanova"]).contains("has no styles"));
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--swing", "80"]).contains("50..=75"));
    assert!(refusal(&["render", "-o", "/tmp/x.mid", "--morph", "0.5", "--morph-to", "style=bossanova"])
        .contains("has no styles"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.json"), "{\"schema_version\": 99}").unwrap();
    assert!(refusal(&["inspect", dir.path().to_str().unwrap()]).contains("schema version 99"));
}

#[test]
fn swing_moves_the_off_beat_eighths_of_the_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let onsets = |extra: &[&str]| -> Vec<u64> {
        let score = dreamroll::roll::read_midi(&render(dir.path(), "s.mid", extra)).unwrap();
        score.notes.iter().map(|n| n.start).collect()
    };
    let (straight, shuffled) = (onsets(&[]), onsets(&["--swing", "66"]));
    assert_eq!(straight.len(), shuffled.len());
    let mut off_beats = 0;
    for (a, b) in straight.iter().zip(&shuffled) {
        // 480 ticks a quarter: a shuffle's off-beat eighth lands on the triplet's last third.
        // The beat's first half stretches over its first two thirds, the second half shrinks
        // into the last third.
        let within = a % 480;
        let swung = if within < 240 { within * 4 / 3 } else { 320 + (within - 240) * 2 / 3 };
        let expected = a - within + swung;
        assert_eq!(*b, expected, "{a} swung");
        off_beats += usize::from(a % 480 == 240);
    }
    assert!(off_beats > 0);
}

#[test]
fn the_band_model_grooves_in_a_style_morphs_into_another_and_its_kit_plays_on_channel_ten() {
    let dir = tempfile::tempdir().unwrap();
    let band = concat!(env!("CARGO_MANIFEST_DIR"), "/models/band");
    let base = ["--model", band, "--bars", "4", "--seed", "3", "--style", "60srock"];
    let score = |extra: &[&str]| {
        dreamroll::roll::read_midi(&render(dir.path(), "b.mid", &[&base[..], extra].concat())).unwrap()
    };
    let rock = score(&[]);
    let kit: Vec<u8> = rock.notes.iter().filter(|n| n.channel == 9).map(|n| n.pitch).collect();
    assert!(kit.len() >= 8 && kit.iter().all(|p| (27..=87).contains(p)), "General MIDI drums on channel 10: {kit:?}");
    assert!(rock.notes.iter().any(|n| n.channel != 9), "and the bass and comping beside them");
    let bossa = score(&["--morph", "1", "--morph-to", "style=bossanova"]);
    assert_ne!(rock.notes, bossa.notes, "a morph all the way to bossanova is another groove");
    assert_eq!(score(&["--morph", "0", "--morph-to", "style=bossanova"]).notes.len(), rock.notes.len());
    let error = dreamroll(&[&["render", "-o", "/tmp/x.mid"], &base[..6], &["--style", "no-such-style"]].concat());
    let said = String::from_utf8_lossy(&error.stderr);
    assert!(!error.status.success() && said.contains("model band has") && said.contains("bossanova"), "{said}");
}

#[test]
fn inspect_describes_a_model() {
    let output = dreamroll(&["inspect", concat!(env!("CARGO_MANIFEST_DIR"), "/models/chorales-satb")]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("tracks: Soprano (channel 1)"), "{text}");
    assert!(text.contains("Macro 1"));
}

/// A four-bar soprano line (channel 1) at 480 ticks a quarter, in `meter`.
fn melody_file(dir: &std::path::Path, meter: dreamroll::roll::Meter) -> std::path::PathBuf {
    let pitches = [67u8, 69, 71, 72, 74, 72, 71, 69, 67, 71, 74, 79, 78, 76, 74, 74];
    let notes = pitches.iter().enumerate().map(|(i, &p)| (i as u64 * 480, 480, p, 80)).collect();
    let track = dreamroll::roll::TrackToWrite { name: "Soprano".into(), channel: 0, notes };
    let path = dir.join(format!("melody-{}.mid", meter.numerator));
    std::fs::write(&path, dreamroll::roll::write_midi(480, 500_000, meter, &[track], 16 * 480)).unwrap();
    path
}

#[test]
fn a_melody_is_harmonised_continued_and_varied_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let clip = melody_file(dir.path(), dreamroll::roll::Meter::COMMON);
    let clip = clip.to_str().unwrap();
    let harmonised =
        render(dir.path(), "h.mid", &["--source", "harmonise", "--clip", clip, "--bars", "4", "--seed", "3"]);
    assert_eq!(
        harmonised,
        render(dir.path(), "h2.mid", &["--source", "harmonise", "--clip", clip, "--bars", "4", "--seed", "3"])
    );
    let score = read_midi(&harmonised).unwrap();
    let on = |channel: u8| {
        score
            .notes
            .iter()
            .filter(|n| n.channel == channel)
            .map(|n| (n.start * 480 / u64::from(score.ticks_per_quarter), n.pitch))
            .collect::<Vec<_>>()
    };
    let given = read_midi(&std::fs::read(clip).unwrap()).unwrap();
    assert_eq!(
        on(0),
        given.notes.iter().map(|n| (n.start, n.pitch)).collect::<Vec<_>>(),
        "the melody is kept as played"
    );
    assert!((1..4).all(|channel| !on(channel).is_empty()), "alto, tenor and bass are written under it");
    let continued =
        read_midi(&render(dir.path(), "c.mid", &["--source", "continue", "--clip", clip, "--bars", "6"])).unwrap();
    assert_eq!(continued.end, 6 * 4 * u64::from(continued.ticks_per_quarter), "six bars after the clip");
    assert!((0..4).all(|channel| continued.notes.iter().any(|n| n.channel == channel)), "in every part");
    let near = render(
        dir.path(),
        "v.mid",
        &["--source", "vary", "--clip", clip, "--bars", "4", "--distance", "0", "--temperature", "0"],
    );
    let elsewhere = render(
        dir.path(),
        "w.mid",
        &["--source", "vary", "--clip", clip, "--bars", "4", "--distance", "0", "--temperature", "0", "--seed", "77"],
    );
    assert_eq!(near, elsewhere, "at distance 0 only the clip decides");
}

#[test]
fn clips_the_model_cannot_use_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let refusal = |args: &[&str]| {
        let output = dreamroll(&[&["render", "-o", dir.path().join("x.mid").to_str().unwrap()], args].concat());
        assert!(!output.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let waltz = melody_file(dir.path(), dreamroll::roll::Meter::new(3, 4).unwrap());
    assert!(refusal(&["--source", "harmonise", "--clip", waltz.to_str().unwrap()])
        .contains("the clip begins in 3/4; this model writes 4/4"));
    assert!(refusal(&["--source", "vary"]).contains("--source vary needs --clip FILE.mid"));
    let clip = melody_file(dir.path(), dreamroll::roll::Meter::COMMON);
    assert!(refusal(&["--clip", clip.to_str().unwrap()]).contains("dream writes from the latent alone"));
    assert!(refusal(&["--source", "harmonise", "--clip", clip.to_str().unwrap(), "--keep", "5"])
        .contains("this model has parts 1 to 4"));
    assert!(
        refusal(&["--source", "continue", "--clip", "/nonexistent.mid"]).contains("reading the clip /nonexistent.mid")
    );
}

#[test]
fn named_knobs_follow_chords_and_morph_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let plain = render(dir.path(), "plain.mid", &["--seed", "9"]);
    assert_eq!(
        render(dir.path(), "zero.mid", &["--seed", "9", "--named", "register=0"]),
        plain,
        "a named knob at 0 changes nothing"
    );
    let mean_pitch = |bytes: &[u8]| {
        let notes = read_midi(bytes).unwrap().notes;
        notes.iter().map(|n| f64::from(n.pitch)).sum::<f64>() / notes.len() as f64
    };
    let high = render(dir.path(), "high.mid", &["--seed", "9", "--bars", "16", "--named", "register=2"]);
    let low = render(dir.path(), "low.mid", &["--seed", "9", "--bars", "16", "--named", "register=-2"]);
    assert!(mean_pitch(&high) > mean_pitch(&low) + 2.0, "register up: {} vs {}", mean_pitch(&high), mean_pitch(&low));
    assert_eq!(
        render(dir.path(), "m0.mid", &["--seed", "9", "--morph", "0", "--morph-to", "seed=4"]),
        plain,
        "morph 0 is point A"
    );
    // At 1 the latents are B's; taking the likeliest choices, the notes are seed 4's.
    let strict = ["--temperature", "0", "--seed", "9"];
    assert_eq!(
        render(dir.path(), "m1.mid", &[&strict[..], &["--morph", "1", "--morph-to", "seed=4"]].concat()),
        render(dir.path(), "four.mid", &["--temperature", "0", "--seed", "4"])
    );
    let halfway = render(dir.path(), "half.mid", &[&strict[..], &["--morph", "0.5", "--morph-to", "seed=4"]].concat());
    assert_ne!(halfway, render(dir.path(), "nine.mid", &strict));
    let chords =
        render(dir.path(), "chords.mid", &["--seed", "9", "--source", "follow-chords", "--chords", "C Am F G7"]);
    assert_ne!(chords, plain);
    let refusal = |args: &[&str]| {
        String::from_utf8_lossy(
            &dreamroll(&[&["render", "-o", dir.path().join("x.mid").to_str().unwrap()], args].concat()).stderr,
        )
        .into_owned()
    };
    assert!(
        refusal(&["--named", "spacing=1"]).contains("has no spacing knob"),
        "{}",
        refusal(&["--named", "spacing=1"])
    );
    assert!(refusal(&["--named", "loudness=1"]).contains("is not one of"));
    assert!(refusal(&["--source", "follow-chords", "--chords", "H7"]).contains("root"));
    assert!(refusal(&["--source", "follow-chords"]).contains("follow chords needs a chord"));
    assert!(refusal(&["--morph-to", "seed=3"]).contains("--morph"));
    assert!(refusal(&["--morph", "0.5", "--morph-to", "tempo=3"]).contains("seed=N, style=NAME or clip=FILE.mid"));
}
