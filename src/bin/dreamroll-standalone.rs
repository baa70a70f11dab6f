//! Dreamroll as a standalone app (JACK, ALSA or a dummy audio backend), for trying the plugin
//! and looking at its editor without a DAW: `cargo run --release --features standalone --bin
//! dreamroll-standalone -- --backend dummy`.

fn main() {
    nice_plug::prelude::nice_export_standalone::<dreamroll::plugin::Dreamroll>();
}
