//! What the host loaded is what the host gets back: a project saved right after it is opened
//! (on a frozen or disabled track, or by a host that snapshots state for undo or for
//! duplicating a track) keeps Dreamroll's session byte for byte, whether or not the engine
//! thread has run, the instance was activated, or anything was played.

mod clap_host;
mod hosts;

use clap_host::{ClapInstance, Transport};
use serde_json::Value;

/// Plays two bars at 120 BPM, 48 kHz, so that the engine's patterns have been heard.
fn play_two_bars(plugin: &mut ClapInstance) {
    for block in 0..375u32 {
        plugin.process(512, &Transport::four_four(f64::from(block) * 512.0 * 2.0 / 48_000.0, 120.0, true), &[]);
    }
}

/// A project as a user leaves it: knobs turned, a new take of a seed, played, then saved once
/// the engine has answered (the plugin is then deactivated and destroyed).
fn project(seed: &str, knob: &str) -> Vec<u8> {
    let (clap, _) = hosts::bundles();
    let mut plugin = ClapInstance::load(clap);
    let changes = [
        plugin.change("Seed", seed),
        plugin.change("Knob 2", knob),
        plugin.change("New seed", "On"),
        plugin.change("Humanise", "40"),
    ];
    plugin.flush_params(&changes);
    plugin.activate(48_000.0, 512);
    play_two_bars(&mut plugin);
    let state = plugin.save_state();
    assert!(
        clap_host::session_in_state(&state)["pattern"]["notes"].as_array().is_some_and(|n| !n.is_empty()),
        "the project has a pattern"
    );
    state
}

/// The state's parameter values (parsed, since the host's map has no fixed order) and the
/// session field's exact text.
fn contents(state: &[u8]) -> (Value, String) {
    let outer: Value = serde_json::from_slice(&state[8..]).expect("nice-plug's state is JSON after its length");
    let session = outer["fields"]["session"].as_str().unwrap_or_default().to_string();
    (outer["params"].clone(), session)
}

/// Rounds in which a fresh instance, given `project`, saved something else; with the first
/// difference seen.
fn rounds_that_lose_the_session(
    project: &[u8],
    rounds: usize,
    before_save: impl Fn(&mut ClapInstance),
) -> (usize, Option<String>) {
    let (clap, _) = hosts::bundles();
    let expected = contents(project);
    let mut lost = 0;
    let mut first = None;
    for round in 0..rounds {
        let mut plugin = ClapInstance::load(clap);
        assert!(plugin.load_state(project));
        before_save(&mut plugin);
        let saved = contents(&plugin.save_state());
        if saved != expected {
            lost += 1;
            first.get_or_insert_with(|| {
                format!("round {round}: saved session {:?}", saved.1.chars().take(120).collect::<String>())
            });
        }
    }
    (lost, first)
}

#[test]
fn a_project_saved_right_after_it_is_opened_keeps_its_session_every_time() {
    let project = project("1234", "1.5");
    let (lost, first) = rounds_that_lose_the_session(&project, 1000, |_| {});
    eprintln!("load then save at once: {lost} of 1000 rounds lost the session");
    assert_eq!(lost, 0, "{}", first.unwrap_or_default());
    // Saving again and again changes nothing either.
    let (lost, first) = rounds_that_lose_the_session(&project, 50, |plugin| {
        for _ in 0..5 {
            plugin.save_state();
        }
    });
    assert_eq!(lost, 0, "{}", first.unwrap_or_default());
}

#[test]
fn the_second_of_two_loads_is_what_is_saved() {
    let (a, b) = (project("11", "-1"), project("22", "2"));
    assert_ne!(contents(&a).1, contents(&b).1);
    let (lost, first) =
        rounds_that_lose_the_session(&b, 200, |plugin| assert!(plugin.load_state(&a) && plugin.load_state(&b)));
    assert_eq!(lost, 0, "{}", first.unwrap_or_default());
}

#[test]
fn a_deactivated_instance_gives_back_what_it_was_given() {
    let project = project("77", "0.5");
    let (lost, first) = rounds_that_lose_the_session(&project, 100, |plugin| {
        plugin.activate(48_000.0, 512);
        plugin.deactivate();
    });
    assert_eq!(lost, 0, "{}", first.unwrap_or_default());
    // Loaded into an instance that has played and been deactivated, then saved at once.
    let (clap, _) = hosts::bundles();
    for _ in 0..100 {
        let mut plugin = ClapInstance::load(clap);
        plugin.activate(48_000.0, 512);
        play_two_bars(&mut plugin);
        plugin.deactivate();
        assert!(plugin.load_state(&project));
        assert_eq!(contents(&plugin.save_state()), contents(&project));
    }
}

#[test]
fn a_save_while_the_engine_renders_a_turned_knob_is_never_empty_and_then_follows_the_knob() {
    let (clap, _) = hosts::bundles();
    let project = project("5", "0");
    let loaded = contents(&project).1;
    for _ in 0..100 {
        let mut plugin = ClapInstance::load(clap);
        assert!(plugin.load_state(&project));
        let knob = plugin.change("Knob 1", "2.5");
        plugin.flush_params(&[knob]);
        // The engine may or may not have answered the knob yet: either way the session is
        // whole, and it is the loaded one until the new pattern exists.
        let state = plugin.save_state();
        let session = clap_host::session_in_state(&state);
        let answers_knob = session["settings"]["request"]["knobs"][0].as_f64().is_some_and(|k| (k - 2.5).abs() < 1e-6);
        assert!(answers_knob || contents(&state).1 == loaded, "neither the loaded session nor the knob's: {session}");
        assert!(session["pattern"]["notes"].as_array().is_some_and(|n| !n.is_empty()));
    }
    // Once the engine has answered, the saved project is the turned knob's.
    let mut plugin = ClapInstance::load(clap);
    assert!(plugin.load_state(&project));
    let knob = plugin.change("Knob 1", "2.5");
    plugin.flush_params(&[knob]);
    plugin.activate(48_000.0, 512);
    let session = clap_host::session_in_state(&plugin.save_state());
    assert!((session["settings"]["request"]["knobs"][0].as_f64().unwrap() - 2.5).abs() < 1e-6, "{session}");
}

/// A project whose clip holds a note that starts and ends on one tick (as older versions
/// stored a drum export's hits) and whose morph point A has a knob at 1e39 still opens playing
/// its own pattern: only the damaged parts are left out.
#[test]
fn a_damaged_clip_or_morph_point_does_not_cost_the_pattern() {
    let project = project("99", "1");
    let mut session = clap_host::session_in_state(&project);
    session["pattern"]["bars"] = serde_json::json!(1);
    session["pattern"]["notes"] =
        serde_json::json!([{ "start": 0, "length": 4, "channel": 0, "pitch": 101, "velocity": 77, "delay": 0 }]);
    session["clip"] = serde_json::json!({
        "ticks_per_quarter": 480, "meter": { "numerator": 4, "denominator": 4 }, "bars": 1,
        "notes": [{ "track": 9, "channel": 9, "pitch": 36, "velocity": 100, "start": 0, "end": 0 }],
        "after_meter_change": 0, "after_last_bar": 0
    });
    session["morph_points"] = serde_json::json!([{ "dream": { "seed": 1, "knobs": [1e39], "named": [] } }, null]);
    let (clap, _) = hosts::bundles();
    let mut plugin = ClapInstance::load(clap);
    assert!(plugin.load_state(&clap_host::state_with_session(&project, &session.to_string())));
    plugin.activate(48_000.0, 512);
    let mut played = Vec::new();
    for block in 0..375u32 {
        played.extend(
            plugin.process(512, &Transport::four_four(f64::from(block) * 512.0 * 2.0 / 48_000.0, 120.0, true), &[]).0,
        );
    }
    let keys: Vec<(u8, u8)> = played.iter().filter(|p| p.on).map(|p| (p.channel, p.key)).collect();
    assert_eq!(keys, vec![(0, 101); 2], "the saved one-bar pattern, twice");
}

/// Plays two bars offline from `block`, with `changes` at their first block; returns the block
/// after them. Offline, the plugin waits at each bar line for the engine to answer a change.
fn two_bars_offline(plugin: &mut ClapInstance, block: u32, changes: &[(u32, u32, f64)]) -> u32 {
    for i in 0..375u32 {
        let beats = f64::from(block + i) * 512.0 * 2.0 / 48_000.0;
        plugin.process(512, &Transport::four_four(beats, 120.0, true), if i == 0 { changes } else { &[] });
    }
    block + 375
}

fn history_labels(state: &[u8]) -> (Vec<String>, Value) {
    let history = clap_host::session_in_state(state)["history"].clone();
    let labels = history["moments"]
        .as_array()
        .map(|moments| moments.iter().map(|m| m["label"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    (labels, history["at"].clone())
}

#[test]
fn the_patterns_a_session_made_are_saved_with_the_project_and_go_on_after_it_reopens() {
    let (clap, _) = hosts::bundles();
    let mut plugin = ClapInstance::load(clap);
    plugin.set_offline();
    plugin.activate(48_000.0, 512);
    let (seed, new_seed) = (plugin.change("Seed", "7"), plugin.change("New seed", "On"));
    let mut block = two_bars_offline(&mut plugin, 0, &[]);
    block = two_bars_offline(&mut plugin, block, &[(0, seed.0, seed.1)]);
    two_bars_offline(&mut plugin, block, &[(0, new_seed.0, new_seed.1)]);
    let state = plugin.save_state();
    let (labels, at) = history_labels(&state);
    assert_eq!(labels, ["Opened", "Seed 7", "New seed, take 1"]);
    assert_eq!(at, 2);

    let mut reopened = ClapInstance::load(clap);
    assert!(reopened.load_state(&state));
    reopened.set_offline();
    reopened.activate(48_000.0, 512);
    let block = two_bars_offline(&mut reopened, 0, &[]);
    assert_eq!(history_labels(&reopened.save_state()), (labels.clone(), at), "reopened as it was saved");
    let other_seed = reopened.change("Seed", "9");
    two_bars_offline(&mut reopened, block, &[(0, other_seed.0, other_seed.1)]);
    let (more, at) = history_labels(&reopened.save_state());
    assert_eq!(more, ["Opened", "Seed 7", "New seed, take 1", "Seed 9"]);
    assert_eq!(at, 3);
}
