//! From files on disk to metrics, the path `cargo xtask eval` takes.

mod common;

use common::*;
use dreamroll::corpus::{read_folder, PartReading};
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
    let tracks = scores.tracks(TrackAssignment::ByChannel, PartReading::Cells);
    assert_eq!(
        tracks.iter().map(|t| (t.name.as_str(), t.channel)).collect::<Vec<_>>(),
        vec![("Channel 1", 0), ("Channel 4", 3)]
    );
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

#[test]
fn parts_on_one_channel_are_found_by_track_order() {
    let folder = tempfile::tempdir().unwrap();
    let part = |pitch: u8| vec![note_on(0, 0, pitch, 90), note_off(1920, 0, pitch)];
    let named = |name: &'static str, pitch: u8| {
        let mut events = part(pitch);
        events.push((0, midly::TrackEventKind::Meta(midly::MetaMessage::TrackName(name.as_bytes()))));
        events
    };
    let three = smf(
        Format::Parallel,
        480,
        vec![vec![tempo(0, 500_000)], named("Flute", 79), named("Viola", 62), named("Cello", 45)],
    );
    std::fs::write(folder.path().join("trio.mid"), three).unwrap();
    std::fs::write(folder.path().join("duo.mid"), smf(Format::Parallel, 480, vec![part(72), part(48)])).unwrap();
    let scores = read_folder(folder.path()).unwrap();
    let tracks = scores.tracks(TrackAssignment::ByTrackOrder, PartReading::Cells);
    assert_eq!(
        tracks.iter().map(|t| (t.name.as_str(), t.channel)).collect::<Vec<_>>(),
        vec![("Flute", 0), ("Viola", 1), ("Cello", 2)]
    );
    assert_eq!(scores.tracks(TrackAssignment::ByChannel, PartReading::Cells).len(), 1, "by channel they are one part");
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks,
    });
    let corpus = scores.into_corpus(&representation, TrackAssignment::ByTrackOrder);
    let trio = &corpus.pieces.iter().find(|(p, _)| p.ends_with("trio.mid")).unwrap().1;
    let notes: Vec<(usize, u8)> = trio.segments[0].notes().iter().map(|n| (n.track, n.pitch)).collect();
    assert_eq!(notes, vec![(0, 79), (1, 62), (2, 45)]);
    assert_eq!("track".parse::<TrackAssignment>().unwrap(), TrackAssignment::ByTrackOrder);
    assert!("voice".parse::<TrackAssignment>().is_err());
}
