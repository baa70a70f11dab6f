//! Training phrases: a folder of MIDI cut into phrases on the model's grid, split into
//! training and validation by piece (never by bar, or neighbouring bars of one piece would
//! sit on both sides and flatter the validation loss).

use anyhow::{bail, Context};
use dreamroll::corpus::{read_folder, PartReading, ScoreFolder};
use dreamroll::hash::fnv1a;
use dreamroll::model::learned_phrases::LearnedPhrases;
use dreamroll::roll::{score_to_piece, Meter, Representation, Roll, TrackAssignment, TrackSpec};
use rand::Rng;
use std::path::Path;
use std::sync::Arc;

pub struct GridChoice {
    pub steps_per_beat: u16,
    pub meter: Meter,
    pub bars: u16,
    /// Pitch rows are a multiple of this (the network's patch size).
    pub pitch_multiple: usize,
    /// Fixed window (lowest, count), or fitted to the corpus when `None`.
    pub pitch_window: Option<(u8, u8)>,
    pub tracks: Option<Vec<TrackSpec>>,
    pub assignment: TrackAssignment,
    /// Parts as voices (drums as lanes) or as cells, as the preset reads them.
    pub reading: PartReading,
    pub validation_share: f64,
    /// Bars between the starts of training phrases.
    pub hop: usize,
    pub seed: u64,
}

pub struct TrainingData {
    pub representation: Arc<Representation>,
    pub train: Vec<Roll>,
    pub validation: Vec<Roll>,
    pub pieces: usize,
    pub bars: usize,
    /// Per track: at most one note at a time in (nearly) every step of the corpus.
    pub monophonic: Vec<bool>,
    /// Note onsets per track per step in the training phrases: the density to decode at.
    pub onset_rate: Vec<f64>,
    /// Share of steps at which each track sounds: how long notes are held, to decode at.
    pub sounding_rate: Vec<f64>,
    /// UPC of the training phrases: the pitch variety to decode at.
    pub used_pitch_classes: f64,
    /// Every phrase of every piece (validation pieces too), starting at every bar: the
    /// phrases the model must not hand out note for note.
    pub learned: LearnedPhrases,
    pub summary: String,
}

/// The window covering the 0.5th to 99.5th percentile of the corpus's pitches plus a margin
/// for transposition, rounded to a whole number of patches.
fn fit_pitch_window(pitches: &mut [u8], multiple: usize, margin: u8) -> (u8, u8) {
    pitches.sort_unstable();
    let at = |q: f64| pitches[((pitches.len() - 1) as f64 * q).round() as usize];
    let low = at(0.005).saturating_sub(margin);
    let high = at(0.995).saturating_add(margin).min(127);
    let count = (usize::from(high - low) + 1).div_ceil(multiple) * multiple;
    let low = low.min((128 - count) as u8);
    (low, count as u8)
}

/// The window for `tracks`: the pitched parts' pitches as the import places them (a band's
/// melody, which no part takes, is not among them) fitted as [`fit_pitch_window`] fits them,
/// widened to every drum lane's sounds.
fn fitted_window(scores: &ScoreFolder, tracks: &[TrackSpec], choice: &GridChoice) -> anyhow::Result<(u8, u8)> {
    let whole_range = Arc::new(Representation {
        steps_per_beat: choice.steps_per_beat,
        meter: choice.meter,
        bars_per_phrase: choice.bars,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks: tracks.to_vec(),
    });
    whole_range.validate()?;
    let mut pitches: Vec<u8> = Vec::new();
    for (_, score) in &scores.scores {
        for roll in score_to_piece(score, &whole_range, choice.assignment).segments {
            pitches.extend(roll.notes().iter().filter(|n| !tracks[n.track].is_drum).map(|n| n.pitch));
        }
    }
    let sounds = tracks.iter().flat_map(|t| t.sounds.iter().copied());
    let (low, high) = match pitches.is_empty() {
        false => {
            let (low, count) = fit_pitch_window(&mut pitches, choice.pitch_multiple, 3);
            (low, low + (count - 1))
        }
        true => match tracks.iter().any(|t| !t.sounds.is_empty()) {
            true => (127, 0),
            false => bail!(
                "no usable {}-bar phrases in {}: the files hold no notes in that meter on the chosen parts",
                choice.bars,
                choice.meter
            ),
        },
    };
    let (low, high) = sounds.fold((low, high), |(low, high), sound| (low.min(sound), high.max(sound)));
    let count = (usize::from(high - low) + 1).div_ceil(choice.pitch_multiple) * choice.pitch_multiple;
    Ok((low.min((128 - count) as u8), count as u8))
}

impl TrainingData {
    pub fn load(folder: &Path, choice: &GridChoice) -> anyhow::Result<TrainingData> {
        let scores = read_folder(folder).with_context(|| format!("reading training data from {}", folder.display()))?;
        if scores.scores.is_empty() {
            bail!("{}: none of its {} MIDI files could be read", folder.display(), scores.skipped.len());
        }
        let tracks = choice.tracks.clone().unwrap_or_else(|| scores.tracks(choice.assignment, choice.reading));
        let (lowest_pitch, pitch_count) = match choice.pitch_window {
            Some(window) => window,
            None => fitted_window(&scores, &tracks, choice).with_context(|| format!("{}", folder.display()))?,
        };
        let representation = Arc::new(Representation {
            steps_per_beat: choice.steps_per_beat,
            meter: choice.meter,
            bars_per_phrase: choice.bars,
            lowest_pitch,
            pitch_count,
            tracks,
        });
        representation.validate()?;
        let corpus = scores.into_corpus(&representation, choice.assignment);
        let summary = corpus.to_string();
        let bars = usize::from(choice.bars);
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        let mut every_phrase = Vec::new();
        for (path, piece) in &corpus.pieces {
            every_phrase.extend(piece.phrases(bars, 1));
            let in_validation = is_validation_piece(path, choice.seed, choice.validation_share);
            // Training phrases start every `hop` bars (at every bar, four times the data of
            // disjoint phrases); validation phrases are disjoint, so each bar is judged once.
            let phrases = if in_validation { piece.phrases(bars, bars) } else { piece.phrases(bars, choice.hop) };
            let audible = phrases.into_iter().filter(|p| (0..p.track_count()).any(|t| !p.is_silent(t, 0..p.steps())));
            if in_validation {
                validation.extend(audible);
            } else {
                train.extend(audible);
            }
        }
        if train.is_empty() {
            bail!(
                "{}: no usable {}-bar phrases in {} (the files hold {} bars in that meter)",
                folder.display(),
                bars,
                representation.meter,
                corpus.bar_count()
            );
        }
        let monophonic = (0..representation.track_count()).map(|t| polyphonic_share(&train, t) < 0.02).collect();
        let onset_rate = (0..representation.track_count()).map(|t| onset_rate(&train, t)).collect();
        let sounding_rate = (0..representation.track_count()).map(|t| sounding_rate(&train, t)).collect();
        let mut metrics = dreamroll::metrics::MetricsAccumulator::default();
        train.iter().step_by(4).for_each(|phrase| metrics.add(phrase));
        let used_pitch_classes = metrics.summary().used_pitch_classes.unwrap_or(0.0);
        Ok(TrainingData {
            pieces: corpus.pieces.len(),
            bars: corpus.bar_count(),
            representation,
            train,
            validation,
            monophonic,
            onset_rate,
            sounding_rate,
            used_pitch_classes,
            learned: LearnedPhrases::of(&every_phrase),
            summary,
        })
    }
}

/// Whether a piece is held out for validation in a run with `seed` (the split by piece,
/// stable on every machine): what a model never learned from, to test it on.
pub fn is_validation_piece(path: &Path, seed: u64, validation_share: f64) -> bool {
    piece_hash(path, seed) % 10_000 < (validation_share * 10_000.0) as u64
}

/// A stable hash of the file name and the seed, so that the split is the same on every
/// machine and every run with that seed. (The bytes are those `Hash` fed the hasher when the
/// committed models were trained: the name, a 0xff terminator, the seed.)
fn piece_hash(path: &Path, seed: u64) -> u64 {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    fnv1a(name.bytes().chain([0xff]).chain(seed.to_ne_bytes()))
}

/// Per track, the velocities of up to `levels` loudness levels (quietest first) that the
/// notes struck in `phrases` fall into: a one-dimensional k-means from the quantiles, so that
/// a kit with accents, plain hits and ghost notes gets those three. Empty when no track plays
/// more than one velocity (a corpus that has none to learn) or `levels` is 0.
pub fn dynamics(phrases: &[Roll], tracks: usize, levels: u8) -> Vec<Vec<u8>> {
    let mut velocities: Vec<Vec<u8>> = vec![Vec::new(); tracks];
    for note in phrases.iter().flat_map(Roll::notes) {
        velocities[note.track].push(note.velocity);
    }
    let per_track: Vec<Vec<u8>> =
        velocities.into_iter().map(|track| loudness_levels(track, usize::from(levels))).collect();
    match levels > 0 && per_track.iter().any(|levels| levels.len() > 1) {
        true => per_track,
        false => Vec::new(),
    }
}

/// Up to `levels` centres of `velocities` (quietest first, distinct), by Lloyd's iterations
/// from evenly spaced quantiles; the default velocity for a track with no notes.
fn loudness_levels(mut velocities: Vec<u8>, levels: usize) -> Vec<u8> {
    const DEFAULT_VELOCITY: u8 = 90;
    if velocities.is_empty() || levels == 0 {
        return vec![DEFAULT_VELOCITY];
    }
    velocities.sort_unstable();
    let quantile = |q: f64| f64::from(velocities[((velocities.len() - 1) as f64 * q).round() as usize]);
    let mut centres: Vec<f64> = (0..levels).map(|k| quantile((k as f64 + 0.5) / levels as f64)).collect();
    for _ in 0..50 {
        let mut sums = vec![(0.0, 0usize); levels];
        for &v in &velocities {
            let nearest = (0..levels)
                .min_by(|&a, &b| (centres[a] - f64::from(v)).abs().total_cmp(&(centres[b] - f64::from(v)).abs()));
            let (sum, count) = &mut sums[nearest.expect("at least one level")];
            *sum += f64::from(v);
            *count += 1;
        }
        for (centre, (sum, count)) in centres.iter_mut().zip(sums) {
            if count > 0 {
                *centre = sum / count as f64;
            }
        }
    }
    let mut rounded: Vec<u8> = centres.iter().map(|c| c.round().clamp(1.0, 127.0) as u8).collect();
    rounded.sort_unstable();
    rounded.dedup();
    rounded
}

fn polyphonic_share(phrases: &[Roll], track: usize) -> f64 {
    let (mut sounding_steps, mut polyphonic_steps) = (0usize, 0usize);
    for phrase in phrases {
        for step in 0..phrase.steps() {
            let count = phrase.sounding_at(track, step).iter().filter(|&&on| on).count();
            sounding_steps += usize::from(count > 0);
            polyphonic_steps += usize::from(count > 1);
        }
    }
    polyphonic_steps as f64 / sounding_steps.max(1) as f64
}

fn onset_rate(phrases: &[Roll], track: usize) -> f64 {
    let onsets: usize = phrases
        .iter()
        .map(|p| (0..p.steps()).map(|s| p.onsets_at(track, s).iter().filter(|&&v| v > 0).count()).sum::<usize>())
        .sum();
    onsets as f64 / phrases.iter().map(Roll::steps).sum::<usize>().max(1) as f64
}

fn sounding_rate(phrases: &[Roll], track: usize) -> f64 {
    let sounding: usize =
        phrases.iter().map(|p| (0..p.steps()).filter(|&s| p.sounding_at(track, s).contains(&true)).count()).sum();
    sounding as f64 / phrases.iter().map(Roll::steps).sum::<usize>().max(1) as f64
}

/// A random transposition within ±`range` semitones that keeps every note in the window;
/// the phrase as it is when three draws all fall outside.
pub fn augment(phrase: &Roll, range: i32, rng: &mut impl Rng) -> Roll {
    if range > 0 {
        for _ in 0..3 {
            if let Some(moved) = phrase.transposed(rng.random_range(-range..=range)) {
                return moved;
            }
        }
    }
    phrase.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_covers_the_bulk_with_a_margin_in_whole_patches() {
        let mut pitches: Vec<u8> = (0..1000).map(|i| 50 + (i % 30) as u8).collect();
        pitches.push(10);
        pitches.push(120);
        let (low, count) = fit_pitch_window(&mut pitches, 4, 3);
        assert_eq!(low, 47);
        assert_eq!(count % 4, 0);
        assert!(u16::from(low) + u16::from(count) > 82);
    }

    #[test]
    fn loudness_levels_find_ghosts_hits_and_accents() {
        let kit: Vec<u8> =
            [40u8, 42, 45].repeat(10).into_iter().chain([90u8, 92, 88].repeat(30)).chain([120u8; 12]).collect();
        assert_eq!(loudness_levels(kit, 3), vec![42, 90, 120]);
        assert_eq!(loudness_levels(vec![64; 50], 3), vec![64], "one velocity is one level");
        assert_eq!(loudness_levels(vec![], 3), vec![90]);
        assert_eq!(loudness_levels(vec![30, 100], 1), vec![65]);
    }

    #[test]
    fn the_split_is_stable() {
        let a = piece_hash(Path::new("/x/bwv1.6.mid"), 3);
        assert_eq!(a, piece_hash(Path::new("/elsewhere/bwv1.6.mid"), 3));
        assert_ne!(a, piece_hash(Path::new("/x/bwv1.6.mid"), 4));
    }
}
