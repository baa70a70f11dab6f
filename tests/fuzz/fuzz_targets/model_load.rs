//! Any bytes as a model card and its weights, loaded as a models folder would be.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dreamroll::fuzzing::model_load(data));
