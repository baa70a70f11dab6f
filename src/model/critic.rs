//! Critics for the GAN presets: they score phrases (real 0/1 rolls, or a generator's
//! probabilities) and are only needed while training.

use super::layers::PhraseReader;
use super::layers::Shape;
use candle_core::{Module, Result, Tensor};
use candle_nn::rnn::{LSTMConfig, LSTM, RNN};
use candle_nn::{linear, Linear, VarBuilder};

/// Written out rather than taken from candle-nn so that its gradient is itself
/// differentiable, which the gradient penalty needs.
pub fn leaky_relu(x: &Tensor) -> Result<Tensor> {
    x.maximum(&(x * 0.2)?)
}

/// MuseGAN's kind of critic: convolutional over each bar, then over the phrase.
pub struct ConvCritic {
    reader: PhraseReader,
    score: Linear,
}

impl ConvCritic {
    pub fn new(shape: Shape, vb: VarBuilder) -> Result<ConvCritic> {
        Ok(ConvCritic {
            reader: PhraseReader::new(shape, vb.clone())?,
            score: linear(shape.hidden, 1, vb.pp("score"))?,
        })
    }
}

impl Module for ConvCritic {
    /// [batch, planes, steps, pitches] -> [batch]
    fn forward(&self, phrase: &Tensor) -> Result<Tensor> {
        self.score.forward(&self.reader.forward(phrase, leaky_relu)?)?.squeeze(1)
    }
}

/// The CNN-LSTM GAN's critic: a bidirectional LSTM over time (one LSTM reads forwards,
/// another backwards), scoring the two final states. Its time step is a beat (all the grid
/// steps of the beat at once): a recurrence over every grid step, differentiated twice for
/// the gradient penalty, costs more than a CPU can train in hours.
pub struct LstmCritic {
    beats: usize,
    input: Linear,
    forwards: LSTM,
    backwards: LSTM,
    score: Linear,
}

impl LstmCritic {
    pub fn new(shape: Shape, vb: VarBuilder) -> Result<LstmCritic> {
        let hidden = shape.bar_hidden;
        let beats = shape.bars * shape.beats_per_bar;
        let steps_per_beat = shape.steps_per_bar / shape.beats_per_bar;
        Ok(LstmCritic {
            beats,
            input: linear(shape.planes() * steps_per_beat * shape.pitches, hidden, vb.pp("input"))?,
            forwards: candle_nn::lstm(hidden, hidden, LSTMConfig::default(), vb.pp("forwards"))?,
            backwards: candle_nn::lstm(hidden, hidden, LSTMConfig::default(), vb.pp("backwards"))?,
            score: linear(2 * hidden, 1, vb.pp("score"))?,
        })
    }
}

impl Module for LstmCritic {
    fn forward(&self, phrase: &Tensor) -> Result<Tensor> {
        let (batch, planes, steps, pitches) = phrase.dims4()?;
        let beats = self.beats;
        let sequence = phrase
            .reshape((batch, planes, beats, steps / beats, pitches))?
            .permute((0, 2, 1, 3, 4))?
            .reshape((batch, beats, ()))?;
        let sequence = leaky_relu(&self.input.forward(&sequence)?)?;
        let reversed_order = Tensor::from_vec((0..beats as u32).rev().collect::<Vec<u32>>(), beats, phrase.device())?;
        let reversed = sequence.index_select(&reversed_order, 1)?;
        let last = |lstm: &LSTM, input: &Tensor| -> Result<Tensor> {
            let states = lstm.seq(input)?;
            Ok(states.last().expect("a phrase has steps").h.clone())
        };
        let both = Tensor::cat(&[last(&self.forwards, &sequence)?, last(&self.backwards, &reversed)?], 1)?;
        self.score.forward(&both)?.squeeze(1)
    }
}
