//! Swing: eighth notes played long-short. A 16th grid cannot hold a swung eighth (two thirds
//! of the way through the beat) or a triplet's middle note (a third of the way), so a swung
//! part read onto it would be bent into a stiff 16th rhythm — a shuffle learnt as
//! "one, e-and, a". Instead a swung part is read straight (each beat's first two thirds onto
//! its first half, its last third onto its second half), the model learns the groove, and the
//! producer's *Swing* plays it swung again by the same warp. One rule both ways: a file
//! swung at 66 % and played at 66 % sounds as it was written, triplets included.

use super::midi_file::Score;

/// Where the off-beat eighth falls, as a percentage of the beat: 50 is straight, 66 the
/// triplet shuffle (exactly two thirds, as drum machines name it), 75 the dotted swing of
/// older jazz (the most a drum machine's swing goes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Swing(u8);

impl Swing {
    pub const STRAIGHT: Swing = Swing(50);
    pub const MOST: u8 = 75;
    /// The most swing delays a note: the off-beat eighth at 75 %, a quarter of a beat.
    pub const MOST_DELAY_QUARTERS: f64 = 0.25;

    /// `percent` held to 50..=75.
    pub fn new(percent: u8) -> Swing {
        Swing(percent.clamp(Swing::STRAIGHT.0, Swing::MOST))
    }

    pub fn percent(self) -> u8 {
        self.0
    }

    const TRIPLET: u8 = 66;

    fn ratio(self) -> f64 {
        match self.0 {
            Swing::TRIPLET => 2.0 / 3.0,
            percent => f64::from(percent) / 100.0,
        }
    }

    /// A straight position (in quarter notes from its bar's start) where the swung groove
    /// plays it. Each beat's first half stretches over `ratio` of the beat and its second
    /// half shrinks into the rest, so on-beat notes stay put and nothing changes order. A
    /// beat the bar cuts short (the last half beat of 5/8) is not swung: it has no partner.
    /// Positions past the bar fall in the bars after it, swung alike.
    pub fn place(self, quarters: f64, bar_quarters: f64) -> f64 {
        if self == Swing::STRAIGHT || bar_quarters <= 0.0 {
            return quarters;
        }
        let bars = (quarters / bar_quarters).floor();
        let within = quarters - bars * bar_quarters;
        let beat = within.floor();
        if beat + 1.0 > bar_quarters + 1e-9 {
            return quarters;
        }
        bars * bar_quarters + beat + warp(within - beat, 0.5, self.ratio())
    }
}

impl Default for Swing {
    fn default() -> Self {
        Swing::STRAIGHT
    }
}

impl TryFrom<u8> for Swing {
    type Error = String;

    fn try_from(percent: u8) -> Result<Swing, String> {
        match (Swing::STRAIGHT.0..=Swing::MOST).contains(&percent) {
            true => Ok(Swing(percent)),
            false => Err(format!("swing {percent} %: from 50 (straight) to {} %", Swing::MOST)),
        }
    }
}

impl From<Swing> for u8 {
    fn from(swing: Swing) -> u8 {
        swing.0
    }
}

/// The piecewise-linear map of a beat (0..1) that takes `from` to `to`.
fn warp(phase: f64, from: f64, to: f64) -> f64 {
    match phase < from {
        true => phase * to / from,
        false => to + (phase - from) * (1.0 - to) / (1.0 - from),
    }
}

/// The channels of `score` whose off-beat eighths land late, with where they land (the
/// median, as a share of the beat). Of the onsets a channel has on a beat's second half, most
/// lie at 0.58–0.8 of the beat (a swung eighth at 0.6–0.67, a triplet's last third at 0.67,
/// the dotted swing of older jazz at 0.75) rather than in its middle (0.44–0.56, a straight
/// eighth), with at least 6 in either place, and the channel plays no 16th grid (onsets at
/// 0.2–0.3 of the beat, which straight 16ths at 0.75 come with: fewer than a quarter as many
/// as the late ones). A strummed chord's notes, a few ticks apart each, count once. Swing is
/// a part's, not a song's: a jazz ride swings over straight comping.
pub fn swung_channels(score: &Score) -> Vec<(u8, f64)> {
    let tpq = u64::from(score.ticks_per_quarter.max(1));
    let mut channels: Vec<u8> = score.notes.iter().map(|n| n.channel).collect();
    channels.sort_unstable();
    channels.dedup();
    channels
        .into_iter()
        .filter_map(|channel| {
            let (mut straight, mut late, mut sixteenths, mut last) = (0usize, Vec::new(), 0usize, None);
            for note in score.notes.iter().filter(|n| n.channel == channel) {
                // A note within a twelfth of a beat of the one before is the same strum.
                if last.replace(note.start).is_some_and(|at| note.start < at + tpq / 12) {
                    continue;
                }
                let phase = (note.start % tpq) as f64 / tpq as f64;
                if (0.44..=0.56).contains(&phase) {
                    straight += 1;
                } else if (0.58..=0.8).contains(&phase) {
                    late.push(phase);
                } else if (0.2..=0.3).contains(&phase) {
                    sixteenths += 1;
                }
            }
            let swings = straight + late.len() >= 6 && late.len() > straight && sixteenths * 4 < late.len();
            swings.then(|| {
                late.sort_by(f64::total_cmp);
                (channel, late[late.len() / 2])
            })
        })
        .collect()
}

/// Whether a grid of `steps_per_quarter` steps cannot hold an off-beat at `late` of the beat:
/// it lies more than a quarter step from the nearest step. A 16th grid holds the dotted swing
/// (0.75) as it holds a dotted rhythm, but not a shuffle (0.67); a grid of 12 a beat holds
/// both, and reads no part straight.
pub fn is_off_grid(late: f64, steps_per_quarter: f64) -> bool {
    let steps = late * steps_per_quarter;
    (steps - steps.round()).abs() > 0.25
}

/// A tick of a part swung with its off-beats at `late` of the beat, read straight: the
/// inverse of [`Swing::place`] at that swing, on the file's beats (quarter notes from its
/// start).
pub fn straighten(tick: u64, ticks_per_quarter: u16, late: f64) -> u64 {
    let tpq = u64::from(ticks_per_quarter.max(1));
    let (beat, within) = (tick / tpq, tick % tpq);
    let straight = warp(within as f64 / tpq as f64, late, 0.5);
    beat * tpq + (straight * tpq as f64).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::ScoreNote;

    #[test]
    fn swing_moves_only_the_off_beats_and_keeps_the_order() {
        let shuffle = Swing::new(66);
        assert_eq!(shuffle.place(0.0, 4.0), 0.0);
        let third = 2.0 / 3.0;
        assert!((shuffle.place(0.5, 4.0) - third).abs() < 1e-9, "the off-beat eighth is a triplet's last");
        assert!((shuffle.place(3.5, 4.0) - (3.0 + third)).abs() < 1e-9, "the last beat swings too");
        assert!((shuffle.place(4.5, 4.0) - (4.0 + third)).abs() < 1e-9, "and the bar after");
        assert!((Swing::new(60).place(0.25, 4.0) - 0.3).abs() < 1e-9, "a 16th in the first half stretches");
        assert_eq!(shuffle.place(2.0, 4.0), 2.0, "beats stay");
        assert!((shuffle.place(2.5, 2.5) - 2.5).abs() < 1e-9);
        assert!((shuffle.place(2.25, 2.5) - 2.25).abs() < 1e-9, "5/8's last half beat has no partner");
        assert_eq!(Swing::STRAIGHT.place(0.75, 4.0), 0.75);
        let positions: Vec<f64> = (0..=32).map(|i| Swing::new(75).place(f64::from(i) / 8.0, 4.0)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert_eq!(Swing::new(99), Swing::new(75));
        assert_eq!(Swing::new(0), Swing::STRAIGHT);
        assert!(Swing::try_from(76).is_err() && Swing::try_from(49).is_err());
    }

    #[test]
    fn a_triplet_groove_read_straight_plays_back_as_written() {
        // Triplets at 0, 160 and 320 ticks of a 480-tick beat, read straight, are the 16th
        // grid's steps 0, 1 and 2; swung at 2/3 they are triplets again.
        let (tpq, late) = (480u16, 2.0 / 3.0);
        let straight: Vec<u64> = [0u64, 160, 320, 480].iter().map(|&t| straighten(t, tpq, late)).collect();
        assert_eq!(straight, vec![0, 120, 240, 480]);
        for (step, tick) in [(1u32, 160.0), (2, 320.0), (4, 480.0)] {
            let swung = Swing::new(66).place(f64::from(step) / 4.0, 4.0);
            assert!((swung * 480.0 - tick).abs() < 1e-6, "step {step}: {swung}");
        }
        assert_eq!(straighten(0, tpq, 0.6), 0);
        assert_eq!(straighten(288, tpq, 0.6), 240, "a 60 % swing's off-beat is the beat's middle");
    }

    fn note(channel: u8, start: u64) -> ScoreNote {
        ScoreNote { track: 0, channel, pitch: 42, velocity: 90, start, end: start + 60 }
    }

    #[test]
    fn late_off_beats_swing_and_sixteenths_do_not() {
        let swung: Vec<ScoreNote> =
            (0..8u64).flat_map(|beat| [note(9, beat * 480), note(9, beat * 480 + 320)]).collect();
        let sixteenths: Vec<ScoreNote> = (0..32u64).map(|i| note(1, i * 120)).collect();
        let score = Score {
            ticks_per_quarter: 480,
            tempos: Vec::new(),
            meters: Vec::new(),
            notes: [swung, sixteenths].concat(),
            track_names: vec![String::new()],
            programs: [None; 16],
            end: 8 * 480,
            unterminated_notes: 0,
        };
        let found = swung_channels(&score);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 9);
        assert!((found[0].1 - 2.0 / 3.0).abs() < 1e-9 && is_off_grid(found[0].1, 4.0));
        assert!(!is_off_grid(0.75, 4.0), "a dotted swing is on a 16th grid");
        assert!(!is_off_grid(2.0 / 3.0, 12.0) && !is_off_grid(2.0 / 3.0, 24.0), "a triplet grid holds a shuffle");
    }
}
