//! Dreamroll's VST3 in real third-party hosts. DawDreamer (JUCE): it loads, shows its parameters
//! by name, with the preview synth on plays exactly the notes that `dreamroll render` writes for
//! the same seed and knobs, each on the sample its tick implies, and a saved state reloads to the
//! same audio. pedalboard (JUCE): it loads the plugin and lists its parameters.

mod clap_host;
mod hosts;

use dreamroll::plugin::params::DreamrollParams;
use dreamroll::synth::PreviewSynth;

const RATE: u32 = 44_100;
const BPM: f64 = 97.0;
const BARS: u32 = 8;

/// The preview synth's audio for the notes of a MIDI file, each note placed on the sample
/// its ticks imply at `BPM`, shifted by `shift` samples.
fn expected_audio(midi: &[u8], samples: usize, shift: u32) -> Vec<f32> {
    let gain = DreamrollParams::default().preview_volume.value();
    let mut synth = PreviewSynth::new(RATE as f32);
    let (mut left, mut right) = (vec![0.0f32; samples], vec![0.0f32; samples]);
    let mut done = 0usize;
    for event in hosts::events_of_file(midi, RATE, BPM).iter().filter(|e| ((e.offset + shift) as usize) < samples) {
        let offset = (event.offset + shift) as usize;
        synth.render(&mut [&mut left, &mut right], done..offset, gain);
        done = offset;
        if event.is_on() {
            synth.note_on(event.channel, event.pitch, event.velocity);
        } else {
            synth.note_off(event.channel, event.pitch);
        }
    }
    synth.render(&mut [&mut left, &mut right], done..samples, gain);
    left
}

fn largest_difference(a: &[f32], b: &[f32]) -> (f32, usize) {
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold((0.0, 0), |m, d| if d.0 > m.0 { d } else { m })
}

#[test]
fn dawdreamer_plays_what_render_writes_on_the_same_samples() {
    let (_, vst3) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let midi = hosts::render_file(
        dir.path(),
        &["--bars", "8", "--seed", "42", "--bpm", "97", "--knob", "1=1.5", "--knob", "3=-2"],
    );

    let seconds = f64::from(BARS) * 4.0 * 60.0 / BPM;
    let audio_path = dir.path().join("dawdreamer.f32");
    let params = r#"{"Preview synth": true, "Seed": 42, "Knob 1": 1.5, "Knob 3": -2.0}"#;
    let listed = hosts::run_host_script(
        "dawdreamer_render.py",
        &[
            vst3.to_str().unwrap(),
            audio_path.to_str().unwrap(),
            &RATE.to_string(),
            "512",
            &BPM.to_string(),
            &seconds.to_string(),
            params,
        ],
    );
    for name in [
        "Knob 1",
        "Knob 8",
        "Seed",
        "New seed",
        "Variation",
        "Loop length",
        "Density",
        "Temperature",
        "Key",
        "Scale",
        "Transpose",
        "Velocity",
        "Humanise",
        "Hold",
        "Preview synth",
        "Preview volume",
        "Track 1 mute",
        "Track 1 channel",
    ] {
        assert!(listed.contains(&format!("\"name\": \"{name}\"")), "DawDreamer does not list {name}: {listed}");
    }
    assert!(listed.contains("\"name\": \"Knob 1\", \"text\": \"1.50\""), "the knob was set through the host: {listed}");

    let played = hosts::read_samples(&audio_path);
    assert_eq!(played.len(), (seconds * f64::from(RATE)).round() as usize);
    let expected = expected_audio(&midi, played.len(), 0);
    assert!(expected.iter().any(|&s| s != 0.0), "the rendered file has notes");
    let (difference, at) = largest_difference(&played, &expected);
    assert!(
        difference < 1e-5,
        "DawDreamer's audio departs from the rendered notes by {difference} at sample {at} ({:.3} s)",
        at as f64 / f64::from(RATE)
    );
    // The comparison can tell one sample apart: the same notes a sample late do not match.
    let (late, _) = largest_difference(&played, &expected_audio(&midi, played.len(), 1));
    assert!(late > 100.0 * difference.max(1e-7), "a one-sample shift went unnoticed ({late} vs {difference})");
    eprintln!("{} samples: largest difference {difference:e}; with the notes one sample late {late:e}", played.len());
}

fn dawdreamer_render(
    vst3: &std::path::Path,
    audio: &std::path::Path,
    params: &str,
    state_in: Option<&std::path::Path>,
    state_out: Option<&std::path::Path>,
) -> String {
    let seconds = 4.0 * 4.0 * 60.0 / BPM;
    let state_in = state_in.map_or("-".to_string(), |p| p.display().to_string());
    let mut args = vec![
        vst3.to_str().unwrap().to_string(),
        audio.display().to_string(),
        RATE.to_string(),
        "512".into(),
        BPM.to_string(),
        seconds.to_string(),
        params.to_string(),
        state_in,
    ];
    args.extend(state_out.map(|p| p.display().to_string()));
    hosts::run_host_script("dawdreamer_render.py", &args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn a_dawdreamer_state_round_trip_plays_the_same_notes() {
    let (_, vst3) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let (first, second, state) =
        (dir.path().join("first.f32"), dir.path().join("second.f32"), dir.path().join("state.bin"));
    let params = r#"{"Preview synth": true, "Seed": 7, "Knob 2": -1.5, "Humanise": 50, "Transpose": 5}"#;
    dawdreamer_render(vst3, &first, params, None, Some(&state));
    let listed = dawdreamer_render(vst3, &second, r#"{}"#, Some(&state), None);
    assert!(listed.contains(r#""name": "Seed", "text": "7""#), "the seed came back with the state: {listed}");
    let (a, b) = (hosts::read_samples(&first), hosts::read_samples(&second));
    assert!(a.iter().any(|&s| s != 0.0));
    let (difference, at) = largest_difference(&a, &b);
    assert!(difference < 1e-6, "the restored plugin departs by {difference} at sample {at}");
}

#[test]
fn pedalboard_loads_the_plugin_and_lists_its_parameters() {
    let (_, vst3) = hosts::bundles();
    let listed = hosts::run_host_script("pedalboard_params.py", &[vst3.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(listed.trim()).expect("pedalboard_params.py prints JSON");
    assert_eq!(report["name"], "Dreamroll");
    assert_eq!(report["is_instrument"], true);
    let parameters = report["parameters"].as_object().unwrap();
    for name in ["knob_1", "seed", "variation", "density", "temperature", "scale", "humanise", "preview_synth"] {
        assert!(parameters.contains_key(name), "pedalboard does not list {name}: {listed}");
    }
    assert!(parameters.len() >= 40, "{} parameters", parameters.len());
}

#[test]
fn a_dawdreamer_project_saved_right_after_it_is_opened_keeps_its_session() {
    let (_, vst3) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.bin");
    dawdreamer_render(
        vst3,
        &dir.path().join("take.f32"),
        r#"{"Seed": 9, "Knob 4": 2, "Humanise": 30}"#,
        None,
        Some(&state),
    );
    let rounds = 1000.to_string();
    let printed = hosts::run_host_script(
        "dawdreamer_state.py",
        &[vst3.to_str().unwrap(), state.to_str().unwrap(), &rounds, dir.path().to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_str(printed.trim()).expect("dawdreamer_state.py prints JSON");
    eprintln!("DawDreamer, VST3, load then save at once: {report}");
    assert!(report["session_length"].as_u64().unwrap() > 1000, "the project holds a session: {report}");
    assert_eq!(report["lost"], 0, "{report}");
}
