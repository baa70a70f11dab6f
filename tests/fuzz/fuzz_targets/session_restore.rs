//! Any bytes as a saved session with a clip and morph points: an accepted one must save and
//! reopen unchanged, and is rendered by the default model as the engine would.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::session_restore(data));
