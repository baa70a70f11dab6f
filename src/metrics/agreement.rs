//! How far a written roll agrees with a reference one — a clip as the model reconstructs it,
//! a chorale as the model harmonises its melody — at the level a listener checks: the same
//! notes struck at the same steps, the same chord on each beat.

use crate::roll::Roll;
use std::collections::HashSet;

/// Note F1: notes match when they start at the same step on the same track at the same pitch
/// (lengths aside). 1 for two silent rolls.
pub fn note_f1(reference: &Roll, written: &Roll) -> f64 {
    let onsets = |roll: &Roll| roll.notes().into_iter().map(|n| (n.track, n.start, n.pitch)).collect::<HashSet<_>>();
    let (expected, got) = (onsets(reference), onsets(written));
    if expected.is_empty() && got.is_empty() {
        return 1.0;
    }
    let matched = expected.intersection(&got).count() as f64;
    2.0 * matched / (expected.len() + got.len()) as f64
}

/// Of the beats at which the reference sounds, how many sound the same set of pitch classes
/// (every track together) in the written roll: (agreeing beats, beats).
pub fn beat_chord_agreement(reference: &Roll, written: &Roll) -> (usize, usize) {
    let representation = reference.representation();
    let classes = |roll: &Roll, step: usize| -> u16 {
        (0..roll.track_count())
            .flat_map(|t| {
                roll.sounding_at(t, step)
                    .iter()
                    .enumerate()
                    .filter(|(_, &on)| on)
                    .map(|(row, _)| representation.pitch_of_row(row) % 12)
            })
            .fold(0u16, |set, class| set | 1 << class)
    };
    let mut agreeing = 0;
    let mut beats = 0;
    for step in (0..reference.steps().min(written.steps())).step_by(representation.steps_per_beat()) {
        let expected = classes(reference, step);
        if expected != 0 {
            beats += 1;
            agreeing += usize::from(classes(written, step) == expected);
        }
    }
    (agreeing, beats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::roll;

    #[test]
    fn f1_counts_notes_struck_at_the_same_step_and_pitch() {
        let reference = roll(4, 1, 1, &[(0, 0, 60, 4), (0, 4, 62, 4), (0, 8, 64, 4), (0, 12, 65, 4)]);
        assert_eq!(note_f1(&reference, &reference), 1.0);
        let longer_notes = roll(4, 1, 1, &[(0, 0, 60, 8), (0, 8, 64, 8)]);
        assert!((note_f1(&reference, &longer_notes) - 2.0 * 2.0 / 6.0).abs() < 1e-12, "2 of 4 and 2 of 2");
        let late = roll(4, 1, 1, &[(0, 1, 60, 3)]);
        assert_eq!(note_f1(&reference, &late), 0.0);
        assert_eq!(note_f1(&roll(4, 1, 1, &[]), &roll(4, 1, 1, &[])), 1.0);
    }

    #[test]
    fn chords_agree_by_pitch_class_on_the_beats_the_reference_sounds() {
        // C major on beat 1, G major on beat 2, silence after.
        let reference = roll(4, 2, 1, &[(0, 0, 64, 4), (1, 0, 48, 4), (0, 4, 67, 4), (1, 4, 55, 4), (0, 4, 71, 4)]);
        let voiced_otherwise =
            roll(4, 2, 1, &[(0, 0, 60, 4), (1, 0, 52, 4), (0, 4, 59, 4), (1, 4, 43, 4), (0, 4, 67, 4)]);
        let wrong_second = roll(4, 2, 1, &[(0, 0, 64, 4), (1, 0, 48, 4), (0, 4, 65, 4), (1, 4, 55, 4), (0, 12, 60, 4)]);
        assert_eq!(
            beat_chord_agreement(&reference, &voiced_otherwise),
            (2, 2),
            "C-E and G-B in other octaves and voicings"
        );
        assert_eq!(
            beat_chord_agreement(&reference, &wrong_second),
            (1, 2),
            "beat 4 sounds only in the written roll: not counted"
        );
    }
}
