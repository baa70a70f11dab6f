//! Dreamroll: a MIDI generator with a learned piano-roll decoder.
//!
//! Data flows one way: MIDI files become piano rolls ([`roll`]), rolls are judged by
//! [`metrics`], and folders of files are gathered by [`corpus`].

pub mod corpus;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod roll;
pub mod schedule;
