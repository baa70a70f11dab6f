//! Doom's WAD archives and its MUS music, read here so that Freedoom's songs need no Doom
//! tool: a WAD is a flat list of named lumps; a music lump (`D_*`) holds either a standard
//! MIDI file or MUS, Doom's own compact score, which [`mus_to_midi`] turns into MIDI.
//!
//! WAD: a 12-byte header (`IWAD` or `PWAD`, the lump count and the directory's offset, both
//! little-endian i32), then the directory: 16 bytes a lump (its offset, its size, an 8-byte
//! NUL-padded name).
//!
//! MUS: a header (`MUS\x1a`; the score's length and offset; the counts of primary and
//! secondary channels; the instrument count, a reserved word and that many instrument
//! numbers, all u16 little-endian), then one stream of events. An event's first byte holds a
//! "delay follows" bit, the event type (3 bits) and the channel (4 bits); after the last event
//! of a group comes its delay, a variable-length number (7 bits a byte, high bit "more") of
//! ticks at 140 Hz. Channel 15 is percussion.

use anyhow::{bail, ensure, Context, Result};
use dreamroll::roll::DRUM_CHANNEL;
use midly::num::{u14, u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, PitchBend, Smf, Timing, TrackEvent, TrackEventKind};

/// One lump of a WAD, borrowed from the archive's bytes.
#[derive(Debug)]
pub struct Lump<'a> {
    pub name: String,
    pub data: &'a [u8],
}

/// The lumps of a WAD in directory order. Every lump must lie inside the file: a directory
/// that points past the end means a truncated or damaged download, and is named as such.
pub fn read_wad(bytes: &[u8]) -> Result<Vec<Lump<'_>>> {
    ensure!(bytes.len() >= 12, "too short for a WAD ({} bytes; the header alone is 12)", bytes.len());
    let magic = &bytes[..4];
    ensure!(
        magic == b"IWAD" || magic == b"PWAD",
        "not a WAD: it starts with {:?}, not \"IWAD\" or \"PWAD\"",
        String::from_utf8_lossy(magic)
    );
    let count = i32::from_le_bytes(bytes[4..8].try_into().expect("four bytes"));
    let directory = i32::from_le_bytes(bytes[8..12].try_into().expect("four bytes"));
    ensure!(count >= 0 && directory >= 0, "damaged WAD header: {count} lumps, directory at {directory}");
    let (count, directory) = (count as usize, directory as usize);
    let end = directory.checked_add(count * 16).filter(|&end| end <= bytes.len()).with_context(|| {
        format!(
            "the WAD's directory ({count} lumps at byte {directory}) runs past its end ({} bytes): \
             the file is truncated or damaged",
            bytes.len()
        )
    })?;
    bytes[directory..end]
        .chunks_exact(16)
        .enumerate()
        .map(|(index, entry)| {
            let offset = i32::from_le_bytes(entry[..4].try_into().expect("four bytes"));
            let size = i32::from_le_bytes(entry[4..8].try_into().expect("four bytes"));
            let raw_name = &entry[8..16];
            let name_end = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
            let name = String::from_utf8_lossy(&raw_name[..name_end]).into_owned();
            let data = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(offset, size)| bytes.get(offset..offset.checked_add(size)?))
                .with_context(|| {
                    format!(
                        "lump {index} ({name}) claims {size} bytes at byte {offset}, outside the {}-byte WAD: \
                         the file is truncated or damaged",
                        bytes.len()
                    )
                })?;
            Ok(Lump { name, data })
        })
        .collect()
}

/// Doom names its music lumps `D_<song>` (`D_E1M1`, `D_RUNNIN`); nothing else starts so.
pub fn is_music(lump: &Lump) -> bool {
    lump.name.starts_with("D_")
}

/// What a music lump holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MusicFormat {
    Midi,
    Mus,
}

impl MusicFormat {
    pub fn of(data: &[u8]) -> Option<MusicFormat> {
        if data.starts_with(b"MThd") {
            Some(MusicFormat::Midi)
        } else if data.starts_with(b"MUS\x1a") {
            Some(MusicFormat::Mus)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MusicFormat::Midi => "midi",
            MusicFormat::Mus => "mus",
        }
    }
}

/// MUS counts time in ticks of 1/140 s and knows no beats. At 70 ticks a quarter and 120
/// quarters a minute a MIDI tick is a MUS tick, so the delays are copied unchanged and the
/// song plays at its own speed; the bar lines this implies are not the song's.
pub const MUS_TICKS_PER_QUARTER: u16 = 70;
const MUS_MICROSECONDS_PER_QUARTER: u32 = 500_000;
/// MUS's percussion channel; General MIDI's is [`DRUM_CHANNEL`] (9, channel 10 as players count).
const MUS_PERCUSSION: u8 = 15;

/// MUS controllers 1-9 as MIDI controllers (0 is the program change): bank select,
/// modulation, volume, pan, expression, reverb depth, chorus depth, sustain pedal, soft pedal.
const MUS_CONTROLLERS: [u8; 10] = [0, 0, 1, 7, 10, 11, 91, 93, 64, 67];
/// MUS system events 10-14 as MIDI channel-mode controllers: all sounds off, all notes off,
/// mono, poly, reset all controllers.
const MUS_SYSTEM_EVENTS: [u8; 5] = [120, 123, 126, 127, 121];

/// MUS channels 0-14 keep their numbers up to 8 and move up by one from 9, so that no
/// melodic part lands on General MIDI's percussion channel; 15 becomes that channel.
fn midi_channel(mus_channel: u8) -> u8 {
    match mus_channel {
        MUS_PERCUSSION => DRUM_CHANNEL,
        c if c < DRUM_CHANNEL => c,
        c => c + 1,
    }
}

/// Converts a MUS score into a format-0 standard MIDI file, event for event (see
/// [`MUS_TICKS_PER_QUARTER`] for the timing). A play-note event without a volume repeats the
/// channel's last one, as MUS means it; a channel's first note without one plays at 127.
pub fn mus_to_midi(mus: &[u8]) -> Result<Vec<u8>> {
    ensure!(mus.starts_with(b"MUS\x1a"), "not a MUS score: it does not start with \"MUS\\x1a\"");
    ensure!(mus.len() >= 16, "truncated MUS header ({} bytes; it has 16 before the instrument list)", mus.len());
    let word = |at: usize| usize::from(u16::from_le_bytes([mus[at], mus[at + 1]]));
    let (length, start) = (word(4), word(6));
    let score = mus.get(start..start + length).with_context(|| {
        format!("the MUS score ({length} bytes at byte {start}) runs past the lump's end ({} bytes)", mus.len())
    })?;

    let mut events: Vec<TrackEvent<'static>> = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(MUS_MICROSECONDS_PER_QUARTER))),
    }];
    let mut volumes = [127u8; 16];
    let mut delay = 0u32;
    let mut at = 0usize;
    let byte = |at: usize| {
        score
            .get(at)
            .copied()
            .with_context(|| format!("the MUS score breaks off at byte {}, before its end", start + at))
    };
    loop {
        let descriptor = byte(at)?;
        let (last, kind, mus_channel) = (descriptor & 0x80 != 0, (descriptor >> 4) & 7, descriptor & 0x0f);
        let channel = u4::new(midi_channel(mus_channel));
        let volume = &mut volumes[usize::from(mus_channel)];
        at += 1;
        // Each event: the MIDI message it becomes (none for a measure mark) and its data bytes.
        let (message, length) = match kind {
            0 => (Some(MidiMessage::NoteOff { key: u7::new(byte(at)? & 0x7f), vel: u7::new(0) }), 1),
            1 => {
                let note = byte(at)?;
                let has_volume = note & 0x80 != 0;
                if has_volume {
                    *volume = byte(at + 1)? & 0x7f;
                }
                let message = MidiMessage::NoteOn { key: u7::new(note & 0x7f), vel: u7::new(*volume) };
                (Some(message), 1 + usize::from(has_volume))
            }
            // 128 is the centre; MIDI's 14-bit bend has its centre at 8192 = 128 * 64.
            2 => (Some(MidiMessage::PitchBend { bend: PitchBend(u14::new(u16::from(byte(at)?) * 64)) }), 1),
            3 => {
                let event = byte(at)?;
                let controller = event
                    .checked_sub(10)
                    .and_then(|i| MUS_SYSTEM_EVENTS.get(usize::from(i)))
                    .with_context(|| format!("unknown MUS system event {event} at byte {}", start + at))?;
                (Some(MidiMessage::Controller { controller: u7::new(*controller), value: u7::new(0) }), 1)
            }
            4 => {
                let (number, value) = (byte(at)?, u7::new(byte(at + 1)? & 0x7f));
                let message = match number {
                    0 => MidiMessage::ProgramChange { program: value },
                    1..=9 => {
                        MidiMessage::Controller { controller: u7::new(MUS_CONTROLLERS[usize::from(number)]), value }
                    }
                    _ => bail!("unknown MUS controller {number} at byte {}", start + at),
                };
                (Some(message), 2)
            }
            // The end of a measure: MUS marks it, MIDI has no such event.
            5 => (None, 0),
            6 => break,
            _ => bail!("unknown MUS event type {kind} at byte {}", start + at - 1),
        };
        at += length;
        if let Some(message) = message {
            events.push(TrackEvent { delta: u28::new(delay), kind: TrackEventKind::Midi { channel, message } });
            delay = 0;
        }
        if last {
            let mut ticks = 0u32;
            loop {
                let b = byte(at)?;
                at += 1;
                ticks = (ticks << 7) | u32::from(b & 0x7f);
                // Four bytes hold 28 bits, MIDI's limit; more is a damaged score.
                ensure!(ticks < 1 << 21 || b & 0x80 == 0, "a MUS delay at byte {} is absurdly long", start + at);
                if b & 0x80 == 0 {
                    break;
                }
            }
            delay = delay.saturating_add(ticks);
            ensure!(delay < 1 << 28, "the MUS score waits absurdly long before byte {}", start + at);
        }
    }
    events.push(TrackEvent { delta: u28::new(delay), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });

    let mut smf = Smf::new(Header::new(Format::SingleTrack, Timing::Metrical(u15::new(MUS_TICKS_PER_QUARTER))));
    smf.tracks.push(events);
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writing to memory cannot fail");
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dreamroll::roll::{read_midi, ScoreNote};

    /// A WAD of the given lumps, laid out as Doom's tools lay it out: header, lumps, directory.
    pub(crate) fn wad(kind: &[u8; 4], lumps: &[(&str, &[u8])]) -> Vec<u8> {
        let mut bytes = kind.to_vec();
        bytes.extend((lumps.len() as i32).to_le_bytes());
        bytes.extend([0; 4]);
        let mut directory = Vec::new();
        for (name, data) in lumps {
            directory.extend((bytes.len() as i32).to_le_bytes());
            directory.extend((data.len() as i32).to_le_bytes());
            let mut raw_name = [0u8; 8];
            raw_name[..name.len()].copy_from_slice(name.as_bytes());
            directory.extend(raw_name);
            bytes.extend(*data);
        }
        let at = bytes.len() as i32;
        bytes[8..12].copy_from_slice(&at.to_le_bytes());
        bytes.extend(directory);
        bytes
    }

    /// A MUS lump of the given score bytes, with one instrument listed.
    pub(crate) fn mus(score: &[u8]) -> Vec<u8> {
        let mut bytes = b"MUS\x1a".to_vec();
        let start = 16 + 2;
        for word in [score.len(), start, 2, 0, 1, 0, 30] {
            bytes.extend((word as u16).to_le_bytes());
        }
        bytes.extend(score);
        bytes
    }

    /// A known score: a program change on channel 0, a kick on MUS percussion (15) with
    /// middle C, a note on channel 10 struck twice (the second time without a volume, so at
    /// its channel's last one), a measure mark and a pitch bend.
    pub(crate) const SCORE: &[u8] = &[
        0x40,
        0x00,
        30, // controller 0 (program) on channel 0: 30
        0x1f,
        0x80 | 36,
        90, // play note 36 at volume 90 on channel 15 (percussion)
        0x90,
        0x80 | 60,
        100,
        70, // play note 60 at volume 100 on channel 0, then wait 70
        0x0f,
        36, // release 36 on channel 15
        0x1a,
        0x80 | 64,
        80, // play 64 at 80 on channel 10
        0x80,
        60,
        35, // release 60 on channel 0, then wait 35
        0x0a,
        64, // release 64 on channel 10
        0x1a,
        64,   // play 64 again on channel 10: no volume, so its last one (80)
        0x50, // end of measure
        0xaa,
        192,
        20, // pitch bend on channel 10, a half up, then wait 20
        0x0a,
        64,   // release 64 on channel 10
        0x60, // score end
    ];

    #[test]
    fn a_wad_lists_its_lumps_and_their_bytes() {
        let bytes = wad(b"PWAD", &[("PLAYPAL", b"colours"), ("D_E1M1", b"MThd..."), ("D_RUNNIN", &mus(SCORE))]);
        let lumps = read_wad(&bytes).unwrap();
        let names: Vec<&str> = lumps.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["PLAYPAL", "D_E1M1", "D_RUNNIN"]);
        assert_eq!(lumps[0].data, b"colours");
        let music: Vec<&str> = lumps.iter().filter(|l| is_music(l)).map(|l| l.name.as_str()).collect();
        assert_eq!(music, ["D_E1M1", "D_RUNNIN"]);
        assert_eq!(MusicFormat::of(lumps[1].data), Some(MusicFormat::Midi));
        assert_eq!(MusicFormat::of(lumps[2].data), Some(MusicFormat::Mus));
        assert_eq!(MusicFormat::of(lumps[0].data), None);
    }

    #[test]
    fn a_damaged_wad_is_named_as_such() {
        let error = read_wad(b"ZIP!\0\0\0\0\0\0\0\0").unwrap_err().to_string();
        assert!(error.contains("not a WAD"), "{error}");
        let mut bytes = wad(b"IWAD", &[("D_E1M1", b"MThd...")]);
        bytes.truncate(bytes.len() - 4);
        let error = read_wad(&bytes).unwrap_err().to_string();
        assert!(error.contains("truncated or damaged"), "{error}");
        let mut bytes = wad(b"IWAD", &[("D_E1M1", b"MThd...")]);
        let size_at = bytes.len() - 12;
        bytes[size_at..size_at + 4].copy_from_slice(&1000i32.to_le_bytes());
        let error = read_wad(&bytes).unwrap_err().to_string();
        assert!(error.contains("lump 0 (D_E1M1) claims 1000 bytes"), "{error}");
    }

    #[test]
    fn a_mus_score_becomes_the_same_notes_in_midi() {
        let midi = mus_to_midi(&mus(SCORE)).unwrap();
        let score = read_midi(&midi).unwrap();
        assert_eq!(score.ticks_per_quarter, MUS_TICKS_PER_QUARTER);
        assert_eq!(score.tempos, [(0, MUS_MICROSECONDS_PER_QUARTER)]);
        let note = |channel, pitch, velocity, start, end| ScoreNote { track: 0, channel, pitch, velocity, start, end };
        assert_eq!(
            score.notes,
            [note(0, 60, 100, 0, 70), note(9, 36, 90, 0, 70), note(11, 64, 80, 70, 105), note(11, 64, 80, 105, 125)]
        );
        assert_eq!(score.end, 125);

        let smf = Smf::parse(&midi).unwrap();
        let messages: Vec<(u8, MidiMessage)> = smf.tracks[0]
            .iter()
            .filter_map(|e| match e.kind {
                TrackEventKind::Midi { channel, message } => Some((channel.as_int(), message)),
                _ => None,
            })
            .collect();
        assert_eq!(messages[0], (0, MidiMessage::ProgramChange { program: u7::new(30) }));
        assert!(messages.contains(&(11, MidiMessage::PitchBend { bend: PitchBend(u14::new(192 * 64)) })));
    }

    #[test]
    fn a_long_delay_is_read_across_its_bytes() {
        // Play, wait 200 (0x81 0x48: 1 * 128 + 72), release, end.
        let midi = mus_to_midi(&mus(&[0x90, 0x80 | 50, 64, 0x81, 0x48, 0x00, 50, 0x60])).unwrap();
        let score = read_midi(&midi).unwrap();
        assert_eq!((score.notes[0].start, score.notes[0].end), (0, 200));
    }

    #[test]
    fn a_damaged_mus_score_is_named_as_such() {
        let error = mus_to_midi(&mus(&[0x10, 60])).unwrap_err().to_string();
        assert!(error.contains("breaks off at byte 20, before its end"), "{error}");
        let error = mus_to_midi(&mus(&[0x70, 0x60])).unwrap_err().to_string();
        assert!(error.contains("unknown MUS event type 7"), "{error}");
        let mut lump = mus(SCORE);
        lump[4] = 255;
        let error = mus_to_midi(&lump).unwrap_err().to_string();
        assert!(error.contains("runs past the lump's end"), "{error}");
    }
}
