//! What a listener hears where phrases meet: the melodic move of each voice onto a phrase's
//! first note (a seam), the move from a loop's last notes back to its first ones (the wrap),
//! and how each phrase ends (its cadence). A decoder writes a phrase at a time, and the voice
//! statistics pool the few moves between phrases with the many inside them, so that a model
//! can move well inside its phrases and still join them badly without those statistics
//! showing it.
//!
//! A phrase is [`Representation::steps_per_phrase`] long, counted from the start of a loop or
//! of a piece (a piece's phrases start at its first bar: bars 1, 5, 9 … of 4-bar phrases). A
//! loop is heard as it plays, repeating: it is read played twice, and only what lands in the
//! second playing is counted, so that each note is counted once, with the note it follows, and
//! the loop's first notes follow its last ones.
//!
//! Voices are read as the voice statistics read them ([`voice`]), and a move is between
//! consecutive notes of a voice, rests in between or not, as there. Unlike
//! [`super::voices::leaps`], a repeated pitch counts here, as a move of 0: at a seam, striking
//! the note the phrase before ended on is the smoothest join there is.
//!
//! [`Representation::steps_per_phrase`]: crate::roll::Representation::steps_per_phrase

use super::chords::{key, triad_root, Key, PitchClasses};
use super::voices::{voice, Voice, VoiceNote, LEAP_SEMITONES, STEP_SEMITONES};
use super::Tally;
use crate::roll::Roll;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Moves of a bass by these many semitones (a fourth or a fifth, either way) carry the
/// harmony from one root to the next, as an authentic or plagal cadence's bass does.
pub const FOURTH_OR_FIFTH: [u8; 2] = [5, 7];

/// Some moves: the share that leap past a fifth, and their size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Moves {
    /// Moves of more than [`LEAP_SEMITONES`] over moves.
    leaps: Tally,
    /// Semitones over moves.
    semitones: Tally,
}

impl Moves {
    fn add_move(&mut self, semitones: u8) {
        self.leaps.add(Tally::of(f64::from(u8::from(semitones > LEAP_SEMITONES)), 1.0));
        self.semitones.add(Tally::of(f64::from(semitones), 1.0));
    }

    fn add(&mut self, other: Moves) {
        self.leaps.add(other.leaps);
        self.semitones.add(other.semitones);
    }

    fn summary(&self) -> MoveSummary {
        MoveSummary {
            moves: self.leaps.count as usize,
            leaps: self.leaps.mean(),
            mean_semitones: self.semitones.mean(),
        }
    }
}

/// Moves by where they land.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct JunctionMoves {
    /// Onto the first note of a phrase other than a loop's first.
    seams: Moves,
    /// Onto a loop's first note, from its last.
    wrap: Moves,
    /// Every other move.
    within: Moves,
}

impl JunctionMoves {
    fn add(&mut self, other: &JunctionMoves) {
        self.seams.add(other.seams);
        self.wrap.add(other.wrap);
        self.within.add(other.within);
    }
}

/// The moves onto the `notes` of a voice that start at or after `from`, each from the note
/// before it, sorted by where they land: onto the first note that starts in a phrase (phrases
/// of `phrase_steps` counted from `from`) is a seam, or the wrap for the first phrase when
/// `from` is where a loop starts again; any other move is within a phrase.
fn sort_moves(notes: &[VoiceNote], from: usize, phrase_steps: usize, wraps: bool) -> JunctionMoves {
    let mut moves = JunctionMoves::default();
    for pair in notes.windows(2).filter(|pair| pair[1].start >= from) {
        let (before, note) = (pair[0], pair[1]);
        let phrase = (note.start - from) / phrase_steps;
        let kind = if before.start >= from + phrase * phrase_steps {
            &mut moves.within
        } else if phrase == 0 && wraps {
            &mut moves.wrap
        } else {
            &mut moves.seams
        };
        kind.add_move(before.pitch.abs_diff(note.pitch));
    }
    moves
}

/// A loop and its repeat, one after the other: the loop as heard, with its wrap.
pub fn played_twice(looped: &Roll) -> Roll {
    Roll::concat(&[looped.clone(), looped.clone()]).expect("two rolls")
}

/// A voice's pitch at a step, and the pitch of the note before the one sounding there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Approach {
    pub pitch: u8,
    pub before: Option<u8>,
}

/// How a phrase ends: what sounds at its last onset (the last step of the phrase at which a
/// note of any voice starts). The last chord struck is the one heard as the phrase's close,
/// wherever in the bar it falls: a phrase's end beat is not fixed (a folk tune's last note
/// may come on the downbeat of its last bar or anticipate it; a chorale's fermata falls on
/// beat 1 or 3; a decoder's phrase ends where it stops), and read at the last onset, every
/// voice that took part in the close is still sounding, even one that stops short of the
/// bar line to breathe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhraseEnd {
    /// The pitch classes of the voices sounding there.
    pub sonority: PitchClasses,
    pub voices: usize,
    /// The lowest voice sounding there.
    pub bass: Approach,
    /// The highest voice sounding there (a one-voice model's melody).
    pub top: Approach,
}

/// The end of the phrase over `steps` of `voices` (read over a whole loop or piece, so that the
/// notes a phrase ends on have the notes before them even where a phrase holds one note);
/// `None` when no note starts in it.
pub fn phrase_end(voices: &[Voice], steps: Range<usize>) -> Option<PhraseEnd> {
    let last_onset = voices
        .iter()
        .flat_map(|voice| voice.notes.iter().map(|note| note.start).filter(|start| steps.contains(start)))
        .max()?;
    let sounding: Vec<Approach> = voices
        .iter()
        .filter_map(|voice| {
            let pitch = voice.line[last_onset]?;
            let sounding_note = voice.notes.iter().rposition(|note| note.start <= last_onset);
            let before = sounding_note.and_then(|index| index.checked_sub(1)).map(|index| voice.notes[index].pitch);
            Some(Approach { pitch, before })
        })
        .collect();
    Some(PhraseEnd {
        sonority: super::chords::pitch_classes(sounding.iter().map(|voice| voice.pitch)),
        voices: sounding.len(),
        bass: *sounding.iter().min_by_key(|voice| voice.pitch).expect("the voice whose note starts there"),
        top: *sounding.iter().max_by_key(|voice| voice.pitch).expect("the voice whose note starts there"),
    })
}

/// Fewer voices than this cannot sound a triad; their phrase ends are judged by the melody.
pub const TRIAD_VOICES: usize = 3;

/// Seams, wrap and cadences over many loops or pieces of one representation, pooled over
/// voices and phrase ends.
#[derive(Clone, Debug, Default)]
pub struct JunctionAccumulator {
    rolls: usize,
    voices: usize,
    moves: JunctionMoves,
    phrase_ends: usize,
    triads: Tally,
    bass_on_root: Tally,
    bass_by_fourth_or_fifth: Tally,
    top_on_tonic: Tally,
    top_by_step: Tally,
}

impl JunctionAccumulator {
    /// Adds a loop as it plays, repeating.
    pub fn add_loop(&mut self, looped: &Roll) {
        self.add(&played_twice(looped), looped.steps(), true);
    }

    /// Adds a piece (a segment of one meter), its phrases counted from its first bar.
    pub fn add_piece(&mut self, piece: &Roll) {
        self.add(piece, 0, false);
    }

    /// Adds what lands at or after `from` in `played`; the phrases' key is read from all of it.
    fn add(&mut self, played: &Roll, from: usize, wraps: bool) {
        let phrase_steps = played.representation().steps_per_phrase();
        let tracks: Vec<usize> = super::pitched_tracks(played).collect();
        let voices: Vec<Voice> = tracks.iter().map(|&track| voice(played, track)).collect();
        self.rolls += 1;
        self.voices = voices.len();
        for voice in &voices {
            self.moves.add(&sort_moves(&voice.notes, from, phrase_steps, wraps));
        }
        let key = key(played, &tracks);
        let phrases = (from..played.steps()).step_by(phrase_steps).map(|start| start..start + phrase_steps);
        for end in
            phrases.filter(|phrase| phrase.end <= played.steps()).filter_map(|phrase| phrase_end(&voices, phrase))
        {
            self.add_phrase_end(&end, key);
        }
    }

    fn add_phrase_end(&mut self, end: &PhraseEnd, key: Option<Key>) {
        let share = |yes: bool| Tally::of(f64::from(u8::from(yes)), 1.0);
        self.phrase_ends += 1;
        let root = triad_root(end.sonority).filter(|_| end.voices >= TRIAD_VOICES);
        self.triads.add(share(root.is_some()));
        if let Some(root) = root {
            self.bass_on_root.add(share(end.bass.pitch % 12 == root));
        }
        if let Some(before) = end.bass.before {
            self.bass_by_fourth_or_fifth.add(share(FOURTH_OR_FIFTH.contains(&before.abs_diff(end.bass.pitch))));
        }
        if let Some(key) = key {
            self.top_on_tonic.add(share(end.top.pitch % 12 == key.tonic));
        }
        if let Some(before) = end.top.before {
            self.top_by_step.add(share((1..=STEP_SEMITONES).contains(&before.abs_diff(end.top.pitch))));
        }
    }

    pub fn summary(&self) -> JunctionSummary {
        let chords = self.voices >= TRIAD_VOICES;
        let chordal = |tally: Tally| tally.mean().filter(|_| chords);
        JunctionSummary {
            rolls: self.rolls,
            seams: self.moves.seams.summary(),
            wrap: self.moves.wrap.summary(),
            within: self.moves.within.summary(),
            phrase_ends: self.phrase_ends,
            triads: chordal(self.triads),
            bass_on_root: chordal(self.bass_on_root),
            bass_by_fourth_or_fifth: chordal(self.bass_by_fourth_or_fifth),
            top_on_tonic: self.top_on_tonic.mean(),
            top_by_step: self.top_by_step.mean(),
        }
    }
}

/// Some moves pooled over voices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MoveSummary {
    pub moves: usize,
    /// Share of moves more than a fifth.
    pub leaps: Option<f64>,
    /// Mean size of a move in semitones (a repeated pitch is 0).
    pub mean_semitones: Option<f64>,
}

/// Seams, wrap and cadences of some loops or pieces; the chord measures are `None` for music
/// of fewer than [`TRIAD_VOICES`] voices, where they do not apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JunctionSummary {
    pub rolls: usize,
    pub seams: MoveSummary,
    /// Pieces have none.
    pub wrap: MoveSummary,
    pub within: MoveSummary,
    pub phrase_ends: usize,
    /// Share of phrase ends whose sonority is exactly a major or minor triad.
    pub triads: Option<f64>,
    /// Of the phrase ends on a triad, the share with its root in the bass.
    pub bass_on_root: Option<f64>,
    /// Of the phrase ends whose bass note has a note before it, the share reached by a fourth
    /// or a fifth.
    pub bass_by_fourth_or_fifth: Option<f64>,
    /// Share of phrase ends whose top voice is on the tonic of the key read from the whole
    /// loop or piece.
    pub top_on_tonic: Option<f64>,
    /// Of the phrase ends whose top note has a note before it, the share reached by a step
    /// (one or two semitones).
    pub top_by_step: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::roll;

    /// The moves' count, leaps and semitones summed.
    fn sums(moves: Moves) -> (f64, f64, f64) {
        (moves.leaps.count, moves.leaps.sum, moves.semitones.sum)
    }

    /// A roll at one step a beat, 4 steps a bar, 1-bar phrases: a phrase is 4 steps.
    fn bars(tracks: usize, bars: usize, notes: &[(usize, usize, u8, usize)]) -> Roll {
        roll(1, tracks, bars, notes)
    }

    #[test]
    fn a_piece_sorts_the_moves_onto_each_phrases_first_note_from_the_rest() {
        // Phrase 1: C E G (held over the bar line into phrase 2), then in phrase 2 a rest and
        // C an octave up; phrase 3 is silent; phrase 4 starts on D after the rests.
        let piece = bars(1, 4, &[(0, 0, 60, 1), (0, 1, 64, 1), (0, 2, 67, 3), (0, 6, 72, 1), (0, 12, 74, 4)]);
        let moves = sort_moves(&voice(&piece, 0).notes, 0, 4, false);
        assert_eq!(sums(moves.within), (2.0, 0.0, 7.0), "C-E and E-G");
        assert_eq!(sums(moves.seams), (2.0, 0.0, 5.0 + 2.0), "the note held over counts from its onset: G-C; C-D");
        assert_eq!(moves.wrap, Moves::default(), "a piece does not wrap");
        assert_eq!(Moves::default().summary(), MoveSummary { moves: 0, leaps: None, mean_semitones: None });
        let summary = moves.seams.summary();
        assert_eq!((summary.moves, summary.leaps, summary.mean_semitones), (2, Some(0.0), Some(3.5)));
    }

    #[test]
    fn a_loop_counts_each_note_once_with_its_first_notes_after_its_last() {
        // Two 1-bar phrases: C D | C A, repeating: the wrap is A-C (9, a leap), the seam D-C.
        let looped = bars(1, 2, &[(0, 0, 60, 2), (0, 2, 62, 2), (0, 4, 60, 2), (0, 6, 69, 2)]);
        let moves = sort_moves(&voice(&played_twice(&looped), 0).notes, 8, 4, true);
        assert_eq!(sums(moves.wrap), (1.0, 1.0, 9.0));
        assert_eq!(sums(moves.seams), (1.0, 0.0, 2.0));
        assert_eq!(sums(moves.within), (2.0, 1.0, 2.0 + 9.0), "C-D and C-A (a leap), each once");
        // A pitch struck again is a move of 0.
        let drone = bars(1, 1, &[(0, 0, 60, 4)]);
        assert_eq!(sums(sort_moves(&voice(&played_twice(&drone), 0).notes, 4, 4, true).wrap), (1.0, 0.0, 0.0));
    }

    #[test]
    fn a_phrase_ends_with_what_sounds_at_its_last_onset() {
        // Soprano D-C (step), alto held E, bass G2 then C3 (a fourth up) on beat 3, tenor G
        // ending before the last onset: the close is C E C over C.
        let notes = [(0, 0, 74, 2), (0, 2, 72, 2), (1, 0, 64, 4), (2, 0, 55, 2), (3, 0, 43, 2), (3, 2, 48, 2)];
        let phrase = bars(4, 1, &notes);
        let voices: Vec<Voice> = (0..4).map(|track| voice(&phrase, track)).collect();
        let end = phrase_end(&voices, 0..4).unwrap();
        assert_eq!(end.sonority, crate::metrics::chords::pitch_classes([72, 64, 48]));
        assert_eq!(end.voices, 3, "the tenor has stopped");
        assert_eq!(end.bass, Approach { pitch: 48, before: Some(43) });
        assert_eq!(end.top, Approach { pitch: 72, before: Some(74) });
        assert_eq!(phrase_end(&voices, 4..4), None, "nothing starts in an empty range");
    }

    #[test]
    fn cadences_are_counted_over_the_phrase_ends_they_apply_to() {
        // Two 1-bar phrases in C major, three voices. Phrase 1 closes on G B D over G, its
        // bass reached from C by a fifth, its soprano's D by a leap from G; phrase 2 on C E G
        // over E (a triad, not on its root), its bass reached from G by a sixth, its soprano
        // reaching the tonic C from D by step.
        let notes = [
            (0, 0, 67, 2),
            (0, 2, 74, 2),
            (0, 4, 74, 2),
            (0, 6, 72, 2),
            (1, 0, 64, 2),
            (1, 2, 71, 2),
            (1, 4, 65, 2),
            (1, 6, 67, 2),
            (2, 0, 48, 2),
            (2, 2, 55, 2),
            (2, 4, 55, 2),
            (2, 6, 64, 2),
        ];
        let piece = bars(3, 2, &notes);
        assert_eq!(key(&piece, &[0, 1, 2]), Some(Key { tonic: 0, minor: false }));
        let mut pieces = JunctionAccumulator::default();
        pieces.add_piece(&piece);
        let summary = pieces.summary();
        assert_eq!((summary.rolls, summary.phrase_ends), (1, 2));
        assert_eq!(summary.triads, Some(1.0));
        assert_eq!(summary.bass_on_root, Some(0.5));
        assert_eq!(summary.bass_by_fourth_or_fifth, Some(0.5));
        assert_eq!(summary.top_on_tonic, Some(0.5));
        assert_eq!(summary.top_by_step, Some(0.5));
        // Onto phrase 2: D-D, B-F (6), G-G; within: G-D, D-C, E-B, F-G, C-G, G-E (a sixth).
        assert_eq!(summary.seams, MoveSummary { moves: 3, leaps: Some(0.0), mean_semitones: Some(2.0) });
        assert_eq!(summary.within, MoveSummary { moves: 6, leaps: Some(1.0 / 6.0), mean_semitones: Some(34.0 / 6.0) });
        assert_eq!(summary.wrap.moves, 0);
        // Played as a loop, the phrase-2 close wraps into phrase 1: C-G, G-E, E-C (a tenth down).
        let mut loops = JunctionAccumulator::default();
        loops.add_loop(&piece);
        let looped = loops.summary();
        assert_eq!(looped.wrap, MoveSummary { moves: 3, leaps: Some(1.0 / 3.0), mean_semitones: Some(8.0) });
        assert_eq!((looped.seams, looped.within), (summary.seams, summary.within));
        assert_eq!(looped.bass_by_fourth_or_fifth, Some(0.5), "phrase 1's bass was reached from C before too");
    }

    #[test]
    fn one_voice_is_judged_by_its_melody_alone() {
        // C E G F | E D B C: the first phrase ends on F, the second on the tonic, both by step.
        let melody = [60, 64, 67, 65, 64, 62, 59, 60];
        let notes: Vec<_> = melody.iter().enumerate().map(|(step, &pitch)| (0, step, pitch, 1)).collect();
        let tune = bars(1, 2, &notes);
        assert_eq!(key(&tune, &[0]), Some(Key { tonic: 0, minor: false }));
        let mut tunes = JunctionAccumulator::default();
        tunes.add_piece(&tune);
        let summary = tunes.summary();
        assert_eq!((summary.triads, summary.bass_on_root, summary.bass_by_fourth_or_fifth), (None, None, None));
        assert_eq!((summary.top_on_tonic, summary.top_by_step), (Some(0.5), Some(1.0)));
    }
}
