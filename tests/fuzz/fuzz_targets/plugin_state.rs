//! Any bytes as a saved plugin session, then played through the scheduler if accepted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::plugin_state(data));
