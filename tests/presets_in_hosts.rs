//! Presets where a producer meets them outside the editor: a CLAP host's preset browser
//! (the preset-discovery factory and the preset-load extension, through the C ABI), and a VST3
//! host loading the `.vstpreset` files `cargo xtask install` writes.
//!
//! The plugin finds models and user presets through `DREAMROLL_MODELS` and
//! `DREAMROLL_PRESETS`, set here once for this test binary (its only test), so the shipped
//! models stand for installed ones.

mod clap_host;
mod hosts;

use clap_host::{ClapInstance, ListedPreset, Transport};
use dreamroll::plugin::presets;
use std::path::Path;

const CLAP_ID: &str = "clap:org.dreamroll.dreamroll";

fn play_two_bars_offline(plugin: &mut ClapInstance) -> usize {
    (0..375u32)
        .map(|block| {
            let transport = Transport::four_four(f64::from(block) * 512.0 * 2.0 / 48_000.0, 120.0, true);
            plugin.process(512, &transport, &[]).0.len()
        })
        .sum()
}

fn preset<'a>(presets: &'a [ListedPreset], name: &str) -> &'a ListedPreset {
    presets.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} is listed: {presets:?}"))
}

#[test]
fn a_hosts_browser_lists_the_presets_and_loads_each_kind_and_a_vst3_host_loads_the_preset_files() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let yours = tempfile::tempdir().unwrap();
    // SAFETY (edition 2024 would ask): this binary's one test, before any plugin runs.
    std::env::set_var("DREAMROLL_MODELS", &models);
    std::env::set_var(presets::PRESETS_DIR_VARIABLE, yours.path());
    let mine = presets::Preset {
        name: "Mine".into(),
        description: "a folk tune of my own".into(),
        model: "folk-melody".into(),
        values: [("seed", "11"), ("loop-bars", "4 bars")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
        take: 2,
    };
    presets::save_user_preset(yours.path(), &mine).unwrap();
    std::fs::write(yours.path().join("broken.dreamroll-preset"), "{ not json").unwrap();

    let (clap, vst3) = hosts::bundles();
    let mut plugin = ClapInstance::load(clap);
    let crawl = plugin.crawl_presets();
    assert_eq!(crawl.filetypes, ["dreamroll-preset"]);
    let kinds: Vec<u32> = crawl.locations.iter().map(|location| location.1).collect();
    assert_eq!(kinds, [1, 0], "the factory presets inside the plugin, then your folder: {:?}", crawl.locations);
    let factory = presets::factory();
    assert_eq!(crawl.presets.len(), factory.len() + 1, "every factory preset and yours: {:?}", crawl.presets);
    for listed in &crawl.presets {
        assert_eq!(listed.plugin_ids, [CLAP_ID], "{} names the plugin", listed.name);
        assert!(!listed.description.is_empty(), "{} says what it is", listed.name);
    }
    assert_eq!(preset(&crawl.presets, "Bossa nova").load_key.as_deref(), Some("Bossa nova"));
    assert_eq!(preset(&crawl.presets, "Mine").features, ["folk-melody"], "the model, to filter by");
    assert!(
        crawl.errors.len() == 2
            && crawl.errors[0].contains("broken.dreamroll-preset is no Dreamroll preset")
            && crawl.errors[1].starts_with("get_metadata refused"),
        "a broken file is named and refused: {:?}",
        crawl.errors
    );

    // A factory preset for another model than the built-in one: the band, with its pattern.
    let (loaded, news) = plugin.load_preset(preset(&crawl.presets, "Bossa nova"));
    assert!(loaded, "{news:?}");
    assert_eq!(news, ["loaded null Bossa nova"]);
    plugin.set_offline();
    plugin.activate(48_000.0, 512);
    assert!(play_two_bars_offline(&mut plugin) > 0, "the preset's pattern plays");
    let session = clap_host::session_in_state(&plugin.save_state());
    assert!(session["model"].to_string().contains("band"), "{}", session["model"]);
    assert_eq!(session["settings"]["request"]["style"], "bossanova");
    let seed = plugin.param_id("Seed");
    assert_eq!(plugin.value_to_text(seed, plugin.param_value(seed)).as_deref(), Some("2"));

    // One of yours, from its file. (A host loads presets on its main thread while its audio
    // thread plays; this host has one thread, so it stops playing first.)
    plugin.deactivate();
    let (loaded, news) = plugin.load_preset(preset(&crawl.presets, "Mine"));
    assert!(
        loaded && news.len() == 1 && news[0].starts_with("loaded ") && news[0].ends_with("Mine.dreamroll-preset null")
    );
    plugin.activate(48_000.0, 512);
    play_two_bars_offline(&mut plugin);
    let session = clap_host::session_in_state(&plugin.save_state());
    assert!(session["model"].to_string().contains("folk-melody"), "{}", session["model"]);
    assert_eq!(session["takes"], 2);
    assert_eq!(plugin.value_to_text(seed, plugin.param_value(seed)).as_deref(), Some("11"));

    // A preset that is not there is refused, in words, and what plays stays.
    let missing = ListedPreset { name: "Gone".into(), load_key: Some("Gone".into()), kind: 1, ..Default::default() };
    plugin.deactivate();
    let (loaded, news) = plugin.load_preset(&missing);
    assert!(!loaded && news == ["error Dreamroll has no factory preset \"Gone\""], "{news:?}");
    assert_eq!(plugin.value_to_text(seed, plugin.param_value(seed)).as_deref(), Some("11"));
    drop(plugin);

    // The same preset as a .vstpreset file in a JUCE host.
    let state = presets::preset_state(&factory[0], None, Some(&models)).unwrap();
    let file = yours.path().join("Bossa nova.vstpreset");
    std::fs::write(&file, presets::vst3_preset_file(&state)).unwrap();
    let shown = hosts::run_host_script("pedalboard_preset.py", &[vst3.to_str().unwrap(), file.to_str().unwrap()]);
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).expect("pedalboard_preset.py prints JSON");
    // What the plugin saves after the preset: the preset's state, as JUCE writes it back.
    assert_eq!(shown["before"]["params"]["seed"]["i32"], 42, "{shown}");
    for (id, value) in serde_json::to_value(&state.params).unwrap().as_object().unwrap() {
        let (wanted, took) = (value.as_object().unwrap(), &shown["after"]["params"][id]);
        let (kind, wanted) = wanted.iter().next().unwrap();
        let same = match (wanted.as_f64(), took[kind].as_f64()) {
            (Some(wanted), Some(took)) => (wanted - took).abs() < 1e-6,
            _ => *wanted == took[kind],
        };
        assert!(same, "{id}: the preset's {wanted}, the plugin's {took}");
    }
    let session: String = serde_json::from_str(shown["after"]["fields"]["session"].as_str().unwrap()).unwrap();
    let session: serde_json::Value = serde_json::from_str(&session).unwrap();
    assert!(session["model"].to_string().contains("band") && session["settings"]["request"]["style"] == "bossanova");
    assert!(!session["pattern"]["notes"].as_array().unwrap().is_empty(), "its pattern plays at once");
}
