//! How a band plays, heard as a drummer and a bass player hear it: what each lane of the kit
//! does and how hard, whether the kick lands on the downbeat and the snare on the backbeat,
//! whether the groove holds from bar to bar and breaks into fills where phrases end, and
//! whether the bass sits on the chord the comping plays. Pure functions over rolls; drums
//! are read by their General MIDI sounds, so a kit of lanes and one drum track of every
//! sound measure alike.

use super::chords::strong_beat_steps;
use super::Tally;
use crate::roll::drums::{lane_of, GENERAL_MIDI_LANES};
use crate::roll::Roll;
use serde::{Deserialize, Serialize};

/// General MIDI lanes by their place in [`GENERAL_MIDI_LANES`].
const KICK: usize = 0;
const SNARE: usize = 1;
const TOMS: usize = 3;

/// Onsets on drum tracks at `step`, as (lane, velocity).
fn drum_hits(roll: &Roll, step: usize) -> impl Iterator<Item = (usize, u8)> + '_ {
    let representation = roll.representation();
    (0..roll.track_count()).filter(|&t| representation.tracks[t].is_drum).flat_map(move |track| {
        roll.onsets_at(track, step)
            .iter()
            .enumerate()
            .filter(|(_, &v)| v > 0)
            .filter_map(move |(row, &velocity)| lane_of(representation.pitch_of_row(row)).map(|lane| (lane, velocity)))
    })
}

/// Per lane: hits per bar, and the velocities of the hits.
#[derive(Clone, Debug, Default, PartialEq)]
struct Lanes {
    hits: [Tally; GENERAL_MIDI_LANES.len()],
    velocities: [Vec<f64>; GENERAL_MIDI_LANES.len()],
}

/// The band measures of a set of rolls, accumulated.
#[derive(Clone, Debug, Default)]
pub struct BandAccumulator {
    lanes: Lanes,
    kick_on_downbeats: Tally,
    snare_on_backbeats: Tally,
    fills_at_phrase_ends: Tally,
    fills_elsewhere: Tally,
    bass_on_chord_tones: Tally,
}

/// One lane's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaneSummary {
    pub lane: String,
    /// Hits per bar, over every bar measured.
    pub hits_per_bar: f64,
    /// The standard deviation of the lane's velocities: 0 for a machine's all-equal hits.
    pub velocity_spread: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandSummary {
    pub lanes: Vec<LaneSummary>,
    /// Share of bars with a kick on the downbeat.
    pub kick_on_downbeats: Option<f64>,
    /// Share of backbeats (the even beats of a duple bar) with a snare, rim or clap.
    pub snare_on_backbeats: Option<f64>,
    /// Share of phrases whose last bar is a fill (see [`is_fill`]) ...
    pub fills_at_phrase_ends: Option<f64>,
    /// ... beside the share of their other bars that are.
    pub fills_elsewhere: Option<f64>,
    /// Share of strong beats where the bass sounds one of the pitch classes the comping
    /// sounds (where both sound, the comping at least two pitch classes).
    pub bass_on_chord_tones: Option<f64>,
}

impl BandAccumulator {
    /// Adds a roll cut into phrases of `phrase_bars` bars from its first bar.
    pub fn add(&mut self, roll: &Roll, phrase_bars: usize) {
        let representation = roll.representation();
        let steps_per_bar = representation.steps_per_bar();
        let steps_per_beat = representation.steps_per_beat();
        let has_drums = representation.tracks.iter().any(|t| t.is_drum);
        let bars = roll.bar_count();
        if has_drums {
            for bar in 0..bars {
                let mut per_lane = [0usize; GENERAL_MIDI_LANES.len()];
                for step in bar * steps_per_bar..(bar + 1) * steps_per_bar {
                    for (lane, velocity) in drum_hits(roll, step) {
                        per_lane[lane] += 1;
                        self.lanes.velocities[lane].push(f64::from(velocity));
                    }
                }
                for (tally, hits) in self.lanes.hits.iter_mut().zip(per_lane) {
                    tally.add(Tally::of(hits as f64, 1.0));
                }
                let kick = drum_hits(roll, bar * steps_per_bar).any(|(lane, _)| lane == KICK);
                self.kick_on_downbeats.add(Tally::of(f64::from(u8::from(kick)), 1.0));
                if representation.meter.numerator.is_multiple_of(2) {
                    for beat in (1..representation.beats_per_bar()).step_by(2) {
                        let snare =
                            drum_hits(roll, bar * steps_per_bar + beat * steps_per_beat).any(|(l, _)| l == SNARE);
                        self.snare_on_backbeats.add(Tally::of(f64::from(u8::from(snare)), 1.0));
                    }
                }
            }
            for phrase in (0..bars / phrase_bars.max(1)).map(|p| p * phrase_bars..(p + 1) * phrase_bars) {
                let last = phrase.end - 1;
                for bar in phrase.clone() {
                    let fill = f64::from(u8::from(is_fill(roll, bar, phrase.clone())));
                    match bar == last {
                        true => self.fills_at_phrase_ends.add(Tally::of(fill, 1.0)),
                        false => self.fills_elsewhere.add(Tally::of(fill, 1.0)),
                    }
                }
            }
        }
        self.bass_on_chord_tones.add(bass_on_chord_tones(roll));
    }

    pub fn summary(&self) -> BandSummary {
        let lanes = GENERAL_MIDI_LANES
            .iter()
            .enumerate()
            .filter(|(lane, _)| self.lanes.hits[*lane].sum > 0.0)
            .map(|(lane, spec)| LaneSummary {
                lane: spec.name.to_string(),
                hits_per_bar: self.lanes.hits[lane].mean().unwrap_or(0.0),
                velocity_spread: standard_deviation(&self.lanes.velocities[lane]),
            })
            .collect();
        BandSummary {
            lanes,
            kick_on_downbeats: self.kick_on_downbeats.mean(),
            snare_on_backbeats: self.snare_on_backbeats.mean(),
            fills_at_phrase_ends: self.fills_at_phrase_ends.mean(),
            fills_elsewhere: self.fills_elsewhere.mean(),
            bass_on_chord_tones: self.bass_on_chord_tones.mean(),
        }
    }
}

fn standard_deviation(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some((values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt())
}

/// Whether `bar` of `phrase` is a fill: the toms play, or the kit breaks from the phrase's
/// groove — its onset pattern differs from every other bar of the phrase in more than a
/// quarter of its steps.
pub fn is_fill(roll: &Roll, bar: usize, phrase: std::ops::Range<usize>) -> bool {
    let steps_per_bar = roll.representation().steps_per_bar();
    let pattern = |bar: usize| -> Vec<bool> {
        (bar * steps_per_bar..(bar + 1) * steps_per_bar).map(|step| drum_hits(roll, step).next().is_some()).collect()
    };
    let toms =
        (bar * steps_per_bar..(bar + 1) * steps_per_bar).any(|step| drum_hits(roll, step).any(|(l, _)| l == TOMS));
    let own = pattern(bar);
    let breaks = phrase.filter(|&other| other != bar).all(|other| {
        let differing = own.iter().zip(pattern(other)).filter(|(a, b)| **a != *b).count();
        4 * differing > steps_per_bar
    });
    toms || breaks
}

/// Strong beats where the bass (the pitched track named as one) sounds a pitch class the
/// other pitched tracks sound, out of those where the bass sounds and they sound two or more.
pub fn bass_on_chord_tones(roll: &Roll) -> Tally {
    let representation = roll.representation();
    let Some(bass) = representation.tracks.iter().position(|t| !t.is_drum && t.name.to_lowercase().contains("bass"))
    else {
        return Tally::default();
    };
    let comping: Vec<usize> =
        (0..roll.track_count()).filter(|&t| t != bass && !representation.tracks[t].is_drum).collect();
    let classes = |track: usize, step: usize| -> u16 {
        roll.sounding_at(track, step)
            .iter()
            .enumerate()
            .filter(|(_, &on)| on)
            .fold(0u16, |set, (row, _)| set | 1 << (representation.pitch_of_row(row) % 12))
    };
    let mut tally = Tally::default();
    for step in (0..roll.steps()).step_by(strong_beat_steps(representation).min(representation.steps_per_beat() * 2)) {
        let bass_classes = classes(bass, step);
        let chord = comping.iter().fold(0u16, |set, &t| set | classes(t, step));
        if bass_classes != 0 && chord.count_ones() >= 2 {
            tally.add(Tally::of(f64::from(u8::from(bass_classes & chord != 0)), 1.0));
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::{GridNote, Meter, Representation, TrackSpec};
    use std::sync::Arc;

    /// Two 4-bar phrases of a rock groove (kick on 1 and 3, snare on 2 and 4, eighth hats
    /// loud and soft), the second phrase ending in a tom fill; a bass on C under a C triad,
    /// except in the last bar, where it plays F#.
    fn band() -> Roll {
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 4,
            lowest_pitch: 30,
            pitch_count: 50,
            tracks: vec![
                TrackSpec::new("Comp", 0),
                TrackSpec::new("Bass", 1),
                TrackSpec::drums("Kick", vec![36]),
                TrackSpec::drums("Snare", vec![38]),
                TrackSpec::drums("Hi-hat", vec![42]),
                TrackSpec::drums("Toms", vec![45, 48]),
            ],
        });
        let mut roll = Roll::new(representation, 8 * 16);
        let mut hit = |track: usize, start: usize, pitch: u8, length: usize, velocity: u8| {
            roll.place(GridNote { track, start, pitch, length, velocity }).unwrap();
        };
        for bar in 0..8 {
            let at = bar * 16;
            for pitch in [60, 64, 67] {
                hit(0, at, pitch, 16, 70);
            }
            hit(1, at, if bar == 7 { 42 } else { 36 }, 16, 90);
            if bar == 7 {
                for step in [0, 2, 4, 6, 8, 10, 12, 14] {
                    hit(5, at + step, if step < 8 { 48 } else { 45 }, 1, 100);
                }
                continue;
            }
            for beat in 0..4 {
                hit(if beat % 2 == 0 { 2 } else { 3 }, at + beat * 4, if beat % 2 == 0 { 36 } else { 38 }, 1, 110);
            }
            for eighth in 0..8 {
                hit(4, at + eighth * 2, 42, 1, if eighth % 2 == 0 { 100 } else { 60 });
            }
        }
        roll
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn a_rock_groove_reads_as_a_drummer_reads_it() {
        let mut band_measures = BandAccumulator::default();
        band_measures.add(&band(), 4);
        let summary = band_measures.summary();
        let lanes: Vec<(&str, f64)> = summary.lanes.iter().map(|l| (l.lane.as_str(), l.hits_per_bar)).collect();
        assert_eq!(lanes, vec![("Kick", 14.0 / 8.0), ("Snare", 14.0 / 8.0), ("Hi-hat", 7.0), ("Toms", 1.0)]);
        assert!(close(summary.lanes[2].velocity_spread, 20.0), "hats at 100 and 60");
        assert!(close(summary.lanes[0].velocity_spread, 0.0));
        assert!(close(summary.kick_on_downbeats, 7.0 / 8.0));
        assert!(close(summary.snare_on_backbeats, 14.0 / 16.0));
        assert!(close(summary.fills_at_phrase_ends, 0.5), "one phrase of two ends in a fill");
        assert!(close(summary.fills_elsewhere, 0.0));
        assert!(close(summary.bass_on_chord_tones, 14.0 / 16.0), "the F# bar's two strong beats miss");
    }

    #[test]
    fn a_roll_without_drums_or_bass_has_no_band_figures() {
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 60,
            pitch_count: 12,
            tracks: vec![TrackSpec::new("Melody", 0)],
        });
        let mut accumulator = BandAccumulator::default();
        accumulator.add(&Roll::new(representation, 32), 4);
        let summary = accumulator.summary();
        assert!(summary.lanes.is_empty());
        assert!(summary.kick_on_downbeats.is_none() && summary.bass_on_chord_tones.is_none());
    }
}
