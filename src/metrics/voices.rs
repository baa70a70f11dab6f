//! Voice-level statistics: how each part moves (note lengths, rests, repeated pitches, steps
//! and leaps) and how pairs of parts move together (crossings, parallel fifths and octaves).
//! Bar-level metrics such as UPC and EB cannot tell a singable line from notes scattered over
//! the same pitch classes; these can, and they are what part-writing is judged by.
//!
//! Each track is one voice, and a note of it is (onset step, end step, pitch) on the roll's
//! grid. A track that holds more than one note at a step is read as its highest sounding note
//! there (a melody is heard on top), so that each voice has at most one pitch per step;
//! [`Voice::overlapping_notes`] counts the notes of the track that this reading touches.
//!
//! Every statistic returns a [`Tally`], so that a corpus pools them over notes, steps or moves
//! rather than averaging rolls.

use super::Tally;
use crate::roll::Roll;
use serde::{Deserialize, Serialize};

/// Consecutive notes at most this many semitones apart move by step.
pub const STEP_SEMITONES: u8 = 2;

/// Consecutive notes more than this many semitones apart (a fifth) leap.
pub const LEAP_SEMITONES: u8 = 7;

/// Interval classes (semitones mod 12) whose parallel motion part-writing forbids: unisons and
/// octaves, and fifths.
pub const PERFECT_INTERVAL_CLASSES: [u8; 2] = [0, 7];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceNote {
    pub start: usize,
    /// The first step after the note.
    pub end: usize,
    pub pitch: u8,
}

/// One track read as a single line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voice {
    /// The pitch sounding at each step, `None` where the voice rests.
    pub line: Vec<Option<u8>>,
    /// In onset order. A note starts where the line takes a new pitch or its pitch is struck
    /// again; sound tied in from before the roll starts none (as in [`Roll::notes`]).
    pub notes: Vec<VoiceNote>,
    /// Notes of the track that sound at a step together with another note of the track: 0 for
    /// a monophonic track.
    pub overlapping_notes: usize,
}

/// The voice of one track (see the module notes for tracks that hold chords).
pub fn voice(roll: &Roll, track: usize) -> Voice {
    let representation = roll.representation();
    let mut line: Vec<Option<u8>> = Vec::with_capacity(roll.steps());
    let mut notes: Vec<VoiceNote> = Vec::new();
    let mut crowded = Vec::with_capacity(roll.steps());
    for step in 0..roll.steps() {
        let sounding = roll.sounding_at(track, step);
        crowded.push(sounding.iter().filter(|&&on| on).count() > 1);
        let top = sounding.iter().rposition(|&on| on);
        let pitch = top.map(|row| representation.pitch_of_row(row));
        match top {
            Some(row) if roll.onset(track, step, row) > 0 || (step > 0 && line[step - 1] != pitch) => {
                notes.push(VoiceNote { start: step, end: step + 1, pitch: representation.pitch_of_row(row) });
            }
            Some(_) => {
                if let Some(note) = notes.last_mut().filter(|note| note.end == step) {
                    note.end += 1;
                }
            }
            None => {}
        }
        line.push(pitch);
    }
    let overlapping_notes = roll
        .notes()
        .iter()
        .filter(|note| note.track == track && crowded[note.start..note.start + note.length].contains(&true))
        .count();
    Voice { line, notes, overlapping_notes }
}

/// Note length: steps summed over notes.
pub fn note_length(voice: &Voice) -> Tally {
    Tally::of(voice.notes.iter().map(|note| (note.end - note.start) as f64).sum(), voice.notes.len() as f64)
}

/// Notes lasting at most `longest_steps` (a sixteenth, for the summary) over notes.
pub fn short_notes(voice: &Voice, longest_steps: f64) -> Tally {
    let short = voice.notes.iter().filter(|note| (note.end - note.start) as f64 <= longest_steps + 1e-9).count();
    Tally::of(short as f64, voice.notes.len() as f64)
}

/// Steps in which the voice is silent over the steps from the roll's start to its last note's
/// end (so that a phrase ending early, or a piece's trailing bar padding, is not a rest).
pub fn rests(voice: &Voice) -> Tally {
    let Some(last) = voice.notes.last() else { return Tally::default() };
    let silent = voice.line[..last.end].iter().filter(|pitch| pitch.is_none()).count();
    Tally::of(silent as f64, last.end as f64)
}

/// Consecutive notes with the same pitch over consecutive notes (rests between them or not).
pub fn repeated_pitches(voice: &Voice) -> Tally {
    let repeated = voice.notes.windows(2).filter(|pair| pair[0].pitch == pair[1].pitch).count();
    Tally::of(repeated as f64, voice.notes.len().saturating_sub(1) as f64)
}

/// The sizes in semitones of the moves between consecutive notes of different pitches.
fn moves(voice: &Voice) -> impl Iterator<Item = u8> + '_ {
    voice.notes.windows(2).map(|pair| pair[0].pitch.abs_diff(pair[1].pitch)).filter(|&size| size > 0)
}

/// Moves of at most [`STEP_SEMITONES`] over moves to a different pitch.
pub fn stepwise_motion(voice: &Voice) -> Tally {
    Tally::of(moves(voice).filter(|&size| size <= STEP_SEMITONES).count() as f64, moves(voice).count() as f64)
}

/// Moves of more than [`LEAP_SEMITONES`] over moves to a different pitch.
pub fn leaps(voice: &Voice) -> Tally {
    Tally::of(moves(voice).filter(|&size| size > LEAP_SEMITONES).count() as f64, moves(voice).count() as f64)
}

/// The steps at which both voices sound, with their pitches.
fn both_sounding<'a>(upper: &'a Voice, lower: &'a Voice) -> impl Iterator<Item = (u8, u8)> + 'a {
    upper.line.iter().zip(&lower.line).filter_map(|(&a, &b)| a.zip(b))
}

/// Steps at which the upper voice sounds below the lower one, over steps at which both sound.
pub fn crossings(upper: &Voice, lower: &Voice) -> Tally {
    let (crossed, both) =
        both_sounding(upper, lower).fold((0, 0), |(crossed, both), (a, b)| (crossed + usize::from(a < b), both + 1));
    Tally::of(crossed as f64, both as f64)
}

/// Parallel unisons, octaves and fifths over moves. A move is a step at which both voices
/// sound and at least one has changed pitch since the last step at which both sounded (rests
/// in between do not hide a parallel); it is parallel when both moved the same way and the
/// interval class between them is 0 or 7 both before and after.
pub fn parallels(upper: &Voice, lower: &Voice) -> Tally {
    let interval_class = |(a, b): (u8, u8)| a.abs_diff(b) % 12;
    let mut tally = Tally::default();
    let mut before: Option<(u8, u8)> = None;
    for now in both_sounding(upper, lower) {
        if let Some(then) = before.filter(|&then| then != now) {
            let same_way = (now.0.cmp(&then.0)) == (now.1.cmp(&then.1)) && now.0 != then.0;
            let perfect =
                interval_class(then) == interval_class(now) && PERFECT_INTERVAL_CLASSES.contains(&interval_class(now));
            tally.add(Tally::of(f64::from(u8::from(same_way && perfect)), 1.0));
        }
        before = Some(now);
    }
    tally
}

/// Voice statistics over many rolls of one representation, pooled.
#[derive(Clone, Debug, Default)]
pub struct VoiceAccumulator {
    tracks: Vec<VoiceTallies>,
    /// Indices into `tracks`, upper voice first.
    pairs: Vec<(usize, usize, PairTallies)>,
    steps_per_sixteenth: f64,
}

#[derive(Clone, Debug, Default)]
struct VoiceTallies {
    track: usize,
    name: String,
    overlapping_notes: usize,
    note_length: Tally,
    short_notes: Tally,
    rests: Tally,
    repeated_pitches: Tally,
    stepwise_motion: Tally,
    leaps: Tally,
}

#[derive(Clone, Copy, Debug, Default)]
struct PairTallies {
    crossings: Tally,
    parallels: Tally,
}

impl VoiceAccumulator {
    /// Adds a roll's pitched tracks (drum tracks have no voice to lead).
    pub fn add(&mut self, roll: &Roll) {
        let representation = roll.representation();
        if self.tracks.is_empty() {
            let (steps, quarters) = representation.steps_per_quarter();
            self.steps_per_sixteenth = steps as f64 / (4 * quarters) as f64;
            self.tracks = super::pitched_tracks(roll)
                .map(|track| VoiceTallies {
                    track,
                    name: representation.tracks[track].name.clone(),
                    ..VoiceTallies::default()
                })
                .collect();
            for upper in 0..self.tracks.len() {
                for lower in upper + 1..self.tracks.len() {
                    self.pairs.push((upper, lower, PairTallies::default()));
                }
            }
        }
        let voices: Vec<Voice> = self.tracks.iter().map(|tallies| voice(roll, tallies.track)).collect();
        for (tallies, voice) in self.tracks.iter_mut().zip(&voices) {
            tallies.overlapping_notes += voice.overlapping_notes;
            tallies.note_length.add(note_length(voice));
            tallies.short_notes.add(short_notes(voice, self.steps_per_sixteenth));
            tallies.rests.add(rests(voice));
            tallies.repeated_pitches.add(repeated_pitches(voice));
            tallies.stepwise_motion.add(stepwise_motion(voice));
            tallies.leaps.add(leaps(voice));
        }
        for (upper, lower, tallies) in &mut self.pairs {
            tallies.crossings.add(crossings(&voices[*upper], &voices[*lower]));
            tallies.parallels.add(parallels(&voices[*upper], &voices[*lower]));
        }
    }

    pub fn summary(&self) -> VoiceSummary {
        let tracks: Vec<VoiceMetrics> = self
            .tracks
            .iter()
            .map(|t| VoiceMetrics {
                name: t.name.clone(),
                notes: t.note_length.count as usize,
                overlapping_notes: t.overlapping_notes,
                statistics: VoiceStatistics {
                    note_length_steps: t.note_length.mean(),
                    note_length_sixteenths: t.note_length.mean().map(|steps| steps / self.steps_per_sixteenth),
                    short_notes: t.short_notes.mean(),
                    rests: t.rests.mean(),
                    repeated_pitches: t.repeated_pitches.mean(),
                    stepwise_motion: t.stepwise_motion.mean(),
                    leaps: t.leaps.mean(),
                },
            })
            .collect();
        let mean = VoiceStatistics::mean_of(&tracks);
        let (mut crossing_total, mut parallel_total) = (Tally::default(), Tally::default());
        let pairs = self
            .pairs
            .iter()
            .map(|(upper, lower, tallies)| {
                crossing_total.add(tallies.crossings);
                parallel_total.add(tallies.parallels);
                VoicePairMetrics {
                    voices: [self.tracks[*upper].name.clone(), self.tracks[*lower].name.clone()],
                    crossings: tallies.crossings.mean(),
                    parallels: tallies.parallels.mean(),
                    moves: tallies.parallels.count as usize,
                }
            })
            .collect();
        VoiceSummary {
            notes: tracks.iter().map(|t| t.notes).sum(),
            overlapping_notes: tracks.iter().map(|t| t.overlapping_notes).sum(),
            tracks,
            mean,
            crossings: crossing_total.mean(),
            parallels: parallel_total.mean(),
            pairs,
        }
    }
}

/// The per-voice statistics; `None` where there was nothing to measure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VoiceStatistics {
    pub note_length_steps: Option<f64>,
    /// The same in sixteenth notes, comparable across grids.
    pub note_length_sixteenths: Option<f64>,
    /// Share of notes a sixteenth or shorter.
    pub short_notes: Option<f64>,
    /// Share of steps up to the last note's end in which the voice is silent.
    pub rests: Option<f64>,
    /// Share of consecutive notes with the same pitch.
    pub repeated_pitches: Option<f64>,
    /// Of consecutive notes with different pitches, the share at most a whole tone apart.
    pub stepwise_motion: Option<f64>,
    /// Of consecutive notes with different pitches, the share more than a fifth apart.
    pub leaps: Option<f64>,
}

impl VoiceStatistics {
    /// The unweighted mean of some tracks' statistics (each over the tracks that have it).
    pub fn mean_of(tracks: &[VoiceMetrics]) -> VoiceStatistics {
        let mean = |pick: fn(&VoiceStatistics) -> Option<f64>| {
            let values: Vec<f64> = tracks.iter().filter_map(|t| pick(&t.statistics)).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        VoiceStatistics {
            note_length_steps: mean(|s| s.note_length_steps),
            note_length_sixteenths: mean(|s| s.note_length_sixteenths),
            short_notes: mean(|s| s.short_notes),
            rests: mean(|s| s.rests),
            repeated_pitches: mean(|s| s.repeated_pitches),
            stepwise_motion: mean(|s| s.stepwise_motion),
            leaps: mean(|s| s.leaps),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoiceMetrics {
    pub name: String,
    pub notes: usize,
    /// Notes sounding together with another of the same track (the voice is the top one).
    pub overlapping_notes: usize,
    #[serde(flatten)]
    pub statistics: VoiceStatistics,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoicePairMetrics {
    /// Upper voice first.
    pub voices: [String; 2],
    pub crossings: Option<f64>,
    /// Parallel unisons, octaves and fifths per move.
    pub parallels: Option<f64>,
    pub moves: usize,
}

/// Voice statistics per pitched track, their mean over tracks, and per pair of tracks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VoiceSummary {
    pub notes: usize,
    pub overlapping_notes: usize,
    pub tracks: Vec<VoiceMetrics>,
    /// The unweighted mean of the tracks' statistics.
    pub mean: VoiceStatistics,
    /// Pooled over every pair's steps.
    pub crossings: Option<f64>,
    /// Pooled over every pair's moves.
    pub parallels: Option<f64>,
    pub pairs: Vec<VoicePairMetrics>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::roll;

    /// The voice of track 0 of a one-bar roll at 4 steps per beat.
    fn line(notes: &[(usize, u8, usize)]) -> Voice {
        let notes: Vec<_> = notes.iter().map(|&(start, pitch, length)| (0, start, pitch, length)).collect();
        voice(&roll(4, 1, 1, &notes), 0)
    }

    fn note(start: usize, end: usize, pitch: u8) -> VoiceNote {
        VoiceNote { start, end, pitch }
    }

    #[test]
    fn a_monophonic_track_is_its_notes() {
        let melody = line(&[(0, 60, 4), (4, 60, 2), (8, 62, 8)]);
        assert_eq!(melody.notes, vec![note(0, 4, 60), note(4, 6, 60), note(8, 16, 62)]);
        assert_eq!(melody.line[5..9], [Some(60), None, None, Some(62)]);
        assert_eq!(melody.overlapping_notes, 0);
    }

    #[test]
    fn chords_are_read_as_their_top_note() {
        // A held C under E then G: the line is E, G, then C again once both have ended.
        let chords = line(&[(0, 48, 12), (0, 64, 4), (4, 67, 4)]);
        assert_eq!(chords.notes, vec![note(0, 4, 64), note(4, 8, 67), note(8, 12, 48)]);
        assert_eq!(chords.overlapping_notes, 3);
    }

    #[test]
    fn sound_tied_in_from_before_the_roll_starts_no_note() {
        let mut bar = roll(4, 1, 1, &[(0, 4, 62, 4)]);
        bar.place_tied_in(0, 60, 2);
        let tied = voice(&bar, 0);
        assert_eq!(tied.notes, vec![note(4, 8, 62)]);
        assert_eq!(tied.line[..2], [Some(60), Some(60)]);
    }

    #[test]
    fn lengths_and_short_notes() {
        let melody = line(&[(0, 60, 1), (1, 62, 1), (2, 64, 2), (4, 65, 12)]);
        assert_eq!(note_length(&melody), Tally::of(16.0, 4.0));
        assert_eq!(short_notes(&melody, 1.0), Tally::of(2.0, 4.0), "one step is a sixteenth at 4 steps per beat");
        assert_eq!(short_notes(&melody, 2.0), Tally::of(3.0, 4.0));
    }

    #[test]
    fn rests_count_up_to_the_last_note_only() {
        let melody = line(&[(2, 60, 2), (6, 62, 2)]);
        assert_eq!(rests(&melody), Tally::of(4.0, 8.0), "steps 0, 1, 4, 5 of 0..8");
        assert!(rests(&line(&[])).mean().is_none());
    }

    #[test]
    fn repeats_steps_and_leaps() {
        // C C D (step) B (3 down) C' (13 up, a leap) G (5 down); the repeat is not a move.
        let melody = line(&[(0, 60, 2), (2, 60, 2), (4, 62, 2), (6, 59, 2), (8, 72, 2), (10, 67, 2)]);
        assert_eq!(repeated_pitches(&melody), Tally::of(1.0, 5.0));
        assert_eq!(stepwise_motion(&melody), Tally::of(1.0, 4.0));
        assert_eq!(leaps(&melody), Tally::of(1.0, 4.0));
        let fifth = line(&[(0, 60, 2), (2, 67, 2)]);
        assert_eq!(leaps(&fifth), Tally::of(0.0, 1.0), "a fifth is not more than a fifth");
    }

    /// Two voices of one bar, each as (start, pitch, length) notes.
    fn duet(upper: &[(usize, u8, usize)], lower: &[(usize, u8, usize)]) -> (Voice, Voice) {
        let notes: Vec<_> =
            upper.iter().map(|&(s, p, l)| (0, s, p, l)).chain(lower.iter().map(|&(s, p, l)| (1, s, p, l))).collect();
        let bar = roll(4, 2, 1, &notes);
        (voice(&bar, 0), voice(&bar, 1))
    }

    #[test]
    fn crossings_count_steps_where_both_sound() {
        let (upper, lower) = duet(&[(0, 64, 4), (4, 55, 4), (8, 60, 8)], &[(0, 60, 12)]);
        assert_eq!(crossings(&upper, &lower), Tally::of(4.0, 12.0));
    }

    #[test]
    fn parallel_fifths_and_octaves_are_found_among_moves() {
        let (upper, lower) = duet(
            &[(0, 60, 2), (2, 62, 2), (4, 64, 4), (8, 67, 2), (10, 65, 2)],
            &[(0, 53, 2), (2, 55, 2), (4, 48, 2), (6, 50, 2), (8, 55, 2), (10, 53, 2)],
        );
        // Moves at step 2 (fifths to fifths, both up: parallel), 4 (contrary), 6 (oblique),
        // 8 (both up, a ninth to an octave: similar, not parallel), 10 (octaves, both down: parallel).
        assert_eq!(parallels(&upper, &lower), Tally::of(2.0, 5.0));
    }

    #[test]
    fn a_held_interval_or_a_rest_is_no_move_and_a_rest_hides_no_parallel() {
        // Octaves struck again are no move; octaves C -> rest -> D are parallel across the rest.
        let (upper, lower) = duet(&[(0, 72, 2), (2, 72, 2), (6, 74, 2)], &[(0, 60, 4), (6, 62, 2)]);
        assert_eq!(parallels(&upper, &lower), Tally::of(1.0, 1.0));
        let (upper, lower) = duet(&[(0, 67, 2), (2, 69, 2)], &[(0, 60, 2), (2, 60, 2)]);
        assert_eq!(parallels(&upper, &lower), Tally::of(0.0, 1.0), "one voice holding is oblique motion");
    }

    #[test]
    fn the_accumulator_pools_over_rolls_and_averages_over_tracks() {
        let mut voices = VoiceAccumulator::default();
        voices.add(&roll(4, 2, 1, &[(0, 0, 60, 4), (0, 4, 62, 12), (1, 0, 48, 16)]));
        voices.add(&roll(4, 2, 1, &[(0, 0, 60, 2), (0, 2, 60, 2), (1, 0, 48, 8), (1, 8, 43, 8)]));
        let summary = voices.summary();
        assert_eq!((summary.notes, summary.overlapping_notes), (7, 0));
        let upper = &summary.tracks[0].statistics;
        assert_eq!(upper.note_length_steps, Some(20.0 / 4.0));
        assert_eq!(upper.note_length_sixteenths, Some(5.0));
        assert_eq!(upper.repeated_pitches, Some(0.5), "one repeat of two pairs");
        assert_eq!(upper.rests, Some(0.0), "silence after the second roll's last note is no rest");
        assert_eq!(summary.mean.note_length_steps, Some((5.0 + 32.0 / 3.0) / 2.0));
        assert_eq!(summary.mean.stepwise_motion, Some(0.5), "the upper voice steps, the lower leaps a fourth");
        assert_eq!(summary.pairs.len(), 1);
        assert_eq!(summary.crossings, Some(0.0));
        assert_eq!(summary.pairs[0].moves, 1, "D over C; a pitch struck again is no move");
    }

    #[test]
    fn sixteenths_are_the_same_length_at_every_grid() {
        let mut coarse = VoiceAccumulator::default();
        coarse.add(&roll(4, 1, 1, &[(0, 0, 60, 1), (0, 1, 62, 3)]));
        let mut fine = VoiceAccumulator::default();
        fine.add(&roll(24, 1, 1, &[(0, 0, 60, 6), (0, 6, 62, 18)]));
        let (coarse, fine) = (coarse.summary(), fine.summary());
        assert_eq!(coarse.mean.note_length_sixteenths, Some(2.0));
        assert_eq!(fine.mean.note_length_sixteenths, Some(2.0));
        assert_eq!((coarse.mean.short_notes, fine.mean.short_notes), (Some(0.5), Some(0.5)));
    }
}
