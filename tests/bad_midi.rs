//! Every way a MIDI file can be broken gets an error in words, and a folder with broken files
//! in it is still read.

mod common;

use common::*;
use dreamroll::corpus::{load_corpus, FolderError};
use dreamroll::roll::{
    read_midi, write_midi, Meter, MidiError, Representation, Take, TrackAssignment, TrackSpec, TrackToWrite,
};
use midly::Format;
use proptest::prelude::*;
use std::sync::Arc;

fn damaged(bytes: &[u8]) -> String {
    match read_midi(bytes) {
        Err(MidiError::Malformed(detail)) => detail,
        other => panic!("expected a damaged-file error, got {other:?}"),
    }
}

#[test]
fn a_good_file_reads() {
    let score = read_midi(&two_part_song()).unwrap();
    assert_eq!(score.notes.len(), 3);
    assert_eq!(score.ticks_per_quarter, 480);
}

#[test]
fn a_truncated_file_is_damaged_at_every_cut() {
    let bytes = two_part_song();
    for cut in 0..bytes.len() {
        assert!(read_midi(&bytes[..cut]).is_err(), "a file cut at byte {cut} of {} was accepted", bytes.len());
    }
    let error = read_midi(&bytes[..bytes.len() - 3]).unwrap_err();
    assert_eq!(error, MidiError::Truncated { chunk: 3, offset: bytes.len() - 21, declared: 13, remaining: 10 });
    assert!(error.to_string().starts_with("truncated: chunk 3 at byte"), "{error}");
}

#[test]
fn not_a_midi_file_says_so() {
    assert!(damaged(b"RIFX not midi at all").contains("not a midi file"));
    assert!(damaged(b"").contains("not a midi file"));
}

#[test]
fn a_bad_chunk_header_is_damage() {
    let mut bytes = two_part_song();
    let track = bytes.windows(4).position(|w| w == b"MTrk").unwrap();
    bytes[track..track + 4].copy_from_slice(b"MTrx");
    assert_eq!(read_midi(&bytes).unwrap_err(), MidiError::TrackCount { declared: 3, found: 2 });
    bytes[track..track + 4].copy_from_slice(&[0, 1, 2, 3]);
    let error = read_midi(&bytes).unwrap_err();
    assert_eq!(error, MidiError::BadChunk { chunk: 1, offset: track, id: [0, 1, 2, 3] });
    assert!(error.to_string().contains("no valid chunk type"));
}

#[test]
fn an_absurd_chunk_length_is_damage() {
    let mut bytes = two_part_song();
    let track = bytes.windows(4).position(|w| w == b"MTrk").unwrap();
    bytes[track + 4..track + 8].copy_from_slice(&[0xff; 4]);
    let error = read_midi(&bytes).unwrap_err();
    assert!(matches!(error, MidiError::Truncated { chunk: 1, declared: 4_294_967_295, .. }), "{error:?}");
}

#[test]
fn absurd_delta_times_are_refused_before_any_roll_is_made() {
    let huge = (1u64 << 28) - 1;
    let events = (1..=20).map(|k| note_on(k * huge, 0, 60, 0)).collect();
    let bytes = smf(Format::SingleTrack, 96, vec![events]);
    let error = read_midi(&bytes).unwrap_err();
    assert!(matches!(error, MidiError::AbsurdLength { .. }), "{error:?}");
    assert!(error.to_string().contains("timing is corrupt"));
}

#[test]
fn smpte_time_division_is_refused() {
    let mut bytes = two_part_song();
    bytes[12..14].copy_from_slice(&[0xe7, 0x28]);
    assert_eq!(read_midi(&bytes).unwrap_err(), MidiError::SmpteTiming { fps: 25 });
    assert!(MidiError::SmpteTiming { fps: 25 }.to_string().contains("SMPTE frames (25 fps)"));
}

#[test]
fn zero_ticks_per_quarter_is_refused() {
    let mut bytes = two_part_song();
    bytes[12..14].copy_from_slice(&[0, 0]);
    assert_eq!(read_midi(&bytes).unwrap_err(), MidiError::ZeroTicksPerQuarter);
}

#[test]
fn format_2_is_refused() {
    let bytes = smf(Format::Sequential, 480, vec![vec![note_on(0, 0, 60, 90), note_off(480, 0, 60)]]);
    assert_eq!(read_midi(&bytes).unwrap_err(), MidiError::SequentialFormat);
}

#[test]
fn a_zero_tempo_is_refused_with_its_place() {
    let bytes = smf(Format::Parallel, 480, vec![vec![tempo(0, 500_000), tempo(960, 0)], vec![note_on(0, 0, 60, 90)]]);
    let error = read_midi(&bytes).unwrap_err();
    assert_eq!(error, MidiError::ZeroTempo { track: 0, tick: 960 });
    assert_eq!(error.to_string(), "track 0 sets a tempo of 0 microseconds per quarter note at tick 960");
}

#[test]
fn a_meter_with_no_beats_is_refused() {
    let bytes = smf(
        Format::SingleTrack,
        480,
        vec![vec![meter(0, 4, 4), (480, midly::TrackEventKind::Meta(midly::MetaMessage::TimeSignature(0, 2, 24, 8)))]],
    );
    assert!(matches!(read_midi(&bytes).unwrap_err(), MidiError::BadTimeSignature { numerator: 0, tick: 480, .. }));
}

/// Drum exports often end a hit on the tick it starts. Loaded as a clip, such a hit lasts a
/// step (a sixteenth), so that the take is one a saved project can read back.
#[test]
fn a_zero_length_hit_in_a_clip_lasts_a_sixteenth() {
    let hits = vec![
        meter(0, 4, 4),
        note_on(0, 9, 36, 100),
        note_off(0, 9, 36),
        note_on(1916, 9, 38, 100),
        note_off(1916, 9, 38),
    ];
    let take = Take::from_midi(&smf(Format::SingleTrack, 480, vec![hits]), 8).unwrap();
    assert_eq!(take.check(), Ok(()));
    assert_eq!(
        take.notes.iter().map(|n| (n.start, n.end)).collect::<Vec<_>>(),
        vec![(0, 120), (1916, 1920)],
        "the last hit ends with the take"
    );
}

/// A ~1 MB file of 100 000 note-ons of one pitch before any note-off (a broken export, or a
/// hostile file) is read (in linear time: benches/midi_import.rs times it), each note-off
/// ending the oldest note still open, as before.
#[test]
fn stacked_note_ons_of_one_pitch_pair_first_in_first_out() {
    let stacked = 100_000u64;
    let notes = (0..stacked).map(|tick| (tick, stacked, 60, 100)).collect();
    let bytes = write_midi(
        480,
        500_000,
        Meter::COMMON,
        &[TrackToWrite { name: "stack".into(), channel: 0, notes }],
        2 * stacked,
    );
    let score = read_midi(&bytes).unwrap();
    assert_eq!(score.notes.len(), stacked as usize);
    assert_eq!(score.unterminated_notes, 0);
    assert!(score.notes.iter().enumerate().all(|(k, note)| note.start == k as u64 && note.end == k as u64 + stacked));
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_midi(&bytes);
    }

    #[test]
    fn damage_to_a_good_file_never_panics(position in 0usize..100, value in any::<u8>(), cut in 0usize..200) {
        let mut bytes = two_part_song();
        let position = position % bytes.len();
        bytes[position] = value;
        bytes.truncate(bytes.len() - cut.min(bytes.len()));
        if let Ok(score) = read_midi(&bytes) {
            prop_assert!(score.notes.iter().all(|note| note.start <= note.end));
        }
    }
}

fn melody() -> Arc<Representation> {
    Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks: vec![TrackSpec::new("Upper", 0), TrackSpec::new("Lower", 1)],
    })
}

#[test]
fn a_folder_with_broken_files_is_read_and_summarised() {
    let folder = tempfile::tempdir().unwrap();
    let good = two_part_song();
    for name in ["a.mid", "b.MID", "nested/c.midi"] {
        let path = folder.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &good).unwrap();
    }
    let mut smpte = good.clone();
    smpte[12..14].copy_from_slice(&[0xe7, 0x28]);
    std::fs::write(folder.path().join("smpte.mid"), smpte).unwrap();
    std::fs::write(folder.path().join("truncated.mid"), &good[..30]).unwrap();
    std::fs::write(folder.path().join("sequential.mid"), smf(Format::Sequential, 480, vec![vec![]])).unwrap();
    std::fs::write(folder.path().join("notes.txt"), "not a MIDI file, and not named like one").unwrap();

    let corpus = load_corpus(folder.path(), &melody(), TrackAssignment::ByChannel).unwrap();
    assert_eq!(corpus.pieces.len(), 3);
    assert_eq!(corpus.skipped.len(), 3);
    assert_eq!(corpus.bar_count(), 3);
    let summary = corpus.to_string();
    assert!(summary.starts_with("3 read, 3 skipped: 1 SMPTE time division, 1 format 2, 1 truncated"), "{summary}");
    assert!(summary.contains("9 read, 9 placed"), "{summary}");
    let named: Vec<String> = corpus.skipped.iter().map(|e| e.to_string()).collect();
    assert!(named.iter().any(|e| e.contains("truncated.mid") && e.contains("truncated: chunk")), "{named:?}");
    assert!(named.iter().any(|e| e.contains("smpte.mid") && e.contains("SMPTE")), "{named:?}");
}

#[test]
fn a_missing_or_empty_folder_is_an_error_in_words() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("nowhere");
    let error = load_corpus(&missing, &melody(), TrackAssignment::ByChannel).err().unwrap();
    assert!(matches!(error, FolderError::Missing(_)));
    assert!(error.to_string().ends_with("nowhere: no such folder"));
    let error = load_corpus(folder.path(), &melody(), TrackAssignment::ByChannel).err().unwrap();
    assert!(error.to_string().contains("holds no .mid or .midi files"));
}

/// A FIFO named like a MIDI file in a training folder would be read forever (it claims 0 bytes
/// and never ends): it is skipped, in words, like any other file that cannot be read.
#[cfg(unix)]
#[test]
fn a_fifo_in_a_folder_is_skipped_unread() {
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("a.mid"), two_part_song()).unwrap();
    let fifo = folder.path().join("pipe.mid");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let corpus = load_corpus(folder.path(), &melody(), TrackAssignment::ByChannel).unwrap();
    assert_eq!(corpus.pieces.len(), 1);
    assert_eq!(
        corpus.skipped.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec![format!("{} is not a regular file", fifo.display())]
    );
    assert!(corpus.to_string().contains("1 not a regular file"), "{corpus}");
}

/// The same for a clip named on the command line or in the editor.
#[cfg(unix)]
#[test]
fn a_fifo_named_as_a_clip_is_refused_in_words() {
    let folder = tempfile::tempdir().unwrap();
    let fifo = folder.path().join("pipe.mid");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let error = Take::from_midi_file(&fifo, 8).unwrap_err();
    assert_eq!(error.to_string(), format!("{} is not a regular file", fifo.display()));
}
