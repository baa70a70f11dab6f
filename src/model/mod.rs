//! The learned decoders: their cards, their networks, and how their output becomes notes.
//!
//! The trainer and the plugin build the very same modules; weights are addressed by name
//! through `VarBuilder` paths, so whatever the trainer saved, the plugin loads.

pub mod card;
pub mod critic;
pub mod generator;
pub mod kernels;
pub mod latent;
pub mod layers;
pub mod midinet;
pub mod musegan;
pub mod rolls;
pub mod vae;
pub mod voices;

pub use card::{Architecture, CardError, Decoding, MacroKnob, ModelCard, Preset, TrackLatents, TrainingInfo, VoiceArchitecture, SCHEMA_VERSION};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/default_model.rs"));
}

pub use embedded::{DEFAULT_CARD, DEFAULT_WEIGHTS};

/// The model compiled into the binary.
pub fn default_generator() -> Result<generator::Generator, generator::ModelError> {
    generator::Generator::from_bytes(DEFAULT_CARD, DEFAULT_WEIGHTS)
}
