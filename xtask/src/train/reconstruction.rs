//! What a VAE's loss asks of its decoder, apart from the objectives that use it, so that
//! each preset's scoring (cells here, voice choices in `voices`) plugs into one VAE objective.

use candle_core::Tensor;
use dreamroll::model::generator::Generator;
use dreamroll::model::vae::bce_with_logits;
use dreamroll::roll::Roll;
use rand_chacha::ChaCha8Rng;

/// How a VAE scores its decoder: the one thing its presets do differently.
pub trait Reconstruction {
    /// The loss of decoding `batch` (the roll tensor of `phrases`) from latents `z`, summed
    /// over a phrase and averaged over the batch. `rng` comes in training, for whatever the
    /// preset varies from step to step; validation passes `None`.
    fn reconstruction(
        &self,
        generator: &Generator,
        z: &Tensor,
        batch: &Tensor,
        phrases: &[Roll],
        rng: Option<&mut ChaCha8Rng>,
    ) -> anyhow::Result<Tensor>;
}

/// Independent onset and sustain cells, scored by binary cross-entropy (the `vae` preset).
pub struct Cells;

impl Reconstruction for Cells {
    fn reconstruction(
        &self,
        generator: &Generator,
        z: &Tensor,
        batch: &Tensor,
        _phrases: &[Roll],
        _rng: Option<&mut ChaCha8Rng>,
    ) -> anyhow::Result<Tensor> {
        Ok(bce_with_logits(&generator.logits(z)?, batch)?)
    }
}
