//! MuseGAN's multi-track generator (Dong et al. 2018): the phrase decoder, once per track or
//! once for all, fed from a latent shared between tracks, latents private to each track, or
//! both.

use super::card::TrackLatents;
use super::layers::Shape;
use super::vae::Decoder;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

pub struct MuseganGenerator {
    mode: TrackLatents,
    shared: usize,
    private: usize,
    tracks: usize,
    /// One decoder for all tracks (composer) or one per track.
    decoders: Vec<Decoder>,
}

impl MuseganGenerator {
    pub fn new(shape: Shape, mode: TrackLatents, vb: VarBuilder) -> Result<MuseganGenerator> {
        let (shared, private) = mode.split(shape.latent, shape.tracks);
        let decoders = match mode {
            TrackLatents::Composer => vec![Decoder::new(shape, vb.clone())?],
            _ => (0..shape.tracks)
                .map(|t| {
                    Decoder::new(Shape { tracks: 1, latent: shared + private, ..shape }, vb.pp(format!("track{t}")))
                })
                .collect::<Result<_>>()?,
        };
        Ok(MuseganGenerator { mode, shared, private, tracks: shape.tracks, decoders })
    }

    /// z: [batch, shared + tracks * private] -> logits [batch, 2 * tracks, steps, pitches].
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        if self.mode == TrackLatents::Composer {
            return self.decoders[0].forward(z);
        }
        let shared = (self.shared > 0).then(|| z.narrow(1, 0, self.shared)).transpose()?;
        let mut onsets = Vec::with_capacity(self.tracks);
        let mut sustains = Vec::with_capacity(self.tracks);
        for (track, decoder) in self.decoders.iter().enumerate() {
            let private = z.narrow(1, self.shared + track * self.private, self.private)?;
            let input = match &shared {
                Some(shared) => Tensor::cat(&[shared, &private], 1)?,
                None => private,
            };
            let planes = decoder.forward(&input)?;
            onsets.push(planes.narrow(1, 0, 1)?);
            sustains.push(planes.narrow(1, 1, 1)?);
        }
        onsets.extend(sustains);
        Tensor::cat(&onsets, 1)
    }
}
