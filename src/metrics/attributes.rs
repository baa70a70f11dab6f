//! The musical attributes that named knobs steer, measured on a phrase as a listener would
//! describe it: how many notes, how high, how much off the beat, how far the lines jump, how
//! wide the parts stand and how many sound at once. The trainer learns one latent direction
//! per attribute from the corpus (see `cargo xtask knobs`), and the same functions check,
//! by sweeping each knob, that it does what its name says.

use super::voices::{voice, STEP_SEMITONES};
use crate::roll::Roll;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attribute {
    /// Onsets per bar, every part together.
    NoteDensity,
    /// Mean pitch of the onsets (MIDI number).
    Register,
    /// Share of onsets that fall between beats.
    RhythmicActivity,
    /// Share of each part's moves that are leaps (more than a whole tone).
    Leaps,
    /// Semitones between the highest and lowest sounding part, over steps where two or more sound.
    Spacing,
    /// Parts sounding at once, over steps where any sounds.
    Polyphony,
    /// Mean velocity of the onsets: how hard the band plays (a model that learnt loudness).
    Intensity,
    /// Tom hits per bar: the fills a drummer plays (a model with a drum kit).
    Fills,
}

impl Attribute {
    pub const ALL: [Attribute; 8] = [
        Attribute::NoteDensity,
        Attribute::Register,
        Attribute::RhythmicActivity,
        Attribute::Leaps,
        Attribute::Spacing,
        Attribute::Polyphony,
        Attribute::Intensity,
        Attribute::Fills,
    ];

    /// What a producer sees on the knob.
    pub fn knob_name(self) -> &'static str {
        match self {
            Attribute::NoteDensity => "Note density",
            Attribute::Register => "Register",
            Attribute::RhythmicActivity => "Rhythmic activity",
            Attribute::Leaps => "Step ↔ leap",
            Attribute::Spacing => "Spacing",
            Attribute::Polyphony => "Polyphony",
            Attribute::Intensity => "Intensity",
            Attribute::Fills => "Fills",
        }
    }

    pub fn index(self) -> usize {
        Attribute::ALL.iter().position(|&a| a == self).expect("every attribute is in ALL")
    }

    /// Spacing and polyphony describe several parts together; a one-part model has neither.
    pub fn needs_parts(self) -> bool {
        matches!(self, Attribute::Spacing | Attribute::Polyphony)
    }

    /// The attribute of a phrase; `None` where it is undefined (no notes, no moves, never
    /// two parts at once, no toms to fill with). Pitch, leaps, spacing and polyphony are the
    /// pitched parts': a drum's note number is its sound, not a pitch.
    pub fn measure(self, roll: &Roll) -> Option<f64> {
        let all_notes = roll.notes();
        let representation = roll.representation();
        let pitched = |track: usize| !representation.tracks[track].is_drum;
        let notes: Vec<_> = all_notes.iter().filter(|n| pitched(n.track)).collect();
        let mean = |values: &mut dyn Iterator<Item = f64>| {
            let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
            (count > 0).then(|| sum / count as f64)
        };
        match self {
            Attribute::NoteDensity => Some(all_notes.len() as f64 / roll.bar_count().max(1) as f64),
            Attribute::Register => mean(&mut notes.iter().map(|n| f64::from(n.pitch))),
            Attribute::RhythmicActivity => {
                let beat = usize::from(representation.steps_per_beat);
                mean(&mut all_notes.iter().map(|n| f64::from(u8::from(n.start % beat != 0))))
            }
            Attribute::Intensity => mean(&mut all_notes.iter().map(|n| f64::from(n.velocity))),
            Attribute::Fills => {
                let toms = |track: &crate::roll::TrackSpec| track.is_drum && track.sounds.iter().any(|&s| is_tom(s));
                representation.tracks.iter().any(toms).then(|| {
                    let hits = all_notes.iter().filter(|n| representation.tracks[n.track].is_drum && is_tom(n.pitch));
                    hits.count() as f64 / roll.bar_count().max(1) as f64
                })
            }
            Attribute::Leaps => mean(&mut (0..roll.track_count()).filter(|&t| pitched(t)).flat_map(|track| {
                let notes = voice(roll, track).notes;
                notes
                    .windows(2)
                    .map(|pair| f64::from(u8::from(pair[0].pitch.abs_diff(pair[1].pitch) > STEP_SEMITONES)))
                    .collect::<Vec<_>>()
            })),
            Attribute::Spacing | Attribute::Polyphony => {
                let voices: Vec<_> =
                    (0..roll.track_count()).filter(|&t| pitched(t)).map(|track| voice(roll, track).line).collect();
                let sounding = |step: usize| voices.iter().filter_map(|line| line[step]).collect::<Vec<u8>>();
                if self == Attribute::Polyphony {
                    mean(&mut (0..roll.steps()).map(sounding).filter(|s| !s.is_empty()).map(|s| s.len() as f64))
                } else {
                    mean(
                        &mut (0..roll.steps())
                            .map(sounding)
                            .filter(|s| s.len() > 1)
                            .map(|s| f64::from(s.iter().max().unwrap() - s.iter().min().unwrap())),
                    )
                }
            }
        }
    }
}

/// Whether a General MIDI percussion note is a tom, the drum a fill runs over.
fn is_tom(sound: u8) -> bool {
    crate::roll::drums::lane_of(sound).is_some_and(|lane| crate::roll::drums::GENERAL_MIDI_LANES[lane].name == "Toms")
}

/// Spearman's rank correlation (ties share their mean rank); `None` for fewer than two
/// pairs or a constant side.
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    fn ranks(values: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let mut ranks = vec![0.0; values.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
                j += 1;
            }
            for &k in &order[i..=j] {
                ranks[k] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        ranks
    }
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let (rx, ry) = (ranks(xs), ranks(ys));
    let mean = (xs.len() - 1) as f64 / 2.0;
    let (mut covariance, mut vx, mut vy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        covariance += (a - mean) * (b - mean);
        vx += (a - mean).powi(2);
        vy += (b - mean).powi(2);
    }
    (vx > 0.0 && vy > 0.0).then(|| covariance / (vx * vy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::GridNote;
    use std::sync::Arc;

    /// The test card's grid: two parts, 4 steps a beat, 4/4, pitches 48..72.
    fn roll(notes: &[(usize, usize, u8, usize)]) -> Roll {
        let mut roll = Roll::new(Arc::new(crate::model::card::test_card().representation), 32);
        for &(track, start, pitch, length) in notes {
            roll.place(GridNote { track, start, pitch, length, velocity: 90 }).unwrap();
        }
        roll
    }

    #[test]
    fn each_attribute_measures_what_its_name_says() {
        // Two bars. Top: C E G (leaps of 4 and 3 semitones), a rest, A off the beat; bottom: one long C.
        let phrase = roll(&[(0, 0, 60, 4), (0, 4, 64, 4), (0, 8, 67, 4), (0, 14, 69, 2), (1, 0, 48, 16)]);
        assert_eq!(Attribute::NoteDensity.measure(&phrase), Some(2.5), "five onsets in two bars");
        assert_eq!(Attribute::Register.measure(&phrase), Some((60.0 + 64.0 + 67.0 + 69.0 + 48.0) / 5.0));
        assert_eq!(Attribute::RhythmicActivity.measure(&phrase), Some(0.2), "one of five onsets between beats");
        assert_eq!(Attribute::Leaps.measure(&phrase), Some(2.0 / 3.0), "C-E and E-G leap, G-A steps");
        assert_eq!(
            Attribute::Spacing.measure(&phrase),
            Some((4.0 * 12.0 + 4.0 * 16.0 + 4.0 * 19.0 + 2.0 * 21.0) / 14.0),
            "over the 14 steps both sound"
        );
        assert_eq!(
            Attribute::Polyphony.measure(&phrase),
            Some((14.0 * 2.0 + 2.0) / 16.0),
            "two parts for 14 steps, one for the 2 rests above"
        );
        assert_eq!(Attribute::Register.measure(&roll(&[])), None, "no notes, no register");
    }

    #[test]
    fn a_band_is_measured_by_its_pitched_parts_its_loudness_and_its_toms() {
        use crate::roll::{Meter, Representation, TrackSpec};
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 30,
            pitch_count: 40,
            tracks: vec![
                TrackSpec::new("Bass", 0),
                TrackSpec::drums("Kick", vec![36]),
                TrackSpec::drums("Toms", vec![45, 48]),
            ],
        });
        let mut band = Roll::new(representation.clone(), 32);
        for (track, start, pitch, velocity) in
            [(0, 0, 40, 100), (0, 8, 52, 60), (1, 0, 36, 120), (1, 8, 36, 80), (2, 28, 48, 100), (2, 30, 45, 80)]
        {
            band.place(GridNote { track, start, pitch, length: 1, velocity }).unwrap();
        }
        assert_eq!(Attribute::Register.measure(&band), Some(46.0), "the bass's pitches, not the drums' sounds");
        assert_eq!(Attribute::Leaps.measure(&band), Some(1.0), "the bass leaps; drums have no leaps");
        assert_eq!(Attribute::NoteDensity.measure(&band), Some(3.0), "every hit counts: six in two bars");
        assert_eq!(Attribute::Intensity.measure(&band), Some(90.0));
        assert_eq!(Attribute::Fills.measure(&band), Some(1.0), "two tom hits in two bars");
        assert_eq!(Attribute::Fills.measure(&roll(&[(0, 0, 60, 4)])), None, "no toms to fill with");
        assert_eq!(Attribute::Fills.measure(&Roll::new(representation, 16)), Some(0.0), "toms, silent");
    }

    #[test]
    fn spearman_is_one_for_any_rising_curve_and_shares_ties() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 10.0, 100.0, 1000.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 2.0, 3.0]).unwrap() - 0.9487).abs() < 1e-3);
        assert_eq!(spearman(&[1.0, 2.0], &[5.0, 5.0]), None);
    }
}
