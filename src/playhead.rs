//! Playback as the editor sees it: the audio thread writes it, the editor reads it, so it
//! lives below both (neither imports the other for it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Written by the audio thread with relaxed atomics: a frame that reads a position a block
/// old draws the playhead a few pixels behind, which nobody sees.
#[derive(Default)]
pub struct Playhead {
    /// Position inside the playing loop, in quarter notes, as `f64` bits.
    position: AtomicU64,
    pub playing: AtomicBool,
}

impl Playhead {
    pub fn position(&self) -> f64 {
        f64::from_bits(self.position.load(Ordering::Relaxed))
    }

    pub fn set_position(&self, quarters: f64) {
        self.position.store(quarters.to_bits(), Ordering::Relaxed);
    }
}
