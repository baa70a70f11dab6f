//! Replays, on the stable toolchain, every input kept for the fuzz targets: the seeds each
//! run starts from (`tests/fuzz/seeds/<target>/`) and every input that ever crashed a target
//! (`tests/fuzz/regressions/<target>/`). Each must pass through without a panic.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let mut replayed = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else { continue };
        for entry in entries.flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            body(&bytes);
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
