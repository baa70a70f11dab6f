//! Any bytes as a MIDI file: read, then import into a roll, as a training folder would.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::midi_import(data));
