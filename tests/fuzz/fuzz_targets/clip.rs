//! Any bytes as a MIDI file loaded as the clip: the take it makes must pass its own check and
//! its JSON, and is read on the default model's grid and a small hand-made one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::clip(data));
