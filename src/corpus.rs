//! Folders of MIDI files, read as a whole: what the trainer and the evaluator stand on.
//!
//! A user's folder always holds some broken files. Each is skipped with its reason, the rest
//! is read, and the summary says what happened to every file and every note.

use crate::files::read_limited;
use crate::roll::{
    read_midi, score_to_piece, ImportReport, ImportedPiece, MidiError, Representation, Score, TrackAssignment,
    TrackSpec, DRUM_CHANNEL, MOST_MIDI_FILE_BYTES,
};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a file of a folder was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Unreadable(#[from] crate::files::FileError),
    #[error("{path}: {source}")]
    Midi { path: PathBuf, source: MidiError },
}

impl FileError {
    /// The reason without the path, for grouping a summary.
    pub fn reason(&self) -> String {
        match self {
            FileError::Unreadable(crate::files::FileError::Io { source, .. }) => {
                format!("cannot read: {}", source.kind())
            }
            FileError::Unreadable(crate::files::FileError::NotRegular { .. }) => "not a regular file".into(),
            FileError::Unreadable(crate::files::FileError::TooLarge { .. }) => "too large".into(),
            FileError::Midi { source, .. } => short_reason(source),
        }
    }
}

/// The kind of a MIDI error without its particulars (tick, track), so that a summary groups
/// 200 files with zero tempos at 200 different ticks under one line.
fn short_reason(error: &MidiError) -> String {
    match error {
        MidiError::Malformed(detail) => format!("damaged ({detail})"),
        MidiError::Truncated { .. } => "truncated".into(),
        MidiError::BadChunk { .. } => "damaged (bad chunk type)".into(),
        MidiError::TrackCount { .. } => "damaged (wrong track count)".into(),
        MidiError::SequentialFormat => "format 2".into(),
        MidiError::SmpteTiming { .. } => "SMPTE time division".into(),
        MidiError::ZeroTicksPerQuarter => "0 ticks per quarter".into(),
        MidiError::ZeroTempo { .. } => "zero tempo".into(),
        MidiError::BadTimeSignature { .. } => "invalid time signature".into(),
        MidiError::AbsurdLength { .. } => "absurd length".into(),
    }
}

/// A folder could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{0}: no such folder")]
    Missing(PathBuf),
    #[error("{path}: cannot list: {source}")]
    Unlistable { path: PathBuf, source: std::io::Error },
    #[error("{0}: holds no .mid or .midi files")]
    NoMidiFiles(PathBuf),
}

/// Every MIDI file under `root` (recursively), sorted so that runs are reproducible.
pub fn midi_files(root: &Path) -> Result<Vec<PathBuf>, FolderError> {
    if !root.is_dir() {
        return Err(FolderError::Missing(root.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|source| FolderError::Unlistable { path: folder.clone(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| FolderError::Unlistable { path: folder.clone(), source })?;
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if is_midi_name(&path) {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        return Err(FolderError::NoMidiFiles(root.to_path_buf()));
    }
    files.sort();
    Ok(files)
}

fn is_midi_name(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("mid") || ext.eq_ignore_ascii_case("midi"))
}

/// Reads one file into a score, naming the file in any error.
pub fn read_score(path: &Path) -> Result<Score, FileError> {
    let bytes = read_limited(path, MOST_MIDI_FILE_BYTES)?;
    read_midi(&bytes).map_err(|source| FileError::Midi { path: path.to_path_buf(), source })
}

/// Scores of a folder, with the files that could not be read.
pub struct ScoreFolder {
    pub scores: Vec<(PathBuf, Score)>,
    pub skipped: Vec<FileError>,
}

pub fn read_folder(root: &Path) -> Result<ScoreFolder, FolderError> {
    let mut folder = ScoreFolder { scores: Vec::new(), skipped: Vec::new() };
    for path in midi_files(root)? {
        match read_score(&path) {
            Ok(score) => folder.scores.push((path, score)),
            Err(error) => folder.skipped.push(error),
        }
    }
    Ok(folder)
}

/// A folder on a grid.
pub struct Corpus {
    pub pieces: Vec<(PathBuf, ImportedPiece)>,
    pub skipped: Vec<FileError>,
    pub report: ImportReport,
}

/// How a model reads a part: as voices making one choice a step (the `voices` preset), where
/// a part that plays chords needs several voices and a drum kit is read as lanes, or as a
/// roll of cells that hold any number of notes (the roll presets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartReading {
    Voices,
    Cells,
}

/// The most voices one part is read as: a comping hand's four-note chords.
pub const MOST_VOICES_PER_PART: usize = 4;

impl ScoreFolder {
    /// The parts of a folder nobody described, as `assignment` finds them and `reading` holds
    /// them: drums as one track of cells, or for voices as a lane per group of sounds heard;
    /// a pitched part as one track, or for voices as many as it sounds notes at once (in nine
    /// of ten onsets, up to [`MOST_VOICES_PER_PART`]).
    pub fn tracks(&self, assignment: TrackAssignment, reading: PartReading) -> Vec<TrackSpec> {
        let mut parts = match assignment {
            TrackAssignment::ByChannel => self.tracks_by_channel(),
            TrackAssignment::ByTrackOrder => self.tracks_by_order(),
            TrackAssignment::ByRole => self.tracks_by_role(),
        };
        let heard_drums: Vec<u8> = {
            let mut sounds: Vec<u8> = self
                .scores
                .iter()
                .flat_map(|(_, score)| score.notes.iter().filter(|n| n.channel == DRUM_CHANNEL).map(|n| n.pitch))
                .collect();
            sounds.sort_unstable();
            sounds.dedup();
            sounds
        };
        if reading == PartReading::Cells {
            if !heard_drums.is_empty() {
                parts.push(TrackSpec::drums("Drums", Vec::new()));
            }
            return parts;
        }
        let voices = self.voices_per_part(&parts, assignment);
        let mut tracks: Vec<TrackSpec> = parts
            .into_iter()
            .zip(voices)
            .flat_map(|(part, voices)| {
                (0..voices).map(move |voice| match voices {
                    1 => part.clone(),
                    _ => TrackSpec::new(format!("{} {}", part.name, voice + 1), part.channel),
                })
            })
            .collect();
        tracks.extend(crate::roll::drums::lanes_for(&heard_drums));
        tracks
    }

    /// How many voices each pitched part needs: the notes it sounds at its onsets, read with
    /// the import itself (so that parts are found as training will find them), in nine onsets
    /// of ten.
    fn voices_per_part(&self, parts: &[TrackSpec], assignment: TrackAssignment) -> Vec<usize> {
        if parts.is_empty() {
            return Vec::new();
        }
        let whole_range = Arc::new(Representation {
            steps_per_beat: 4,
            meter: crate::roll::Meter::COMMON,
            bars_per_phrase: 1,
            lowest_pitch: 0,
            pitch_count: 128,
            tracks: parts.to_vec(),
        });
        let mut sounding_at_onsets: Vec<Vec<usize>> = vec![Vec::new(); parts.len()];
        for (_, score) in &self.scores {
            // Every meter: the voices a part needs do not depend on which bars a model keeps.
            let mut any_meter = score.clone();
            any_meter.meters.clear();
            for roll in score_to_piece(&any_meter, &whole_range, assignment).segments {
                for (track, counts) in sounding_at_onsets.iter_mut().enumerate() {
                    for step in 0..roll.steps() {
                        if roll.onsets_at(track, step).iter().any(|&v| v > 0) {
                            counts.push(roll.sounding_at(track, step).iter().filter(|&&on| on).count());
                        }
                    }
                }
            }
        }
        sounding_at_onsets
            .into_iter()
            .map(|mut counts| {
                counts.sort_unstable();
                let ninth_decile = counts.get(counts.len().saturating_sub(1) * 9 / 10).copied().unwrap_or(1);
                ninth_decile.clamp(1, MOST_VOICES_PER_PART)
            })
            .collect()
    }

    /// A comping part above a bass, where any file has pitched notes (see
    /// `TrackAssignment::ByRole`): top down, as voices are written.
    fn tracks_by_role(&self) -> Vec<TrackSpec> {
        let pitched = self.scores.iter().any(|(_, score)| score.notes.iter().any(|n| n.channel != DRUM_CHANNEL));
        match pitched {
            true => vec![TrackSpec::new("Comp", 1), TrackSpec::new("Bass", 0)],
            false => Vec::new(),
        }
    }

    /// As many parts as the file with the most MIDI tracks of pitched notes has, named after
    /// that file's tracks and put on channels 1, 2, … (skipping percussion).
    fn tracks_by_order(&self) -> Vec<TrackSpec> {
        let pitched_tracks = |score: &Score| -> Vec<usize> {
            let mut tracks: Vec<usize> =
                score.notes.iter().filter(|n| n.channel != DRUM_CHANNEL).map(|n| n.track).collect();
            tracks.sort_unstable();
            tracks.dedup();
            tracks
        };
        let widest =
            self.scores.iter().map(|(_, score)| (pitched_tracks(score), score)).max_by_key(|(tracks, _)| tracks.len());
        let mut specs: Vec<TrackSpec> = Vec::new();
        if let Some((tracks, score)) = widest {
            let channels = (0u8..16).filter(|&c| c != DRUM_CHANNEL);
            for (index, (track, channel)) in tracks.iter().zip(channels).enumerate() {
                let name = match score.track_names[*track].as_str() {
                    "" => format!("Part {}", index + 1),
                    name => name.to_string(),
                };
                specs.push(TrackSpec::new(name, channel));
            }
        }
        specs
    }

    /// One part per pitched MIDI channel in use, named after the first MIDI track seen on it.
    fn tracks_by_channel(&self) -> Vec<TrackSpec> {
        let mut names: BTreeMap<u8, String> = BTreeMap::new();
        for (_, score) in &self.scores {
            for note in score.notes.iter().filter(|n| n.channel != DRUM_CHANNEL) {
                names.entry(note.channel).or_insert_with(|| match score.track_names[note.track].as_str() {
                    "" => format!("Channel {}", note.channel + 1),
                    name => name.to_string(),
                });
            }
        }
        names.into_iter().map(|(channel, name)| TrackSpec::new(name, channel)).collect()
    }

    pub fn into_corpus(self, representation: &Arc<Representation>, assignment: TrackAssignment) -> Corpus {
        let mut report = ImportReport::default();
        let pieces = self
            .scores
            .into_iter()
            .map(|(path, score)| {
                let piece = score_to_piece(&score, representation, assignment);
                report.add(&piece.report);
                (path, piece)
            })
            .collect();
        Corpus { pieces, skipped: self.skipped, report }
    }
}

/// Reads a folder straight onto a grid.
pub fn load_corpus(
    root: &Path,
    representation: &Arc<Representation>,
    assignment: TrackAssignment,
) -> Result<Corpus, FolderError> {
    Ok(read_folder(root)?.into_corpus(representation, assignment))
}

impl Corpus {
    pub fn bar_count(&self) -> usize {
        self.pieces.iter().map(|(_, piece)| piece.bar_count()).sum()
    }
}

/// Thousands separated by a thin space, as the summary is read by people.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

impl fmt::Display for Corpus {
    /// `12 657 read, 240 skipped: 200 SMPTE time division, 40 format 2`, then what became of
    /// the notes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} read, {} skipped", grouped(self.pieces.len()), grouped(self.skipped.len()))?;
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for error in &self.skipped {
            *reasons.entry(error.reason()).or_default() += 1;
        }
        let mut reasons: Vec<_> = reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (index, (reason, count)) in reasons.iter().enumerate() {
            write!(f, "{}{} {reason}", if index == 0 { ": " } else { ", " }, grouped(*count))?;
        }
        let r = &self.report;
        write!(
            f,
            "\n{} bars; notes: {} read, {} placed, {} outside the pitch window, {} in other meters, \
             {} with no track, {} merged, {} moved onto the grid, {} never ended, {} read straight from swung parts",
            grouped(self.bar_count()),
            grouped(r.notes_read),
            grouped(r.notes_placed),
            grouped(r.outside_window),
            grouped(r.other_meter),
            grouped(r.no_track),
            grouped(r.merged),
            grouped(r.moved_to_grid),
            grouped(r.unterminated),
            grouped(r.straightened),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roll::ScoreNote;

    /// A bar of a band: kick, snare and hats; triads on channel 1; a bass on channel 2.
    fn band_folder() -> ScoreFolder {
        let note =
            |track, channel, pitch, start: u64, end: u64| ScoreNote { track, channel, pitch, velocity: 90, start, end };
        let mut notes = Vec::new();
        for beat in 0..4u64 {
            let at = beat * 480;
            notes.push(note(0, DRUM_CHANNEL, if beat % 2 == 0 { 36 } else { 38 }, at, at + 60));
            notes.push(note(0, DRUM_CHANNEL, 42, at, at + 60));
            notes.extend([60, 64, 67].map(|pitch| note(1, 1, pitch, at, at + 480)));
            notes.push(note(2, 2, 36, at, at + 480));
        }
        notes.sort_by_key(|n| (n.start, n.channel, n.pitch, n.end));
        let score = Score {
            ticks_per_quarter: 480,
            tempos: vec![(0, 500_000)],
            meters: vec![],
            notes,
            track_names: vec!["Drums".into(), "Piano".into(), "Bass".into()],
            programs: [None; 16],
            end: 1920,
            unterminated_notes: 0,
        };
        ScoreFolder { scores: vec![(PathBuf::from("band.mid"), score)], skipped: Vec::new() }
    }

    #[test]
    fn voices_read_a_kit_as_lanes_and_a_chord_part_as_voices() {
        let folder = band_folder();
        let names = |tracks: &[TrackSpec]| tracks.iter().map(|t| (t.name.clone(), t.channel)).collect::<Vec<_>>();
        let voices = folder.tracks(TrackAssignment::ByChannel, PartReading::Voices);
        let expected: Vec<(String, u8)> = [
            ("Piano 1", 1),
            ("Piano 2", 1),
            ("Piano 3", 1),
            ("Bass", 2),
            ("Kick", DRUM_CHANNEL),
            ("Snare", DRUM_CHANNEL),
            ("Hi-hat", DRUM_CHANNEL),
        ]
        .map(|(name, channel)| (name.to_string(), channel))
        .to_vec();
        assert_eq!(names(&voices), expected);
        assert_eq!(voices[6].sounds, vec![42]);
        let cells = folder.tracks(TrackAssignment::ByChannel, PartReading::Cells);
        assert_eq!(
            names(&cells),
            [("Piano", 1), ("Bass", 2), ("Drums", DRUM_CHANNEL)].map(|(n, c)| (n.to_string(), c)).to_vec()
        );
        // By role: the bass is found by its track's name, the piano by its chords.
        let roles = folder.tracks(TrackAssignment::ByRole, PartReading::Voices);
        assert_eq!(
            names(&roles)[..4],
            [("Comp 1", 1), ("Comp 2", 1), ("Comp 3", 1), ("Bass", 0)].map(|(n, c)| (n.to_string(), c))
        );
    }
}
