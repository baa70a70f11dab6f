//! A classifier two-sample test (Lopez-Paz & Oquab 2017): a classifier learns to tell two sets
//! of phrases apart, and its accuracy on phrases it did not learn from says how far apart the
//! sets are. About 0.5 means no linear read of the features separates them; 1.0 means they
//! differ plainly. A table of statistics checks what someone thought to measure; this looks at
//! everything the features hold at once.
//!
//! The features are simple and fixed, so that numbers stay comparable between models; the
//! classifier is an L2-regularised logistic regression, a convex problem with one answer, so
//! that the only randomness is in how phrases are dealt into folds (seeded).

use super::voices::voice;
use crate::roll::Roll;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Features per track per step: the pitch class sounding (12, one-hot), an onset, the
/// register, and whether the voice sounds at all.
pub const FEATURES_PER_STEP: usize = 15;

/// Cross-validation folds.
pub const FOLDS: usize = 5;

/// The L2 penalty on the weights of the standardised features, per sample.
pub const L2_PENALTY: f32 = 0.01;

/// Accelerated gradient steps at most; the fit stops earlier once the gradient has shrunk to
/// [`GRADIENT_TOLERANCE`] of where it started.
const MAX_ITERATIONS: usize = 500;
const GRADIENT_TOLERANCE: f32 = 1e-3;

/// A phrase as features: for each track (its voice, see [`voice`]) and each step, the sounding
/// pitch class one-hot, a note starting, the register ((pitch − 60) / 12), and sounding; zeros
/// where the voice rests.
pub fn phrase_features(phrase: &Roll) -> Vec<f32> {
    let mut features = Vec::with_capacity(phrase.track_count() * phrase.steps() * FEATURES_PER_STEP);
    for track in 0..phrase.track_count() {
        let voice = voice(phrase, track);
        let mut starts = vec![false; phrase.steps()];
        voice.notes.iter().for_each(|note| starts[note.start] = true);
        for (&pitch, &start) in voice.line.iter().zip(&starts) {
            let mut cell = [0f32; FEATURES_PER_STEP];
            if let Some(pitch) = pitch {
                cell[usize::from(pitch % 12)] = 1.0;
                cell[12] = f32::from(u8::from(start));
                cell[13] = (f32::from(pitch) - 60.0) / 12.0;
                cell[14] = 1.0;
            }
            features.extend_from_slice(&cell);
        }
    }
    features
}

/// The cross-validated accuracy of telling `first` from `second` (groups of phrases of one
/// shape), by [`phrase_features`] and [`cross_validated_accuracy`].
pub fn classifier_accuracy(first: &[Vec<Roll>], second: &[Vec<Roll>], seed: u64) -> f64 {
    let features = |groups: &[Vec<Roll>]| -> Vec<Vec<Vec<f32>>> {
        groups.iter().map(|group| group.iter().map(phrase_features).collect()).collect()
    };
    cross_validated_accuracy(&features(first), &features(second), FOLDS, seed)
}

/// The share of samples classified right when each of `folds` folds is predicted by a
/// [`LogisticRegression`] fitted to the others.
///
/// Each side comes in groups that are never split between folds (the phrases of one piece):
/// a classifier that has learnt some phrases of a piece recognises the others, and would tell
/// two halves of one corpus apart by which pieces it has seen. Each side's groups are shuffled
/// (seeded) and each goes to the fold holding the fewest of that side's samples, so that folds
/// hold both sides in proportion.
pub fn cross_validated_accuracy(first: &[Vec<Vec<f32>>], second: &[Vec<Vec<f32>>], folds: usize, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dealt: Vec<(&[f32], bool, usize)> = Vec::new();
    for (groups, label) in [(first, false), (second, true)] {
        let mut order: Vec<&Vec<Vec<f32>>> = groups.iter().collect();
        order.shuffle(&mut rng);
        let mut sizes = vec![0; folds];
        for group in order {
            let fold = (0..folds).min_by_key(|&fold| sizes[fold]).expect("at least one fold");
            sizes[fold] += group.len();
            dealt.extend(group.iter().map(|sample| (sample.as_slice(), label, fold)));
        }
    }
    let mut correct = 0;
    for fold in 0..folds {
        let (samples, labels): (Vec<&[f32]>, Vec<bool>) =
            dealt.iter().filter(|d| d.2 != fold).map(|d| (d.0, d.1)).unzip();
        let model = LogisticRegression::fit(&samples, &labels, L2_PENALTY);
        correct += dealt.iter().filter(|d| d.2 == fold && model.predicts(d.0) == d.1).count();
    }
    correct as f64 / dealt.len().max(1) as f64
}

/// A linear classifier of raw features (the standardisation it was fitted with folded in).
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticRegression {
    weights: Vec<f32>,
    bias: f32,
}

impl LogisticRegression {
    /// Minimises the mean log-loss plus `l2` / 2 times the squared weights, over features
    /// standardised to zero mean and unit variance (constant features are left out), by
    /// Nesterov's accelerated gradient descent with a step of 1 / the loss's smoothness, with
    /// momentum restarted whenever it points uphill (O'Donoghue & Candès 2015). The bias is
    /// not penalised.
    pub fn fit(samples: &[&[f32]], labels: &[bool], l2: f32) -> LogisticRegression {
        assert_eq!(samples.len(), labels.len(), "one label per sample");
        let width = samples.first().map_or(0, |s| s.len());
        let count = samples.len().max(1) as f32;
        let mut mean = vec![0f32; width];
        samples.iter().for_each(|sample| add_scaled(&mut mean, 1.0 / count, sample));
        let mut scale = vec![0f32; width];
        for sample in samples {
            for ((variance, &x), &m) in scale.iter_mut().zip(*sample).zip(&mean) {
                *variance += (x - m) * (x - m) / count;
            }
        }
        scale.iter_mut().for_each(|s| *s = if *s > 1e-8 { 1.0 / s.sqrt() } else { 0.0 });
        let standardised: Vec<f32> = samples
            .iter()
            .flat_map(|sample| sample.iter().zip(&mean).zip(&scale).map(|((&x, &m), &s)| (x - m) * s))
            .collect();
        let rows = || standardised.chunks_exact(width.max(1));
        let targets: Vec<f32> = labels.iter().map(|&label| f32::from(u8::from(label))).collect();

        // The log-loss's curvature is at most a quarter of the features' (plus the bias's 1).
        let smoothness = 0.25 * (largest_eigenvalue(&standardised, width, count) + 1.0) + l2;
        let momentum = {
            let root = (smoothness / l2).sqrt();
            (root - 1.0) / (root + 1.0)
        };
        // The weights with the bias last.
        let gradient = |point: &[f32]| -> Vec<f32> {
            let (weights, bias) = point.split_at(width);
            let mut gradient = vec![0f32; width + 1];
            for (row, &target) in rows().zip(&targets) {
                let residual = (sigmoid(dot(row, weights) + bias[0]) - target) / count;
                add_scaled(&mut gradient[..width], residual, row);
                gradient[width] += residual;
            }
            add_scaled(&mut gradient[..width], l2, weights);
            gradient
        };
        let mut point = vec![0f32; width + 1];
        let mut ahead = point.clone();
        let mut first_norm = None;
        for _ in 0..MAX_ITERATIONS {
            let slope = gradient(&ahead);
            let norm = dot(&slope, &slope).sqrt();
            if norm <= GRADIENT_TOLERANCE * *first_norm.get_or_insert(norm) || norm == 0.0 {
                point = ahead;
                break;
            }
            let next: Vec<f32> = ahead.iter().zip(&slope).map(|(x, g)| x - g / smoothness).collect();
            let uphill = slope.iter().zip(next.iter().zip(&point)).map(|(g, (n, p))| g * (n - p)).sum::<f32>() > 0.0;
            ahead = if uphill {
                next.clone()
            } else {
                next.iter().zip(&point).map(|(n, p)| n + momentum * (n - p)).collect()
            };
            point = next;
        }
        let weights: Vec<f32> = point[..width].iter().zip(&scale).map(|(w, s)| w * s).collect();
        let bias = point[width] - dot(&weights, &mean);
        LogisticRegression { weights, bias }
    }

    /// True when the sample looks more like the samples labelled true.
    pub fn predicts(&self, sample: &[f32]) -> bool {
        dot(&self.weights, sample) + self.bias > 0.0
    }
}

/// The largest eigenvalue of XᵀX / `count` for the rows of `matrix`, by power iteration, with a
/// margin for the iteration's approach from below.
fn largest_eigenvalue(matrix: &[f32], width: usize, count: f32) -> f32 {
    let mut vector: Vec<f32> = (0..width).map(|j| 1.0 + (j % 7) as f32 / 7.0).collect();
    let mut eigenvalue = 0.0;
    for _ in 0..30 {
        let norm = dot(&vector, &vector).sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        let mut image = vec![0f32; width];
        for row in matrix.chunks_exact(width) {
            add_scaled(&mut image, dot(row, &vector) / (norm * count), row);
        }
        eigenvalue = dot(&image, &image).sqrt();
        vector = image;
    }
    1.05 * eigenvalue
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// A dot product in eight lanes, so that the compiler can vectorise it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    let mut lanes = [0f32; 8];
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `target += factor * source`.
fn add_scaled(target: &mut [f32], factor: f32, source: &[f32]) {
    target.iter_mut().zip(source).for_each(|(t, s)| *t += factor * s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::roll;
    use rand::Rng;

    /// `count` samples of `width` features uniform in 0..1, the first shifted by `shift`, each
    /// a group of its own.
    fn samples(rng: &mut ChaCha8Rng, count: usize, width: usize, shift: f32) -> Vec<Vec<Vec<f32>>> {
        (0..count)
            .map(|_| {
                let mut sample: Vec<f32> = (0..width).map(|_| rng.random::<f32>()).collect();
                sample[0] += shift;
                vec![sample]
            })
            .collect()
    }

    #[test]
    fn separable_sets_are_told_apart() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (low, high) = (samples(&mut rng, 150, 40, 0.0), samples(&mut rng, 150, 40, 3.0));
        assert_eq!(cross_validated_accuracy(&low, &high, FOLDS, 7), 1.0);
    }

    #[test]
    fn sets_from_one_distribution_are_not() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut one = samples(&mut rng, 400, 60, 0.0);
        let other = one.split_off(200);
        let accuracy = cross_validated_accuracy(&one, &other, FOLDS, 7);
        assert!((0.42..=0.58).contains(&accuracy), "{accuracy}");
    }

    #[test]
    fn groups_are_not_split_between_folds() {
        // Groups of ten near-copies of a random point, all from one distribution: told apart
        // only by recognising a group already seen, which grouped folds never allow.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut groups: Vec<Vec<Vec<f32>>> = (0..80)
            .map(|_| {
                let centre: Vec<f32> = (0..30).map(|_| rng.random::<f32>()).collect();
                (0..10).map(|_| centre.iter().map(|c| c + 0.01 * rng.random::<f32>()).collect()).collect()
            })
            .collect();
        let other = groups.split_off(40);
        let accuracy = cross_validated_accuracy(&groups, &other, FOLDS, 7);
        assert!((0.35..=0.65).contains(&accuracy), "{accuracy}");
        let singles = |groups: &[Vec<Vec<f32>>]| -> Vec<Vec<Vec<f32>>> {
            groups.iter().flatten().map(|s| vec![s.clone()]).collect()
        };
        let split = cross_validated_accuracy(&singles(&groups), &singles(&other), FOLDS, 7);
        assert!(split > 0.7, "split groups are recognised: {split}");
    }

    #[test]
    fn a_weak_difference_gives_a_middling_accuracy() {
        // Feature 0 uniform on 0..1 against 0.5..1.5: the best rule (x > 0.75) is right 75 % of the time.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (low, high) = (samples(&mut rng, 500, 5, 0.0), samples(&mut rng, 500, 5, 0.5));
        let accuracy = cross_validated_accuracy(&low, &high, FOLDS, 7);
        assert!((0.70..=0.80).contains(&accuracy), "{accuracy}");
    }

    #[test]
    fn constant_features_are_ignored_and_the_fit_is_finite() {
        let samples: Vec<Vec<f32>> = (0..20).map(|i| vec![3.0, i as f32, 0.0]).collect();
        let labels: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let refs: Vec<&[f32]> = samples.iter().map(Vec::as_slice).collect();
        let model = LogisticRegression::fit(&refs, &labels, L2_PENALTY);
        assert!(model.weights.iter().all(|w| w.is_finite()) && model.bias.is_finite());
        assert_eq!(model.weights[0], 0.0);
        assert!(!model.predicts(&[3.0, 2.0, 0.0]) && model.predicts(&[3.0, 17.0, 0.0]));
    }

    #[test]
    fn the_same_seed_deals_the_same_folds() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (a, b) = (samples(&mut rng, 60, 8, 0.0), samples(&mut rng, 60, 8, 0.3));
        assert_eq!(cross_validated_accuracy(&a, &b, FOLDS, 11), cross_validated_accuracy(&a, &b, FOLDS, 11));
    }

    #[test]
    fn features_hold_pitch_class_onset_register_and_sound_per_track_and_step() {
        // Track 0: E4 for two steps from step 1; track 1: C3 struck at step 0 and again at step 2.
        let phrase = roll(1, 2, 1, &[(0, 1, 64, 2), (1, 0, 48, 2), (1, 2, 48, 1)]);
        let features = phrase_features(&phrase);
        assert_eq!(features.len(), 2 * 4 * FEATURES_PER_STEP);
        let cell = |track: usize, step: usize| &features[(track * 4 + step) * FEATURES_PER_STEP..][..FEATURES_PER_STEP];
        assert!(cell(0, 0).iter().all(|&x| x == 0.0), "a rest is all zeros");
        let mut e_struck = [0f32; FEATURES_PER_STEP];
        e_struck[4] = 1.0;
        e_struck[12] = 1.0;
        e_struck[13] = 4.0 / 12.0;
        e_struck[14] = 1.0;
        assert_eq!(cell(0, 1), e_struck);
        let e_held = [&e_struck[..12], &[0.0, 4.0 / 12.0, 1.0]].concat();
        assert_eq!(cell(0, 2), e_held.as_slice());
        assert_eq!((cell(1, 1)[12], cell(1, 2)[12], cell(1, 2)[0], cell(1, 2)[13]), (0.0, 1.0, 1.0, -1.0));
        assert!(cell(1, 3).iter().all(|&x| x == 0.0));
    }
}
