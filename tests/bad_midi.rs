//! Every way a MIDI file can be broken gets an error in words, and a folder with broken files
//! in it is still read.

mod common;

use common::*;
use dreamroll::corpus::{load_corpus, FolderError};
use dreamroll::roll::{read_midi, Meter, MidiError, Representation, TrackAssignment, TrackSpec};
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
    let bytes = smf(Format::SingleTrack, 480, vec![vec![meter(0, 4, 4), (480, midly::TrackEventKind::Meta(midly::MetaMessage::TimeSignature(0, 2, 24, 8)))]]);
    assert!(matches!(read_midi(&bytes).unwrap_err(), MidiError::BadTimeSignature { numerator: 0, tick: 480, .. }));
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
