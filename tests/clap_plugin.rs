//! The built CLAP plugin under our own test host (tests/clap_host): what it plays equals what
//! `dreamroll render` writes, and a long session of automation, seeks, stops, model changes and
//! re-activations never allocates on the audio thread and never leaves a note hanging.

mod clap_host;
mod hosts;

use clap_host::{ClapInstance, Played, Transport};
use std::collections::BTreeSet;

/// Plays from the song's start for `samples`, in blocks cycling through `sizes`.
fn play(plugin: &mut ClapInstance, rate: f64, tempo: f64, samples: u64, sizes: &[u32]) -> Vec<Played> {
    let start = plugin.position;
    let mut played = Vec::new();
    for &size in sizes.iter().cycle() {
        let done = plugin.position - start;
        if done >= samples {
            break;
        }
        let frames = size.min((samples - done) as u32);
        let beats = done as f64 * tempo / 60.0 / rate;
        played.extend(plugin.process(frames, &Transport::four_four(beats, tempo, true), &[]).0);
    }
    played.iter().map(|p| Played { sample: p.sample - start, ..*p }).collect()
}

#[test]
fn the_clap_plugin_plays_what_render_writes_sample_for_sample() {
    let (clap, _) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let midi = hosts::render_file(
        dir.path(),
        &[
            "--bars",
            "8",
            "--seed",
            "42",
            "--bpm",
            "97",
            "--knob",
            "1=1.5",
            "--knob",
            "3=-2",
            "--key",
            "D",
            "--scale",
            "dorian",
            "--transpose",
            "-3",
            "--velocity",
            "70",
            "--density",
            "0.4",
        ],
    );
    let rate = 48_000u32;
    let expected: Vec<Played> = hosts::events_of_file(&midi, rate, 97.0)
        .into_iter()
        .map(|e| Played {
            sample: u64::from(e.offset),
            on: e.is_on(),
            channel: e.channel,
            key: e.pitch,
            velocity: e.velocity,
        })
        .collect();

    let mut plugin = ClapInstance::load(clap);
    let changes = [
        plugin.change("Knob 1", "1.5"),
        plugin.change("Knob 3", "-2"),
        plugin.change("Key", "D"),
        plugin.change("Scale", "Dorian"),
        plugin.change("Transpose", "-3"),
        plugin.change("Velocity", "70"),
        plugin.change("Density", "40"),
    ];
    plugin.flush_params(&changes);
    plugin.activate(f64::from(rate), 8192);
    let eight_bars = (8.0 * 4.0 * 60.0 / 97.0 * f64::from(rate)).round() as u64;
    let played = play(&mut plugin, f64::from(rate), 97.0, eight_bars, &[1, 64, 511, 512, 4096, 33, 8192, 2]);
    let ons = |events: &[Played]| events.iter().filter(|e| e.on).copied().collect::<Vec<_>>();
    assert!(!ons(&expected).is_empty());
    assert_eq!(ons(&played), ons(&expected), "note-ons: sample, channel, key and velocity");
    // Note-offs due inside the eight bars; the last notes end on the loop's last sample.
    let offs_before = |events: &[Played]| {
        events
            .iter()
            .filter(|e| !e.on && e.sample < eight_bars)
            .map(|p| (p.sample, p.channel, p.key))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(offs_before(&played), offs_before(&expected), "note-offs: sample, channel and key");
}

/// Xorshift: a repeatable stream of choices for a session, printed with its seed on failure.
struct Dice(u64);
impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A long, hostile session against the allocation-checked build: any allocation inside
/// process() aborts the test. Every block's notes are also checked for balance.
#[test]
fn a_long_session_never_allocates_on_the_audio_thread_and_leaves_no_note_hanging() {
    let mut plugin = ClapInstance::load(hosts::alloc_checked_plugin());
    let knobs: Vec<u32> = (1..=8).map(|k| plugin.param_id(&format!("Knob {k}"))).collect();
    let [new_seed, hold, preview, bypass, switch_at] =
        ["New seed", "Hold", "Preview synth", "Bypass", "Switch at"].map(|name| plugin.param_id(name));
    let seeds: Vec<(u32, f64)> = (0..20).map(|s| plugin.change("Seed", &(s * 997).to_string())).collect();
    let loops: Vec<(u32, f64)> =
        ["1 bar", "2 bars", "4 bars", "8 bars"].iter().map(|l| plugin.change("Loop length", l)).collect();
    let temperatures: Vec<(u32, f64)> =
        ["Strict", "1", "2.5"].iter().map(|t| plugin.change("Temperature", t)).collect();
    let folk = concat!(env!("CARGO_MANIFEST_DIR"), "/models/folk-melody");
    let folk_vae = concat!(env!("CARGO_MANIFEST_DIR"), "/models/folk-melody-vae");
    let session_for_folk = format!(
        r#"{{"schema_version":1,"model":{{"folder":"{folk}"}},"settings":{{"request":{{"bars":1,"seed":1,"knobs":[],"variation":0.0,"temperature":null,"density":0.0}},"voicing":{{"key":0,"scale":"Major","transpose":0,"velocity":90,"humanise":0.0,"seed":1,"channels":[0],"muted":[false]}}}},"takes":0,"pattern":{{"steps_per_beat":4,"meter":{{"numerator":4,"denominator":4}},"bars":1,"notes":[{{"start":0,"length":4,"channel":0,"pitch":60,"velocity":90}}]}}}}"#
    );
    let mut dice = Dice(0x5eed_cafe);
    let mut sounding: BTreeSet<(u8, u8)> = BTreeSet::new();
    let (mut rate, mut beats, mut tempo, mut playing) = (44_100.0, 0.0f64, 120.0, true);
    plugin.activate(rate, 8192);
    let mut notes = 0usize;
    let mut model_changes = 0usize;
    let started = std::time::Instant::now();
    for block in 0..20_000u32 {
        let frames = [1, 7, 64, 128, 256, 512, 1000, 2048, 4096, 8192][dice.below(10) as usize];
        let mut changes = Vec::new();
        match dice.below(40) {
            0 => beats = dice.below(64) as f64 + 0.25 * dice.below(4) as f64, // seek
            1 => playing = !playing,
            2 => tempo = [60.0, 97.0, 120.0, 174.0, 240.0][dice.below(5) as usize],
            3..=8 => changes.push((
                dice.below(u64::from(frames)) as u32,
                knobs[dice.below(8) as usize],
                dice.below(1001) as f64 / 1000.0,
            )),
            9 => {
                let (id, value) = seeds[dice.below(20) as usize];
                changes.push((0, id, value));
            }
            10 => changes.push((0, new_seed, (block % 2) as f64)),
            11 => changes.push((0, hold, dice.below(2) as f64)),
            12 => changes.push((0, preview, dice.below(2) as f64)),
            13 => changes.push((0, bypass, dice.below(2) as f64)),
            14 => changes.push((0, switch_at, dice.below(2) as f64)),
            15 => {
                let (id, value) = loops[dice.below(4) as usize];
                changes.push((0, id, value));
            }
            16 => {
                let (id, value) = temperatures[dice.below(3) as usize];
                changes.push((0, id, value));
            }
            17 if dice.below(4) == 0 => {
                // Deactivate (owing nothing afterwards) and come back at another rate.
                plugin.deactivate();
                sounding.clear();
                rate = [22_050.0, 44_100.0, 48_000.0, 96_000.0, 192_000.0][dice.below(5) as usize];
                plugin.activate(rate, 8192);
            }
            18 if dice.below(8) == 0 => {
                // A model change, the way a host makes one: loading a project that uses another model.
                // In turn the folk model's folder, the one-voice VAE's (whose phrases decode from
                // per-cell logits) and the built-in model.
                let model = match model_changes % 3 {
                    0 => serde_json::json!({ "folder": folk }),
                    1 => serde_json::json!({ "folder": folk_vae }),
                    _ => serde_json::json!("embedded"),
                };
                let session = session_for_folk.replace(&format!(r#"{{"folder":"{folk}"}}"#), &model.to_string());
                let state = clap_host::state_with_session(&plugin.save_state(), &session);
                assert!(plugin.load_state(&state));
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while clap_host::session_in_state(&plugin.save_state())["model"] != model {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "block {block}: the project's model was not taken up"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                model_changes += 1;
            }
            _ => {}
        }
        let transport = Transport { playing, ..Transport::four_four(beats, tempo, playing) };
        let (played, peak) = plugin.process(frames, &transport, &changes);
        assert!(!peak.is_nan(), "block {block}: the plugin left its audio output unwritten");
        for event in played {
            if event.on {
                assert!(sounding.insert((event.channel, event.key)), "block {block}: {event:?} struck while sounding");
                notes += 1;
            } else {
                assert!(sounding.remove(&(event.channel, event.key)), "block {block}: {event:?} released while silent");
            }
        }
        if playing {
            beats += f64::from(frames) * tempo / 60.0 / rate;
        }
    }
    // Stopping releases everything still owed.
    let (played, _) = plugin.process(64, &Transport::four_four(beats, tempo, false), &[]);
    for event in played {
        assert!(!event.on && sounding.remove(&(event.channel, event.key)));
    }
    assert!(sounding.is_empty(), "notes left hanging: {sounding:?}");
    assert!(notes > 500, "the session played {notes} notes");
    assert!(model_changes >= 3, "the session changed to each model in turn");
    eprintln!(
        "20 000 blocks, {notes} notes, {model_changes} model changes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(plugin.other_events, 0);
}

/// Eight bars from the song's start at 48 kHz in 512-sample blocks.
fn eight_bars(plugin: &mut ClapInstance) -> Vec<Played> {
    let samples = (8.0 * 4.0 * 60.0 / 120.0 * 48_000.0) as u64;
    play(plugin, 48_000.0, 120.0, samples, &[512])
}

#[test]
fn a_saved_project_reopens_playing_the_same_notes_even_without_its_model_folder() {
    let (clap, _) = hosts::bundles();
    let models = tempfile::tempdir().unwrap();
    let folder = models.path().join("folk-copy");
    std::fs::create_dir(&folder).unwrap();
    for file in ["model.json", "decoder.safetensors"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/folk-melody").join(file),
            folder.join(file),
        )
        .unwrap();
    }

    // A project that uses the copied model: switch to it the way a host restores a project,
    // then move knobs, take a new seed, humanise and swing, and play.
    let mut original = ClapInstance::load(clap);
    let session: serde_json::Value = serde_json::json!({
        "schema_version": 1, "model": {"folder": folder}, "takes": 0,
        "settings": {"request": {"bars": 1, "seed": 1, "knobs": [], "variation": 0.0, "temperature": null, "density": 0.0},
                     "voicing": {"key": 0, "scale": "Major", "transpose": 0, "velocity": 90, "humanise": 0.0, "seed": 1, "channels": [0], "muted": [false]}},
        "pattern": {"steps_per_beat": 4, "meter": {"numerator": 4, "denominator": 4}, "bars": 1, "notes": []}
    });
    let state = clap_host::state_with_session(&original.save_state(), &session.to_string());
    assert!(original.load_state(&state));
    let changes = [
        original.change("Knob 2", "-1.25"),
        original.change("Humanise", "60"),
        original.change("Swing", "66"),
        original.change("Loop length", "4 bars"),
        original.change("New seed", "On"),
    ];
    original.flush_params(&changes);
    original.activate(48_000.0, 512);
    let played = eight_bars(&mut original);
    assert_eq!(
        clap_host::session_in_state(&original.save_state())["model"]["folder"],
        serde_json::json!(folder),
        "the project uses the copied model"
    );
    // A slow tune in half notes is a tune too (knob 2 of the folk model leans that way).
    assert!(played.iter().filter(|p| p.on).count() >= 8, "the folk model plays a tune");
    assert!(played.iter().all(|p| p.channel == 0), "one folk melody on channel 1, not four chorale voices");
    let project = original.save_state();
    drop(original);

    // The model folder is gone when the project is reopened.
    std::fs::remove_dir_all(&folder).unwrap();
    let mut reopened = ClapInstance::load(clap);
    assert!(reopened.load_state(&project));
    reopened.activate(48_000.0, 512);
    assert_eq!(eight_bars(&mut reopened), played, "the reopened project plays the saved notes");
}

#[test]
fn garbage_future_and_truncated_states_start_from_defaults_without_harm() {
    let (clap, _) = hosts::bundles();
    let mut fresh = ClapInstance::load(clap);
    fresh.activate(48_000.0, 512);
    let defaults = eight_bars(&mut fresh);
    let good = fresh.save_state();

    let blobs: Vec<Vec<u8>> = vec![
        b"\x07\x00\x00\x00\x00\x00\x00\x00garbage".to_vec(),
        good[..good.len() / 2].to_vec(),
        clap_host::state_with_session(&good, r#"{"schema_version": 99, "what": "next year's format"}"#),
        clap_host::state_with_session(&good, r#"{"schema_version": 1, "model": "embedded", "pattern": 5}"#),
        Vec::new(),
    ];
    for blob in blobs {
        let mut plugin = ClapInstance::load(clap);
        let _accepted = plugin.load_state(&blob);
        plugin.activate(48_000.0, 512);
        assert_eq!(eight_bars(&mut plugin), defaults, "a bad state ({} bytes) leaves the defaults playing", blob.len());
    }
}

#[test]
fn notes_played_into_the_plugin_pass_through_on_their_samples() {
    let (clap, _) = hosts::bundles();
    let mut plugin = ClapInstance::load(clap);
    let mute_all: Vec<(u32, f64)> = (1..=4).map(|t| plugin.change(&format!("Track {t} mute"), "On")).collect();
    plugin.flush_params(&mute_all);
    plugin.activate(48_000.0, 512);
    let played_in = [
        Played { sample: 10, on: true, channel: 9, key: 36, velocity: 100 },
        Played { sample: 300, on: false, channel: 9, key: 36, velocity: 0 },
    ];
    let (out, _) = plugin.process_with_notes(512, &Transport::four_four(0.0, 120.0, true), &[], &played_in);
    let got: Vec<(u64, bool, u8, u8)> = out.iter().map(|p| (p.sample, p.on, p.channel, p.key)).collect();
    assert_eq!(
        got,
        vec![(10, true, 9, 36), (300, false, 9, 36)],
        "with every track muted, only what was played in comes out"
    );
    assert_eq!(out[0].velocity, 100);
}

#[test]
fn an_offline_bounce_switches_to_a_turned_knob_exactly_at_the_next_bar_line() {
    // Offline, the plugin waits for the engine at a switch point rather than playing on with
    // the old pattern: a knob turned at bar 3's first block is heard from that bar line on.
    let (clap, _) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let before = rendered_ons(dir.path(), &["--bars", "8", "--seed", "42", "--bpm", "120"]);
    let after = rendered_ons(dir.path(), &["--bars", "8", "--seed", "42", "--bpm", "120", "--knob", "1=2"]);
    let bar_three = 2 * 96_000u64;
    let expected: Vec<Played> = before
        .iter()
        .filter(|p| p.sample < bar_three)
        .chain(after.iter().filter(|p| p.sample >= bar_three))
        .copied()
        .collect();

    let mut plugin = ClapInstance::load(clap);
    plugin.set_offline();
    plugin.activate(48_000.0, 512);
    let knob = plugin.change("Knob 1", "2");
    let mut played = Vec::new();
    for block in 0..1500u64 {
        let beats = block as f64 * 512.0 * 2.0 / 48_000.0;
        let changes = if block * 512 == bar_three { vec![(0, knob.0, knob.1)] } else { Vec::new() };
        played.extend(
            plugin.process(512, &Transport::four_four(beats, 120.0, true), &changes).0.into_iter().filter(|p| p.on),
        );
    }
    assert_ne!(before, after, "the knob changes the music");
    assert_eq!(played, expected);
}

/// A melody of quarter notes over four bars on the built-in model's top part:
/// (start quarter, pitch).
fn four_bar_melody() -> (u8, Vec<(u64, u8)>) {
    let generator = dreamroll::model::default_generator().unwrap();
    let channel = generator.card().representation.tracks[0].channel;
    let pitches = [72u8, 71, 69, 71, 72, 74, 76, 74, 72, 72, 71, 69, 67, 69, 71, 72];
    (channel, pitches.iter().enumerate().map(|(i, &p)| (i as u64, p)).collect())
}

#[test]
fn a_take_played_in_is_varied_from_the_next_bar_line_as_render_varies_it_and_recalled_with_the_project() {
    let (clap, _) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let (channel, melody) = four_bar_melody();
    // The same notes as a file, for `dreamroll render --clip`.
    let track = dreamroll::roll::TrackToWrite {
        name: "melody".into(),
        channel,
        notes: melody.iter().map(|&(q, p)| (q * 480, 480, p, 96)).collect(),
    };
    let clip_path = dir.path().join("clip.mid");
    std::fs::write(
        &clip_path,
        dreamroll::roll::write_midi(480, 500_000, dreamroll::roll::Meter::COMMON, &[track], 4 * 1920),
    )
    .unwrap();
    let render_args = [
        "--bars",
        "8",
        "--seed",
        "42",
        "--bpm",
        "120",
        "--source",
        "vary",
        "--distance",
        "0.5",
        "--clip",
        clip_path.to_str().unwrap(),
    ];
    let expected: Vec<Played> = hosts::events_of_file(&hosts::render_file(dir.path(), &render_args), 48_000, 120.0)
        .into_iter()
        .filter(|e| e.is_on())
        .map(|e| Played {
            sample: u64::from(e.offset),
            on: true,
            channel: e.channel,
            key: e.pitch,
            velocity: e.velocity,
        })
        .collect();
    assert!(!expected.is_empty());

    // Offline, so the engine's answer is waited for at the bar line: bars 0-3 are played in
    // (a 4-bar take), and from bar 4 the plugin plays the variation of that take.
    let mut plugin = ClapInstance::load(clap);
    plugin.set_offline();
    let changes =
        [plugin.change("Source", "Vary"), plugin.change("Distance", "50"), plugin.change("Take length", "4 bars")];
    plugin.flush_params(&changes);
    const BLOCK: u64 = 500;
    const BAR: u64 = 96_000;
    plugin.activate(48_000.0, BLOCK as u32);
    let quarter = BAR / 4;
    let mut generated = Vec::new();
    for block in 0..(8 * BAR / BLOCK) {
        let from = block * BLOCK;
        let played_in: Vec<Played> = melody
            .iter()
            .flat_map(|&(q, key)| [(q * quarter, true, key), ((q + 1) * quarter - 1, false, key)])
            .filter(|&(sample, ..)| (from..from + BLOCK).contains(&sample))
            .map(|(sample, on, key)| Played {
                sample: sample - from,
                on,
                channel,
                key,
                velocity: if on { 96 } else { 0 },
            })
            .collect();
        let beats = from as f64 / quarter as f64;
        let (out, _) =
            plugin.process_with_notes(BLOCK as u32, &Transport::four_four(beats, 120.0, true), &[], &played_in);
        generated.extend(
            out.into_iter().filter(|p| p.on && p.sample >= 4 * BAR).map(|p| Played { sample: p.sample - 4 * BAR, ..p }),
        );
    }
    assert_eq!(generated, expected, "what render writes from the same clip, from the bar line after the take");

    // The project keeps the clip and the variation: reopened, it plays the same notes.
    let state = plugin.save_state();
    let session = clap_host::session_in_state(&state);
    assert_eq!(session["clip"]["notes"].as_array().map(Vec::len), Some(melody.len()), "{session}");
    let mut reopened = ClapInstance::load(clap);
    assert!(reopened.load_state(&state));
    reopened.activate(48_000.0, 512);
    let replayed: Vec<Played> =
        play(&mut reopened, 48_000.0, 120.0, 4 * BAR, &[512]).into_iter().filter(|p| p.on).collect();
    assert_eq!(replayed, expected);
}

/// The note-ons of `dreamroll render` with these arguments, at 48 kHz and 120 BPM.
fn rendered_ons(dir: &std::path::Path, args: &[&str]) -> Vec<Played> {
    hosts::events_of_file(&hosts::render_file(dir, args), 48_000, 120.0)
        .into_iter()
        .filter(|e| e.is_on())
        .map(|e| Played {
            sample: u64::from(e.offset),
            on: true,
            channel: e.channel,
            key: e.pitch,
            velocity: e.velocity,
        })
        .collect()
}

/// Sets parameters between activations, so that the next activation starts on their pattern.
fn set_and_reactivate(plugin: &mut ClapInstance, changes: &[(u32, f64)], rate: f64, block: u32) {
    plugin.deactivate();
    plugin.flush_params(changes);
    plugin.activate(rate, block);
}

#[test]
fn each_named_knob_of_the_default_model_plays_what_render_named_writes() {
    let (clap, _) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let card = dreamroll::model::default_generator().unwrap().card().clone();
    assert!(!card.named_knobs.is_empty(), "the default model has named knobs to test");
    let base = ["--bars", "8", "--seed", "42", "--bpm", "120"];
    let unturned = rendered_ons(dir.path(), &base);
    let mut plugin = ClapInstance::load(clap);
    plugin.activate(48_000.0, 512);
    for knob in &card.named_knobs {
        let name = knob.attribute.knob_name();
        let id = serde_json::to_value(knob.attribute).unwrap().as_str().unwrap().to_string();
        let mut heard = false;
        for value in ["-2", "0.75", "2"] {
            let named = format!("{id}={value}");
            let expected = rendered_ons(dir.path(), &[&base[..], &["--named", &named]].concat());
            let change = plugin.change(name, value);
            set_and_reactivate(&mut plugin, &[change], 48_000.0, 512);
            let played: Vec<Played> = eight_bars(&mut plugin).into_iter().filter(|p| p.on).collect();
            assert_eq!(played, expected, "{name} at {value} plays what render --named {named} writes");
            heard |= expected != unturned;
        }
        assert!(heard, "{name} changes the notes somewhere in its range");
        let reset = plugin.change(name, "0");
        plugin.flush_params(&[reset]);
    }
}

#[test]
fn swing_in_the_plugin_plays_what_render_swing_writes_and_moves_only_off_beats() {
    let (clap, _) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let base = ["--bars", "8", "--seed", "42", "--bpm", "120"];
    let straight = rendered_ons(dir.path(), &base);
    let mut plugin = ClapInstance::load(clap);
    plugin.activate(48_000.0, 512);
    // 60 % puts every 16th on a whole tick of the file, so file and play agree to the sample.
    let expected = rendered_ons(dir.path(), &[&base[..], &["--swing", "60"]].concat());
    let change = plugin.change("Swing", "60");
    set_and_reactivate(&mut plugin, &[change], 48_000.0, 512);
    let played: Vec<Played> = eight_bars(&mut plugin).into_iter().filter(|p| p.on).collect();
    assert_eq!(played, expected, "Swing at 60 % plays what render --swing 60 writes");
    let beat = 24_000;
    let on_the_beat =
        |ons: &[Played]| -> Vec<Played> { ons.iter().filter(|p| p.sample % beat == 0).copied().collect() };
    assert_eq!(on_the_beat(&played), on_the_beat(&straight), "notes on the beat stay");
    assert!(played.len() == straight.len() && played != straight, "the off-beats move");
}

#[test]
fn loops_of_every_length_come_round_in_the_plugin_as_render_writes_them() {
    let (clap, _) = hosts::bundles();
    let dir = tempfile::tempdir().unwrap();
    let mut plugin = ClapInstance::load(clap);
    plugin.activate(48_000.0, 512);
    let bar_samples = 4 * 48_000 / 2;
    for (bars, name) in [(1u64, "1 bar"), (2, "2 bars"), (4, "4 bars")] {
        let once = rendered_ons(dir.path(), &["--bars", &bars.to_string(), "--seed", "42", "--bpm", "120"]);
        // Eight bars of play are the rendered loop, wrap and all, 8 / bars times over.
        let expected: Vec<Played> = (0..8 / bars)
            .flat_map(|round| once.iter().map(move |p| Played { sample: p.sample + round * bars * bar_samples, ..*p }))
            .collect();
        let change = plugin.change("Loop length", name);
        set_and_reactivate(&mut plugin, &[change], 48_000.0, 512);
        let played: Vec<Played> = eight_bars(&mut plugin).into_iter().filter(|p| p.on).collect();
        assert_eq!(played, expected, "a {name} loop plays what render --bars {bars} writes, round and round");
    }
}

/// Parameters that may leave the notes and the preview's audio alone when moved from their
/// default with nothing else changed, each with the reason. Anything not here must be heard.
const HEARD_ONLY_WITH_MORE: [(&str, &str); 9] = [
    ("Hold", "freezes the pattern playing: it changes when a new pattern comes, not what plays"),
    ("Key", "the tonic of the scale notes are locked to; the default scale, Chromatic, holds every pitch on any tonic"),
    ("Source", "every source but Dream reads a clip or a held chord; with neither, the pattern playing stays"),
    ("Switch at", "changes when a new pattern takes over, not what plays"),
    ("Record clip", "records what is played in; nothing is played in here"),
    ("Take length", "the length of a take recorded from what is played in"),
    ("Distance", "how far Vary goes from the clip; Dream, the default source, has no clip"),
    ("Morph", "moves between morph points A and B, which the editor stores; none are stored here"),
    ("Style", "dreams in one of the styles a model learnt from its data's folders; the default model has none"),
];

/// What a few bars sound like from the song's start: the notes, and the preview's samples.
fn heard(plugin: &mut ClapInstance, rate: f64) -> (Vec<Played>, Vec<u32>) {
    const BLOCK: u32 = 1024;
    let start = plugin.position;
    let (mut notes, mut audio) = (Vec::new(), Vec::new());
    let samples = (4.0 * 4.0 * 60.0 / 120.0 * rate) as u64;
    while plugin.position - start < samples {
        let beats = (plugin.position - start) as f64 * 2.0 / rate;
        let (played, _) = plugin.process(BLOCK, &Transport::four_four(beats, 120.0, true), &[]);
        notes.extend(played.into_iter().map(|p| Played { sample: p.sample - start, ..p }));
        audio.extend(plugin.output(0, BLOCK).iter().map(|s| s.to_bits()));
    }
    (notes, audio)
}

#[test]
fn every_automatable_parameter_changes_the_notes_or_the_audio_or_says_why_not() {
    use clap_sys::ext::params::CLAP_PARAM_IS_AUTOMATABLE;
    let (clap, _) = hosts::bundles();
    let card = dreamroll::model::default_generator().unwrap().card().clone();
    // Slots the default model does not use, by the rule the parameters document.
    let unused = |name: &str| -> Option<String> {
        let number = |prefix: &str| {
            name.strip_prefix(prefix)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok())
        };
        if let Some(knob) = number("Knob ").filter(|&k| k > card.macro_knobs.len()) {
            return Some(format!("knob {knob} is beyond the model's {} macro knobs", card.macro_knobs.len()));
        }
        if let Some(track) = number("Track ").filter(|&t| t > card.representation.tracks.len()) {
            return Some(format!("track {track} is beyond the model's {} tracks", card.representation.tracks.len()));
        }
        let named = dreamroll::metrics::attributes::Attribute::ALL.into_iter().find(|a| a.knob_name() == name)?;
        (!card.named_knobs.iter().any(|k| k.attribute == named)).then(|| format!("the model has no {name} knob"))
    };
    let rate = 12_000.0;
    let mut plugin = ClapInstance::load(clap);
    let preview = plugin.change("Preview synth", "On");
    plugin.flush_params(&[preview]);
    plugin.activate(rate, 1024);
    let reference = heard(&mut plugin, rate);
    assert!(
        !reference.0.is_empty() && reference.1.iter().any(|&s| s != 0),
        "the defaults play, and the preview sounds"
    );
    let mut parameters: Vec<_> =
        plugin.params().into_iter().filter(|p| p.flags & CLAP_PARAM_IS_AUTOMATABLE != 0).collect();
    // Each press of New seed moves on for good, so it is moved last.
    parameters.sort_by_key(|p| p.name == "New seed");
    let (mut moved, mut excused) = (0, Vec::new());
    for parameter in parameters {
        if let Some(reason) = HEARD_ONLY_WITH_MORE
            .iter()
            .find(|(name, _)| *name == parameter.name)
            .map(|(_, why)| why.to_string())
            .or_else(|| unused(&parameter.name))
        {
            excused.push(format!("{}: {reason}", parameter.name));
            continue;
        }
        let now = plugin.param_value(parameter.id);
        let other_end = if now == parameter.min { parameter.max } else { parameter.min };
        set_and_reactivate(&mut plugin, &[(parameter.id, other_end)], rate, 1024);
        let changed = heard(&mut plugin, rate);
        assert!(
            changed != reference,
            "{} moved from {now} to {other_end} changes neither the notes nor the audio",
            parameter.name
        );
        set_and_reactivate(&mut plugin, &[(parameter.id, now)], rate, 1024);
        moved += 1;
    }
    eprintln!("{moved} parameters heard; excused:\n{}", excused.join("\n"));
    assert!(moved >= 25, "only {moved} parameters were moved");
}

#[test]
fn a_controller_gets_pages_of_the_knobs_the_pattern_the_source_and_the_key_without_setup() {
    let (clap, _) = hosts::bundles();
    let plugin = ClapInstance::load(clap);
    let names: std::collections::HashMap<u32, String> = plugin.params().into_iter().map(|p| (p.id, p.name)).collect();
    let pages = plugin.remote_control_pages();
    let shown: Vec<(String, Vec<String>)> = pages
        .iter()
        .map(|page| {
            assert_eq!(page.section, "Dreamroll");
            let slots = page
                .params
                .iter()
                .flatten()
                .map(|id| names.get(id).unwrap_or_else(|| panic!("page {}: no parameter {id}", page.name)).clone())
                .collect();
            (page.name.clone(), slots)
        })
        .collect();
    let page =
        |name: &str| &shown.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no page {name}: {shown:?}")).1;
    assert_eq!(page("Macro knobs").len(), 8);
    assert!(page("Named knobs").contains(&"Note density".to_string()), "{:?}", page("Named knobs"));
    for (name, wanted) in [
        ("Pattern", ["Seed", "New seed", "Variation", "Density", "Temperature", "Swing"].as_slice()),
        ("Source", &["Source", "Distance", "Morph", "Style"]),
        ("Key and output", &["Key", "Scale", "Transpose"]),
    ] {
        for parameter in wanted {
            assert!(page(name).iter().any(|p| p == parameter), "{parameter} on page {name}: {:?}", page(name));
        }
    }
    let mapped: BTreeSet<u32> = pages.iter().flat_map(|p| p.params.iter().flatten().copied()).collect();
    assert_eq!(mapped.len(), pages.iter().map(|p| p.params.iter().flatten().count()).sum::<usize>(), "no slot twice");
}

#[test]
fn every_parameter_reads_back_the_text_it_shows_across_its_range() {
    use clap_sys::ext::params::CLAP_PARAM_IS_STEPPED;
    let (clap, _) = hosts::bundles();
    let plugin = ClapInstance::load(clap);
    let mut failures = Vec::new();
    let parameters = plugin.params();
    for parameter in &parameters {
        let stepped = parameter.flags & CLAP_PARAM_IS_STEPPED != 0;
        let span = parameter.max - parameter.min;
        let values =
            (0..=40).map(|i| parameter.min + span * f64::from(i) / 40.0).map(|v| if stepped { v.round() } else { v });
        for value in values {
            let Some(text) = plugin.value_to_text(parameter.id, value) else {
                failures.push(format!("{}: {value} has no text", parameter.name));
                continue;
            };
            let Some(back) = plugin.text_to_value(parameter.id, &text) else {
                failures.push(format!("{}: {text:?} (from {value}) cannot be read back", parameter.name));
                continue;
            };
            // A stepped value comes back on its step (a host rounds the rest of its float away);
            // any value comes back to one that shows the same text, as near as its text can say.
            let shown_again = plugin.value_to_text(parameter.id, back);
            if (stepped && back.round() != value) || shown_again.as_deref() != Some(&text) {
                failures.push(format!(
                    "{}: {value} shows as {text:?}, reads back as {back}, which shows as {shown_again:?}",
                    parameter.name
                ));
            }
        }
    }
    assert!(parameters.len() > 40, "every parameter was enumerated ({})", parameters.len());
    assert!(failures.is_empty(), "{} conversions fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_notes_go_out_and_the_preview_sounds_in_stereo_mono_or_without_audio() {
    let (clap, _) = hosts::bundles();
    let two_bars = |channels: u32| -> (Vec<Played>, Vec<f32>) {
        let mut plugin = ClapInstance::load(clap);
        if channels != 2 {
            plugin.choose_output_channels(channels);
        }
        let preview = plugin.change("Preview synth", "On");
        plugin.flush_params(&[preview]);
        plugin.activate(48_000.0, 512);
        let (mut notes, mut left) = (Vec::new(), Vec::new());
        for block in 0..375u32 {
            let (played, peak) =
                plugin.process(512, &Transport::four_four(f64::from(block) * 512.0 / 24_000.0, 120.0, true), &[]);
            assert!(!peak.is_nan(), "{channels} channels: the output is written");
            notes.extend(played);
            if channels > 0 {
                left.extend_from_slice(plugin.output(0, 512));
            }
            if channels == 2 {
                assert_eq!(plugin.output(0, 512), plugin.output(1, 512), "the preview is centred");
            }
        }
        (notes, left)
    };
    let stereo = two_bars(2);
    assert!(stereo.0.iter().any(|p| p.on) && stereo.1.iter().any(|&s| s != 0.0));
    assert_eq!(two_bars(1), stereo, "mono: the same notes, and the left channel's preview");
    assert_eq!(two_bars(0).0, stereo.0, "no audio output: the same notes");
}

#[test]
fn notes_no_midi_message_can_carry_are_ignored_and_loud_ones_clamped() {
    use clap_host::HostInput;
    let (clap, _) = hosts::bundles();
    let mut plugin = ClapInstance::load(clap);
    let mut changes: Vec<(u32, f64)> = (1..=4).map(|t| plugin.change(&format!("Track {t} mute"), "On")).collect();
    changes.push(plugin.change("Take length", "1 bar"));
    plugin.flush_params(&changes);
    plugin.activate(48_000.0, 512);
    let note = |sample, on, channel, key, velocity| HostInput::Note { sample, on, channel, key, velocity };
    let hostile = [
        HostInput::Midi { sample: 0, data: [0x90, 200, 100] },
        HostInput::Midi { sample: 1, data: [0x95, 60, 255] },
        note(2, true, 0, 64, 5.0),
        note(3, true, 0, 65, f64::NAN),
        note(4, true, 0, 67, -3.0),
        note(5, true, 0, 300, 0.5),
        note(6, true, 20, 70, 0.5),
        HostInput::Midi { sample: 400, data: [0x80, 200, 0] },
        HostInput::Midi { sample: 401, data: [0x85, 60, 0] },
        note(402, false, 0, 64, 0.0),
        note(403, false, 0, 65, 0.0),
        note(404, false, 0, 67, 0.0),
    ];
    let (out, _) = plugin.process_with_input(512, &Transport::four_four(0.0, 120.0, true), &[], &hostile);
    let got: Vec<(u64, bool, u8, u8, u8)> =
        out.iter().map(|p| (p.sample, p.on, p.channel, p.key, p.velocity)).collect();
    let expected = vec![
        (1, true, 5, 60, 127),
        (2, true, 0, 64, 127),
        (3, true, 0, 65, 1),
        (4, true, 0, 67, 1),
        (401, false, 5, 60, 0),
        (402, false, 0, 64, 0),
        (403, false, 0, 65, 0),
        (404, false, 0, 67, 0),
    ];
    assert_eq!(
        got, expected,
        "pitch 200 and the wildcards are dropped; velocities above 1 are 127, NaN and negative 1"
    );
    // Past the bar line: the one-bar take of what was played is the clip, and holds only what
    // MIDI can say.
    for block in 1..200u32 {
        plugin.process(512, &Transport::four_four(f64::from(block) * 512.0 / 24_000.0, 120.0, true), &[]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let session = loop {
        let session = clap_host::session_in_state(&plugin.save_state());
        if session["clip"]["notes"].is_array() || std::time::Instant::now() > deadline {
            break session;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let mut recorded: Vec<(u64, u64)> = session["clip"]["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("a take was recorded: {session}"))
        .iter()
        .map(|n| (n["pitch"].as_u64().unwrap(), n["velocity"].as_u64().unwrap()))
        .collect();
    recorded.sort();
    assert_eq!(recorded, vec![(60, 127), (64, 127), (65, 1), (67, 1)], "{session}");
}

/// A block as a hostile host might send it: any tempo, position, bar and meter, or the
/// transport running on from the last block.
#[derive(Clone, Debug)]
struct HostileBlock {
    frames: u32,
    playing: bool,
    tempo: f64,
    /// `None`: where the previous block ended.
    jump_to: Option<f64>,
    bar_number: i32,
    meter: (u16, u16),
    loop_range: Option<(f64, f64)>,
}

fn hostile_block() -> impl proptest::strategy::Strategy<Value = HostileBlock> {
    use proptest::prelude::*;
    let tempo = prop_oneof![
        Just(0.0),
        Just(-120.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(1e300),
        Just(1e-300),
        1.0..1000.0f64,
        any::<f64>()
    ];
    let position = prop_oneof![
        Just(0.0),
        Just(1e300),
        Just(-1e300),
        Just(f64::NAN),
        Just(4.0e9),
        Just(-4.0e9),
        -1e6..1e6f64,
        any::<f64>()
    ];
    (
        prop_oneof![Just(1u32), Just(2), Just(7), Just(64), Just(512), Just(4096)],
        prop::bool::weighted(0.9),
        tempo,
        prop::option::weighted(0.3, position),
        prop_oneof![Just(0), Just(i32::MAX), Just(i32::MIN), any::<i32>()],
        prop_oneof![Just((4u16, 4u16)), Just((0, 0)), Just((7, 8)), Just((1, 32)), any::<(u16, u16)>()],
        prop::option::of((-1e6..1e6f64, -1e6..1e6f64)),
    )
        .prop_map(|(frames, playing, tempo, jump_to, bar_number, meter, loop_range)| HostileBlock {
            frames,
            playing,
            tempo,
            jump_to,
            bar_number,
            meter,
            loop_range,
        })
}

thread_local! {
    static ALLOC_CHECKED: std::cell::RefCell<Option<ClapInstance>> = const { std::cell::RefCell::new(None) };
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 96, ..proptest::test_runner::Config::default() })]

    /// Whatever the transport, sample rate and block size, a block does bounded work (the
    /// test ends), allocates nothing (the allocation-checked build aborts on it), panics
    /// nowhere (a panic across the ABI aborts) and leaves no note hanging.
    #[test]
    fn no_transport_a_host_can_send_hangs_allocates_or_leaves_a_note_hanging(
        rate in proptest::prop_oneof![proptest::strategy::Just(1.0f64), proptest::strategy::Just(0.0), proptest::strategy::Just(f64::NAN), proptest::strategy::Just(-48_000.0), proptest::strategy::Just(1e9), proptest::strategy::Just(44_100.0), proptest::strategy::Just(192_000.0)],
        preview in proptest::bool::ANY,
        blocks in proptest::collection::vec(hostile_block(), 1..40),
    ) {
        ALLOC_CHECKED.with_borrow_mut(|slot| {
            let plugin = slot.get_or_insert_with(|| {
                let mut plugin = ClapInstance::load(hosts::alloc_checked_plugin());
                let preview = plugin.change("Preview synth", "On");
                plugin.flush_params(&[preview]);
                plugin
            });
            let preview = (plugin.param_id("Preview synth"), f64::from(u8::from(preview)));
            plugin.deactivate();
            plugin.flush_params(&[preview]);
            plugin.activate(rate, 4096);
            let mut sounding = BTreeSet::new();
            let mut beats = 0.0f64;
            for (index, block) in blocks.iter().enumerate() {
                beats = block.jump_to.unwrap_or(beats);
                let bar_start = (beats / 4.0).floor() * 4.0;
                let transport = Transport {
                    playing: block.playing,
                    tempo: block.tempo,
                    beats,
                    bar_start,
                    bar_number: block.bar_number,
                    numerator: block.meter.0,
                    denominator: block.meter.1,
                    loop_range: block.loop_range,
                };
                let (played, peak) = plugin.process(block.frames, &transport, &[]);
                assert!(!peak.is_nan(), "block {index}: the output is written");
                for event in played {
                    if event.on {
                        assert!(sounding.insert((event.channel, event.key)), "block {index}: {event:?} struck while sounding");
                    } else {
                        assert!(sounding.remove(&(event.channel, event.key)), "block {index}: {event:?} released while silent");
                    }
                }
                beats += f64::from(block.frames) * block.tempo / 60.0 / rate;
            }
            let (played, _) = plugin.process(64, &Transport::four_four(0.0, 120.0, false), &[]);
            for event in played {
                assert!(!event.on && sounding.remove(&(event.channel, event.key)), "{event:?} after the stop");
            }
            assert!(sounding.is_empty(), "notes left hanging: {sounding:?}");
        });
    }
}
