//! Dreamroll: a MIDI generator with a learned piano-roll decoder.
//!
//! Data flows one way: MIDI files become piano rolls ([`roll`]), rolls are judged by
//! [`metrics`], and folders of files are gathered by [`corpus`]. Decoders ([`model`]) make rolls
//! on the [`engine`] thread; the [`plugin`] plays them through the [`schedule`]r in time with a
//! host, audible through the [`synth`], and the [`editor`] shows them.

// `unsafe` only where a kernel needs it (src/model/kernels/), where the CLAP ABI does
// (src/plugin/clap_entry.rs), and to set a parameter set of its own (presets::set_and_list).
#![deny(unsafe_code)]

pub mod capture;
pub mod corpus;
pub mod editor;
pub mod engine;
pub mod files;
pub mod fuzzing;
pub mod hash;
pub mod metrics;
pub mod model;
pub mod playhead;
pub mod plugin;
pub mod roll;
pub mod schedule;
pub mod synth;
