//! Latent vectors from seeds and knobs.

use super::card::{ModelCard, Style};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard-normal noise for a seed. Box–Muller over ChaCha8 is written out here because the
/// exact stream is part of the product's promise (same seed, same music, in every version),
/// and a sampler inside a dependency may change between its releases.
pub fn noise(seed: u64, size: usize) -> Vec<f32> {
    noise_in_stream(seed, 0, size)
}

/// Noise from one of a seed's independent streams (one per phrase of a piece).
pub fn noise_in_stream(seed: u64, stream: u64, size: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut values = Vec::with_capacity(size + 1);
    while values.len() < size {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        values.push((radius * angle.cos()) as f32);
        values.push((radius * angle.sin()) as f32);
    }
    values.truncate(size);
    values
}

/// `value` within 0..=1, NaN as 0: `clamp` passes NaN through, and one NaN share (of
/// variation, distance, humanise or a morph) spreads to every number made from it.
pub fn unit_interval(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

/// Farthest a knob reaches, in its spreads: the macro knobs' whole range (named knobs stop at
/// 2). Past it a latent leaves what the decoder learnt, and at 1e39 it is infinite.
pub const KNOB_REACH: f32 = 3.0;

/// A knob's value as a render uses it: within [`KNOB_REACH`], NaN as 0 (untouched).
pub fn within_reach(value: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(-KNOB_REACH, KNOB_REACH)
    }
}

/// Every knob a render can turn: the card's macro knobs in order, and the named knobs by
/// attribute (`named[attribute.index()]`); missing values are 0. With a style, the seed's
/// noise is drawn into the style's region before the knobs move it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Knobs<'a> {
    pub macros: &'a [f32],
    pub named: &'a [f32],
    pub style: Option<&'a Style>,
}

/// The latent for a seed's noise moved along the card's knob directions: macro knob k at v
/// adds v standard deviations (of the corpus along direction k); a named knob at v adds v
/// times its spread. Knobs the card lacks are ignored, and values past [`KNOB_REACH`] reach it.
pub fn steer(card: &ModelCard, noise: &[f32], knobs: Knobs) -> Vec<f32> {
    let mut z = noise.to_vec();
    let macros = card.macro_knobs.iter().zip(knobs.macros).map(|(k, &v)| (&k.direction, k.spread * within_reach(v)));
    let named = card
        .named_knobs
        .iter()
        .map(|k| (&k.direction, k.spread * within_reach(knobs.named.get(k.attribute.index()).copied().unwrap_or(0.0))));
    for (direction, amount) in macros.chain(named) {
        for (zi, di) in z.iter_mut().zip(direction) {
            *zi += amount * di;
        }
    }
    z
}

/// Latents for `count` consecutive phrases. Each wanders from the one before by
/// `variation` (0 repeats the first phrase's latent, a strict loop; 1 draws each afresh), as a
/// random walk that stays on the prior: z_k = sqrt(1 - v^2) z_(k-1) + v e_k.
pub fn phrase_latents(card: &ModelCard, seed: u64, knobs: Knobs, variation: f32, count: usize) -> Vec<Vec<f32>> {
    let variation = unit_interval(variation);
    let keep = (1.0 - variation * variation).sqrt();
    let mut current = noise_in_stream(seed, 0, card.latent_size);
    let mut latents = Vec::with_capacity(count);
    for k in 0..count {
        if k > 0 {
            let fresh = noise_in_stream(seed, k as u64, card.latent_size);
            current = current.iter().zip(&fresh).map(|(z, e)| keep * z + variation * e).collect();
        }
        latents.push(steer(card, &in_style(&current, knobs.style), knobs));
    }
    latents
}

/// Prior noise drawn into a style's region: its centre plus the noise scaled by its spread,
/// so a walk on the prior stays a walk inside the style.
fn in_style(noise: &[f32], style: Option<&Style>) -> Vec<f32> {
    match style {
        Some(style) => noise.iter().zip(&style.center).zip(&style.spread).map(|((z, c), s)| c + s * z).collect(),
        None => noise.to_vec(),
    }
}

/// The latent for phrase `k` near a given code (the encoder's reading of a producer's clip):
/// z = sqrt(1 - d^2) code + d e_k, steered by the knobs, with e_k the seed's stream k. At
/// `distance` d = 0 it is the code (the clip as the model reads it); at 1, fresh noise
/// (unrelated to the clip); between, the step of `phrase_latents`' random walk, so a code on
/// the prior stays on it.
pub fn anchored_latent(card: &ModelCard, code: &[f32], seed: u64, k: usize, knobs: Knobs, distance: f32) -> Vec<f32> {
    let distance = unit_interval(distance);
    let keep = (1.0 - distance * distance).sqrt();
    let fresh = noise_in_stream(seed, k as u64, card.latent_size);
    steer(card, &code.iter().zip(&fresh).map(|(c, e)| keep * c + distance * e).collect::<Vec<_>>(), knobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_standard_normal_and_fixed_per_seed() {
        let a = noise(42, 20_001);
        assert_eq!(a, noise(42, 20_001));
        assert_ne!(a, noise(43, 20_001));
        assert_eq!(&noise(42, 7)[..], &a[..7], "a longer draw extends a shorter one");
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let variance = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.05, "variance {variance}");
        assert_ne!(noise_in_stream(42, 1, 8), noise_in_stream(42, 0, 8), "streams are independent");
    }
}

#[cfg(test)]
mod steering_tests {
    use super::*;
    use crate::model::card::test_card;

    #[test]
    fn a_knob_moves_the_latent_by_its_spread_along_its_direction() {
        let card = test_card();
        let z = steer(&card, &[0.5, 0.5, 0.5, 0.5], Knobs { macros: &[1.5, 9.0], named: &[], style: None });
        assert_eq!(z, vec![0.5, 0.5 + 1.5 * 2.0, 0.5, 0.5], "the second knob does not exist and is ignored");
    }

    #[test]
    fn a_named_knob_moves_the_latent_by_its_spread_and_only_the_cards_knobs_count() {
        use crate::metrics::attributes::Attribute;
        let mut card = test_card();
        card.named_knobs = vec![crate::model::card::NamedKnob {
            attribute: Attribute::Register,
            direction: vec![0.0, 0.0, 0.6, 0.8],
            spread: 0.5,
            rho: 1.0,
        }];
        let mut named = vec![0.0; Attribute::ALL.len()];
        named[Attribute::Register.index()] = 2.0;
        named[Attribute::Leaps.index()] = -2.0;
        let z = steer(&card, &[0.0; 4], Knobs { macros: &[], named: &named, style: None });
        assert_eq!(
            z,
            vec![0.0, 0.0, 0.6, 0.8],
            "register at 2 moves twice its spread of 0.5 along its direction; leaps is not the card's"
        );
        assert_eq!(steer(&card, &[0.1; 4], Knobs::default()), vec![0.1; 4], "at 0 a latent is untouched, bit for bit");
    }

    #[test]
    fn impossible_knob_and_share_values_give_finite_latents() {
        let card = test_card();
        let wild = steer(&card, &[0.5; 4], Knobs { macros: &[f32::INFINITY, f32::NAN], named: &[], style: None });
        assert_eq!(
            wild,
            steer(&card, &[0.5; 4], Knobs { macros: &[KNOB_REACH, 0.0], named: &[], style: None }),
            "infinity (1e39 in a saved point) reaches as far as a knob goes; NaN is untouched"
        );
        assert!(
            phrase_latents(&card, 5, Knobs::default(), f32::NAN, 3).iter().flatten().all(|z| z.is_finite()),
            "a NaN variation"
        );
        assert_eq!(
            phrase_latents(&card, 5, Knobs::default(), f32::NAN, 3),
            phrase_latents(&card, 5, Knobs::default(), 0.0, 3)
        );
        assert!(
            anchored_latent(&card, &[0.1; 4], 5, 1, Knobs::default(), f32::NAN).iter().all(|z| z.is_finite()),
            "a NaN distance"
        );
    }

    #[test]
    fn a_style_draws_the_walk_into_its_region_before_the_knobs_move_it() {
        let card = test_card();
        let style = crate::model::card::Style {
            name: "bossa".into(),
            center: vec![1.0, -1.0, 0.0, 2.0],
            spread: vec![0.5, 0.5, 0.0, 1.0],
            phrases: 20,
        };
        let anywhere = phrase_latents(&card, 5, Knobs::default(), 0.4, 3);
        let in_style = phrase_latents(&card, 5, Knobs { style: Some(&style), ..Knobs::default() }, 0.4, 3);
        for (free, styled) in anywhere.iter().zip(&in_style) {
            let expected: Vec<f32> =
                free.iter().zip(&style.center).zip(&style.spread).map(|((z, c), s)| c + s * z).collect();
            assert_eq!(styled, &expected);
        }
        let steered = phrase_latents(&card, 5, Knobs { macros: &[1.0], named: &[], style: Some(&style) }, 0.4, 1);
        assert_eq!(steered[0], steer(&card, &in_style[0], Knobs { macros: &[1.0], ..Knobs::default() }));
    }

    #[test]
    fn variation_walks_from_phrase_to_phrase() {
        let card = test_card();
        let strict = phrase_latents(&card, 5, Knobs::default(), 0.0, 3);
        assert!(strict.windows(2).all(|w| w[0] == w[1]));
        let free = phrase_latents(&card, 5, Knobs::default(), 1.0, 3);
        assert_eq!(free[0], strict[0]);
        assert_eq!(free[1], noise_in_stream(5, 1, 4));
        assert_eq!(
            phrase_latents(&card, 5, Knobs { macros: &[1.0], named: &[], style: None }, 0.4, 3),
            phrase_latents(&card, 5, Knobs { macros: &[1.0], named: &[], style: None }, 0.4, 3)
        );
    }
}
