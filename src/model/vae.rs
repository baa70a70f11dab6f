//! The phrase VAE: a convolutional encoder to (mu, log-variance), and a decoder from a phrase
//! latent through per-bar latents (MuseGAN's temporal generator) to onset and sustain logits.
//!
//! The decoder is the generator of every preset but MidiNet: the GAN presets train the same
//! network against a critic instead of an encoder, so the plugin has one decoder to run.

use super::layers::{linear_over_last, linear_relu_over_last, PatchUnembed, PhraseReader, Shape};
use candle_core::{Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

/// Phrase -> (mu, log-variance).
pub struct Encoder {
    reader: PhraseReader,
    mean: Linear,
    log_variance: Linear,
}

impl Encoder {
    pub fn new(shape: Shape, vb: VarBuilder) -> Result<Encoder> {
        Ok(Encoder {
            reader: PhraseReader::new(shape, vb.clone())?,
            mean: linear(shape.hidden, shape.latent, vb.pp("mean"))?,
            log_variance: linear(shape.hidden, shape.latent, vb.pp("log_variance"))?,
        })
    }

    /// `phrase`: [batch, planes, steps, pitches] of 0/1 -> ([batch, latent], [batch, latent]).
    pub fn forward(&self, phrase: &Tensor) -> Result<(Tensor, Tensor)> {
        let hidden = self.reader.forward(phrase, Tensor::relu)?;
        Ok((linear_over_last(&self.mean, &hidden)?, linear_over_last(&self.log_variance, &hidden)?))
    }
}

/// Phrase latent -> per-bar latents -> bars of onset and sustain logits.
pub struct Decoder {
    shape: Shape,
    latent: Linear,
    temporal: Linear,
    bar: Linear,
    features: Linear,
    patches: PatchUnembed,
}

impl Decoder {
    pub fn new(shape: Shape, vb: VarBuilder) -> Result<Decoder> {
        Ok(Decoder {
            shape,
            latent: linear(shape.latent, shape.hidden, vb.pp("latent"))?,
            temporal: linear(shape.hidden, shape.bars * shape.bar_hidden, vb.pp("temporal"))?,
            bar: linear(shape.bar_hidden, shape.hidden, vb.pp("bar"))?,
            features: linear(shape.hidden, shape.patch_features(), vb.pp("features"))?,
            patches: PatchUnembed::new(shape.channels, shape.planes(), shape.patch, vb.pp("patches"))?,
        })
    }

    /// `z`: [batch, latent] -> logits [batch, planes, steps, pitches]; planes are the onset
    /// plane of every track, then the sustain plane of every track.
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let s = self.shape;
        let batch = z.dim(0)?;
        let hidden = linear_relu_over_last(&self.latent, z)?;
        let bar_latents = linear_relu_over_last(&self.temporal, &hidden)?.reshape((batch * s.bars, s.bar_hidden))?;
        let bar_hidden = linear_relu_over_last(&self.bar, &bar_latents)?;
        let features = linear_relu_over_last(&self.features, &bar_hidden)?.reshape((
            batch * s.bars,
            s.channels,
            s.steps_per_bar / s.patch,
            s.pitches / s.patch,
        ))?;
        self.patches.forward_bars(&features, s.bars)
    }
}

/// Reparameterised sample: mu + sigma * eps, with eps given so that training is reproducible.
pub fn reparameterise(mean: &Tensor, log_variance: &Tensor, eps: &Tensor) -> Result<Tensor> {
    mean + (log_variance * 0.5)?.exp()?.mul(eps)?
}

/// KL(q(z|x) || N(0, I)) per latent dimension, averaged over the batch: [latent].
pub fn kl_per_dimension(mean: &Tensor, log_variance: &Tensor) -> Result<Tensor> {
    let terms = ((mean.sqr()? + log_variance.exp()?)? - log_variance)? - 1.0;
    (terms? * 0.5)?.mean(0)
}

/// Binary cross-entropy from logits in the stable form relu(x) - x t + log(1 + exp(-|x|)),
/// summed over cells and averaged over the batch (candle-nn's version overflows for large
/// logits). Fused on the CPU.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.device().is_cpu() {
        return super::kernels::bce::bce_with_logits_sum(logits, targets);
    }
    composite_bce_with_logits(logits, targets)
}

/// [`bce_with_logits`] in candle's own ops: for devices without the fused kernel, and the
/// reference it is tested against.
pub fn composite_bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    let loss = ((logits.relu()? - logits.mul(targets)?)? + softplus_neg_abs)?;
    let batch = logits.dim(0)? as f64;
    loss.flatten_from(1)?.sum(D::Minus1)?.sum_all()? / batch
}
