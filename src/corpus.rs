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

impl ScoreFolder {
    /// The parts of a folder nobody described, as `assignment` finds them.
    pub fn tracks(&self, assignment: TrackAssignment) -> Vec<TrackSpec> {
        match assignment {
            TrackAssignment::ByChannel => self.tracks_by_channel(),
            TrackAssignment::ByTrackOrder => self.tracks_by_order(),
        }
    }

    /// As many parts as the file with the most MIDI tracks of pitched notes has, named after
    /// that file's tracks and put on channels 1, 2, … (skipping percussion), plus a drum track
    /// if any file plays drums.
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
        if self.scores.iter().any(|(_, score)| score.notes.iter().any(|n| n.channel == DRUM_CHANNEL)) {
            specs.push(TrackSpec::drums("Drums", Vec::new()));
        }
        specs
    }

    /// One track per MIDI channel in use, named after the first MIDI track seen on it.
    pub fn tracks_by_channel(&self) -> Vec<TrackSpec> {
        let mut names: BTreeMap<u8, String> = BTreeMap::new();
        for (_, score) in &self.scores {
            for note in &score.notes {
                names.entry(note.channel).or_insert_with(|| match score.track_names[note.track].as_str() {
                    "" => format!("Channel {}", note.channel + 1),
                    name => name.to_string(),
                });
            }
        }
        names
            .into_iter()
            .map(|(channel, name)| match channel {
                DRUM_CHANNEL => TrackSpec::drums(name, Vec::new()),
                _ => TrackSpec::new(name, channel),
            })
            .collect()
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
             {} with no track, {} merged, {} moved onto the grid, {} never ended",
            grouped(self.bar_count()),
            grouped(r.notes_read),
            grouped(r.notes_placed),
            grouped(r.outside_window),
            grouped(r.other_meter),
            grouped(r.no_track),
            grouped(r.merged),
            grouped(r.moved_to_grid),
            grouped(r.unterminated),
        )
    }
}
