//! Any bytes as chord names a user types, and as a chord to name: no panic, and names and
//! chords read back as themselves.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::chord_names(data));
