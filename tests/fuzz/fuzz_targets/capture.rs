//! Any bytes as a host run (transport blocks and the notes played into them) through the
//! capture tap and the recorder: every take they make must pass `Take::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::capture(data));
