//! The worker side: turning decoded rolls into the patterns the audio thread plays.

pub mod models;
pub mod pattern;
pub mod worker;
