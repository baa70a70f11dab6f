//! The `voices` preset's training: a VAE ([`super::objective::Vae`]) whose decoder makes one
//! categorical choice per voice and step, scored by cross-entropy under teacher forcing.
//! Parts of each training phrase are handed to the decoder as given (whole voices, the first
//! bars, a span), so that the same model learns to complete what a user gives it, not only
//! to dream.

use super::reconstruction::Reconstruction;
use candle_core::{Device, Tensor, D};
use dreamroll::model::generator::Generator;
use dreamroll::model::kernels::choice_loss::{choice_loss, ChoiceTargets};
use dreamroll::model::voices::network::{GivenView, VoiceBatch, VoiceShape};
use dreamroll::model::voices::tokens::{given_view, roll_to_tokens, states_after, VoiceState, HOLD, NEW_NOTE};
use dreamroll::model::ModelCard;
use dreamroll::roll::Roll;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

/// A score low enough that a choice never wins, and finite so that no NaN arises.
const BARRED: f32 = -1e4;

/// The voices preset's reconstruction: the negative log-likelihood of each choice that was
/// not given, under teacher forcing.
pub struct Choices {
    shape: VoiceShape,
    /// Per track, the velocity of each loudness level (the card's `decoding.dynamics`).
    dynamics: Vec<Vec<u8>>,
}

/// One batch's targets and what the network reads.
pub struct Targets {
    pub batch: VoiceBatch,
    /// Per (phrase, step, voice): the choice made, whether the network is scored on it (not
    /// when it was given; validation scores every cell, so the two reconstructions differ in
    /// scale), and hold barred where the voice was silent the step before.
    pub choices: ChoiceTargets,
    /// Where the decoder has loudness levels: per cell, the level of the note struck there,
    /// scored where the choice is (and its velocity known: a note tied in from before the
    /// phrase has none).
    pub levels: Option<ChoiceTargets>,
    classes: usize,
}

impl Targets {
    fn dims(&self) -> (usize, usize, usize) {
        self.batch.sounding.dims3().expect("[batch, steps, voices]")
    }

    /// The choices made, u32 [batch, steps, voices].
    pub fn tokens(&self) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.choices.chosen.clone(), self.dims(), self.batch.sounding.device())
    }

    /// 1.0 where a choice is scored, [batch, steps, voices].
    pub fn scored(&self) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.choices.weight.clone(), self.dims(), self.batch.sounding.device())
    }

    /// `BARRED` on each class not open to a cell, [batch, steps, voices, classes].
    pub fn barred(&self) -> candle_core::Result<Tensor> {
        let mut barred = vec![0f32; self.choices.barred.len() * self.classes];
        for (cell, class) in self.choices.barred.iter().enumerate() {
            if let Some(class) = class {
                barred[cell * self.classes + *class as usize] = BARRED;
            }
        }
        let (b, s, v) = self.dims();
        Tensor::from_vec(barred, (b, s, v, self.classes), self.batch.sounding.device())
    }
}

impl Choices {
    pub fn of(card: &ModelCard) -> Choices {
        Choices {
            shape: VoiceShape::of(card).expect("a voices card has voice sizes (the card validates it)"),
            dynamics: card.decoding.dynamics.clone(),
        }
    }

    pub fn shape(&self) -> &VoiceShape {
        &self.shape
    }

    /// `masks[phrase][step * voices + voice]` is true where that choice is given.
    pub fn targets(&self, phrases: &[Roll], masks: &[Vec<bool>], device: &Device) -> anyhow::Result<Targets> {
        let s = self.shape;
        let cells = s.steps() * s.voices;
        let mut sounding = Vec::with_capacity(phrases.len() * cells);
        let mut age = Vec::with_capacity(phrases.len() * cells);
        let mut tokens = Vec::with_capacity(phrases.len() * cells);
        let (mut given_sounding, mut given_age, mut given_mask) = (Vec::new(), Vec::new(), Vec::new());
        let mut barred = Vec::with_capacity(phrases.len() * cells);
        let mut levels = Vec::with_capacity(if self.dynamics.is_empty() { 0 } else { phrases.len() * cells });
        for (phrase, mask) in phrases.iter().zip(masks) {
            let voice_tokens = roll_to_tokens(phrase);
            let after = states_after(&voice_tokens.tokens, s.max_age());
            let mut given: Vec<Vec<Option<u32>>> = Vec::with_capacity(s.steps());
            for (step, choices) in voice_tokens.tokens.iter().enumerate() {
                for (v, &token) in choices.iter().enumerate() {
                    let before = if step == 0 { VoiceState::SILENT } else { after[step - 1][v] };
                    barred.push((!before.may_hold()).then_some(HOLD));
                    if let Some(track_levels) = self.dynamics.get(v) {
                        let struck = (token >= NEW_NOTE && !mask[step * s.voices + v])
                            .then(|| phrase.onsets_at(v, step)[(token - NEW_NOTE) as usize])
                            .filter(|&velocity| velocity > 0);
                        levels.push(struck.map(|velocity| level_of(velocity, track_levels)));
                    }
                    sounding.push(after[step][v].sounding);
                    age.push(after[step][v].age);
                    tokens.push(token);
                }
                given.push(
                    choices.iter().enumerate().map(|(v, &token)| mask[step * s.voices + v].then_some(token)).collect(),
                );
            }
            let (view_sounding, view_age, view_mask) = given_view(&given, s.steps(), s.voices, s.max_age());
            given_sounding.extend(view_sounding);
            given_age.extend(view_age);
            given_mask.extend(view_mask);
        }
        let dims = (phrases.len(), s.steps(), s.voices);
        let weight = given_mask.iter().map(|given| 1.0 - given).collect();
        Ok(Targets {
            batch: VoiceBatch {
                sounding: Tensor::from_vec(sounding, dims, device)?,
                age: Tensor::from_vec(age, dims, device)?,
                given: GivenView {
                    sounding: Tensor::from_vec(given_sounding, dims, device)?,
                    age: Tensor::from_vec(given_age, dims, device)?,
                    mask: Tensor::from_vec(given_mask, dims, device)?,
                },
            },
            choices: ChoiceTargets { chosen: tokens, weight, barred, batch: phrases.len() },
            levels: (!self.dynamics.is_empty()).then(|| ChoiceTargets {
                chosen: levels.iter().map(|level| level.unwrap_or(0)).collect(),
                weight: levels.iter().map(|level| if level.is_some() { 1.0 } else { 0.0 }).collect(),
                barred: vec![None; levels.len()],
                batch: phrases.len(),
            }),
            classes: s.classes(),
        })
    }
}

impl Reconstruction for Choices {
    fn reconstruction(
        &self,
        generator: &Generator,
        z: &Tensor,
        _batch: &Tensor,
        phrases: &[Roll],
        rng: Option<&mut ChaCha8Rng>,
    ) -> anyhow::Result<Tensor> {
        let masks: Vec<Vec<bool>> = match rng {
            Some(rng) => phrases.iter().map(|_| given_mask(rng, &self.shape)).collect(),
            None => vec![vec![false; self.shape.steps() * self.shape.voices]; phrases.len()],
        };
        let targets = self.targets(phrases, &masks, z.device())?;
        let network = generator.voice_network().expect("a voices generator");
        let (scores, levels) = network.forward_with_levels(z, &targets.batch)?;
        let choices = negative_log_likelihood(&scores, &targets)?;
        Ok(match (levels, targets.levels) {
            (Some(levels), Some(targets)) => (choices + choice_loss(&levels, targets)?)?,
            _ => choices,
        })
    }
}

/// The loudness level nearest `velocity` among a track's levels (quietest first).
pub fn level_of(velocity: u8, levels: &[u8]) -> u32 {
    (0..levels.len()).min_by_key(|&level| levels[level].abs_diff(velocity)).unwrap_or(0) as u32
}

/// The loss of the network's `scores` [batch, steps, voices, classes] on the choices it had
/// to make, summed over a phrase and averaged over the batch.
/// Fused on the CPU.
pub fn negative_log_likelihood(scores: &Tensor, targets: &Targets) -> anyhow::Result<Tensor> {
    if scores.device().is_cpu() {
        return Ok(choice_loss(scores, targets.choices.clone())?);
    }
    let log_probabilities = candle_nn::ops::log_softmax(&(scores + targets.barred()?)?, D::Minus1)?;
    let chosen = log_probabilities.gather(&targets.tokens()?.unsqueeze(D::Minus1)?, D::Minus1)?.squeeze(D::Minus1)?;
    Ok((chosen.mul(&targets.scored()?)?.sum_all()?.neg()? / scores.dim(0)? as f64)?)
}

/// A voice sounds one note at a time; what a part holds beyond its voices (a divisi, a
/// fifth note of a chord) is not learned, and the user is told how much, with the preset
/// that would.
pub fn chords_within_parts(phrases: &[Roll]) -> String {
    let dropped: usize = phrases.iter().map(|p| roll_to_tokens(p).dropped_notes).sum();
    let notes: usize = phrases.iter().map(|p| p.notes().len()).sum();
    let share = 100.0 * dropped as f64 / notes.max(1) as f64;
    let advice = if share > 5.0 { "; --preset vae learns every note" } else { "" };
    format!(
        "voices: {dropped} of {notes} notes ({share:.2} %) sound beside more notes of their part \
         (or lane) than it has voices and are not learned{advice}"
    )
}

/// What a training phrase gives the decoder, per step and voice (true = given): nothing
/// (three times in ten), some of the voices (a melody to harmonise), the first bars (a clip
/// to continue), a span of steps (notes to write around), or everything but a gap (a phrase's
/// opening between the phrase before it and the rest of its own: the seams a loop is joined
/// at, which only a decoder that has filled gaps knowing both sides can bridge).
pub fn given_mask(rng: &mut ChaCha8Rng, shape: &VoiceShape) -> Vec<bool> {
    let (steps, voices, bar) = (shape.steps(), shape.voices, shape.steps_per_bar);
    let mut mask = vec![false; steps * voices];
    let mut set = |step: usize, voice: usize| mask[step * voices + voice] = true;
    match rng.next_u32() % 10 {
        0..=2 => {}
        3 | 4 if voices > 1 => {
            // A proper, non-empty subset of the voices.
            let subset = 1 + rng.next_u32() as usize % ((1usize << voices) - 2);
            for voice in (0..voices).filter(|v| subset >> v & 1 == 1) {
                (0..steps).for_each(|step| set(step, voice));
            }
        }
        3..=6 if shape.bars > 1 => {
            let bars = 1 + rng.next_u32() as usize % (shape.bars - 1);
            (0..bars * bar).for_each(|step| (0..voices).for_each(|voice| set(step, voice)));
        }
        7 => {
            // A bar up to half the phrase, never the whole of it.
            let longest = (steps / 2).max(1);
            let shortest = bar.min(longest);
            let length = shortest + rng.next_u32() as usize % (longest - shortest + 1);
            let start = rng.next_u32() as usize % (steps - length + 1);
            (start..start + length).for_each(|step| (0..voices).for_each(|voice| set(step, voice)));
        }
        _ => {
            // Half a bar to two bars (at most half the phrase) left free, with given steps on
            // both sides where the phrase is long enough to have them.
            let longest = (2 * bar).min(steps / 2).max(1);
            let shortest = (bar / 2).clamp(1, longest);
            let length = shortest + rng.next_u32() as usize % (longest - shortest + 1);
            let start = if steps > length + 1 { 1 + rng.next_u32() as usize % (steps - length - 1) } else { 0 };
            (0..steps)
                .filter(|step| !(start..start + length).contains(step))
                .for_each(|step| (0..voices).for_each(|voice| set(step, voice)));
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn given_masks_cover_every_kind_and_never_give_everything() {
        let shape = VoiceShape {
            voices: 4,
            bars: 4,
            steps_per_bar: 16,
            pitches: 44,
            latent: 8,
            hidden: 8,
            conductor: 8,
            embed: 4,
            age_embed: 2,
            position_embed: 2,
            context: 4,
            head: 4,
            leading: true,
            velocity_levels: 0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (mut nothing, mut voices, mut leading_bars, mut spans, mut gaps) = (0, 0, 0, 0, 0);
        for _ in 0..2000 {
            let mask = given_mask(&mut rng, &shape);
            let count = mask.iter().filter(|&&g| g).count();
            assert!(count < mask.len(), "something is always left to write");
            let whole_voice = |v: usize| (0..64).all(|s| mask[s * 4 + v]);
            let (first, last) = (mask[0] && mask[3], mask[63 * 4] && mask[63 * 4 + 3]);
            if count == 0 {
                nothing += 1;
            } else if (0..4).any(whole_voice) {
                voices += 1;
            } else if first && last {
                let free = mask.chunks(4).filter(|step| step.iter().all(|&g| !g)).count();
                assert!((8..=32).contains(&free), "a gap of half a bar to two bars: {free} steps");
                gaps += 1;
            } else if first && count % 64 == 0 {
                leading_bars += 1;
            } else {
                spans += 1;
            }
        }
        assert!(
            nothing > 450 && voices > 300 && leading_bars > 300 && spans > 100 && gaps > 300,
            "{nothing} {voices} {leading_bars} {spans} {gaps}"
        );
        for (voices, bars) in [(1, 1), (1, 4), (4, 1), (2, 2)] {
            let shape = VoiceShape { voices, bars, ..shape };
            for _ in 0..500 {
                let mask = given_mask(&mut rng, &shape);
                assert!(mask.iter().any(|&g| !g), "{voices} voices, {bars} bars: something is left to write");
            }
        }
    }
}
