//! Building blocks shared by every preset, so that weights are named the same way in all.

use super::card::ModelCard;
use crate::model::kernels::linear::Activation;
use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Init, Linear, VarBuilder};

/// Planes per track: onset and sustain.
const PLANES_PER_TRACK: usize = 2;

/// Sizes read off a card, computed once.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub tracks: usize,
    pub bars: usize,
    pub steps_per_bar: usize,
    pub beats_per_bar: usize,
    pub pitches: usize,
    pub latent: usize,
    pub hidden: usize,
    pub bar_hidden: usize,
    pub channels: usize,
    pub patch: usize,
}

impl Shape {
    pub fn of(card: &ModelCard) -> Shape {
        let r = &card.representation;
        let a = &card.architecture;
        Shape {
            tracks: r.track_count(),
            bars: usize::from(r.bars_per_phrase),
            steps_per_bar: r.steps_per_bar(),
            beats_per_bar: r.beats_per_bar(),
            pitches: r.pitch_count(),
            latent: card.latent_size,
            hidden: a.hidden,
            bar_hidden: a.bar_hidden,
            channels: a.channels,
            patch: a.patch,
        }
    }

    pub fn planes(&self) -> usize {
        PLANES_PER_TRACK * self.tracks
    }

    /// Cells of one bar's patch-feature map.
    pub fn patch_features(&self) -> usize {
        self.channels * (self.steps_per_bar / self.patch) * (self.pitches / self.patch)
    }
}

/// Non-overlapping square patches (steps x semitones) to feature maps: a learned
/// "look at a beat of a few semitones at a time", cheap enough for a CPU.
pub struct PatchEmbed {
    weight: Tensor,
    bias: Tensor,
    patch: usize,
}

impl PatchEmbed {
    pub fn new(in_channels: usize, out_channels: usize, patch: usize, vb: VarBuilder) -> Result<PatchEmbed> {
        let fan_in = (in_channels * patch * patch) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let weight = vb.get_with_hints(
            (out_channels, in_channels, patch, patch),
            "weight",
            Init::Uniform { lo: -bound, up: bound },
        )?;
        let bias = vb.get_with_hints(out_channels, "bias", Init::Uniform { lo: -bound, up: bound })?;
        Ok(PatchEmbed { weight, bias, patch })
    }
}

impl PatchEmbed {
    /// A phrase [batch, in, bars × steps, pitches] read bar by bar: [batch × bars, out,
    /// steps / patch, pitches / patch], a phrase's bars consecutive.
    pub fn forward_bars(&self, phrase: &Tensor, bars: usize) -> Result<Tensor> {
        if phrase.device().is_cpu() {
            return crate::model::kernels::patches::patch_embed(phrase, &self.weight, &self.bias, bars);
        }
        let y = phrase_to_bars(phrase, bars)?.conv2d(&self.weight, 0, self.patch, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
    }
}

impl Module for PatchEmbed {
    /// [batch, in, steps, pitches] -> [batch, out, steps / patch, pitches / patch]
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_bars(x, 1)
    }
}

/// Feature maps back to full-resolution patches: the transpose of [`PatchEmbed`].
pub struct PatchUnembed {
    weight: Tensor,
    bias: Tensor,
    patch: usize,
}

impl PatchUnembed {
    pub fn new(in_channels: usize, out_channels: usize, patch: usize, vb: VarBuilder) -> Result<PatchUnembed> {
        let bound = 1.0 / (in_channels as f64).sqrt();
        let weight = vb.get_with_hints(
            (in_channels, out_channels, patch, patch),
            "weight",
            Init::Uniform { lo: -bound, up: bound },
        )?;
        let bias = vb.get_with_hints(out_channels, "bias", Init::Const(0.0))?;
        Ok(PatchUnembed { weight, bias, patch })
    }
}

impl PatchUnembed {
    /// Bars [batch × bars, in, steps / patch, pitches / patch] (a phrase's bars consecutive)
    /// written as phrases [batch, out, bars × steps, pitches].
    pub fn forward_bars(&self, x: &Tensor, bars: usize) -> Result<Tensor> {
        if x.device().is_cpu() {
            return crate::model::kernels::patches::patch_unembed(x, &self.weight, &self.bias, bars);
        }
        let y = x.conv_transpose2d(&self.weight, 0, 0, self.patch, 1)?;
        bars_to_phrase(&y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)?, bars)
    }
}

impl Module for PatchUnembed {
    /// [batch, in, steps / patch, pitches / patch] -> [batch, out, steps, pitches]
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_bars(x, 1)
    }
}

/// Patches, then a code per bar, then one for the phrase: what the VAE's encoder and the
/// GAN critic both read a phrase with (the weights are named under the caller's path).
pub struct PhraseReader {
    bars: usize,
    patches: PatchEmbed,
    bar: Linear,
    phrase: Linear,
}

impl PhraseReader {
    pub fn new(shape: Shape, vb: VarBuilder) -> Result<PhraseReader> {
        Ok(PhraseReader {
            bars: shape.bars,
            patches: PatchEmbed::new(shape.planes(), shape.channels, shape.patch, vb.pp("patches"))?,
            bar: linear(shape.patch_features(), shape.bar_hidden, vb.pp("bar"))?,
            phrase: linear(shape.bars * shape.bar_hidden, shape.hidden, vb.pp("phrase"))?,
        })
    }

    /// [batch, planes, steps, pitches] -> [batch, hidden], with `activation` after each layer.
    pub fn forward(&self, phrase: &Tensor, activation: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let batch = phrase.dim(0)?;
        let features = activation(&self.patches.forward_bars(phrase, self.bars)?)?.flatten_from(1)?;
        let codes = activation(&linear_over_last(&self.bar, &features)?)?.reshape((batch, ()))?;
        activation(&linear_over_last(&self.phrase, &codes)?)
    }
}

/// `layer` over the last dimension of `x`, as one 2-D product (fused with its bias on the
/// CPU). candle's `Linear` broadcasts its weight over any leading dimensions, and its
/// backward then makes a weight gradient per leading index and sums them: far more work
/// than the one product this is.
pub fn linear_over_last(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    over_last(layer, x, Activation::Identity)
}

/// relu of [`linear_over_last`], fused on the CPU.
pub fn linear_relu_over_last(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    over_last(layer, x, Activation::Relu)
}

/// tanh of [`linear_over_last`], fused on the CPU.
pub fn linear_tanh_over_last(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    over_last(layer, x, Activation::Tanh)
}

fn over_last(layer: &Linear, x: &Tensor, activation: Activation) -> Result<Tensor> {
    let dims = x.dims();
    let (leading, last) = dims.split_at(dims.len().saturating_sub(1));
    let rows = leading.iter().product::<usize>();
    let flat = if dims.len() == 2 { x.clone() } else { x.reshape((rows, last.first().copied().unwrap_or(1)))? };
    let y = match layer.bias() {
        Some(bias) if x.device().is_cpu() => {
            crate::model::kernels::linear::linear(&flat, layer.weight(), bias, activation)?
        }
        _ => activation.composite(&layer.forward(&flat)?)?,
    };
    if dims.len() == 2 {
        return Ok(y);
    }
    let mut shape = leading.to_vec();
    shape.push(y.dim(1)?);
    y.reshape(shape)
}

/// Splits a phrase [batch, planes, bars * steps, pitches] into bars
/// [batch * bars, planes, steps, pitches], so that one bar network serves every bar.
pub fn phrase_to_bars(x: &Tensor, bars: usize) -> Result<Tensor> {
    let (batch, planes, steps, pitches) = x.dims4()?;
    x.reshape((batch, planes, bars, steps / bars, pitches))?.permute((0, 2, 1, 3, 4))?.reshape((
        batch * bars,
        planes,
        steps / bars,
        pitches,
    ))
}

/// The inverse of [`phrase_to_bars`].
pub fn bars_to_phrase(x: &Tensor, bars: usize) -> Result<Tensor> {
    let (batch_bars, planes, steps, pitches) = x.dims4()?;
    x.reshape((batch_bars / bars, bars, planes, steps, pitches))?.permute((0, 2, 1, 3, 4))?.reshape((
        batch_bars / bars,
        planes,
        bars * steps,
        pitches,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn bars_split_and_join_back() {
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 8.0 * 5.0, &Device::Cpu).unwrap().reshape((2, 3, 8, 5)).unwrap();
        let bars = phrase_to_bars(&x, 4).unwrap();
        assert_eq!(bars.dims(), &[8, 3, 2, 5]);
        // Bar 1 of item 0, plane 2, step 0 is phrase step 2.
        let expected = x.get(0).unwrap().get(2).unwrap().get(2).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(bars.get(1).unwrap().get(2).unwrap().get(0).unwrap().to_vec1::<f32>().unwrap(), expected);
        let back = bars_to_phrase(&bars, 4).unwrap();
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn patches_keep_shapes() {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let embed = PatchEmbed::new(2, 7, 4, vb.pp("in")).unwrap();
        let unembed = PatchUnembed::new(7, 2, 4, vb.pp("out")).unwrap();
        let x = Tensor::zeros((3, 2, 16, 48), DType::F32, &Device::Cpu).unwrap();
        let features = embed.forward(&x).unwrap();
        assert_eq!(features.dims(), &[3, 7, 4, 12]);
        assert_eq!(unembed.forward(&features).unwrap().dims(), &[3, 2, 16, 48]);
    }
}
