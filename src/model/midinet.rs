//! MidiNet's generator (Yang et al. 2017): one bar at a time, each from its own latent, with a
//! conditioner CNN that reads the previous bar and feeds what it sees into every generator
//! layer, and an optional chord condition (12 roots + a minor flag) per bar.

use super::layers::Shape;
use super::layers::{PatchEmbed, PatchUnembed};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

/// Size of the chord condition: 12 roots, then 1 for minor.
pub const CHORD_SIZE: usize = 13;

pub struct MidinetGenerator {
    shape: Shape,
    bar_latent: usize,
    chords: usize,
    conditioner: PatchEmbed,
    condition_code: Linear,
    latent: Linear,
    hidden: Linear,
    features: Linear,
    patches: PatchUnembed,
}

impl MidinetGenerator {
    /// The card's latent is split evenly over the bars; `chords` is 0 or [`CHORD_SIZE`].
    pub fn new(shape: Shape, chords: usize, vb: VarBuilder) -> Result<MidinetGenerator> {
        let bar_latent = shape.latent / shape.bars;
        let condition = shape.bar_hidden;
        Ok(MidinetGenerator {
            shape,
            bar_latent,
            chords,
            conditioner: PatchEmbed::new(shape.planes(), shape.channels, shape.patch, vb.pp("conditioner"))?,
            condition_code: linear(shape.patch_features(), condition, vb.pp("condition_code"))?,
            latent: linear(bar_latent + chords + condition, shape.hidden, vb.pp("latent"))?,
            hidden: linear(shape.hidden + condition, shape.hidden, vb.pp("hidden"))?,
            features: linear(shape.hidden + condition, shape.patch_features(), vb.pp("features"))?,
            // The previous bar's feature maps join the last layer channel-wise.
            patches: PatchUnembed::new(2 * shape.channels, shape.planes(), shape.patch, vb.pp("patches"))?,
        })
    }

    /// One bar's logits from its latent, the previous bar (probabilities) and its chord.
    fn bar(&self, z: &Tensor, previous: &Tensor, chord: Option<&Tensor>) -> Result<Tensor> {
        let s = self.shape;
        let batch = z.dim(0)?;
        let seen = self.conditioner.forward(previous)?.relu()?;
        let code = self.condition_code.forward(&seen.flatten_from(1)?)?.relu()?;
        let input = match chord {
            Some(chord) => Tensor::cat(&[z, chord, &code], 1)?,
            None if self.chords > 0 => {
                Tensor::cat(&[z, &Tensor::zeros((batch, self.chords), DType::F32, z.device())?, &code], 1)?
            }
            None => Tensor::cat(&[z, &code], 1)?,
        };
        let h = self.latent.forward(&input)?.relu()?;
        let h = self.hidden.forward(&Tensor::cat(&[&h, &code], 1)?)?.relu()?;
        let maps = self.features.forward(&Tensor::cat(&[&h, &code], 1)?)?.relu()?.reshape((
            batch,
            s.channels,
            s.steps_per_bar / s.patch,
            s.pitches / s.patch,
        ))?;
        self.patches.forward(&Tensor::cat(&[&maps, &seen], 1)?)
    }

    /// z: [batch, bars * bar latent] -> logits [batch, planes, steps, pitches]; bar by bar,
    /// each conditioned on the previous generated bar (silence before the first).
    /// `chords`: [batch, bars, 13], or `None` for no chord condition.
    pub fn forward(&self, z: &Tensor, chords: Option<&Tensor>) -> Result<Tensor> {
        let s = self.shape;
        let batch = z.dim(0)?;
        let mut previous = Tensor::zeros((batch, s.planes(), s.steps_per_bar, s.pitches), DType::F32, z.device())?;
        let mut bars = Vec::with_capacity(s.bars);
        for bar in 0..s.bars {
            let latent = z.narrow(1, bar * self.bar_latent, self.bar_latent)?;
            let chord = chords.map(|c| c.narrow(1, bar, 1).and_then(|c| c.squeeze(1))).transpose()?;
            let logits = self.bar(&latent, &previous, chord.as_ref())?;
            previous = candle_nn::ops::sigmoid(&logits)?;
            bars.push(logits);
        }
        Tensor::cat(&bars, 2)
    }
}

/// The chord condition of each bar of a batch of phrases: the major or minor triad that
/// covers the most sounding steps of the bar (all tracks), one-hot root then a minor flag;
/// all zeros for a silent bar. `sustain` is the phrases' summed sustain planes,
/// [batch][bars][steps per bar * pitches] flattened per bar, with `lowest_pitch` at row 0.
pub fn bar_chords(sustain_per_bar: &[Vec<f32>], pitches: usize, lowest_pitch: u8) -> Vec<[f32; CHORD_SIZE]> {
    sustain_per_bar
        .iter()
        .map(|bar| {
            let mut histogram = [0f32; 12];
            for (cell, &value) in bar.iter().enumerate() {
                histogram[(usize::from(lowest_pitch) + cell % pitches) % 12] += value;
            }
            let mut chord = [0f32; CHORD_SIZE];
            if histogram.iter().sum::<f32>() <= 0.0 {
                return chord;
            }
            let mut best = (f32::MIN, 0, false);
            for root in 0..12 {
                for (third, minor) in [(4, false), (3, true)] {
                    let weight = histogram[root] + histogram[(root + third) % 12] + histogram[(root + 7) % 12];
                    if weight > best.0 {
                        best = (weight, root, minor);
                    }
                }
            }
            chord[best.1] = 1.0;
            chord[12] = f32::from(u8::from(best.2));
            chord
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triads_are_recognised() {
        // One step of 24 pitches from C3 (48): an A-minor triad, then a D-major one.
        let bar = |classes: &[usize]| {
            let mut cells = vec![0f32; 24];
            classes.iter().for_each(|&c| cells[c] = 1.0);
            cells
        };
        let chords = bar_chords(&[bar(&[9, 12, 16]), bar(&[2, 6, 9]), vec![0.0; 24]], 24, 48);
        assert_eq!(chords[0][9], 1.0);
        assert_eq!(chords[0][12], 1.0, "A minor");
        assert_eq!(chords[1][2], 1.0);
        assert_eq!(chords[1][12], 0.0, "D major");
        assert!(chords[2].iter().all(|&v| v == 0.0), "silence has no chord");
    }
}
