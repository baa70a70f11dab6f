//! Whatever the plugin saves, it reopens. Sessions are built the way the plugin builds them —
//! takes recorded from random host streams through the capture tap and the recorder (hostile
//! velocities, pitches and channels included), random MIDI files loaded as clips, morph
//! points, random knob values, and the pattern the engine's render path makes of them — and
//! each must save, load and save again to the same bytes, and play the same notes reopened.

mod common;

use common::{meter, note_off, note_on, smf};
use dreamroll::capture::{CaptureTap, Recorder, MOST_BARS};
use dreamroll::engine::models::ModelSource;
use dreamroll::engine::pattern::{build_pattern, PatternOptions, Scale};
use dreamroll::engine::worker::Settings;
use dreamroll::metrics::attributes::Attribute;
use dreamroll::model::default_generator;
use dreamroll::model::generator::{Generator, RenderRequest};
use dreamroll::model::source::{Morph, MorphPoint, Source, SourceMode};
use dreamroll::plugin::session::{read_session, Session, SessionField, SESSION_VERSION};
use dreamroll::roll::swing::Swing;
use dreamroll::roll::{Meter, Take};
use dreamroll::schedule::{Pattern, Window};
use midly::Format;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

fn generator() -> &'static Generator {
    static GENERATOR: OnceLock<Generator> = OnceLock::new();
    GENERATOR.get_or_init(|| default_generator().expect("the built-in model"))
}

/// A note a host sends: where (in quarter notes from the stream's start), how long, and the
/// raw bytes the plugin hands the tap, which a careless host can put anywhere in 0..=255.
#[derive(Clone, Debug)]
struct HostNote {
    at: f64,
    length: f64,
    channel: u8,
    pitch: u8,
    velocity: u8,
}

#[derive(Clone, Debug)]
struct HostStream {
    take_bars: usize,
    tempo: f64,
    sample_rate: f64,
    block: u32,
    notes: Vec<HostNote>,
}

fn host_stream() -> impl Strategy<Value = HostStream> {
    let note = (0.0..32.0f64, 0.0..4.0f64, any::<u8>(), any::<u8>(), 1..=255u8)
        .prop_map(|(at, length, channel, pitch, velocity)| HostNote { at, length, channel, pitch, velocity });
    (
        prop::sample::select(vec![1usize, 2, 4]),
        60.0..240.0f64,
        prop::sample::select(vec![44_100.0, 48_000.0, 96_000.0]),
        64..4096u32,
        prop::collection::vec(note, 0..40),
    )
        .prop_map(|(take_bars, tempo, sample_rate, block, notes)| HostStream {
            take_bars,
            tempo,
            sample_rate,
            block,
            notes,
        })
}

/// The takes a host stream of 8 bars of 4/4 makes, played from its first bar block by block
/// through the tap and the recorder as the plugin's two threads do.
fn record(stream: &HostStream) -> Vec<Take> {
    let (mut tap, mut recorder) = (CaptureTap::default(), Recorder::new(stream.take_bars));
    let mut events = Vec::new();
    let quarters_per_sample = stream.tempo / (60.0 * stream.sample_rate);
    let mut edges: Vec<(f64, &HostNote, bool)> =
        stream.notes.iter().flat_map(|note| [(note.at, note, true), (note.at + note.length, note, false)]).collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    let (mut start, mut next_edge) = (0.0f64, 0);
    while start < 32.0 {
        let bar = (start / 4.0 + 1e-9).floor();
        let window = Window {
            playing: true,
            sample_rate: stream.sample_rate,
            tempo: stream.tempo,
            start,
            bar_start: bar * 4.0,
            bar_number: bar as i64,
            meter: Meter::COMMON,
            samples: stream.block,
        };
        let mut out = |event| events.push(event);
        tap.begin_block(&window, true, &mut out);
        let end = window.end();
        while let Some(&(at, note, on)) = edges.get(next_edge).filter(|edge| edge.0 < end) {
            next_edge += 1;
            let offset = (((at - start) / quarters_per_sample) as u32).min(stream.block - 1);
            tap.note(&window, offset, note.channel, note.pitch, if on { note.velocity } else { 0 }, &mut out);
        }
        tap.end_block(&window, &mut out);
        start = end;
    }
    events.into_iter().filter_map(|event| recorder.feed(event)).collect()
}

/// A MIDI file's notes: (channel, pitch, velocity, start tick, length in ticks); a length of 0
/// is a drum export's hit, on and off on one tick.
fn midi_file() -> impl Strategy<Value = Vec<u8>> {
    let note =
        (0..16u8, 0..128u8, 1..128u8, 0..8 * 1920u64, prop::sample::select(vec![0u64, 1, 60, 240, 480, 1920, 4000]));
    prop::collection::vec(note, 1..60).prop_map(|notes| {
        let mut events = vec![meter(0, 4, 4)];
        for (channel, pitch, velocity, start, length) in notes {
            events.push(note_on(start, channel, pitch, velocity));
            events.push(note_off(start + length, channel, pitch));
        }
        smf(Format::SingleTrack, 480, vec![events])
    })
}

/// What the producer turned: every value within its parameter's range.
#[derive(Clone, Debug)]
struct Knobs {
    bars: usize,
    seed: u64,
    takes: u32,
    macros: Vec<f32>,
    named: Vec<f32>,
    variation: f32,
    temperature: f32,
    density: f32,
    key: u8,
    scale: Scale,
    transpose: i8,
    velocity: u8,
    humanise: f32,
    swing: u8,
    channels: Vec<u8>,
    muted: Vec<bool>,
    mode: SourceMode,
    distance: f32,
    morph: f32,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    let tracks = generator().card().representation.tracks.len();
    let pattern = (
        prop::sample::select(vec![1usize, 2, 4, 8]),
        0..1000u64,
        0..4u32,
        prop::collection::vec(-3.0..=3.0f32, 8),
        prop::collection::vec(-2.0..=2.0f32, Attribute::ALL.len()),
        0.0..=1.0f32,
        0.0..=3.0f32,
        -1.0..=1.0f32,
    );
    let voicing = (
        0..12u8,
        prop::sample::select(Scale::ALL.to_vec()),
        -24..=24i8,
        1..=127u8,
        0.0..=1.0f32,
        50..=75u8,
        prop::collection::vec(0..16u8, tracks),
        prop::collection::vec(any::<bool>(), tracks),
    );
    let source = (
        prop::sample::select(vec![SourceMode::Dream, SourceMode::Vary, SourceMode::Continue]),
        0.0..=1.0f32,
        0.0..=1.0f32,
    );
    (pattern, voicing, source).prop_map(
        |(
            (bars, seed, takes, macros, named, variation, temperature, density),
            (key, scale, transpose, velocity, humanise, swing, channels, muted),
            (mode, distance, morph),
        )| Knobs {
            bars,
            seed,
            takes,
            macros,
            named,
            variation,
            temperature,
            density,
            key,
            scale,
            transpose,
            velocity,
            humanise,
            swing,
            channels,
            muted,
            mode,
            distance,
            morph,
        },
    )
}

/// A morph point as the editor stores it: what plays now, or a clip.
#[derive(Clone, Debug)]
enum PointChoice {
    None,
    Now,
    Clip(usize),
}

fn point() -> impl Strategy<Value = PointChoice> {
    prop_oneof![Just(PointChoice::None), Just(PointChoice::Now), (0..8usize).prop_map(PointChoice::Clip)]
}

/// The settings the knobs ask for, as `settings_for` builds them.
fn asked(knobs: &Knobs, clip: Option<&Take>, points: &[Option<MorphPoint>; 2]) -> Settings {
    let card = generator().card();
    let seed = knobs.seed + (u64::from(knobs.takes) << 32);
    Settings {
        request: RenderRequest {
            bars: knobs.bars,
            seed,
            knobs: knobs.macros.iter().copied().take(card.macro_knobs.len()).collect(),
            variation: knobs.variation,
            temperature: Some(card.decoding.temperature * knobs.temperature),
            density: knobs.density,
            named: knobs.named.clone(),
            style: None,
        },
        voicing: PatternOptions {
            key: knobs.key,
            scale: knobs.scale,
            transpose: knobs.transpose,
            velocity: knobs.velocity,
            humanise: knobs.humanise,
            seed,
            channels: knobs.channels.clone(),
            muted: knobs.muted.clone(),
            swing: Swing::new(knobs.swing),
        },
        source: Source {
            mode: knobs.mode,
            distance: knobs.distance,
            morph: match points {
                [Some(a), Some(b)] if knobs.mode == SourceMode::Dream => {
                    Some(Morph { a: a.clone(), b: b.clone(), amount: knobs.morph })
                }
                _ => None,
            },
            ..Source::default()
        },
        clip: clip.filter(|_| knobs.mode != SourceMode::Dream).cloned().map(Arc::new),
    }
}

/// The pattern the engine makes of `settings` (its render path, step for step), or why not.
fn render(settings: &Settings) -> Result<Pattern, String> {
    let generator = generator();
    let clip = settings
        .clip
        .as_deref()
        .filter(|_| settings.source.mode != SourceMode::Dream)
        .map(|take| generator.read_take(take, settings.request.bars))
        .transpose()
        .map_err(|e| e.to_string())?;
    let roll = generator.render_from(&settings.request, &settings.source, clip.as_ref()).map_err(|e| e.to_string())?;
    Ok(build_pattern(&roll, &settings.voicing))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn whatever_the_plugin_saves_it_reopens(streams in prop::collection::vec(host_stream(), 1..3), files in prop::collection::vec(midi_file(), 1..3), knobs in knobs(), choices in (point(), point()), clip_choice in 0..8usize) {
        let mut takes: Vec<Take> = streams.iter().flat_map(record).collect();
        takes.extend(files.iter().map(|bytes| Take::from_midi(bytes, MOST_BARS as u32).expect("a file written above")));
        for take in &takes {
            prop_assert_eq!(take.check(), Ok(()), "a take as made: {:?}", take);
        }
        let clip = takes.get(clip_choice % takes.len()).cloned();
        let now = MorphPoint::Dream { seed: knobs.seed, knobs: knobs.macros.clone(), named: knobs.named.clone(), style: None };
        let points = [choices.0, choices.1].map(|choice| match choice {
            PointChoice::None => None,
            PointChoice::Now => Some(now.clone()),
            PointChoice::Clip(index) => Some(MorphPoint::Clip(takes[index % takes.len()].clone())),
        });
        // A render that fails (a clip the model cannot read) leaves the pattern before it playing;
        // the one before is the seed's own.
        let mut settings = asked(&knobs, clip.as_ref(), &points);
        let pattern = match render(&settings) {
            Ok(pattern) => pattern,
            Err(_) => {
                settings = asked(&Knobs { mode: SourceMode::Dream, ..knobs.clone() }, None, &[None, None]);
                render(&settings).expect("the seed renders")
            }
        };
        let session = Session { schema_version: SESSION_VERSION, model: ModelSource::Embedded, settings, takes: knobs.takes, pattern, clip, morph_points: points, history: Default::default() };
        let saved = serde_json::to_string(&session).unwrap();

        let (reopened, dropped) = read_session(&saved).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(dropped.is_empty(), "{:?}", dropped);
        prop_assert_eq!(serde_json::to_string(&reopened).unwrap(), saved.clone(), "save, load, save: the same bytes");
        prop_assert_eq!(&reopened.pattern, &session.pattern, "the reopened project plays the notes it was saved with");
        prop_assert_eq!(render(&reopened.settings), Ok(session.pattern.clone()), "and its settings still make them");

        let field = SessionField::default();
        field.load(&saved);
        prop_assert_eq!(field.problem(), None);
        prop_assert_eq!(field.saved_text(), saved);
    }
}
