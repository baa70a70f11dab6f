//! The bounds a piano-roll decoder's onset draws are first compared with, computed for
//! every cell of a phrase ahead of the draws (see `rolls::logits_to_rolls`).

use super::widest_simd;

/// An onset logit over the threshold's, softened by the temperature: the cell fires when a
/// uniform draw lies below its sigmoid.
#[inline(always)]
pub fn softened(logit: f32, onset_bias: f32, temperature: f32) -> f32 {
    (logit - onset_bias) / temperature
}

/// A bound on sigmoid(x) from above, that a uniform draw is first compared with: most
/// cells' logits lie far below zero, where e^x bounds sigmoid(x), and 2^(⌈x log₂e⌉ + 1)
/// (at most 1) is at least 1.9 e^x, more than rounding can add. A draw at or above it
/// (nearly every draw) is decided without the exponential. (Truncation rounds these
/// negative powers up, without `floor`.)
#[inline(always)]
pub fn onset_cutoff(x: f32) -> f32 {
    // The power less one, kept to -127..=-1 before it is an integer (`max` maps NaN into
    // range, and such a cell never fires), so that the conversion needs no saturating
    // checks and the loop over a phrase's cells runs on vectors.
    #[allow(clippy::manual_clamp)] // `clamp` keeps NaN, which the conversion below must not see.
    let below = (x * std::f32::consts::LOG2_E).max(-127.0).min(-1.0);
    // SAFETY: `below` is finite and within i32's range.
    let power = unsafe { below.to_int_unchecked::<i32>() } + 1;
    f32::from_bits(((power + 127) as u32) << 23)
}

widest_simd! {
    /// Each onset cell's [`onset_cutoff`], in a loop apart from the draws so that it runs
    /// on the CPU's widest vectors.
    pub fn write_cutoffs(cutoffs: &mut [f32], onsets: &[f32], onset_bias: f32, temperature: f32) {
        for (cutoff, &logit) in cutoffs.iter_mut().zip(onsets) {
            *cutoff = onset_cutoff(softened(logit, onset_bias, temperature));
        }
    }
}
