//! Standard MIDI files in and out, as a list of timed notes (a [`Score`]).
//!
//! Reading is split from rolling so that everything a file can get wrong is found and named
//! here, once, before any grid is involved.

use super::representation::Meter;
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use std::collections::{HashMap, VecDeque};

/// A note as the file has it, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreNote {
    /// Index of the MIDI track (chunk) that holds the note.
    pub track: usize,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
    pub start: u64,
    pub end: u64,
}

/// Everything Dreamroll uses from a MIDI file.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    pub ticks_per_quarter: u16,
    /// (tick, microseconds per quarter note), sorted by tick.
    pub tempos: Vec<(u64, u32)>,
    /// (tick, meter), sorted by tick, one entry per tick.
    pub meters: Vec<(u64, Meter)>,
    /// Sorted by start, then channel and pitch.
    pub notes: Vec<ScoreNote>,
    /// Name meta event of each track, empty where there is none.
    pub track_names: Vec<String>,
    /// Each channel's first program (General MIDI instrument), where the file sets one: what
    /// tells a bass from a piano when a file's parts are read by their roles.
    pub programs: [Option<u8>; 16],
    /// The last tick of the file: its last event or its last note's end.
    pub end: u64,
    /// Note-ons that no note-off ended; they were closed at the end of their track.
    pub unterminated_notes: usize,
}

/// What is wrong with a MIDI file, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MidiError {
    #[error("not a standard MIDI file or damaged: {0}")]
    Malformed(String),
    #[error("truncated: chunk {chunk} at byte {offset} declares {declared} bytes but only {remaining} remain")]
    Truncated { chunk: usize, offset: usize, declared: u64, remaining: usize },
    #[error("damaged: chunk {chunk} at byte {offset} has no valid chunk type ({id:02x?})")]
    BadChunk { chunk: usize, offset: usize, id: [u8; 4] },
    #[error("damaged: the header declares {declared} tracks but the file holds {found}")]
    TrackCount { declared: u16, found: usize },
    #[error("format 2 (independent sequences) is not supported; save it as format 0 or 1")]
    SequentialFormat,
    #[error(
        "the file times events in SMPTE frames ({fps} fps), not in beats; export it with a tempo-based time division"
    )]
    SmpteTiming { fps: u8 },
    #[error("the header declares 0 ticks per quarter note")]
    ZeroTicksPerQuarter,
    #[error("track {track} sets a tempo of 0 microseconds per quarter note at tick {tick}")]
    ZeroTempo { track: usize, tick: u64 },
    #[error("track {track} sets an invalid time signature {numerator}/2^{exponent} at tick {tick}")]
    BadTimeSignature { track: usize, tick: u64, numerator: u8, exponent: u8 },
    #[error("the file is {quarters} quarter notes long (over {MAX_QUARTERS}); its timing is corrupt")]
    AbsurdLength { quarters: u64 },
}

/// Largest MIDI file read from a path: past any real song's file (a large orchestral score is a
/// few hundred kilobytes), and a bound on the memory and time reading one costs.
pub const MOST_MIDI_FILE_BYTES: u64 = 8 << 20;

/// About 28 hours at 120 quarter notes per minute: no piece is longer, and a corrupt delta
/// time must not make the importer allocate a roll of that size.
pub const MAX_QUARTERS: u64 = 200_000;

impl From<midly::Error> for MidiError {
    /// midly keeps its chain of causes only in debug builds; all of it is worth showing.
    fn from(error: midly::Error) -> MidiError {
        let mut message = error.kind().to_string();
        let mut cause = error.source();
        while let Some(inner) = cause {
            message += &format!(": {}", inner.kind());
            cause = inner.source();
        }
        MidiError::Malformed(message)
    }
}

/// Walks the chunk structure before the events are parsed, because midly, past its first
/// error, only says "invalid chunk": a user needs to hear "truncated" and where.
fn check_chunks(bytes: &[u8]) -> Result<(), MidiError> {
    if !bytes.starts_with(b"MThd") || bytes.len() < 14 {
        // Not a bare SMF (an RMID wrapper, or not MIDI at all): midly names what it sees.
        return Ok(());
    }
    let declared_tracks = u16::from_be_bytes([bytes[10], bytes[11]]);
    let (mut offset, mut chunk, mut tracks) = (0usize, 0usize, 0usize);
    while offset < bytes.len() {
        let remaining = bytes.len() - offset;
        if remaining < 8 {
            return Err(MidiError::Truncated { chunk, offset, declared: 8, remaining });
        }
        let id: [u8; 4] = bytes[offset..offset + 4].try_into().expect("four bytes");
        if !id.iter().all(u8::is_ascii_alphanumeric) {
            return Err(MidiError::BadChunk { chunk, offset, id });
        }
        let declared = u64::from(u32::from_be_bytes(bytes[offset + 4..offset + 8].try_into().expect("four bytes")));
        if declared > (remaining - 8) as u64 {
            return Err(MidiError::Truncated { chunk, offset, declared, remaining: remaining - 8 });
        }
        tracks += usize::from(&id == b"MTrk");
        offset += 8 + declared as usize;
        chunk += 1;
    }
    if tracks != usize::from(declared_tracks) {
        return Err(MidiError::TrackCount { declared: declared_tracks, found: tracks });
    }
    Ok(())
}

/// Reads a standard MIDI file (format 0 or 1).
pub fn read_midi(bytes: &[u8]) -> Result<Score, MidiError> {
    check_chunks(bytes)?;
    let smf = Smf::parse(bytes)?;
    let ticks_per_quarter = match smf.header.timing {
        Timing::Metrical(ticks) => ticks.as_int(),
        Timing::Timecode(fps, _) => return Err(MidiError::SmpteTiming { fps: fps.as_int() }),
    };
    if smf.header.format == Format::Sequential {
        return Err(MidiError::SequentialFormat);
    }
    if ticks_per_quarter == 0 {
        return Err(MidiError::ZeroTicksPerQuarter);
    }
    let max_ticks = MAX_QUARTERS * u64::from(ticks_per_quarter);
    let mut score = Score {
        ticks_per_quarter,
        tempos: Vec::new(),
        meters: Vec::new(),
        notes: Vec::new(),
        track_names: Vec::with_capacity(smf.tracks.len()),
        programs: [None; 16],
        end: 0,
        unterminated_notes: 0,
    };
    for (track, events) in smf.tracks.iter().enumerate() {
        read_track(track, events, max_ticks, &mut score)?;
    }
    score.tempos.sort_by_key(|&(tick, _)| tick);
    // Several meters at one tick: the last one written wins, as in every sequencer.
    score.meters.reverse();
    score.meters.sort_by_key(|&(tick, _)| tick);
    score.meters.dedup_by_key(|&mut (tick, _)| tick);
    score.notes.sort_by_key(|note| (note.start, note.channel, note.pitch, note.end));
    score.end = score.notes.iter().map(|note| note.end).fold(score.end, u64::max);
    Ok(score)
}

fn read_track(track: usize, events: &[TrackEvent], max_ticks: u64, score: &mut Score) -> Result<(), MidiError> {
    // Open notes per (channel, pitch), oldest first: overlapping notes of one pitch are closed
    // first-in first-out, which is how most sequencers pair them (a queue: a file of thousands
    // of stacked note-ons must not cost a shift of the whole stack per note-off).
    let mut open: HashMap<(u8, u8), VecDeque<(u64, u8)>> = HashMap::new();
    let mut tick = 0u64;
    let mut name = String::new();
    for event in events {
        tick += u64::from(event.delta.as_int());
        if tick > max_ticks {
            return Err(MidiError::AbsurdLength { quarters: tick / u64::from(score.ticks_per_quarter) });
        }
        match event.kind {
            TrackEventKind::Midi { channel, message } => {
                let channel = channel.as_int();
                let (pitch, velocity) = match message {
                    MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                    MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                    MidiMessage::ProgramChange { program } => {
                        score.programs[usize::from(channel)].get_or_insert(program.as_int());
                        continue;
                    }
                    _ => continue,
                };
                let stack = open.entry((channel, pitch)).or_default();
                if velocity > 0 {
                    stack.push_back((tick, velocity));
                } else if let Some((start, velocity)) = stack.pop_front() {
                    score.notes.push(ScoreNote { track, channel, pitch, velocity, start, end: tick });
                }
            }
            TrackEventKind::Meta(MetaMessage::Tempo(micros)) => {
                if micros.as_int() == 0 {
                    return Err(MidiError::ZeroTempo { track, tick });
                }
                score.tempos.push((tick, micros.as_int()));
            }
            TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, exponent, _, _)) => {
                let meter = (exponent <= 6)
                    .then(|| Meter::new(numerator, 1 << exponent).ok())
                    .flatten()
                    .ok_or(MidiError::BadTimeSignature { track, tick, numerator, exponent })?;
                score.meters.push((tick, meter));
            }
            TrackEventKind::Meta(MetaMessage::TrackName(bytes)) if name.is_empty() => {
                name = String::from_utf8_lossy(bytes).trim().to_string();
            }
            _ => {}
        }
    }
    for ((channel, pitch), stack) in open {
        for (start, velocity) in stack {
            score.unterminated_notes += 1;
            score.notes.push(ScoreNote { track, channel, pitch, velocity, start, end: tick.max(start) });
        }
    }
    score.track_names.push(name);
    score.end = score.end.max(tick);
    Ok(())
}

/// One track of a file to write.
#[derive(Clone, Debug)]
pub struct TrackToWrite {
    pub name: String,
    pub channel: u8,
    /// (start tick, length in ticks, pitch, velocity)
    pub notes: Vec<(u64, u64, u8, u8)>,
}

/// Writes a format 1 file: a conductor track with tempo and meter, then one track per part.
/// `end` is the file's length in ticks, so that trailing silence (the end of a loop) survives.
pub fn write_midi(
    ticks_per_quarter: u16,
    microseconds_per_quarter: u32,
    meter: Meter,
    tracks: &[TrackToWrite],
    end: u64,
) -> Vec<u8> {
    let header = Header::new(Format::Parallel, Timing::Metrical(ticks_per_quarter.into()));
    let mut smf = Smf::new(header);
    let exponent = meter.denominator.trailing_zeros() as u8;
    smf.tracks.push(delta_encode(
        vec![
            (0, TrackEventKind::Meta(MetaMessage::Tempo(microseconds_per_quarter.into()))),
            (0, TrackEventKind::Meta(MetaMessage::TimeSignature(meter.numerator, exponent, 24, 8))),
        ],
        end,
    ));
    for track in tracks {
        let channel = track.channel.into();
        let mut events = vec![(0, TrackEventKind::Meta(MetaMessage::TrackName(track.name.as_bytes())))];
        for &(start, length, pitch, velocity) in &track.notes {
            let (key, vel) = (pitch.into(), velocity.into());
            events.push((start, TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, vel } }));
            let off = MidiMessage::NoteOff { key, vel: 0.into() };
            events.push((start + length, TrackEventKind::Midi { channel, message: off }));
        }
        // Note-offs before note-ons at the same tick, or a repeated note would cut itself off.
        events.sort_by_key(|(tick, kind)| {
            (*tick, !matches!(kind, TrackEventKind::Midi { message: MidiMessage::NoteOff { .. }, .. }))
        });
        smf.tracks.push(delta_encode(events, end));
    }
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writing to memory cannot fail");
    bytes
}

fn delta_encode(events: Vec<(u64, TrackEventKind<'_>)>, end: u64) -> Vec<TrackEvent<'_>> {
    let mut previous = 0;
    let mut track: Vec<TrackEvent> = events
        .into_iter()
        .map(|(tick, kind)| {
            let delta = (tick - previous) as u32;
            previous = tick;
            TrackEvent { delta: delta.into(), kind }
        })
        .collect();
    let delta = (end.max(previous) - previous) as u32;
    track.push(TrackEvent { delta: delta.into(), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    track
}
