//! Rolls as voices: each track, at each step, makes one choice among rest, hold, or a new
//! note at one of the window's pitches. That makes a voice monophonic by construction and
//! holding a decision of its own, which per-cell onset/sustain planes cannot express.

use crate::roll::{GridNote, Representation, Roll};
use std::sync::Arc;

/// The silent voice.
pub const REST: u32 = 0;
/// Keep sounding the pitch of the step before.
pub const HOLD: u32 = 1;
/// Tokens at or above this start a note at row `token - NEW_NOTE`.
pub const NEW_NOTE: u32 = 2;

/// Choices per voice and step for a window of `pitches` rows.
pub fn classes(pitches: usize) -> usize {
    pitches + NEW_NOTE as usize
}

/// What the network reads of a voice at a step: the row sounding (as `row + 1`, 0 when
/// silent) and how many steps its note has sounded, clipped (1 on its first step, 0 when
/// silent). The age tells a held half note from a fresh one, which the pitch alone cannot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VoiceState {
    pub sounding: u32,
    pub age: u32,
}

impl VoiceState {
    pub const SILENT: VoiceState = VoiceState { sounding: 0, age: 0 };

    /// The state after `token`; ages stop growing at `max_age`.
    pub fn after(self, token: u32, max_age: u32) -> VoiceState {
        match token {
            REST => VoiceState::SILENT,
            HOLD if self.sounding > 0 => VoiceState { sounding: self.sounding, age: (self.age + 1).min(max_age) },
            HOLD => VoiceState::SILENT,
            new => VoiceState { sounding: new - NEW_NOTE + 1, age: 1 },
        }
    }

    /// Hold is only a choice for a voice that sounds.
    pub fn may_hold(self) -> bool {
        self.sounding > 0
    }
}

/// Each voice's state after each step of `tokens` [steps][voices], from silence: what
/// teacher forcing feeds the network.
pub fn states_after(tokens: &[Vec<u32>], max_age: u32) -> Vec<Vec<VoiceState>> {
    let mut states = vec![VoiceState::SILENT; tokens.first().map_or(0, Vec::len)];
    tokens
        .iter()
        .map(|choices| {
            states.iter_mut().zip(choices).for_each(|(state, &token)| *state = state.after(token, max_age));
            states.clone()
        })
        .collect()
}

/// What the context reader is shown of the choices a caller gives, cell by cell ([steps x
/// voices], row-major): each voice's state as the given choices alone make it, and whether
/// the cell is given. A voice's state is built from given choices only — a given hold after
/// a choice that is not given reads as silence — so that nothing of what is to be written
/// reaches the reader, in training as in use.
pub fn given_view(
    given: &[Vec<Option<u32>>],
    steps: usize,
    voices: usize,
    max_age: u32,
) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut sounding = vec![0u32; steps * voices];
    let mut age = vec![0u32; steps * voices];
    let mut mask = vec![0f32; steps * voices];
    let mut states = vec![VoiceState::SILENT; voices];
    for (step, choices) in given.iter().enumerate().take(steps) {
        for (v, state) in states.iter_mut().enumerate() {
            *state = match choices.get(v).copied().flatten() {
                Some(token) => {
                    let after = state.after(token, max_age);
                    let cell = step * voices + v;
                    (sounding[cell], age[cell], mask[cell]) = (after.sounding, after.age, 1.0);
                    after
                }
                None => VoiceState::SILENT,
            };
        }
    }
    (sounding, age, mask)
}

/// One roll as tokens [steps][tracks], and how many notes could not be kept because a
/// track held more than one voice at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceTokens {
    pub tokens: Vec<Vec<u32>>,
    pub dropped_notes: usize,
}

/// A roll's tracks as voices. Where a track sounds several pitches at once (a divisi in a
/// chorale part), the voice follows the newest note, and of notes starting together the
/// highest: the line a listener follows. Notes struck and not followed are counted as
/// dropped; a note the voice left and comes back to while it still sounds is struck again
/// (and the shortening of the note it left is not counted).
pub fn roll_to_tokens(roll: &Roll) -> VoiceTokens {
    let (tracks, steps) = (roll.track_count(), roll.steps());
    let mut tokens = vec![vec![REST; tracks]; steps];
    let mut dropped_notes = 0usize;
    for track in 0..tracks {
        let mut previous: Option<usize> = None;
        for (step, row_tokens) in tokens.iter_mut().enumerate() {
            let onsets = roll.onsets_at(track, step);
            let sounding = roll.sounding_at(track, step);
            let struck = onsets.iter().rposition(|&v| v > 0);
            let continuing = previous.filter(|&row| sounding[row]);
            let (row, token) = match (struck, continuing) {
                (Some(row), _) => (Some(row), NEW_NOTE + row as u32),
                (None, Some(row)) => (Some(row), HOLD),
                // Sound with no onset and no note before it: a note tied in from before the roll.
                (None, None) => match sounding.iter().rposition(|&s| s) {
                    Some(row) => (Some(row), NEW_NOTE + row as u32),
                    None => (None, REST),
                },
            };
            let kept = |onset_row: usize| token == NEW_NOTE + onset_row as u32;
            dropped_notes += onsets.iter().enumerate().filter(|&(r, &v)| v > 0 && !kept(r)).count();
            row_tokens[track] = token;
            previous = row;
        }
    }
    VoiceTokens { tokens, dropped_notes }
}

/// Tokens [steps][tracks] back to a roll; every note gets `velocity`. A hold after silence
/// (which a sampler never draws) is read as rest.
pub fn tokens_to_roll(representation: &Arc<Representation>, tokens: &[Vec<u32>], velocity: u8) -> Roll {
    tokens_to_roll_with(representation, tokens, |_, _| velocity)
}

/// [`tokens_to_roll`] with each note's velocity from `velocity_at(step, track)` of its onset.
pub fn tokens_to_roll_with(
    representation: &Arc<Representation>,
    tokens: &[Vec<u32>],
    velocity_at: impl Fn(usize, usize) -> u8,
) -> Roll {
    let tracks = representation.track_count();
    let mut roll = Roll::new(representation.clone(), tokens.len());
    for track in 0..tracks {
        let mut open: Option<(usize, u32)> = None;
        let close = |open: Option<(usize, u32)>, end: usize, roll: &mut Roll| {
            if let Some((start, row)) = open {
                let pitch = representation.pitch_of_row(row as usize);
                let velocity = velocity_at(start, track);
                roll.place(GridNote { track, start, pitch, length: end - start, velocity })
                    .expect("a voice's notes lie inside its roll");
            }
        };
        for (step, row_tokens) in tokens.iter().enumerate() {
            match row_tokens[track] {
                HOLD if open.is_some() => {}
                HOLD | REST => {
                    close(open.take(), step, &mut roll);
                }
                new => {
                    close(open.take(), step, &mut roll);
                    open = Some((step, new - NEW_NOTE));
                }
            }
        }
        close(open, tokens.len(), &mut roll);
    }
    roll
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::{Meter, TrackSpec};

    fn roll(tracks: usize, steps: usize, notes: &[(usize, usize, u8, usize)]) -> Roll {
        let representation = Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 60,
            pitch_count: 24,
            tracks: (0..tracks).map(|t| TrackSpec::new(format!("v{t}"), t as u8)).collect(),
        });
        let mut roll = Roll::new(representation, steps);
        for &(track, start, pitch, length) in notes {
            roll.place(GridNote { track, start, pitch, length, velocity: 90 }).unwrap();
        }
        roll
    }

    #[test]
    fn a_voice_is_new_notes_holds_and_rests() {
        // C for two steps, rest, E struck twice (a repeated note is a new note, not a hold).
        let r = roll(1, 6, &[(0, 0, 60, 2), (0, 3, 64, 1), (0, 4, 64, 2)]);
        let tokens = roll_to_tokens(&r);
        let line: Vec<u32> = tokens.tokens.iter().map(|t| t[0]).collect();
        assert_eq!(line, vec![NEW_NOTE, HOLD, REST, NEW_NOTE + 4, NEW_NOTE + 4, HOLD]);
        assert_eq!(tokens.dropped_notes, 0);
        assert_eq!(tokens_to_roll(r.representation(), &tokens.tokens, 90), r, "and back, note for note");
    }

    #[test]
    fn a_divisi_keeps_the_newest_and_highest_note_and_counts_the_rest() {
        // A long G under a C struck later: the voice follows the C, then goes back to rest.
        let r = roll(2, 4, &[(0, 0, 67, 4), (0, 1, 72, 2), (1, 0, 60, 1), (1, 0, 64, 1)]);
        let tokens = roll_to_tokens(&r);
        let upper: Vec<u32> = tokens.tokens.iter().map(|t| t[0]).collect();
        let lower: Vec<u32> = tokens.tokens.iter().map(|t| t[1]).collect();
        assert_eq!(upper, vec![NEW_NOTE + 7, NEW_NOTE + 12, HOLD, NEW_NOTE + 7]);
        assert_eq!(lower, vec![NEW_NOTE + 4, REST, REST, REST], "of two notes struck together, the higher");
        // The G is heard again once the C ends; the lower voice's C is the note dropped.
        assert_eq!(tokens.dropped_notes, 1);
    }

    #[test]
    fn a_tied_in_note_starts_the_voice() {
        let whole = roll(1, 8, &[(0, 2, 62, 4)]);
        let tail = whole.slice(4..8);
        let tokens = roll_to_tokens(&tail);
        assert_eq!(tokens.tokens.iter().map(|t| t[0]).collect::<Vec<_>>(), vec![NEW_NOTE + 2, HOLD, REST, REST]);
        assert_eq!(tokens.dropped_notes, 0);
    }

    #[test]
    fn the_given_view_shows_only_what_is_given() {
        // Voice 0: a note struck at step 0 (not given) and held through step 2 (given); voice 1
        // given throughout; a short row leaves voice 1 out at step 3.
        let given = vec![
            vec![None, Some(NEW_NOTE + 1)],
            vec![None, Some(HOLD)],
            vec![Some(HOLD), Some(REST)],
            vec![Some(NEW_NOTE + 5)],
        ];
        let (sounding, age, mask) = given_view(&given, 4, 2, 8);
        assert_eq!(mask, vec![0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(sounding, vec![0, 2, 0, 2, 0, 0, 6, 0], "the given hold after an unseen strike reads as silence");
        assert_eq!(age, vec![0, 1, 0, 2, 0, 0, 1, 0]);
    }

    #[test]
    fn states_after_each_step_follow_the_line() {
        let line = vec![vec![NEW_NOTE + 2, REST], vec![HOLD, NEW_NOTE], vec![REST, HOLD]];
        let states = states_after(&line, 8);
        assert_eq!(states[1], vec![VoiceState { sounding: 3, age: 2 }, VoiceState { sounding: 1, age: 1 }]);
        assert_eq!(states[2], vec![VoiceState::SILENT, VoiceState { sounding: 1, age: 2 }]);
    }

    #[test]
    fn states_follow_tokens() {
        let s = VoiceState::SILENT.after(NEW_NOTE + 3, 4);
        assert_eq!(s, VoiceState { sounding: 4, age: 1 });
        let held = s.after(HOLD, 4).after(HOLD, 4).after(HOLD, 4).after(HOLD, 4);
        assert_eq!(held, VoiceState { sounding: 4, age: 4 }, "ages stop at the clip");
        assert_eq!(held.after(REST, 4), VoiceState::SILENT);
        assert!(!VoiceState::SILENT.may_hold() && held.may_hold());
        assert_eq!(VoiceState::SILENT.after(HOLD, 4), VoiceState::SILENT);
    }
}
