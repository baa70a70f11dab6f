//! A [`Score`] onto a grid: quantised, split by meter, cut into rolls.

use super::midi_file::{Score, ScoreNote};
use super::piano_roll::{GridNote, Roll};
use super::representation::{Meter, Representation, DRUM_CHANNEL};
use super::swing::{is_off_grid, straighten, swung_channels};
use std::sync::Arc;

/// How a file's notes find their roll track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrackAssignment {
    /// A note goes to the track on its MIDI channel (format 0 files, and most exports).
    #[default]
    ByChannel,
    /// The n-th MIDI track that holds pitched notes goes to roll track n, whatever its channel
    /// (files whose parts all share one channel). Percussion-channel notes still go to the
    /// drum track.
    ByTrackOrder,
    /// A band's parts by what they play, whatever their channels: the drums to their lanes,
    /// the file's comping (see [`BandRoles`]) to the first pitched part and its bass to the
    /// second (top down, as voices are written); the file's other parts (a melody, a pad, a
    /// second guitar) are left out.
    ByRole,
}

impl std::str::FromStr for TrackAssignment {
    type Err = String;

    fn from_str(text: &str) -> Result<TrackAssignment, String> {
        match text {
            "channel" => Ok(TrackAssignment::ByChannel),
            "track" => Ok(TrackAssignment::ByTrackOrder),
            "role" => Ok(TrackAssignment::ByRole),
            other => Err(format!("`{other}`: parts are found by `channel`, by `track` order or by `role`")),
        }
    }
}

/// What the import did with every note that did not land in a roll as it was, so that
/// nothing is dropped without a count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub notes_read: usize,
    pub notes_placed: usize,
    /// Pitches outside the representation's window.
    pub outside_window: usize,
    /// Notes in spans whose meter is not the representation's.
    pub other_meter: usize,
    /// Notes with no roll track to go to (an unused channel, or drums with no drum track).
    pub no_track: usize,
    /// Onsets that were not on a grid step and were moved to the nearest one.
    pub moved_to_grid: usize,
    /// Notes that quantised onto the same step and pitch as another and were merged with it.
    pub merged: usize,
    /// Note-ons the file never ended (closed at the end of their track).
    pub unterminated: usize,
    /// Notes of swung parts, read straight (see [`super::swing`]).
    pub straightened: usize,
}

impl ImportReport {
    pub fn add(&mut self, other: &ImportReport) {
        self.notes_read += other.notes_read;
        self.notes_placed += other.notes_placed;
        self.outside_window += other.outside_window;
        self.other_meter += other.other_meter;
        self.no_track += other.no_track;
        self.moved_to_grid += other.moved_to_grid;
        self.merged += other.merged;
        self.unterminated += other.unterminated;
        self.straightened += other.straightened;
    }
}

/// A piece on the grid: one roll per span of the wanted meter, each starting on a bar line
/// and holding whole bars (the last bar padded with silence).
#[derive(Clone, Debug)]
pub struct ImportedPiece {
    pub segments: Vec<Roll>,
    pub report: ImportReport,
}

impl ImportedPiece {
    pub fn bar_count(&self) -> usize {
        self.segments.iter().map(Roll::bar_count).sum()
    }

    /// Every `bars`-bar phrase of the piece, starting every `hop` bars inside each segment
    /// from its first sound (see `Roll::phrases_from_first_sound`: not on a pickup's padding).
    pub fn phrases(&self, bars: usize, hop: usize) -> Vec<Roll> {
        self.segments.iter().flat_map(|segment| segment.phrases_from_first_sound(bars, hop)).collect()
    }
}

/// Ticks onto steps, exactly: step = tick * steps_per_quarter / ticks_per_quarter.
#[derive(Clone, Copy)]
struct Grid {
    numerator: u64,
    denominator: u64,
}

impl Grid {
    fn new(representation: &Representation, ticks_per_quarter: u16) -> Grid {
        let (steps, quarters) = representation.steps_per_quarter();
        Grid { numerator: steps, denominator: quarters * u64::from(ticks_per_quarter) }
    }

    /// The nearest step; halfway rounds up.
    fn step(self, tick: u64) -> u64 {
        (2 * tick * self.numerator + self.denominator) / (2 * self.denominator)
    }

    fn is_on_grid(self, tick: u64) -> bool {
        (tick * self.numerator).is_multiple_of(self.denominator)
    }
}

/// Puts a score on the representation's grid. The representation must be valid.
pub fn score_to_piece(
    score: &Score,
    representation: &Arc<Representation>,
    assignment: TrackAssignment,
) -> ImportedPiece {
    let grid = Grid::new(representation, score.ticks_per_quarter);
    let mut report = ImportReport {
        notes_read: score.notes.len(),
        unterminated: score.unterminated_notes,
        ..ImportReport::default()
    };
    let track_of = track_lookup(score, representation, assignment);
    let timing = straight_timing(score, representation);
    let steps_per_bar = representation.steps_per_bar() as u64;
    let mut segments = Vec::new();
    for span in meter_spans(score) {
        let in_span = |note: &&ScoreNote| span.start <= note.start && note.start < span.end;
        if !span.meter.reads_as(representation.meter) {
            report.other_meter += score.notes.iter().filter(in_span).count();
            continue;
        }
        let first_step = grid.step(span.start);
        let span_steps = grid.step(span.end).saturating_sub(first_step);
        let mut placed: Vec<GridNote> = Vec::new();
        for note in score.notes.iter().filter(in_span) {
            let Some(track) = track_of(note) else {
                report.no_track += 1;
                continue;
            };
            if representation.pitch_row(note.pitch).is_none() {
                report.outside_window += 1;
                continue;
            }
            let (onset, release, straightened) = timing(note);
            report.straightened += usize::from(straightened);
            if !grid.is_on_grid(onset) {
                report.moved_to_grid += 1;
            }
            let start = grid.step(onset).saturating_sub(first_step);
            // Every note lasts at least a step; none sounds past its span (into another meter).
            let end = grid.step(release).saturating_sub(first_step).min(span_steps).max(start + 1);
            placed.push(GridNote {
                track,
                start: start as usize,
                pitch: note.pitch,
                length: (end - start) as usize,
                velocity: note.velocity,
            });
        }
        let last_end = placed.iter().map(|note| (note.start + note.length) as u64).max().unwrap_or(0);
        let steps = span_steps.max(last_end).div_ceil(steps_per_bar) * steps_per_bar;
        if steps == 0 {
            continue;
        }
        let mut roll = Roll::new(representation.clone(), steps as usize);
        spread_over_voices(&mut placed, representation);
        report.merged += merge_collisions(&mut placed);
        for note in placed {
            roll.place(note).expect("notes were fitted to the roll above");
            report.notes_placed += 1;
        }
        tie_in_notes_from_before(score, span, grid, first_step, &track_of, &timing, &mut roll);
        segments.push(roll);
    }
    ImportedPiece { segments, report }
}

/// A note's onset and release as the grid reads them, and whether they were straightened: a
/// part swung off the grid (a shuffle, triplets on a 16th grid) is read straight, so that the
/// model learns its groove rather than a 16th rhythm bent out of it, and *Swing* plays it
/// swung again.
fn straight_timing<'a>(
    score: &'a Score,
    representation: &Representation,
) -> impl Fn(&ScoreNote) -> (u64, u64, bool) + 'a {
    let (steps, quarters) = representation.steps_per_quarter();
    let steps_per_quarter = steps as f64 / quarters as f64;
    let swung: Vec<(u8, f64)> =
        swung_channels(score).into_iter().filter(|&(_, late)| is_off_grid(late, steps_per_quarter)).collect();
    move |note: &ScoreNote| match swung.iter().find(|(channel, _)| *channel == note.channel) {
        Some(&(_, late)) => {
            let tpq = score.ticks_per_quarter;
            (straighten(note.start, tpq, late), straighten(note.end, tpq, late), true)
        }
        None => (note.start, note.end, false),
    }
}

/// Two notes of one pitch quantised onto one step become one: the louder velocity and the
/// longer length. Returns how many were merged away.
fn merge_collisions(notes: &mut Vec<GridNote>) -> usize {
    notes.sort_by_key(|note| (note.track, note.start, note.pitch));
    let before = notes.len();
    notes.dedup_by(|later, kept| {
        let same = (later.track, later.start, later.pitch) == (kept.track, kept.start, kept.pitch);
        if same {
            kept.length = kept.length.max(later.length);
            kept.velocity = kept.velocity.max(later.velocity);
        }
        same
    });
    before - notes.len()
}

/// Notes that start before a span and sound into it: the span hears them, though it does not
/// own their onsets.
fn tie_in_notes_from_before(
    score: &Score,
    span: MeterSpan,
    grid: Grid,
    first_step: u64,
    track_of: &impl Fn(&ScoreNote) -> Option<usize>,
    timing: &impl Fn(&ScoreNote) -> (u64, u64, bool),
    roll: &mut Roll,
) {
    for note in score.notes.iter().filter(|note| note.start < span.start && note.end > span.start) {
        if let Some(track) = track_of(note) {
            let length = grid.step(timing(note).1).saturating_sub(first_step) as usize;
            roll.place_tied_in(track, note.pitch, length);
        }
    }
}

/// A note's part: for a drum note the lane that plays its sound, for a pitched note the first
/// track of the part its channel (or MIDI track) goes to. A part of several voices is spread
/// over them afterwards (see [`spread_over_voices`]).
fn track_lookup<'a>(
    score: &'a Score,
    representation: &'a Representation,
    assignment: TrackAssignment,
) -> impl Fn(&ScoreNote) -> Option<usize> + 'a {
    let mut pitched_tracks: Vec<usize> =
        score.notes.iter().filter(|note| note.channel != DRUM_CHANNEL).map(|note| note.track).collect();
    pitched_tracks.sort_unstable();
    pitched_tracks.dedup();
    let tracks = &representation.tracks;
    // Each pitched part's first track, in order.
    let pitched_parts: Vec<usize> = (0..tracks.len())
        .filter(|&t| !tracks[t].is_drum && (t == 0 || tracks[t - 1].channel != tracks[t].channel))
        .collect();
    let roles = match assignment {
        TrackAssignment::ByRole => BandRoles::of(score),
        _ => BandRoles::default(),
    };
    move |note: &ScoreNote| {
        if note.channel == DRUM_CHANNEL {
            return tracks.iter().position(|track| track.is_drum && track.plays(note.pitch));
        }
        match assignment {
            TrackAssignment::ByChannel => tracks.iter().position(|track| track.channel == note.channel),
            TrackAssignment::ByTrackOrder => {
                let order = pitched_tracks.binary_search(&note.track).ok()?;
                pitched_parts.get(order).copied()
            }
            TrackAssignment::ByRole => {
                let role = [roles.comping, roles.bass].iter().position(|&channel| channel == Some(note.channel))?;
                pitched_parts.get(role).copied()
            }
        }
    }
}

/// Which channels of a file play a band's bass and its comping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BandRoles {
    /// The channel whose instrument is a General MIDI bass (programs 33-40), or failing that
    /// whose track is named as a bass; of several, the one with the most notes.
    pub bass: Option<u8>,
    /// Of the other pitched channels (sound effects aside), the one that plays the most notes
    /// struck together with another, if at least a fifth of its notes are: the part that
    /// plays the chords.
    pub comping: Option<u8>,
}

/// General MIDI's basses (programs 33-40, 0-based 32-39).
const BASS_PROGRAMS: std::ops::RangeInclusive<u8> = 32..=39;
/// General MIDI's sound effects (programs 121-128): never a part.
const SOUND_EFFECTS: std::ops::RangeInclusive<u8> = 120..=127;

impl BandRoles {
    pub fn of(score: &Score) -> BandRoles {
        let mut notes = [0usize; 16];
        let mut chordal = [0usize; 16];
        let mut named_bass = [false; 16];
        // Notes are sorted by start, then channel: the notes one channel strikes together lie
        // side by side.
        for struck in score.notes.chunk_by(|a, b| (a.start, a.channel) == (b.start, b.channel)) {
            let channel = usize::from(struck[0].channel);
            notes[channel] += struck.len();
            if struck.len() > 1 {
                chordal[channel] += struck.len();
            }
            for note in struck {
                named_bass[channel] |=
                    score.track_names.get(note.track).is_some_and(|name| name.to_lowercase().contains("bass"));
            }
        }
        let pitched = |c: usize| c != usize::from(DRUM_CHANNEL) && notes[c] > 0;
        let program = |c: usize| score.programs[c];
        let most_notes = |candidates: &mut dyn Iterator<Item = usize>| candidates.max_by_key(|&c| (notes[c], 16 - c));
        let bass =
            most_notes(&mut (0..16).filter(|&c| pitched(c) && program(c).is_some_and(|p| BASS_PROGRAMS.contains(&p))))
                .or_else(|| most_notes(&mut (0..16).filter(|&c| pitched(c) && program(c).is_none() && named_bass[c])));
        let comping = (0..16)
            .filter(|&c| pitched(c) && Some(c) != bass && !program(c).is_some_and(|p| SOUND_EFFECTS.contains(&p)))
            .filter(|&c| 5 * chordal[c] >= notes[c])
            .max_by_key(|&c| (chordal[c], 16 - c));
        BandRoles { bass: bass.map(|c| c as u8), comping: comping.map(|c| c as u8) }
    }
}

/// Spreads the notes of each part with several voices (a comping hand) over its voices, all
/// having been put on the part's first track: the notes struck together are dealt to as many
/// voices, in pitch order, choosing the voices whose last notes lie nearest — so a chord fills
/// the voices top to bottom, and a lone note struck under a held chord goes to the voice it
/// moves from rather than cutting the top one. Notes beyond the voices stay on the lowest
/// voice, where reading the part as voices counts them as dropped.
fn spread_over_voices(notes: &mut [GridNote], representation: &Representation) {
    for first in 0..representation.track_count() {
        let voices = representation.part_of(first);
        if voices.len() < 2 || voices[0] != first || representation.tracks[first].is_drum {
            continue;
        }
        let mut part: Vec<&mut GridNote> = notes.iter_mut().filter(|note| note.track == first).collect();
        part.sort_by_key(|note| (note.start, std::cmp::Reverse(note.pitch)));
        let mut last: Vec<Option<u8>> = vec![None; voices.len()];
        let mut from = 0;
        while from < part.len() {
            let start = part[from].start;
            let to = from + part[from..].iter().take_while(|note| note.start == start).count();
            let struck: Vec<u8> = part[from..to].iter().map(|note| note.pitch).collect();
            let chosen = nearest_voices(&struck, &last);
            for (note, voice) in
                part[from..to].iter_mut().zip(chosen.iter().copied().chain(std::iter::repeat(voices.len() - 1)))
            {
                note.track = voices[voice];
                last[voice] = Some(note.pitch);
            }
            from = to;
        }
    }
}

/// For `struck` pitches (highest first), as many voices in order, top first, whose last
/// pitches they lie nearest in all (a voice not yet heard is as near as any); of equally
/// near choices, the highest voices. At most as many pitches as voices are dealt.
fn nearest_voices(struck: &[u8], last: &[Option<u8>]) -> Vec<usize> {
    let dealt = struck.len().min(last.len());
    let distance = |voices: &[usize]| -> u32 {
        voices.iter().zip(struck).map(|(&v, &pitch)| last[v].map_or(0, |l| u32::from(l.abs_diff(pitch)))).sum()
    };
    // Every increasing choice of `dealt` voices, the highest first: a part has a few voices.
    let mut best: Option<(u32, Vec<usize>)> = None;
    let mut choice: Vec<usize> = (0..dealt).collect();
    loop {
        let cost = distance(&choice);
        if best.as_ref().is_none_or(|(least, _)| cost < *least) {
            best = Some((cost, choice.clone()));
        }
        // The next combination in order.
        let Some(i) = (0..dealt).rev().find(|&i| choice[i] < last.len() - dealt + i) else { break };
        choice[i] += 1;
        for j in i + 1..dealt {
            choice[j] = choice[j - 1] + 1;
        }
    }
    best.map_or_else(Vec::new, |(_, voices)| voices)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MeterSpan {
    start: u64,
    end: u64,
    meter: Meter,
}

/// The piece split where its meter changes; 4/4 until the first time signature, as the MIDI
/// standard says.
fn meter_spans(score: &Score) -> Vec<MeterSpan> {
    let mut changes = score.meters.clone();
    if changes.first().is_none_or(|&(tick, _)| tick > 0) {
        changes.insert(0, (0, Meter::COMMON));
    }
    let mut spans: Vec<MeterSpan> = Vec::with_capacity(changes.len());
    for (index, &(start, meter)) in changes.iter().enumerate() {
        let end = changes.get(index + 1).map_or(score.end, |&(next, _)| next);
        if end <= start {
            continue;
        }
        match spans.last_mut() {
            Some(last) if last.meter == meter && last.end == start => last.end = end,
            _ => spans.push(MeterSpan { start, end, meter }),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::TrackSpec;

    const TPQ: u16 = 480;

    fn representation(tracks: Vec<TrackSpec>) -> Arc<Representation> {
        Arc::new(Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 48,
            pitch_count: 36,
            tracks,
        })
    }

    fn two_voices() -> Arc<Representation> {
        representation(vec![TrackSpec::new("Upper", 0), TrackSpec::new("Lower", 1)])
    }

    fn note(track: usize, channel: u8, pitch: u8, start: u64, end: u64) -> ScoreNote {
        ScoreNote { track, channel, pitch, velocity: 90, start, end }
    }

    fn score(notes: Vec<ScoreNote>, meters: Vec<(u64, Meter)>) -> Score {
        let end = notes.iter().map(|n| n.end).max().unwrap_or(0);
        Score {
            ticks_per_quarter: TPQ,
            tempos: vec![(0, 500_000)],
            meters,
            notes,
            track_names: vec![String::new(); 4],
            programs: [None; 16],
            end,
            unterminated_notes: 0,
        }
    }

    fn grid(track: usize, start: usize, pitch: u8, length: usize) -> GridNote {
        GridNote { track, start, pitch, length, velocity: 90 }
    }

    #[test]
    fn notes_land_on_the_nearest_step_and_moves_are_counted() {
        let piece = score_to_piece(
            &score(vec![note(0, 0, 60, 0, 480), note(0, 0, 62, 470, 965), note(0, 0, 64, 160, 170)], vec![]),
            &two_voices(),
            TrackAssignment::ByChannel,
        );
        assert_eq!(piece.segments.len(), 1);
        assert_eq!(piece.segments[0].steps(), 16, "the piece is padded to a whole bar");
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 60, 4), grid(0, 1, 64, 1), grid(0, 4, 62, 4)]);
        assert_eq!(piece.report.moved_to_grid, 2);
        assert_eq!(piece.report.notes_placed, 3);
    }

    #[test]
    fn a_shuffled_part_is_read_straight_beside_a_straight_one_and_a_dotted_one_stays_as_written() {
        let beat = u64::from(TPQ);
        // Channel 0 shuffles (a triplet's first and last thirds, and once all three); channel
        // 1 plays straight eighths; channel 2 a dotted rhythm, which the grid holds as it is.
        let mut notes: Vec<ScoreNote> = (0..8)
            .flat_map(|b| [note(0, 0, 60, b * beat, b * beat + 320), note(0, 0, 62, b * beat + 320, (b + 1) * beat)])
            .collect();
        notes.push(note(0, 0, 64, 8 * beat + 160, 8 * beat + 320));
        notes.extend((0..16).map(|e| note(0, 1, 50, e * beat / 2, (e + 1) * beat / 2)));
        notes.extend(
            (0..8).flat_map(|b| {
                [note(0, 2, 70, b * beat, b * beat + 360), note(0, 2, 72, b * beat + 360, (b + 1) * beat)]
            }),
        );
        notes.sort_by_key(|n| (n.start, n.channel, n.pitch));
        let representation = representation(vec![
            TrackSpec::new("Shuffle", 0),
            TrackSpec::new("Straight", 1),
            TrackSpec::new("Dotted", 2),
        ]);
        let piece = score_to_piece(&score(notes, vec![]), &representation, TrackAssignment::ByChannel);
        let roll = &piece.segments[0];
        let onsets = |track: usize| -> Vec<usize> {
            roll.notes().iter().filter(|n| n.track == track).map(|n| n.start % 4).collect()
        };
        assert!(
            roll.notes().iter().filter(|n| n.track == 0 && n.start < 32).all(|n| n.length == 2),
            "{:?}",
            roll.notes()
        );
        assert_eq!(&onsets(0)[..16], &[0, 2].repeat(8)[..], "the shuffle's off-beats are the beats' middles");
        assert_eq!(onsets(0)[16], 1, "a triplet's middle third is the beat's second 16th");
        assert_eq!(onsets(1), [0, 2].repeat(8), "straight eighths are kept");
        assert_eq!(onsets(2), [0, 3].repeat(8), "a dotted rhythm is kept");
        assert_eq!(piece.report.straightened, 17);
        assert_eq!(piece.report.moved_to_grid, 0, "read straight, every onset is on the grid");
    }

    #[test]
    fn a_pickup_keeps_its_place_in_the_bar() {
        // One-beat pickup, padded with three beats of silence as the corpus is.
        let piece = score_to_piece(
            &score(vec![note(0, 0, 67, 1440, 1920), note(0, 0, 72, 1920, 3840)], vec![]),
            &two_voices(),
            TrackAssignment::ByChannel,
        );
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 12, 67, 4), grid(0, 16, 72, 16)]);
        assert_eq!(piece.bar_count(), 2);
    }

    #[test]
    fn a_reel_in_cut_time_is_read_as_common_time() {
        let half = 2 * u64::from(TPQ);
        let notes = vec![note(0, 0, 60, 0, half), note(0, 0, 62, half, 2 * half), note(0, 0, 64, 2 * half, 3 * half)];
        let piece = score_to_piece(
            &score(notes, vec![(0, Meter::new(2, 2).unwrap())]),
            &two_voices(),
            TrackAssignment::ByChannel,
        );
        assert_eq!(piece.report.other_meter, 0);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 60, 8), grid(0, 8, 62, 8), grid(0, 16, 64, 8)]);
    }

    #[test]
    fn only_spans_in_the_wanted_meter_are_kept() {
        let bar = 4 * u64::from(TPQ);
        let three_four = 3 * u64::from(TPQ);
        let meters =
            vec![(0, Meter::COMMON), (2 * bar, Meter::new(3, 4).unwrap()), (2 * bar + 2 * three_four, Meter::COMMON)];
        let back = 2 * bar + 2 * three_four;
        let notes = vec![
            note(0, 0, 60, 0, bar),
            note(0, 0, 62, 2 * bar, 2 * bar + three_four),
            note(0, 0, 64, 2 * bar + three_four, back + 480),
            note(0, 0, 65, back + 480, back + bar),
        ];
        let piece = score_to_piece(&score(notes, meters), &two_voices(), TrackAssignment::ByChannel);
        assert_eq!(piece.segments.len(), 2);
        assert_eq!(piece.segments[0].steps(), 32);
        assert_eq!(piece.segments[1].steps(), 16);
        assert_eq!(piece.report.other_meter, 2);
        assert_eq!(piece.segments[1].notes(), vec![grid(0, 4, 65, 12)]);
        assert!(piece.segments[1].is_sounding(0, 0, 64 - 48), "the note tied over the meter change is heard");
        assert!(!piece.segments[1].is_sounding(0, 4, 64 - 48));
    }

    #[test]
    fn meter_repeated_is_one_span() {
        let bar = 4 * u64::from(TPQ);
        let meters = vec![(0, Meter::COMMON), (bar, Meter::COMMON)];
        let piece =
            score_to_piece(&score(vec![note(0, 0, 60, 0, 2 * bar)], meters), &two_voices(), TrackAssignment::ByChannel);
        assert_eq!(piece.segments.len(), 1);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 60, 32)]);
    }

    #[test]
    fn channels_choose_tracks_and_strays_are_counted() {
        let notes = vec![
            note(0, 1, 50, 0, 480),
            note(0, 0, 70, 0, 480),
            note(0, 5, 60, 0, 480),
            note(0, DRUM_CHANNEL, 36, 0, 120),
        ];
        let piece = score_to_piece(&score(notes, vec![]), &two_voices(), TrackAssignment::ByChannel);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 70, 4), grid(1, 0, 50, 4)]);
        assert_eq!(piece.report.no_track, 2, "channel 6 and the drum note have nowhere to go");
    }

    #[test]
    fn drums_go_to_the_drum_track() {
        let representation = representation(vec![TrackSpec::new("Keys", 0), TrackSpec::drums("Drums", Vec::new())]);
        let notes = vec![note(0, DRUM_CHANNEL, 49, 0, 120), note(0, 0, 60, 0, 480)];
        let piece = score_to_piece(&score(notes, vec![]), &representation, TrackAssignment::ByTrackOrder);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 60, 4), grid(1, 0, 49, 1)]);
    }

    #[test]
    fn drum_sounds_go_to_their_lanes_and_sounds_of_no_lane_are_counted() {
        let representation = representation(vec![
            TrackSpec::drums("Kick", vec![48]),
            TrackSpec::drums("Snare", vec![50, 52]),
            TrackSpec::new("Bass", 0),
        ]);
        let notes = vec![
            note(0, DRUM_CHANNEL, 48, 0, 60),
            note(0, DRUM_CHANNEL, 52, 0, 60),
            note(0, DRUM_CHANNEL, 50, 480, 540),
            note(0, DRUM_CHANNEL, 60, 480, 540),
            note(1, 0, 55, 0, 480),
        ];
        let piece = score_to_piece(&score(notes, vec![]), &representation, TrackAssignment::ByTrackOrder);
        assert_eq!(
            piece.segments[0].notes(),
            vec![grid(0, 0, 48, 1), grid(1, 0, 52, 1), grid(1, 4, 50, 1), grid(2, 0, 55, 4)]
        );
        assert_eq!(piece.report.no_track, 1, "sound 60 belongs to no lane");
    }

    #[test]
    fn a_chord_fills_the_voices_of_its_part_and_a_lone_note_goes_to_the_voice_it_moves_from() {
        let representation = representation(vec![
            TrackSpec::new("Comp 1", 2),
            TrackSpec::new("Comp 2", 2),
            TrackSpec::new("Comp 3", 2),
            TrackSpec::new("Bass", 3),
        ]);
        let notes = vec![
            // A C major triad for two beats, then a lone G under the held top two, then four
            // notes struck at once: one more than the voices.
            note(0, 2, 72, 0, 1920),
            note(0, 2, 67, 0, 960),
            note(0, 2, 64, 0, 960),
            note(0, 2, 55, 960, 1920),
            note(0, 2, 76, 1920, 2400),
            note(0, 2, 72, 1920, 2400),
            note(0, 2, 67, 1920, 2400),
            note(0, 2, 60, 1920, 2400),
            note(1, 3, 48, 0, 1920),
        ];
        let piece = score_to_piece(&score(notes, vec![]), &representation, TrackAssignment::ByChannel);
        let on = |track: usize| -> Vec<(usize, u8)> {
            piece.segments[0].notes().iter().filter(|n| n.track == track).map(|n| (n.start, n.pitch)).collect()
        };
        assert_eq!(on(0), vec![(0, 72), (16, 76)]);
        assert_eq!(on(1), vec![(0, 67), (16, 72)]);
        assert_eq!(
            on(2),
            vec![(0, 64), (8, 55), (16, 60), (16, 67)],
            "the G goes where the E was; a chord's fourth note to the lowest voice"
        );
        assert_eq!(on(3), vec![(0, 48)]);
    }

    #[test]
    fn nearest_voices_deal_in_order() {
        assert_eq!(nearest_voices(&[70, 60], &[None, None, None]), vec![0, 1], "nothing heard yet: from the top");
        assert_eq!(nearest_voices(&[55], &[Some(72), Some(67), Some(64)]), vec![2]);
        assert_eq!(nearest_voices(&[71, 66], &[Some(72), Some(67), Some(64)]), vec![0, 1]);
        assert_eq!(nearest_voices(&[66, 63], &[Some(72), Some(67), Some(64)]), vec![1, 2]);
        assert_eq!(nearest_voices(&[80, 70, 60, 50], &[None, None]), vec![0, 1]);
    }

    #[test]
    fn band_roles_are_read_from_programs_names_and_chords() {
        // Channel 0: a melody; 1: chords on a piano; 2: a bass by its program; 9: drums.
        let mut notes = vec![note(0, 0, 72, 0, 480), note(0, 0, 74, 480, 960), note(3, DRUM_CHANNEL, 50, 0, 60)];
        for start in [0, 960] {
            notes.extend([60, 64, 67].map(|pitch| note(1, 1, pitch, start, start + 960)));
        }
        notes.push(note(2, 2, 52, 0, 1920));
        let mut band = score(notes, vec![]);
        band.notes.sort_by_key(|n| (n.start, n.channel, n.pitch, n.end));
        band.programs[2] = Some(33);
        band.programs[1] = Some(0);
        assert_eq!(BandRoles::of(&band), BandRoles { bass: Some(2), comping: Some(1) });
        // No bass program: a track named as a bass (on a channel with no program) is one.
        band.programs[2] = None;
        band.track_names[2] = "Fretless Bass".into();
        assert_eq!(BandRoles::of(&band).bass, Some(2));
        band.track_names[2] = "Tuba?".into();
        assert_eq!(BandRoles::of(&band), BandRoles { bass: None, comping: Some(1) });

        let representation = representation(vec![
            TrackSpec::drums("Kick", vec![50]),
            TrackSpec::new("Comp 1", 2),
            TrackSpec::new("Comp 2", 2),
            TrackSpec::new("Bass", 1),
        ]);
        band.programs[2] = Some(33);
        let piece = score_to_piece(&band, &representation, TrackAssignment::ByRole);
        let tracks: Vec<usize> = piece.segments[0].notes().iter().map(|n| n.track).collect();
        assert_eq!(tracks, vec![0, 1, 1, 2, 2, 2, 2, 3], "kick, the chords' tops, the rest on the lower voice, bass");
        assert_eq!(piece.report.no_track, 2, "the melody has no part in a band");
    }

    #[test]
    fn track_order_ignores_channels() {
        let notes = vec![note(1, 0, 72, 0, 480), note(3, 0, 48, 0, 480), note(5, 0, 60, 0, 480)];
        let piece = score_to_piece(&score(notes, vec![]), &two_voices(), TrackAssignment::ByTrackOrder);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 72, 4), grid(1, 0, 48, 4)]);
        assert_eq!(piece.report.no_track, 1, "a third part has no third track");
    }

    #[test]
    fn pitches_outside_the_window_are_counted_not_hidden() {
        let notes = vec![note(0, 0, 47, 0, 480), note(0, 0, 84, 0, 480), note(0, 0, 83, 0, 480)];
        let piece = score_to_piece(&score(notes, vec![]), &two_voices(), TrackAssignment::ByChannel);
        assert_eq!(piece.report.outside_window, 2);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 83, 4)]);
    }

    #[test]
    fn notes_quantised_together_merge_into_the_louder_and_longer() {
        let mut quiet = note(0, 0, 60, 0, 960);
        quiet.velocity = 40;
        let piece = score_to_piece(
            &score(vec![quiet, note(0, 0, 60, 10, 480)], vec![]),
            &two_voices(),
            TrackAssignment::ByChannel,
        );
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 60, 8)]);
        assert_eq!(piece.report.merged, 1);
    }

    #[test]
    fn a_very_short_note_still_lasts_one_step() {
        let piece =
            score_to_piece(&score(vec![note(0, 0, 60, 0, 5)], vec![]), &two_voices(), TrackAssignment::ByChannel);
        assert_eq!(piece.segments[0].notes(), vec![grid(0, 0, 60, 1)]);
    }

    #[test]
    fn an_empty_score_gives_no_segments() {
        let piece = score_to_piece(&score(vec![], vec![]), &two_voices(), TrackAssignment::ByChannel);
        assert!(piece.segments.is_empty());
        assert_eq!(piece.bar_count(), 0);
    }
}
