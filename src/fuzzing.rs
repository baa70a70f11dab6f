//! The bodies of the fuzz targets (`tests/fuzz`), kept in the library so that every input that
//! ever crashed one is replayed by the ordinary test suite on a stable toolchain
//! (`tests/fuzz_regressions.rs`). Each takes arbitrary bytes and must neither panic nor hang.

use crate::capture::{CaptureTap, Recorder};
use crate::engine::pattern::build_pattern;
use crate::engine::worker::Settings;
use crate::metrics::chords::{chord_name, parse_chord};
use crate::model::generator::{Generator, RenderRequest};
use crate::model::source::{Morph, Source, SourceMode};
use crate::model::{default_generator, ModelCard, DEFAULT_CARD};
use crate::plugin::session::parse_session;
use crate::plugin::window_from;
use crate::roll::{read_midi, score_to_piece, Meter, Representation, Take, TrackAssignment, TrackSpec};
use crate::schedule::{Scheduler, Window};
use nice_plug::prelude::Transport;
use std::sync::{Arc, OnceLock};

/// A MIDI file read and imported both ways a training folder can be.
pub fn midi_import(data: &[u8]) {
    let Ok(score) = read_midi(data) else { return };
    let representation = Arc::new(Representation {
        steps_per_beat: 4,
        meter: Meter::COMMON,
        bars_per_phrase: 4,
        lowest_pitch: 36,
        pitch_count: 48,
        tracks: vec![TrackSpec::new("One", 0), TrackSpec::new("Two", 1), TrackSpec::drums("Drums", Vec::new())],
    });
    for assignment in [TrackAssignment::ByChannel, TrackAssignment::ByTrackOrder, TrackAssignment::ByRole] {
        let piece = score_to_piece(&score, &representation, assignment);
        for segment in &piece.segments {
            let _ = segment.phrases(4, 4);
        }
    }
}

/// A model folder's two files, from one input: a little-endian u32 says how long the card is.
pub fn model_load(data: &[u8]) {
    let Some((length, rest)) = data.split_first_chunk::<4>() else { return };
    let (card, weights) = rest.split_at(u32::from_le_bytes(*length) as usize % (rest.len() + 1));
    let Ok(card) = std::str::from_utf8(card) else { return };
    if let Ok(generator) = Generator::from_bytes(card, weights) {
        let _ = generator.render(&RenderRequest {
            bars: 1,
            seed: 1,
            knobs: vec![1.0],
            variation: 0.5,
            temperature: Some(0.5),
            density: 0.3,
            named: Vec::new(),
            style: None,
        });
    }
}

/// A saved plugin session; one the plugin accepts is played through the scheduler across
/// its loop, as the audio thread would.
pub fn plugin_state(data: &[u8]) {
    let Ok(session) = parse_session(&String::from_utf8_lossy(data)) else { return };
    let pattern = session.pattern;
    let mut scheduler = Scheduler::new();
    let bar_quarters = pattern.meter.quarters_per_bar();
    let loop_quarters = f64::from(pattern.bars) * bar_quarters;
    let blocks = 64;
    for block in 0..blocks {
        let start = loop_quarters * f64::from(block) / f64::from(blocks);
        let window = Window {
            playing: true,
            sample_rate: 48_000.0,
            tempo: 120.0,
            start,
            bar_start: (start / bar_quarters).floor() * bar_quarters,
            bar_number: (start / bar_quarters).floor() as i64,
            meter: pattern.meter,
            samples: 2048,
        };
        let _ = scheduler.process(&pattern, &window, false);
    }
}

/// A MIDI file as *Load clip* reads it, from one input: byte 0 is the bars asked of the file,
/// byte 1 the bars asked of the clip, byte 2 the grid of a small hand-made model; the rest is
/// the file. What `Take::from_midi` makes is what a project saves, so its own check must
/// accept it, and it must survive the project's JSON unchanged.
pub fn clip(data: &[u8]) {
    let [file_bars, clip_bars, grid, file @ ..] = data else { return };
    let Ok(take) = Take::from_midi(file, u32::from(*file_bars)) else { return };
    if let Err(refusal) = take.check() {
        panic!("Take::from_midi made a take that its own check refuses ({refusal}), so a project saved with it would not reopen");
    }
    let saved = serde_json::to_string(&take).expect("a take serialises");
    match serde_json::from_str::<Take>(&saved) {
        Ok(reopened) => assert_eq!(reopened, take, "a take changed in the project's JSON: {saved}"),
        Err(error) => panic!("a take's JSON does not read back ({error}): {saved}"),
    }
    let default = default_card();
    let _ = take.clip(
        &Arc::new(default.representation.clone()),
        default.training.track_assignment,
        usize::from(*clip_bars),
    );
    if let Some(representation) = small_representation(take.meter, *grid) {
        let _ = take.clip(&representation, TrackAssignment::ByTrackOrder, usize::from(*clip_bars));
    }
}

/// The card of the model compiled in: the grid a clip is read on unless the user picks another.
fn default_card() -> &'static ModelCard {
    static CARD: OnceLock<ModelCard> = OnceLock::new();
    CARD.get_or_init(|| ModelCard::from_json(DEFAULT_CARD).expect("the embedded card reads"))
}

/// A two-part model (a pitched part and drums, every MIDI pitch) in the take's own meter, so
/// that a clip of any meter a roll can hold is read past the meter check; `grid` picks its
/// steps per beat and bars per phrase.
fn small_representation(meter: Meter, grid: u8) -> Option<Arc<Representation>> {
    const STEPS_PER_BEAT: [u16; 8] = [1, 2, 3, 4, 6, 8, 12, 96];
    let representation = Representation {
        steps_per_beat: STEPS_PER_BEAT[usize::from(grid % 8)],
        meter,
        bars_per_phrase: u16::from(grid / 8 % 4) + 1,
        lowest_pitch: 0,
        pitch_count: 128,
        tracks: vec![TrackSpec::new("Part", 0), TrackSpec::drums("Drums", Vec::new())],
    };
    representation.validate().ok().map(|()| Arc::new(representation))
}

/// Most bars a fuzzed session is rendered for: a render costs in proportion to its bars, and
/// one bar past a phrase already covers every path.
const SESSION_RENDER_BARS: usize = 5;

/// A saved session as a project reopens it. One that is accepted must save again to text that
/// reopens as the same session (the host saves whatever the plugin restored), and is rendered
/// with the default model the way the engine renders settings — its own, and those the
/// parameters ask for after the first change, which read the session's clip and morph points.
pub fn session_restore(data: &[u8]) {
    let Ok(session) = parse_session(&String::from_utf8_lossy(data)) else { return };
    let saved = serde_json::to_string(&session).expect("a session serialises");
    match parse_session(&saved) {
        Ok(reopened) => assert_eq!(reopened, session, "a session changed when saved again: {saved}"),
        Err(error) => panic!("a session the plugin restored is refused when saved and reopened ({error}): {saved}"),
    }
    let generator = default_generator_once();
    let mut settings = session.settings.clone();
    settings.request.bars = settings.request.bars.clamp(1, SESSION_RENDER_BARS);
    render_as_the_engine_does(generator, &settings);
    let reads_clip = settings.source.mode != SourceMode::Dream;
    let after_a_change = Settings {
        clip: session.clip.clone().filter(|_| reads_clip).map(Arc::new),
        source: Source {
            morph: match session.morph_points.clone() {
                [Some(a), Some(b)] if !reads_clip => {
                    Some(Morph { a, b, amount: settings.source.morph.as_ref().map_or(0.5, |m| m.amount) })
                }
                _ => None,
            },
            ..settings.source.clone()
        },
        ..settings.clone()
    };
    if after_a_change != settings {
        render_as_the_engine_does(generator, &after_a_change);
    }
}

/// The embedded model, loaded once per process: loading it costs more than most inputs.
fn default_generator_once() -> &'static Generator {
    static GENERATOR: OnceLock<Generator> = OnceLock::new();
    GENERATOR.get_or_init(|| default_generator().expect("the embedded model loads"))
}

/// The engine's render of `settings` (`Engine::render`): the clip read by the model when the
/// source reads one, the notes from `render_from`, voiced into a pattern. Errors are answers.
fn render_as_the_engine_does(generator: &Generator, settings: &Settings) {
    let Ok(clip) = crate::engine::worker::clip_for(generator, settings) else { return };
    if let Ok(roll) = generator.render_from(&settings.request, &settings.source, clip.as_ref()) {
        build_pattern(&roll, &settings.voicing);
    }
}

/// One block of a host's transport and the notes played into it, as the capture target reads
/// it from bytes: fixed-width little-endian fields (see [`HostBlock::encode`]), so that a
/// mutation changes one value and the seeds' host runs stay runs.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBlock {
    pub playing: bool,
    /// The plugin's *Record* switch.
    pub recording: bool,
    /// The block starts where the one before it ended (its position is not read), as a
    /// running transport does.
    pub follows_on: bool,
    /// The position is in seconds, not quarter notes.
    pub in_seconds: bool,
    /// The window is not built by `window_from` from a host's transport, whose filters it
    /// bypasses: the given tempo, position and bar go into it as they are (NaN, infinite,
    /// negative); the meter is still the one `window_from` accepts, as every window has it.
    pub raw_window: bool,
    pub tempo: Option<f64>,
    /// The bar's start in quarter notes and its number.
    pub bar: Option<(f64, i64)>,
    pub meter: Option<(u8, u8)>,
    pub sample_rate: f32,
    pub position: f64,
    pub samples: u32,
    /// A new take length from this block on; 0 leaves it.
    pub take_bars: u8,
    pub notes: Vec<PlayedNote>,
}

/// A note event played into the plugin: velocity 0 is a note-off; any byte can arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlayedNote {
    pub offset: u32,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
}

/// Most notes one block carries in the capture target's encoding.
const MOST_NOTES_IN_A_BLOCK: u8 = 16;

impl HostBlock {
    /// A playing block of 120 BPM 4/4 at 48 kHz that follows on from the one before.
    pub fn running(samples: u32) -> HostBlock {
        HostBlock {
            playing: true,
            recording: true,
            follows_on: true,
            in_seconds: false,
            raw_window: false,
            tempo: Some(120.0),
            bar: None,
            meter: Some((4, 4)),
            sample_rate: 48_000.0,
            position: 0.0,
            samples,
            take_bars: 0,
            notes: Vec::new(),
        }
    }

    /// The bytes [`record`] reads back as this block: a flag byte, then sample rate (f32),
    /// tempo, position, bar start (f64), bar number (i64), meter (two bytes), samples (u32),
    /// take bars and the note count (a byte each), and per note its offset (u32), channel,
    /// pitch and velocity. An absent tempo, bar or meter is written as zeros.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let flags = [
            self.playing,
            self.recording,
            self.follows_on,
            self.in_seconds,
            self.raw_window,
            self.tempo.is_some(),
            self.bar.is_some(),
            self.meter.is_some(),
        ];
        out.push(flags.iter().enumerate().fold(0, |byte, (bit, &on)| byte | u8::from(on) << bit));
        out.extend(self.sample_rate.to_le_bytes());
        out.extend(self.tempo.unwrap_or(0.0).to_le_bytes());
        out.extend(self.position.to_le_bytes());
        let (bar_start, bar_number) = self.bar.unwrap_or((0.0, 0));
        out.extend(bar_start.to_le_bytes());
        out.extend(bar_number.to_le_bytes());
        out.extend(<[u8; 2]>::from(self.meter.unwrap_or((0, 0))));
        out.extend(self.samples.to_le_bytes());
        out.push(self.take_bars);
        assert!(
            self.notes.len() <= usize::from(MOST_NOTES_IN_A_BLOCK),
            "at most {MOST_NOTES_IN_A_BLOCK} notes a block"
        );
        out.push(self.notes.len() as u8);
        for note in &self.notes {
            out.extend(note.offset.to_le_bytes());
            out.extend([note.channel, note.pitch, note.velocity]);
        }
    }

    fn decode(fields: &mut Fields) -> HostBlock {
        let flags = fields.byte();
        let flag = |bit: u8| flags & 1 << bit != 0;
        let sample_rate = f32::from_le_bytes(fields.array());
        let tempo = f64::from_le_bytes(fields.array());
        let position = f64::from_le_bytes(fields.array());
        let bar = (f64::from_le_bytes(fields.array()), i64::from_le_bytes(fields.array()));
        let meter = (fields.byte(), fields.byte());
        let samples = u32::from_le_bytes(fields.array());
        let take_bars = fields.byte();
        let count = fields.byte() % (MOST_NOTES_IN_A_BLOCK + 1);
        let notes = (0..count)
            .map(|_| PlayedNote {
                offset: u32::from_le_bytes(fields.array()),
                channel: fields.byte(),
                pitch: fields.byte(),
                velocity: fields.byte(),
            })
            .collect();
        HostBlock {
            playing: flag(0),
            recording: flag(1),
            follows_on: flag(2),
            in_seconds: flag(3),
            raw_window: flag(4),
            tempo: flag(5).then_some(tempo),
            bar: flag(6).then_some(bar),
            meter: flag(7).then_some(meter),
            sample_rate,
            position,
            samples,
            take_bars,
            notes,
        }
    }

    /// The window the plugin's `process()` sees for this block; `next_start` is where the
    /// block before it ended.
    fn window(&self, next_start: f64) -> Window {
        let position = if self.follows_on { next_start } else { self.position };
        let mut transport = Transport::new(self.sample_rate);
        transport.playing = self.playing;
        transport.tempo = self.tempo;
        if self.in_seconds && !self.follows_on {
            transport.pos_seconds = Some(position);
        } else {
            transport.pos_beats = Some(position);
        }
        transport.bar_start_pos_beats = self.bar.map(|(start, _)| start);
        transport.bar_number = self.bar.map(|(_, number)| number as i32);
        transport.time_sig_numerator = self.meter.map(|(numerator, _)| i32::from(numerator));
        transport.time_sig_denominator = self.meter.map(|(_, denominator)| i32::from(denominator));
        let window = window_from(&transport, self.samples);
        if !self.raw_window {
            return window;
        }
        let (bar_start, bar_number) = self.bar.unwrap_or((window.bar_start, window.bar_number));
        Window {
            sample_rate: f64::from(self.sample_rate),
            tempo: self.tempo.unwrap_or(window.tempo),
            start: position,
            bar_start,
            bar_number,
            ..window
        }
    }
}

/// Fixed-width fields from the front of a fuzz input; past its end every field reads as
/// zeros, so that every input decodes.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut field = [0; N];
        let length = N.min(self.0.len());
        field[..length].copy_from_slice(&self.0[..length]);
        self.0 = &self.0[length..];
        field
    }

    fn byte(&mut self) -> u8 {
        self.array::<1>()[0]
    }
}

/// A host run as the capture target's input: the take length in bars, then the blocks.
pub fn encode_host_run(take_bars: u8, blocks: &[HostBlock]) -> Vec<u8> {
    let mut bytes = vec![take_bars];
    for block in blocks {
        block.encode(&mut bytes);
    }
    bytes
}

/// Every take the plugin's capture records from a host run ([`encode_host_run`]): each block
/// through the audio thread's tap as `process()` drives it, every event straight to the
/// engine thread's recorder (as if the ring never filled).
pub fn record(data: &[u8]) -> Vec<Take> {
    let mut fields = Fields(data);
    let mut recorder = Recorder::new(usize::from(fields.byte()));
    let mut tap = CaptureTap::default();
    let mut takes = Vec::new();
    let mut next_start = 0.0;
    let mut events = Vec::new();
    while !fields.0.is_empty() {
        let block = HostBlock::decode(&mut fields);
        if block.take_bars > 0 {
            recorder.set_take_bars(usize::from(block.take_bars));
        }
        let window = block.window(next_start);
        let mut send = |event| events.push(event);
        tap.begin_block(&window, block.recording, &mut send);
        for note in &block.notes {
            tap.note(
                &window,
                note.offset.min(window.samples.saturating_sub(1)),
                note.channel,
                note.pitch,
                note.velocity,
                &mut send,
            );
        }
        tap.end_block(&window, &mut send);
        takes.extend(events.drain(..).filter_map(|event| recorder.feed(event)));
        recorder.bars_toward_take();
        next_start = window.end();
    }
    takes
}

/// The capture under any host: every take it records is one a project can save and reopen.
pub fn capture(data: &[u8]) {
    for take in record(data) {
        if let Err(refusal) = take.check() {
            panic!("the recorder made a take that Take::check refuses ({refusal}), so a project saved with it would not reopen");
        }
    }
}

/// Chord names as a user types them (`dreamroll render --chords`, words split as it splits
/// them, and the whole text as one name), then the first two bytes as a set of pitch classes
/// and the third as a bass note, named. A name read as a chord is written back as a name that
/// reads as the same chord, and a chord of two or more notes written with a quality reads
/// back as itself.
pub fn chord_names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for name in text.split([' ', ',']).chain([text.as_ref()]) {
        if let Ok(chord) = parse_chord(name) {
            let written = chord_name(chord, None).unwrap_or_else(|| panic!("`{name}` read as the empty chord"));
            assert_eq!(parse_chord(&written), Ok(chord), "`{name}` was written back as `{written}`");
        }
    }
    let [low, high, bass, ..] = *data else { return };
    let chord = u16::from_le_bytes([low, high]);
    for bass in [None, Some(bass)] {
        let Some(written) = chord_name(chord, bass) else {
            assert_eq!(chord, 0, "only no notes have no name");
            continue;
        };
        // One pitch class is spelled as its note, which reads as that note's major triad.
        let named = written.split('/').next().unwrap_or_default();
        if chord < 1 << 12 && chord.count_ones() > 1 && !named.contains(' ') {
            assert_eq!(parse_chord(named), Ok(chord), "{chord:#014b} over {bass:?} was written `{written}`");
        }
    }
}
