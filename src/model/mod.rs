//! The learned decoders: their cards, their networks, and how their output becomes notes.
//!
//! The trainer and the plugin build the very same modules; weights are addressed by name
//! through `VarBuilder` paths, so whatever the trainer saved, the plugin loads.

pub mod card;
pub mod completion;
pub mod critic;
pub mod generator;
pub mod kernels;
pub mod latent;
pub mod layers;
pub mod learned_phrases;
pub mod midinet;
pub mod musegan;
pub mod rolls;
pub mod source;
pub mod vae;
pub mod voices;

pub use card::{
    Architecture, CardError, Decoding, MacroKnob, ModelCard, Preset, TrackLatents, TrainingInfo, VoiceArchitecture,
    SCHEMA_VERSION,
};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/default_model.rs"));
}

pub use embedded::{DEFAULT_CARD, DEFAULT_ENCODER, DEFAULT_LEARNED_PHRASES, DEFAULT_WEIGHTS};

/// The model compiled into the binary.
pub fn default_generator() -> Result<generator::Generator, generator::ModelError> {
    let mut generator = generator::Generator::from_bytes(DEFAULT_CARD, DEFAULT_WEIGHTS)?;
    if let Some(bytes) = DEFAULT_ENCODER {
        generator = generator.with_encoder_bytes(bytes)?;
    }
    if let Some(bytes) = DEFAULT_LEARNED_PHRASES {
        generator = generator.with_learned_phrases_bytes(bytes)?;
    }
    Ok(generator)
}
