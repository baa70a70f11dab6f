//! From files on disk to metrics, the path `cargo xtask eval` takes.

mod common;

use common::*;
use dreamroll::corpus::read_folder;
use dreamroll::metrics::MetricsAccumulator;
use dreamroll::roll::{Meter, Representation, TrackAssignment};
use midly::Format;
use std::sync::Arc;

#[test]
fn a_folder_of_known_music_gives_known_metrics() {
    let folder = tempfile::tempdir().unwrap();
    // A C-major scale in eighths over a held C on another channel, at 24 steps per quarter.
    let mut melody = vec![tempo(0, 500_000), meter(0, 4, 4)];
    for (i, pitch) in [60u8, 62, 64, 65, 67, 69, 71, 72].into_iter().enumerate() {
        melody.push(note_on(i as u64 * 240, 0, pitch, 100));
        melody.push(note_off(i as u64 * 240 + 240, 0, pitch));
    }
    let bass = vec![note_on(0, 3, 36, 80), note_off(1920, 3, 36)];
    std::fs::write(folder.path().join("scale.mid"), smf(Format::Parallel, 480, vec![melody, bass])).unwrap();
    std::fs::write(folder.path().join("broken.mid"), b"MThd").unwrap();

    let scores = read_folder(folder.path()).unwrap();
    let tracks = scores.tracks_by_channel();
    assert_eq!(tracks.iter().map(|t| (t.name.as_str(), t.channel)).collect::<Vec<_>>(), vec![("Channel 1", 0), ("Channel 4", 3)]);
    let representation = Arc::new(Representation {
        steps_per_beat: 24,
        meter: Meter::COMMON,
        bars_per_phrase: 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks,
    });
    let corpus = scores.into_corpus(&representation, TrackAssignment::ByChannel);
    assert_eq!(corpus.skipped.len(), 1);
    let mut metrics = MetricsAccumulator::default();
    corpus.pieces.iter().flat_map(|(_, piece)| &piece.segments).for_each(|roll| metrics.add(roll));
    let summary = metrics.summary();
    assert_eq!(summary.bars, 1);
    assert_eq!(summary.tracks[0].used_pitch_classes, Some(7.0));
    assert_eq!(summary.tracks[1].used_pitch_classes, Some(1.0));
    assert_eq!(summary.scale_consistency, Some(1.0));
    assert_eq!(summary.qualified_notes, Some(1.0));
    assert_eq!(summary.polyphony, Some(0.0), "two pitches at a time are not polyphony");
    assert_eq!(summary.empty_bars, Some(0.0));
    let fifth_or_more = summary.tonal_distance.unwrap();
    assert!(fifth_or_more > 0.0 && fifth_or_more < 3.0);
}
