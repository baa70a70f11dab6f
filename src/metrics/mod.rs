//! Objective metrics over piano rolls, written from their published definitions.
//!
//! Each metric is a pure function of a roll that returns a [`Tally`] (a sum and a count)
//! rather than a finished mean, so that a corpus of rolls of different lengths is averaged
//! over bars, beats or notes, and not over rolls.
//!
//! Definitions (after MuseGAN, Dong et al. 2018; MusPy, Dong et al. 2020; Harte et al. 2006):
//! - EB: share of bars in which a track sounds nothing.
//! - UPC: distinct pitch classes sounding in a bar, averaged over a track's non-empty bars.
//! - QN: share of notes lasting at least a thirty-second note (3 steps at 24 steps per
//!   quarter), a duration so that it means the same at every resolution.
//! - PP: share of steps at which more than two pitches sound, over all tracks together.
//! - Empty-beat rate: share of beats in which nothing sounds.
//! - Pitch-class entropy: Shannon entropy (bits) of the pitch-class histogram of note onsets.
//! - Scale consistency: the largest share of notes inside one major or natural-minor scale.
//! - TD: Euclidean distance between two tracks' 6-D tonal centroids, per beat, averaged over
//!   the beats in which both sound.
//! - Groove consistency: 1 minus the mean Hamming distance between the onset patterns of
//!   adjacent bars, as a share of the bar's steps.
//!
//! Drum tracks are left out of every pitch-based metric.
//!
//! [`voices`] measures how each part moves and how parts move together, [`seams`] how phrases
//! join and end, [`two_sample`] asks whether a classifier can tell two sets of phrases apart,
//! and [`agreement`] how far a written roll agrees with a reference one.

pub mod agreement;
pub mod attributes;
pub mod band;
pub mod chords;
pub mod seams;
pub mod two_sample;
pub mod voices;

use crate::hash::fnv1a;
use crate::roll::Roll;
use serde::{Deserialize, Serialize};
use voices::{VoiceAccumulator, VoiceSummary};

/// A sum over some count of items (bars, beats, notes); its mean is the metric.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    pub sum: f64,
    pub count: f64,
}

impl Tally {
    pub fn of(sum: f64, count: f64) -> Tally {
        Tally { sum, count }
    }

    pub fn add(&mut self, other: Tally) {
        self.sum += other.sum;
        self.count += other.count;
    }

    /// `None` when there was nothing to measure (an empty roll has no UPC, not a UPC of 0).
    pub fn mean(self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

/// A thirty-second note, in quarter notes.
pub const QUALIFIED_NOTE_QUARTERS: f64 = 0.125;

/// More than this many pitches sounding at once makes a step polyphonic.
pub const POLYPHONY_THRESHOLD: usize = 2;

fn pitched_tracks(roll: &Roll) -> impl Iterator<Item = usize> + '_ {
    roll.representation().tracks.iter().enumerate().filter(|(_, spec)| !spec.is_drum).map(|(index, _)| index)
}

fn bar_steps(roll: &Roll, bar: usize) -> std::ops::Range<usize> {
    let length = roll.representation().steps_per_bar();
    bar * length..(bar + 1) * length
}

/// EB of one track: empty bars over bars.
pub fn empty_bars(roll: &Roll, track: usize) -> Tally {
    let bars = roll.bar_count();
    let empty = (0..bars).filter(|&bar| roll.is_silent(track, bar_steps(roll, bar))).count();
    Tally::of(empty as f64, bars as f64)
}

/// UPC of one track: pitch classes per non-empty bar.
pub fn used_pitch_classes(roll: &Roll, track: usize) -> Tally {
    let mut tally = Tally::default();
    for bar in 0..roll.bar_count() {
        let classes = chroma(roll, track, bar_steps(roll, bar)).iter().filter(|&&steps| steps > 0.0).count();
        if classes > 0 {
            tally.add(Tally::of(classes as f64, 1.0));
        }
    }
    tally
}

/// QN of one track: qualified notes over notes. Notes are those starting in the roll.
pub fn qualified_notes(roll: &Roll, track: usize) -> Tally {
    let quarters_per_step = roll.representation().quarters_per_step();
    let mut tally = Tally::default();
    for note in roll.notes().into_iter().filter(|note| note.track == track) {
        let long_enough = note.length as f64 * quarters_per_step >= QUALIFIED_NOTE_QUARTERS - 1e-9;
        tally.add(Tally::of(f64::from(u8::from(long_enough)), 1.0));
    }
    tally
}

/// PP: steps with more than [`POLYPHONY_THRESHOLD`] distinct pitches sounding (all pitched
/// tracks together; two voices in unison are one pitch) over all steps.
pub fn polyphony(roll: &Roll) -> Tally {
    let tracks: Vec<usize> = pitched_tracks(roll).collect();
    let mut polyphonic = 0;
    let mut sounding = vec![false; roll.pitch_count()];
    for step in 0..roll.steps() {
        sounding.fill(false);
        for &track in &tracks {
            for (any, &on) in sounding.iter_mut().zip(roll.sounding_at(track, step)) {
                *any |= on;
            }
        }
        if sounding.iter().filter(|&&on| on).count() > POLYPHONY_THRESHOLD {
            polyphonic += 1;
        }
    }
    Tally::of(f64::from(polyphonic), roll.steps() as f64)
}

/// Empty-beat rate over the given tracks: beats in which none of them sounds, over beats.
pub fn empty_beats(roll: &Roll, tracks: &[usize]) -> Tally {
    let beat = roll.representation().steps_per_beat();
    let beats = roll.steps() / beat;
    let empty =
        (0..beats).filter(|&b| tracks.iter().all(|&track| roll.is_silent(track, b * beat..(b + 1) * beat))).count();
    Tally::of(empty as f64, beats as f64)
}

/// Onset counts per pitch class over the pitched tracks.
fn onset_histogram(roll: &Roll) -> [f64; 12] {
    let mut histogram = [0.0; 12];
    for note in roll.notes() {
        if !roll.representation().tracks[note.track].is_drum {
            histogram[usize::from(note.pitch % 12)] += 1.0;
        }
    }
    histogram
}

/// Pitch-class entropy in bits (0 for one pitch class, log2 12 = 3.58 for all equally), or
/// `None` for a roll with no notes.
pub fn pitch_class_entropy(roll: &Roll) -> Option<f64> {
    let histogram = onset_histogram(roll);
    let total: f64 = histogram.iter().sum();
    (total > 0.0).then(|| histogram.iter().filter(|&&n| n > 0.0).map(|&n| -(n / total) * (n / total).log2()).sum())
}

const MAJOR_SCALE: [usize; 7] = [0, 2, 4, 5, 7, 9, 11];
const NATURAL_MINOR_SCALE: [usize; 7] = [0, 2, 3, 5, 7, 8, 10];

/// The share of notes inside the best-fitting major or natural-minor scale, with the tonic
/// that fits it; `None` for a roll with no notes.
pub fn best_scale(roll: &Roll) -> Option<(f64, usize, bool)> {
    let histogram = onset_histogram(roll);
    let total: f64 = histogram.iter().sum();
    if total == 0.0 {
        return None;
    }
    let mut best = (f64::MIN, 0, true);
    for tonic in 0..12 {
        for (scale, is_major) in [(MAJOR_SCALE, true), (NATURAL_MINOR_SCALE, false)] {
            let inside: f64 = scale.iter().map(|degree| histogram[(tonic + degree) % 12]).sum();
            if inside > best.0 {
                best = (inside, tonic, is_major);
            }
        }
    }
    Some((best.0 / total, best.1, best.2))
}

/// Scale consistency (see [`best_scale`]).
pub fn scale_consistency(roll: &Roll) -> Option<f64> {
    best_scale(roll).map(|(share, _, _)| share)
}

/// The 6-D tonal centroid (Harte, Sandler & Gasser 2006) of a chroma vector: pitch classes
/// placed on the circle of fifths, the minor-third circle and the major-third circle, with
/// radii 1, 1 and 0.5, weighted by the chroma's L1-normalised energy.
pub fn tonal_centroid(chroma: &[f64; 12]) -> Option<[f64; 6]> {
    let total: f64 = chroma.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mut centroid = [0.0; 6];
    for (class, &energy) in chroma.iter().enumerate() {
        let l = class as f64;
        let weight = energy / total;
        let angles = [
            l * 7.0 * std::f64::consts::PI / 6.0,
            l * 3.0 * std::f64::consts::PI / 2.0,
            l * 2.0 * std::f64::consts::PI / 3.0,
        ];
        for (circle, (&angle, radius)) in angles.iter().zip([1.0, 1.0, 0.5]).enumerate() {
            centroid[2 * circle] += weight * radius * angle.sin();
            centroid[2 * circle + 1] += weight * radius * angle.cos();
        }
    }
    Some(centroid)
}

/// A track's chroma over `steps`: how many steps each pitch class sounds.
fn chroma(roll: &Roll, track: usize, steps: std::ops::Range<usize>) -> [f64; 12] {
    let lowest = usize::from(roll.representation().lowest_pitch);
    let mut chroma = [0.0; 12];
    for step in steps {
        for (row, _) in roll.sounding_at(track, step).iter().enumerate().filter(|(_, &on)| on) {
            chroma[(lowest + row) % 12] += 1.0;
        }
    }
    chroma
}

/// TD between tracks `a` and `b`: the distance of their tonal centroids summed over the beats
/// where both sound, and the number of those beats.
pub fn tonal_distance(roll: &Roll, a: usize, b: usize) -> Tally {
    let beat = roll.representation().steps_per_beat();
    let mut tally = Tally::default();
    for start in (0..roll.steps() / beat).map(|b| b * beat) {
        let steps = start..start + beat;
        let (Some(x), Some(y)) =
            (tonal_centroid(&chroma(roll, a, steps.clone())), tonal_centroid(&chroma(roll, b, steps)))
        else {
            continue;
        };
        let distance = x.iter().zip(&y).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
        tally.add(Tally::of(distance, 1.0));
    }
    tally
}

/// Groove consistency: over adjacent bars, 1 minus the Hamming distance of their onset
/// patterns (all tracks together) as a share of a bar's steps.
pub fn groove_consistency(roll: &Roll) -> Tally {
    let steps_per_bar = roll.representation().steps_per_bar();
    let pattern = |bar: usize| -> Vec<bool> {
        bar_steps(roll, bar)
            .map(|step| (0..roll.track_count()).any(|track| roll.onsets_at(track, step).iter().any(|&v| v > 0)))
            .collect()
    };
    let mut tally = Tally::default();
    let bars: Vec<Vec<bool>> = (0..roll.bar_count()).map(pattern).collect();
    for pair in bars.windows(2) {
        let differing = pair[0].iter().zip(&pair[1]).filter(|(x, y)| x != y).count();
        tally.add(Tally::of(1.0 - differing as f64 / steps_per_bar as f64, 1.0));
    }
    tally
}

/// A roll's notes with its lowest sounding pitch moved to row 0, hashed: equal fingerprints
/// mean equal rolls up to transposition (64 bits: among a corpus's few hundred thousand
/// phrases a false match is a one-in-10^8 chance). `None` for a silent roll.
pub fn transposition_free_fingerprint(roll: &Roll) -> Option<u64> {
    let lowest = (0..roll.track_count())
        .flat_map(|track| {
            (0..roll.steps()).filter_map(move |step| roll.sounding_at(track, step).iter().position(|&on| on))
        })
        .min()?;
    let mut cells = Vec::new();
    for track in 0..roll.track_count() {
        for step in 0..roll.steps() {
            for row in (0..roll.pitch_count()).filter(|&row| roll.sounding_at(track, step)[row]) {
                let struck = roll.onset(track, step, row) > 0;
                cells.extend(
                    [track as u16, step as u16, (row - lowest) as u16, u16::from(struck)]
                        .iter()
                        .flat_map(|v| v.to_le_bytes()),
                );
            }
        }
    }
    Some(fnv1a(cells))
}

/// The copy rate: the share of generated non-silent rolls (bars, phrases) that equal some
/// training roll up to transposition (a model that memorises its corpus scores high).
pub fn copy_rate(generated: &[Roll], training: &[Roll]) -> Tally {
    let known: std::collections::HashSet<u64> = training.iter().filter_map(transposition_free_fingerprint).collect();
    let mut tally = Tally::default();
    for fingerprint in generated.iter().filter_map(transposition_free_fingerprint) {
        tally.add(Tally::of(f64::from(u8::from(known.contains(&fingerprint))), 1.0));
    }
    tally
}

/// Tallies of every metric over many rolls of one representation.
#[derive(Clone, Debug, Default)]
pub struct MetricsAccumulator {
    tracks: Vec<TrackTallies>,
    polyphony: Tally,
    empty_beats: Tally,
    pitch_class_entropy: Tally,
    scale_consistency: Tally,
    groove_consistency: Tally,
    tonal_distance: Vec<((usize, usize), Tally)>,
    voices: VoiceAccumulator,
    rolls: usize,
}

#[derive(Clone, Debug, Default)]
struct TrackTallies {
    name: String,
    empty_bars: Tally,
    used_pitch_classes: Tally,
    qualified_notes: Tally,
    empty_beats: Tally,
}

impl MetricsAccumulator {
    pub fn add(&mut self, roll: &Roll) {
        let specs = &roll.representation().tracks;
        if self.tracks.is_empty() {
            self.tracks =
                specs.iter().map(|spec| TrackTallies { name: spec.name.clone(), ..TrackTallies::default() }).collect();
            let pitched: Vec<usize> = pitched_tracks(roll).collect();
            for (i, &a) in pitched.iter().enumerate() {
                for &b in &pitched[i + 1..] {
                    self.tonal_distance.push(((a, b), Tally::default()));
                }
            }
        }
        assert_eq!(self.tracks.len(), specs.len(), "every roll of one accumulator has the same tracks");
        for (track, tallies) in self.tracks.iter_mut().enumerate() {
            tallies.empty_bars.add(empty_bars(roll, track));
            tallies.empty_beats.add(empty_beats(roll, &[track]));
            tallies.qualified_notes.add(qualified_notes(roll, track));
            if !specs[track].is_drum {
                tallies.used_pitch_classes.add(used_pitch_classes(roll, track));
            }
        }
        self.polyphony.add(polyphony(roll));
        let all: Vec<usize> = (0..specs.len()).collect();
        self.empty_beats.add(empty_beats(roll, &all));
        if let Some(entropy) = pitch_class_entropy(roll) {
            self.pitch_class_entropy.add(Tally::of(entropy, 1.0));
        }
        if let Some(share) = scale_consistency(roll) {
            self.scale_consistency.add(Tally::of(share, 1.0));
        }
        self.groove_consistency.add(groove_consistency(roll));
        for ((a, b), tally) in &mut self.tonal_distance {
            tally.add(tonal_distance(roll, *a, *b));
        }
        self.voices.add(roll);
        self.rolls += 1;
    }

    pub fn summary(&self) -> MetricsSummary {
        let total = |pick: fn(&TrackTallies) -> Tally| {
            let mut sum = Tally::default();
            self.tracks.iter().for_each(|t| sum.add(pick(t)));
            sum.mean()
        };
        let pairs: Vec<TonalDistancePair> = self
            .tonal_distance
            .iter()
            .map(|&((a, b), tally)| TonalDistancePair {
                tracks: [self.tracks[a].name.clone(), self.tracks[b].name.clone()],
                distance: tally.mean(),
            })
            .collect();
        let distances: Vec<f64> = pairs.iter().filter_map(|pair| pair.distance).collect();
        MetricsSummary {
            rolls: self.rolls,
            bars: self.tracks.first().map_or(0.0, |t| t.empty_bars.count) as usize,
            tracks: self
                .tracks
                .iter()
                .map(|t| TrackMetrics {
                    name: t.name.clone(),
                    empty_bars: t.empty_bars.mean(),
                    used_pitch_classes: t.used_pitch_classes.mean(),
                    qualified_notes: t.qualified_notes.mean(),
                    empty_beats: t.empty_beats.mean(),
                })
                .collect(),
            empty_bars: total(|t| t.empty_bars),
            used_pitch_classes: total(|t| t.used_pitch_classes),
            qualified_notes: total(|t| t.qualified_notes),
            polyphony: self.polyphony.mean(),
            empty_beats: self.empty_beats.mean(),
            pitch_class_entropy: self.pitch_class_entropy.mean(),
            scale_consistency: self.scale_consistency.mean(),
            groove_consistency: self.groove_consistency.mean(),
            tonal_distance: (!distances.is_empty()).then(|| distances.iter().sum::<f64>() / distances.len() as f64),
            tonal_distance_pairs: pairs,
            voices: self.voices.summary(),
        }
    }
}

/// Metrics of one track. `None` where there was nothing to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackMetrics {
    pub name: String,
    pub empty_bars: Option<f64>,
    pub used_pitch_classes: Option<f64>,
    pub qualified_notes: Option<f64>,
    pub empty_beats: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TonalDistancePair {
    pub tracks: [String; 2],
    pub distance: Option<f64>,
}

/// Every metric over a set of rolls: per track, then over all tracks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSummary {
    pub rolls: usize,
    pub bars: usize,
    pub tracks: Vec<TrackMetrics>,
    /// Over every track's bars.
    pub empty_bars: Option<f64>,
    /// Over every pitched track's non-empty bars.
    pub used_pitch_classes: Option<f64>,
    pub qualified_notes: Option<f64>,
    pub polyphony: Option<f64>,
    /// Beats in which no track sounds.
    pub empty_beats: Option<f64>,
    /// Mean over rolls.
    pub pitch_class_entropy: Option<f64>,
    /// Mean over rolls.
    pub scale_consistency: Option<f64>,
    pub groove_consistency: Option<f64>,
    /// Mean over the track pairs.
    pub tonal_distance: Option<f64>,
    pub tonal_distance_pairs: Vec<TonalDistancePair>,
    #[serde(default)]
    pub voices: VoiceSummary,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::roll::{GridNote, Meter, Representation, TrackSpec};
    use std::sync::Arc;

    /// A roll at `steps_per_beat` in 4/4 over the full MIDI range, with `(track, start, pitch,
    /// length)` notes.
    pub(crate) fn roll(steps_per_beat: u16, tracks: usize, bars: usize, notes: &[(usize, usize, u8, usize)]) -> Roll {
        let representation = Arc::new(Representation {
            steps_per_beat,
            meter: Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 0,
            pitch_count: 128,
            tracks: (0..tracks).map(|t| TrackSpec::new(format!("t{t}"), t as u8)).collect(),
        });
        let steps = bars * representation.steps_per_bar();
        let mut roll = Roll::new(representation, steps);
        for &(track, start, pitch, length) in notes {
            roll.place(GridNote { track, start, pitch, length, velocity: 100 }).unwrap();
        }
        roll
    }

    fn close(actual: Option<f64>, expected: f64) -> bool {
        actual.is_some_and(|a| (a - expected).abs() < 1e-9)
    }

    const C_MAJOR_SCALE: [u8; 8] = [60, 62, 64, 65, 67, 69, 71, 72];

    fn c_major_scale_in_eighths() -> Roll {
        let notes: Vec<_> = C_MAJOR_SCALE.iter().enumerate().map(|(i, &p)| (0, i * 2, p, 2)).collect();
        roll(4, 1, 1, &notes)
    }

    #[test]
    fn a_c_major_scale_uses_seven_pitch_classes() {
        assert!(close(used_pitch_classes(&c_major_scale_in_eighths(), 0).mean(), 7.0));
    }

    #[test]
    fn upc_counts_only_non_empty_bars() {
        let two_bars = roll(4, 1, 3, &[(0, 0, 60, 4), (0, 4, 64, 4), (0, 32, 61, 16)]);
        assert_eq!(used_pitch_classes(&two_bars, 0), Tally::of(3.0, 2.0));
        assert!(used_pitch_classes(&roll(4, 1, 2, &[]), 0).mean().is_none());
    }

    #[test]
    fn upc_folds_octaves_into_pitch_classes() {
        let octaves = roll(4, 1, 1, &[(0, 0, 48, 4), (0, 4, 60, 4), (0, 8, 72, 4), (0, 12, 61, 4)]);
        assert!(close(used_pitch_classes(&octaves, 0).mean(), 2.0));
    }

    #[test]
    fn two_empty_beats_of_eight_give_a_quarter() {
        // Two bars of 4/4; beats 3 and 6 are silent.
        let notes = [(0, 0, 60, 8), (0, 12, 62, 8), (0, 24, 64, 8)];
        let two_bars = roll(4, 1, 2, &notes);
        assert!(close(empty_beats(&two_bars, &[0]).mean(), 0.25));
    }

    #[test]
    fn empty_beats_over_tracks_need_all_of_them_silent() {
        let notes = [(0, 0, 60, 4), (1, 4, 48, 4)];
        let bar = roll(4, 2, 1, &notes);
        assert!(close(empty_beats(&bar, &[0]).mean(), 0.75));
        assert!(close(empty_beats(&bar, &[0, 1]).mean(), 0.5));
    }

    #[test]
    fn sixteen_one_step_notes_at_24_steps_per_beat_qualify_none() {
        let notes: Vec<_> = (0..16).map(|i| (0, i * 6, 60 + i as u8, 1)).collect();
        assert!(close(qualified_notes(&roll(24, 1, 1, &notes), 0).mean(), 0.0));
    }

    #[test]
    fn a_thirty_second_note_qualifies_at_any_resolution() {
        let at_24 = roll(24, 1, 1, &[(0, 0, 60, 3), (0, 3, 62, 2)]);
        assert!(close(qualified_notes(&at_24, 0).mean(), 0.5));
        let at_8 = roll(8, 1, 1, &[(0, 0, 60, 1)]);
        assert!(close(qualified_notes(&at_8, 0).mean(), 1.0), "one step at 8 per beat is a 32nd");
        let at_16 = roll(16, 1, 1, &[(0, 0, 60, 1), (0, 1, 60, 2)]);
        assert_eq!(qualified_notes(&at_16, 0), Tally::of(1.0, 2.0));
    }

    #[test]
    fn empty_bars_per_track() {
        let rolled = roll(4, 2, 4, &[(0, 0, 60, 16), (0, 20, 60, 16), (1, 60, 40, 4)]);
        assert_eq!(empty_bars(&rolled, 0), Tally::of(1.0, 4.0), "bar 3 alone is empty; the tied note fills bar 2");
        assert_eq!(empty_bars(&rolled, 1), Tally::of(3.0, 4.0));
    }

    #[test]
    fn polyphony_needs_more_than_two_pitches_across_tracks() {
        // Steps 0-3: a triad over two tracks; 4-7: two pitches; 8-11: unison counts once.
        let notes = [
            (0, 0, 60, 4),
            (0, 0, 64, 4),
            (1, 0, 67, 4),
            (0, 4, 60, 4),
            (1, 4, 64, 4),
            (0, 8, 60, 4),
            (1, 8, 60, 4),
            (0, 8, 64, 4),
        ];
        let bar = roll(4, 2, 1, &notes);
        assert!(close(polyphony(&bar).mean(), 4.0 / 16.0));
    }

    #[test]
    fn pitch_class_entropy_runs_from_zero_to_log_twelve() {
        let one_class = roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 72, 4)]);
        assert!(close(pitch_class_entropy(&one_class), 0.0));
        let chromatic: Vec<_> = (0..12).map(|i| (0, i, 60 + i as u8, 1)).collect();
        assert!(close(pitch_class_entropy(&roll(4, 1, 1, &chromatic)), 12f64.log2()));
        let two_even = roll(4, 1, 1, &[(0, 0, 60, 1), (0, 1, 67, 1)]);
        assert!(close(pitch_class_entropy(&two_even), 1.0));
        assert!(pitch_class_entropy(&roll(4, 1, 1, &[])).is_none());
    }

    #[test]
    fn scale_consistency_finds_the_best_scale() {
        assert!(close(scale_consistency(&c_major_scale_in_eighths()), 1.0));
        assert_eq!(best_scale(&c_major_scale_in_eighths()).map(|(_, tonic, major)| (tonic, major)), Some((0, true)));
        let chromatic: Vec<_> = (0..12).map(|i| (0, i, 60 + i as u8, 1)).collect();
        assert!(close(scale_consistency(&roll(4, 1, 1, &chromatic)), 7.0 / 12.0));
        // A harmonic-minor A: G sharp is outside every major and natural-minor scale that holds the rest.
        let a_harmonic_minor: Vec<_> =
            [57, 59, 60, 62, 64, 65, 68, 69].iter().enumerate().map(|(i, &p)| (0, i * 2, p, 2)).collect();
        assert!(close(scale_consistency(&roll(4, 1, 1, &a_harmonic_minor)), 7.0 / 8.0));
    }

    #[test]
    fn the_tonal_centroid_of_one_pitch_class_lies_on_all_three_circles() {
        let mut chroma = [0.0; 12];
        chroma[0] = 3.0;
        let centroid = tonal_centroid(&chroma).unwrap();
        let expected = [0.0, 1.0, 0.0, 1.0, 0.0, 0.5];
        assert!(centroid.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12), "{centroid:?}");
        assert!(tonal_centroid(&[0.0; 12]).is_none());
    }

    #[test]
    fn tonal_distance_is_zero_in_unison_and_known_for_a_fifth() {
        let unison = roll(4, 2, 1, &[(0, 0, 60, 16), (1, 0, 48, 16)]);
        assert!(close(tonal_distance(&unison, 0, 1).mean(), 0.0));
        // G is pitch class 7: on each circle it lies 7 steps of that circle's angle from C, and
        // two points at radius r an angle a apart are r * sqrt(2 (1 - cos a)) apart.
        let fifth = roll(4, 2, 1, &[(0, 0, 67, 16), (1, 0, 60, 16)]);
        let squared_chord = |r: f64, angle: f64| r * r * 2.0 * (1.0 - angle.cos());
        let pi = std::f64::consts::PI;
        let expected = (squared_chord(1.0, 7.0 * 7.0 * pi / 6.0)
            + squared_chord(1.0, 7.0 * 3.0 * pi / 2.0)
            + squared_chord(0.5, 7.0 * 2.0 * pi / 3.0))
        .sqrt();
        assert!(close(tonal_distance(&fifth, 0, 1).mean(), expected));
        assert_eq!(tonal_distance(&fifth, 0, 1).count, 4.0, "four beats where both sound");
    }

    #[test]
    fn tonal_distance_skips_beats_where_one_track_rests() {
        let half = roll(4, 2, 1, &[(0, 0, 67, 16), (1, 0, 60, 8)]);
        assert_eq!(tonal_distance(&half, 0, 1).count, 2.0);
    }

    #[test]
    fn groove_consistency_compares_adjacent_bars() {
        let same: Vec<_> = (0..2).flat_map(|bar| [(0, bar * 16, 60, 4), (0, bar * 16 + 8, 62, 4)]).collect();
        assert!(close(groove_consistency(&roll(4, 1, 2, &same)).mean(), 1.0));
        let shifted = roll(4, 1, 2, &[(0, 0, 60, 4), (0, 20, 60, 4)]);
        assert!(close(groove_consistency(&shifted).mean(), 1.0 - 2.0 / 16.0));
        assert!(groove_consistency(&roll(4, 1, 1, &[])).mean().is_none());
    }

    #[test]
    fn copies_are_found_up_to_transposition_and_silence_is_no_copy() {
        let training = [roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 64, 12)]), roll(4, 1, 1, &[])];
        let generated = [
            roll(4, 1, 1, &[(0, 0, 65, 4), (0, 4, 69, 12)]),
            roll(4, 1, 1, &[(0, 0, 65, 4), (0, 4, 69, 8)]),
            roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 64, 4), (0, 8, 64, 8)]),
            roll(4, 1, 1, &[]),
        ];
        assert_eq!(copy_rate(&generated, &training), Tally::of(1.0, 3.0));
    }

    #[test]
    fn the_accumulator_averages_over_bars_not_rolls() {
        let mut metrics = MetricsAccumulator::default();
        metrics.add(&roll(4, 2, 1, &[(0, 0, 60, 16)]));
        metrics.add(&roll(4, 2, 3, &[(0, 0, 60, 48), (1, 0, 48, 48)]));
        let summary = metrics.summary();
        assert_eq!((summary.rolls, summary.bars), (2, 4));
        assert!(close(summary.tracks[1].empty_bars, 0.25));
        assert!(close(summary.empty_bars, 1.0 / 8.0));
        assert_eq!(summary.tonal_distance_pairs.len(), 1);
        assert!(close(summary.tonal_distance, 0.0));
    }
}
