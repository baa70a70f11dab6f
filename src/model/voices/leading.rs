//! Voice-leading scores: learned numbers for how a candidate note stands to the notes around
//! it — the voice's own interval from its last note, and for every voice above it the
//! spacing between them and whether the pair moves in parallel perfect intervals.
//!
//! The network proper scores pitches in absolute terms and sees the other voices only
//! through embeddings, so a rule that is simple in relative terms ("do not follow the
//! soprano's fifth into another fifth") is a hard function for it to learn: the shipped
//! model wrote ten times Bach's parallels although its lines were right. These relations,
//! added to a choice's score as one table entry each, are a log-linear model's features: at
//! its maximum-likelihood fit the model's expected count of each feature equals the data's
//! (the gradient of an entry is exactly that difference), so the parallels, crossings and
//! leaps it writes are driven towards the corpus's own rates. A zero table changes nothing,
//! so a trained model can be fine-tuned with them from where it stands.
//!
//! Pitches here are window rows as the network's state carries them: `row + 1`, 0 silent.
//! A voice's "last" pitch is the last it sounded before the step, across rests (as a
//! listener hears a line, and as the metrics measure leaps and parallels); 0 before its
//! first note of the phrase.

use super::tokens::{HOLD, NEW_NOTE};

/// A voice's own interval is told apart up to two octaves either way.
const MOTION_RANGE: i32 = 24;
/// Own motion: the phrase's first note, hold, then each interval from -MOTION_RANGE to
/// +MOTION_RANGE.
const MOTION_ENTRIES: usize = 2 + 2 * MOTION_RANGE as usize + 1;
const FIRST_NOTE: u32 = 0;
const HOLDING: u32 = 1;

/// Interval classes before (12, or 12 for "not both sounded yet") x after (12) x each voice's
/// direction (down, same, up): 13 x 12 x 3 x 3, and one entry for an upper voice at rest.
const PARALLEL_ENTRIES: usize = 13 * 12 * 3 * 3 + 1;
const UPPER_SILENT_PARALLEL: u32 = (PARALLEL_ENTRIES - 1) as u32;
/// Spacing (upper minus lower) from an octave crossed to three octaves apart, and one entry
/// for an upper voice at rest.
const SPACING_LOW: i32 = -12;
const SPACING_HIGH: i32 = 36;
const SPACING_ENTRIES: usize = (SPACING_HIGH - SPACING_LOW + 1) as usize + 1;
const UPPER_SILENT_SPACING: u32 = (SPACING_ENTRIES - 1) as u32;
const PAIR_ENTRIES: usize = PARALLEL_ENTRIES + SPACING_ENTRIES;

/// Where each voice's and each pair's entries lie in the one flat table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeadingLayout {
    pub voices: usize,
    pub pitches: usize,
}

impl LeadingLayout {
    /// Rows of the table [entries, 1].
    pub fn entries(&self) -> usize {
        self.voices * MOTION_ENTRIES + self.voices * self.voices.saturating_sub(1) / 2 * PAIR_ENTRIES
    }

    /// Entries summed for each candidate of voice `v`: its motion, and two per voice above.
    pub fn picks(&self, v: usize) -> usize {
        1 + 2 * v
    }

    /// The candidates that get these scores: hold, then a new note at each row (a rest has
    /// no pitch to relate, and keeps the network's score alone).
    pub fn candidates(&self) -> usize {
        1 + self.pitches
    }

    fn pair_base(&self, upper: usize, lower: usize) -> u32 {
        (self.voices * MOTION_ENTRIES + (lower * (lower - 1) / 2 + upper) * PAIR_ENTRIES) as u32
    }

    /// For voice `v`, every candidate's entries in order (hold, then rows 0..pitches; `picks(v)`
    /// each), pushed to `out`. `last` is every voice's last pitch before the step; `now` the
    /// voices above `v` at this step (0 resting).
    pub fn candidate_entries(&self, v: usize, last: &[u32], now: &[u32], out: &mut impl Extend<u32>) {
        for candidate in 0..self.candidates() as u32 {
            self.entries_of(v, candidate, last, now, out);
        }
    }

    /// One candidate's `picks(v)` entries (see `candidate_entries`).
    fn entries_of(&self, v: usize, candidate: u32, last: &[u32], now: &[u32], out: &mut impl Extend<u32>) {
        let own_before = last[v];
        let token = if candidate == 0 { HOLD } else { NEW_NOTE + candidate - 1 };
        // The pitch the voice would sound (hold keeps its own; a voice that rested cannot
        // hold, and that choice is barred, so what it reads does not matter).
        let sounding = if token == HOLD { own_before } else { candidate };
        let motion = if token == HOLD {
            HOLDING
        } else if own_before == 0 {
            FIRST_NOTE
        } else {
            2 + ((sounding as i32 - own_before as i32).clamp(-MOTION_RANGE, MOTION_RANGE) + MOTION_RANGE) as u32
        };
        out.extend([(v * MOTION_ENTRIES) as u32 + motion]);
        for upper in 0..v {
            let base = self.pair_base(upper, v);
            let (parallel, spacing) = pair_entries(last[upper], own_before, now[upper], sounding);
            out.extend([base + parallel, base + PARALLEL_ENTRIES as u32 + spacing]);
        }
    }
}

/// The parallel and spacing entries of a pair: the upper voice went from `upper_before` to
/// `upper_now`, the lower from `lower_before` to `lower_now` (pitches as `row + 1`; 0 for
/// none yet before, resting now).
fn pair_entries(upper_before: u32, lower_before: u32, upper_now: u32, lower_now: u32) -> (u32, u32) {
    if upper_now == 0 || lower_now == 0 {
        return (UPPER_SILENT_PARALLEL, UPPER_SILENT_SPACING);
    }
    let (a, b, c, x) = (upper_before as i32, lower_before as i32, upper_now as i32, lower_now as i32);
    let after = (c - x).rem_euclid(12) as u32;
    let (before, upper_direction, lower_direction) =
        if a > 0 && b > 0 { ((a - b).rem_euclid(12) as u32, direction(c - a), direction(x - b)) } else { (12, 1, 1) };
    let parallel = ((before * 12 + after) * 3 + upper_direction) * 3 + lower_direction;
    let spacing = ((c - x).clamp(SPACING_LOW, SPACING_HIGH) - SPACING_LOW) as u32;
    (parallel, spacing)
}

fn direction(interval: i32) -> u32 {
    (interval.signum() + 1) as u32
}

/// Each voice's last pitch after a step that sounded `sounding` (0 where a voice rests).
pub fn remember(last: &mut [u32], sounding: &[u32]) {
    last.iter_mut().zip(sounding).filter(|(_, &now)| now > 0).for_each(|(last, &now)| *last = now);
}

/// Adds voice `v`'s voice-leading scores to its `scores` over every class (rest first, which
/// gets none), from the flat `table`. With `strikes` (a drum lane's sounds, by row), new notes
/// at the other rows are left alone: the lane cannot play them, and a lane low in a large band
/// relates each candidate to every voice above it, which is most of a step's scoring.
#[allow(clippy::too_many_arguments)]
pub fn add_scores(
    layout: &LeadingLayout,
    table: &[f32],
    v: usize,
    last: &[u32],
    now: &[u32],
    strikes: Option<&[bool]>,
    scores: &mut [f32],
    entries: &mut Vec<u32>,
) {
    for (candidate, score) in scores[HOLD as usize..].iter_mut().enumerate().take(layout.candidates()) {
        if candidate > 0 && strikes.is_some_and(|rows| !rows[candidate - 1]) {
            continue;
        }
        entries.clear();
        layout.entries_of(v, candidate as u32, last, now, entries);
        *score += entries.iter().map(|&e| table[e as usize]).sum::<f32>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(layout: &LeadingLayout, v: usize, before: &[u32], now: &[u32]) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        layout.candidate_entries(v, before, now, &mut out);
        out.chunks_exact(layout.picks(v)).map(<[u32]>::to_vec).collect()
    }

    #[test]
    fn every_entry_lies_in_the_table_and_pairs_do_not_overlap() {
        let layout = LeadingLayout { voices: 4, pitches: 44 };
        let mut seen = vec![false; layout.entries()];
        for v in 0..4 {
            for before in [[0u32, 0, 0, 0], [40, 30, 20, 10], [1, 44, 1, 44], [44, 44, 44, 44]] {
                for now in [[0u32, 0, 0], [44, 1, 22], [1, 1, 1]] {
                    for e in entries(&layout, v, &before, &now).into_iter().flatten() {
                        seen[e as usize] = true;
                    }
                }
            }
        }
        assert!(seen.iter().filter(|&&s| s).count() > 100);
        assert_eq!(layout.entries(), 4 * MOTION_ENTRIES + 6 * PAIR_ENTRIES);
        let bases: Vec<u32> =
            [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)].iter().map(|&(u, v)| layout.pair_base(u, v)).collect();
        assert!(bases.windows(2).all(|w| w[1] - w[0] == PAIR_ENTRIES as u32), "{bases:?}");
    }

    #[test]
    fn parallel_fifths_octaves_and_contrary_motion_read_apart() {
        // Upper voice from row 20 to 22; lower from 13 (a fifth below) to 15: parallel fifths.
        let (fifths, _) = pair_entries(21, 14, 23, 16);
        // The same, an octave under: parallel octaves (interval class 0 both times).
        let (octaves, _) = pair_entries(21, 9, 23, 11);
        // Lower voice moving down instead: contrary motion into a different interval.
        let (contrary, _) = pair_entries(21, 14, 23, 12);
        // Interval classes 7 -> 7, both up.
        assert_eq!(fifths, ((7 * 12 + 7) * 3 + 2) * 3 + 2);
        assert_eq!(octaves, 2 * 3 + 2);
        assert_ne!(contrary, fifths);
        assert_eq!(
            pair_entries(21, 0, 23, 16).0,
            ((12 * 12 + 7) * 3 + 1) * 3 + 1,
            "the lower voice was silent: no motion to compare"
        );
        assert_eq!(pair_entries(0, 14, 0, 16), (UPPER_SILENT_PARALLEL, UPPER_SILENT_SPACING));
    }

    #[test]
    fn spacing_tells_crossings_and_is_clipped() {
        assert_eq!(pair_entries(0, 0, 20, 20).1, 12, "unison");
        assert_eq!(pair_entries(0, 0, 20, 23).1, 9, "the lower voice above the upper: a crossing");
        assert_eq!(
            pair_entries(0, 0, 44, 1).1,
            (SPACING_HIGH - SPACING_LOW) as u32,
            "wider than three octaves reads as three"
        );
    }

    #[test]
    fn a_voices_own_motion_hold_and_first_note() {
        let layout = LeadingLayout { voices: 1, pitches: 44 };
        let from_row_9 = entries(&layout, 0, &[10], &[]);
        assert_eq!(from_row_9[0], vec![HOLDING]);
        // Candidate row 9 (a repeated note) is interval 0; row 12 is a minor third up.
        assert_eq!(from_row_9[1 + 9], vec![2 + MOTION_RANGE as u32]);
        assert_eq!(from_row_9[1 + 12], vec![2 + MOTION_RANGE as u32 + 3]);
        assert_eq!(from_row_9[1 + 43], vec![2 + 2 * MOTION_RANGE as u32], "past two octaves is clipped");
        assert!(entries(&layout, 0, &[0], &[])[1..].iter().all(|e| e == &vec![FIRST_NOTE]));
    }

    #[test]
    fn the_last_pitch_is_kept_across_rests() {
        let mut last = vec![0u32; 3];
        remember(&mut last, &[5, 0, 9]);
        remember(&mut last, &[0, 0, 7]);
        assert_eq!(last, [5, 0, 7]);
    }

    #[test]
    fn scores_add_the_picked_entries_and_leave_rest_alone() {
        let layout = LeadingLayout { voices: 2, pitches: 3 };
        let table: Vec<f32> = (0..layout.entries()).map(|i| i as f32 * 1e-3).collect();
        let mut scores = vec![1.0f32; 2 + 3];
        let mut scratch = Vec::new();
        add_scores(&layout, &table, 1, &[2, 1], &[3], None, &mut scores, &mut scratch);
        assert_eq!(scores[0], 1.0, "rest keeps its score");
        let picked = entries(&layout, 1, &[2, 1], &[3]);
        for (class, picks) in picked.iter().enumerate() {
            let expected = 1.0 + picks.iter().map(|&e| table[e as usize]).sum::<f32>();
            assert!((scores[1 + class] - expected).abs() < 1e-6);
        }
        let mut lane = vec![1.0f32; 2 + 3];
        add_scores(&layout, &table, 1, &[2, 1], &[3], Some(&[false, true, false]), &mut lane, &mut scratch);
        assert_eq!([lane[0], lane[2], lane[4]], [1.0; 3], "rest, and the rows the lane cannot strike");
        assert_eq!([lane[1], lane[3]], [scores[1], scores[3]], "hold and the lane's own sound, scored in full");
    }
}
