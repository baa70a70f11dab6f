//! The plugin's parameters. IDs are stable forever: hosts store automation and projects by
//! them. Everything the engine needs is read from here by [`settings_for`], on the engine
//! thread, so a parameter change costs the audio thread nothing.

use super::history::Moment;
use super::session::SessionField;
use super::shared::{ClipSlot, HeardChord, HistorySlot, MorphPoints, SessionSlots, StyleNames};
use crate::engine::pattern::{PatternOptions, Scale};
use crate::engine::worker::Settings;
use crate::metrics::attributes::Attribute;
use crate::model::card::{ModelCard, MOST_STYLES};
use crate::model::generator::{RenderRequest, DEFAULT_VARIATION};
use crate::model::source::{Morph, Source, SourceMode};
use crate::roll::swing::Swing;
use nice_plug::prelude::*;
use nice_plug_egui::EguiEditorState;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Macro knobs every model offers (cards carry their directions).
pub const KNOBS: usize = 8;
/// Named knobs, one per attribute. Their IDs are `named_1` … in `Attribute::ALL` order,
/// which therefore only ever grows at its end.
pub const NAMED_KNOBS: usize = Attribute::ALL.len();
/// Tracks with their own mute and channel; a model with more plays the rest unmutable on
/// their card's channels.
pub const TRACK_SLOTS: usize = 8;
/// Most seeds the seed parameter can name; large enough never to repeat by hand, small
/// enough that a host's normalised value lands on each integer exactly.
pub const MAX_SEED: i32 = 99_999;

#[derive(Params)]
pub struct DreamrollParams {
    /// Editor size and whether it is open.
    pub editor_state: Arc<EguiEditorState>,
    /// The pattern playing, its settings and model: what makes a project reopen identically.
    #[persist = "session"]
    pub session: SessionField,

    #[nested(array, group = "Macro knobs")]
    pub knobs: [KnobParams; KNOBS],
    /// One per attribute, in `Attribute::ALL` order; a model uses those its card has.
    #[nested(array, group = "Named knobs")]
    pub named: [NamedKnobParams; NAMED_KNOBS],
    #[id = "seed"]
    pub seed: IntParam,
    /// A trigger: each press draws the next pattern of the same seed ("take"), so a user can
    /// audition many without losing the seed they liked.
    #[id = "new-seed"]
    pub new_seed: BoolParam,
    #[id = "variation"]
    pub variation: FloatParam,
    #[id = "loop-bars"]
    pub loop_bars: EnumParam<LoopBars>,
    #[id = "density"]
    pub density: FloatParam,
    #[id = "temperature"]
    pub temperature: FloatParam,
    #[id = "key"]
    pub key: EnumParam<Tonic>,
    #[id = "scale"]
    pub scale: EnumParam<Scale>,
    #[id = "transpose"]
    pub transpose: IntParam,
    #[id = "velocity"]
    pub velocity: IntParam,
    #[id = "humanise"]
    pub humanise: FloatParam,
    /// Where the off-beat eighths fall, as a drum machine's swing: 50 % straight, 66 % a
    /// shuffle (see [`crate::roll::swing`]).
    #[id = "swing"]
    pub swing: IntParam,
    /// Freeze: the playing pattern stays whatever the knobs do.
    #[id = "hold"]
    pub hold: BoolParam,
    #[id = "switch-at"]
    pub switch_at: EnumParam<SwitchAt>,
    #[id = "preview"]
    pub preview: BoolParam,
    #[id = "preview-volume"]
    pub preview_volume: FloatParam,
    #[id = "bypass"]
    pub bypass: BoolParam,
    #[nested(array, group = "Tracks")]
    pub tracks: [TrackParams; TRACK_SLOTS],
    /// Where the notes come from: dreamt, or written from the producer's clip.
    #[id = "source"]
    pub source: EnumParam<SourceMode>,
    /// Vary: how far from the clip.
    #[id = "distance"]
    pub distance: FloatParam,
    /// Record what is played in (while the transport runs) as the clip.
    #[id = "record"]
    pub record: BoolParam,
    #[id = "take-length"]
    pub take_length: EnumParam<LoopBars>,
    /// Dream between the stored points A (0) and B (1), once both are stored.
    #[id = "morph"]
    pub morph: FloatParam,
    /// Which of the model's styles to dream in: 0 any, n the n-th (see [`StyleNames`]).
    #[id = "style"]
    pub style: IntParam,

    /// Presses of "new seed" so far; saved in the session.
    pub takes: Arc<AtomicU32>,
    /// The producer's clip: the newest take, or a loaded file; saved in the session.
    pub clip: Arc<ClipSlot>,
    /// Whole bars heard toward the take being recorded, for the editor.
    pub bars_heard: Arc<AtomicU32>,
    /// The last chord held on the MIDI input (see [`HeardChord`]); written by the audio
    /// thread, saved in the session through the settings it shapes.
    pub heard_chord: Arc<HeardChord>,
    /// The points Morph moves between; saved in the session.
    pub morph_points: Arc<MorphPoints>,
    /// The loaded model's styles, as *Style* shows them.
    pub style_names: Arc<StyleNames>,
    /// The patterns this session made; saved in the session.
    pub history: Arc<HistorySlot>,
}

#[derive(Params)]
pub struct KnobParams {
    #[id = "knob"]
    pub value: FloatParam,
}

#[derive(Params)]
pub struct NamedKnobParams {
    #[id = "named"]
    pub value: FloatParam,
}

impl NamedKnobParams {
    fn new(index: usize) -> NamedKnobParams {
        NamedKnobParams {
            value: FloatParam::new(Attribute::ALL[index].knob_name(), 0.0, FloatRange::Linear { min: -2.0, max: 2.0 })
                .with_step_size(0.01)
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
        }
    }
}

#[derive(Params)]
pub struct TrackParams {
    #[id = "mute"]
    pub mute: BoolParam,
    #[id = "channel"]
    pub channel: IntParam,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopBars {
    #[id = "1"]
    #[name = "1 bar"]
    One,
    #[id = "2"]
    #[name = "2 bars"]
    Two,
    #[id = "4"]
    #[name = "4 bars"]
    Four,
    #[id = "8"]
    #[name = "8 bars"]
    Eight,
}

impl LoopBars {
    pub fn bars(self) -> usize {
        match self {
            LoopBars::One => 1,
            LoopBars::Two => 2,
            LoopBars::Four => 4,
            LoopBars::Eight => 8,
        }
    }
}

/// When a new pattern takes over from the playing one.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchAt {
    #[id = "bar"]
    #[name = "Next bar"]
    NextBar,
    #[id = "step"]
    #[name = "Next step"]
    NextStep,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tonic {
    C,
    #[name = "C#"]
    CSharp,
    D,
    #[name = "Eb"]
    EFlat,
    E,
    F,
    #[name = "F#"]
    FSharp,
    G,
    #[name = "Ab"]
    AFlat,
    A,
    #[name = "Bb"]
    BFlat,
    B,
}

/// Scales are stored by stable IDs, so reordering the list never changes a saved project.
impl Enum for Scale {
    fn variants() -> &'static [&'static str] {
        &Scale::NAMES
    }

    fn ids() -> Option<&'static [&'static str]> {
        Some(&Scale::IDS)
    }

    fn to_index(self) -> usize {
        self.index()
    }

    fn from_index(index: usize) -> Self {
        Scale::ALL[index.min(Scale::ALL.len() - 1)]
    }
}

/// Sources are stored by stable IDs, as scales are.
impl Enum for SourceMode {
    fn variants() -> &'static [&'static str] {
        &SourceMode::LABELS
    }

    fn ids() -> Option<&'static [&'static str]> {
        Some(&SourceMode::IDS)
    }

    fn to_index(self) -> usize {
        self.index()
    }

    fn from_index(index: usize) -> Self {
        SourceMode::ALL[index.min(SourceMode::ALL.len() - 1)]
    }
}

impl KnobParams {
    fn new(index: usize) -> KnobParams {
        KnobParams {
            value: FloatParam::new(format!("Knob {}", index + 1), 0.0, FloatRange::Linear { min: -3.0, max: 3.0 })
                .with_step_size(0.01)
                .with_unit(" σ")
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
        }
    }
}

impl TrackParams {
    fn new(index: usize) -> TrackParams {
        TrackParams {
            mute: BoolParam::new(format!("Track {} mute", index + 1), false),
            channel: IntParam::new(format!("Track {} channel", index + 1), 0, IntRange::Linear { min: 0, max: 16 })
                .with_value_to_string(Arc::new(|c| if c == 0 { "Model's".to_string() } else { c.to_string() }))
                .with_string_to_value(Arc::new(|s| {
                    let s = s.trim();
                    if s.eq_ignore_ascii_case("model's") || s.eq_ignore_ascii_case("model") {
                        Some(0)
                    } else {
                        s.parse().ok().filter(|c| (1..=16).contains(c))
                    }
                })),
        }
    }
}

impl Default for DreamrollParams {
    fn default() -> Self {
        let takes = Arc::new(AtomicU32::new(0));
        let style_names = Arc::new(StyleNames::default());
        // The trigger counts rising edges wherever they come from (GUI, automation, a
        // controller); a callback is an atomic add, safe on the audio thread.
        let pressed = Arc::new(AtomicBool::new(false));
        let on_new_seed = {
            let takes = takes.clone();
            Arc::new(move |on: bool| {
                if on && !pressed.swap(true, Ordering::AcqRel) {
                    takes.fetch_add(1, Ordering::AcqRel);
                } else if !on {
                    pressed.store(false, Ordering::Release);
                }
            })
        };
        DreamrollParams {
            editor_state: EguiEditorState::from_size(
                nice_plug::editor::dpi::LogicalSize::new(crate::editor::DEFAULT_SIZE.0, crate::editor::DEFAULT_SIZE.1),
                1.0,
            ),
            session: SessionField::default(),
            knobs: std::array::from_fn(KnobParams::new),
            named: std::array::from_fn(NamedKnobParams::new),
            seed: IntParam::new("Seed", 42, IntRange::Linear { min: 0, max: MAX_SEED }),
            new_seed: BoolParam::new("New seed", false).with_callback(on_new_seed),
            variation: percent_param("Variation", DEFAULT_VARIATION),
            loop_bars: EnumParam::new("Loop length", LoopBars::Eight),
            density: FloatParam::new("Density", 0.0, FloatRange::Linear { min: -1.0, max: 1.0 })
                .with_step_size(0.01)
                .with_value_to_string(Arc::new(|d| format!("{:+.0} %", d * 100.0)))
                .with_string_to_value(Arc::new(|s| {
                    s.trim().trim_end_matches('%').trim().parse::<f32>().ok().map(|p| p / 100.0)
                })),
            temperature: FloatParam::new("Temperature", 1.0, FloatRange::Linear { min: 0.0, max: 3.0 })
                .with_step_size(0.01)
                .with_value_to_string(Arc::new(|t| if t == 0.0 { "Strict".to_string() } else { format!("×{t:.2}") }))
                .with_string_to_value(Arc::new(|s| {
                    let s = s.trim();
                    if s.eq_ignore_ascii_case("strict") {
                        Some(0.0)
                    } else {
                        s.trim_start_matches('×').trim_start_matches('x').parse().ok()
                    }
                })),
            key: EnumParam::new("Key", Tonic::C),
            scale: EnumParam::new("Scale", Scale::Chromatic),
            transpose: IntParam::new("Transpose", 0, IntRange::Linear { min: -24, max: 24 }).with_unit(" st"),
            velocity: IntParam::new("Velocity", 90, IntRange::Linear { min: 1, max: 127 }),
            humanise: percent_param("Humanise", 0.0),
            swing: IntParam::new(
                "Swing",
                i32::from(Swing::STRAIGHT.percent()),
                IntRange::Linear { min: i32::from(Swing::STRAIGHT.percent()), max: i32::from(Swing::MOST) },
            )
            .with_value_to_string(Arc::new(|percent| match percent {
                50 => "Straight".to_string(),
                percent => format!("{percent} %"),
            }))
            .with_string_to_value(Arc::new(|s| match s.trim() {
                s if s.eq_ignore_ascii_case("straight") => Some(50),
                s => s.trim_end_matches('%').trim().parse().ok(),
            })),
            hold: BoolParam::new("Hold", false),
            switch_at: EnumParam::new("Switch at", SwitchAt::NextBar),
            preview: BoolParam::new("Preview synth", false),
            preview_volume: FloatParam::new(
                "Preview volume",
                util::db_to_gain(-6.0),
                FloatRange::Skewed {
                    min: util::db_to_gain(-48.0),
                    max: util::db_to_gain(6.0),
                    factor: FloatRange::gain_skew_factor(-48.0, 6.0),
                },
            )
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            tracks: std::array::from_fn(TrackParams::new),
            source: EnumParam::new("Source", SourceMode::Dream),
            distance: percent_param("Distance", 0.3),
            record: BoolParam::new("Record clip", true),
            take_length: EnumParam::new("Take length", LoopBars::Four),
            takes,
            clip: Arc::new(ClipSlot::default()),
            bars_heard: Arc::new(AtomicU32::new(0)),
            heard_chord: Arc::new(HeardChord::default()),
            morph: FloatParam::new("Morph", 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
                .with_value_to_string(Arc::new(|t| {
                    // B's share rounded, and A's what is left, so that the two always make 100.
                    let b = (100.0 * t).round();
                    format!("A {:.0} % · B {b:.0} %", 100.0 - b)
                }))
                .with_string_to_value(Arc::new(morph_from_text)),
            morph_points: Arc::new(MorphPoints::default()),
            style: IntParam::new("Style", 0, IntRange::Linear { min: 0, max: MOST_STYLES as i32 })
                .with_value_to_string({
                    let names = style_names.clone();
                    Arc::new(move |step| names.text(step))
                })
                .with_string_to_value({
                    let names = style_names.clone();
                    Arc::new(move |text| names.step(text))
                }),
            style_names,
            history: Arc::default(),
        }
    }
}

/// Morph as typed: what it shows (`A 70 % · B 30 %`), B's share alone (`B 30`), A's (`A 70`),
/// or a bare percentage, which is B's, the way the slider runs from A to B.
fn morph_from_text(text: &str) -> Option<f32> {
    let percent = |s: &str| {
        s.trim().trim_end_matches('%').trim().parse::<f32>().ok().filter(|p| p.is_finite()).map(|p| p / 100.0)
    };
    let text = text.trim();
    let share_of = |point: char| {
        text.split('·')
            .map(str::trim)
            .find_map(|part| part.strip_prefix(point).or_else(|| part.strip_prefix(point.to_ascii_lowercase())))
    };
    match (share_of('B'), share_of('A')) {
        (Some(b), _) => percent(b),
        (None, Some(a)) => percent(a).map(|a| 1.0 - a),
        (None, None) => percent(text),
    }
}

impl DreamrollParams {
    /// The shared values a saved session restores into.
    pub fn session_slots(&self) -> SessionSlots {
        SessionSlots {
            takes: self.takes.clone(),
            clip: self.clip.clone(),
            chord: self.heard_chord.clone(),
            morph: self.morph_points.clone(),
            history: self.history.clone(),
        }
    }

    /// Shows `visitor` every parameter that shapes the notes, by a stable ID: what a history
    /// moment keeps. Left out are the ones that change when or whether a pattern plays, not
    /// which (hold, switch at, bypass, the preview), and the recorder's.
    pub fn visit_shaping(&self, visitor: &mut impl ShapingVisitor) {
        for (i, knob) in self.knobs.iter().enumerate() {
            visitor.visit(&format!("knob_{}", i + 1), &knob.value);
        }
        for (i, knob) in self.named.iter().enumerate() {
            visitor.visit(&format!("named_{}", i + 1), &knob.value);
        }
        visitor.visit("seed", &self.seed);
        visitor.visit("variation", &self.variation);
        visitor.visit("loop-bars", &self.loop_bars);
        visitor.visit("density", &self.density);
        visitor.visit("temperature", &self.temperature);
        visitor.visit("key", &self.key);
        visitor.visit("scale", &self.scale);
        visitor.visit("transpose", &self.transpose);
        visitor.visit("velocity", &self.velocity);
        visitor.visit("humanise", &self.humanise);
        visitor.visit("swing", &self.swing);
        visitor.visit("source", &self.source);
        visitor.visit("distance", &self.distance);
        visitor.visit("morph", &self.morph);
        visitor.visit("style", &self.style);
        for (i, track) in self.tracks.iter().enumerate() {
            visitor.visit(&format!("mute_{}", i + 1), &track.mute);
            visitor.visit(&format!("channel_{}", i + 1), &track.channel);
        }
    }

    /// What the parameters ask for now, as a history moment (unlabelled).
    pub fn moment(&self) -> Moment {
        struct Values(std::collections::BTreeMap<String, f32>);
        impl ShapingVisitor for Values {
            fn visit<P: Param>(&mut self, id: &str, param: &P) {
                self.0.insert(id.to_string(), param.unmodulated_normalized_value());
            }
        }
        let mut values = Values(Default::default());
        self.visit_shaping(&mut values);
        Moment { values: values.0, takes: self.takes.load(Ordering::Acquire), label: String::new() }
    }

    /// Shaping parameter `id` at normalised `value`, as a host shows it ("Seed 43").
    pub fn shaping_text(&self, id: &str, value: f32) -> Option<String> {
        struct Text<'a> {
            id: &'a str,
            value: f32,
            found: Option<String>,
        }
        impl ShapingVisitor for Text<'_> {
            fn visit<P: Param>(&mut self, id: &str, param: &P) {
                if id == self.id {
                    self.found =
                        Some(format!("{} {}", param.name(), param.normalized_value_to_string(self.value, true)));
                }
            }
        }
        let mut text = Text { id, value, found: None };
        self.visit_shaping(&mut text);
        text.found
    }
}

/// Something done with each parameter that shapes the notes (see
/// [`DreamrollParams::visit_shaping`]).
pub trait ShapingVisitor {
    fn visit<P: Param>(&mut self, id: &str, param: &P);
}

/// A 0..1 amount shown and typed as a percentage.
fn percent_param(name: &str, default: f32) -> FloatParam {
    FloatParam::new(name, default, FloatRange::Linear { min: 0.0, max: 1.0 })
        .with_unit(" %")
        .with_value_to_string(formatters::v2s_f32_percentage(0))
        .with_string_to_value(formatters::s2v_f32_percentage())
}

/// The seed a render uses: the seed parameter, then which take of it.
pub fn render_seed(seed: i32, takes: u32) -> u64 {
    u64::from(seed.max(0) as u32) | (u64::from(takes) << 32)
}

/// A fingerprint of every parameter value that shapes the pattern (not the preview, hold,
/// switch point or bypass), computed alike on the audio thread and the engine thread:
/// atomic loads and arithmetic, no allocation.
pub fn pattern_fingerprint(params: &DreamrollParams) -> u64 {
    let float = |p: &FloatParam| u64::from(p.value().to_bits());
    let int = |v: i32| v as u32 as u64;
    let mut values = [0u64; KNOBS + NAMED_KNOBS + 19 + 2 * TRACK_SLOTS];
    for (slot, knob) in
        values.iter_mut().zip(params.knobs.iter().map(|k| &k.value).chain(params.named.iter().map(|k| &k.value)))
    {
        *slot = float(knob);
    }
    let scalars = [
        int(params.seed.value()),
        u64::from(params.takes.load(Ordering::Acquire)),
        float(&params.variation),
        params.loop_bars.value().to_index() as u64,
        float(&params.density),
        float(&params.temperature),
        params.key.value().to_index() as u64,
        params.scale.value().to_index() as u64,
        int(params.transpose.value()),
        int(params.velocity.value()),
        float(&params.humanise),
        int(params.swing.value()),
        params.source.value().to_index() as u64,
        float(&params.distance),
        // The clip shapes the pattern only when the source reads it.
        if params.source.value().reads_clip(params.heard_chord.get().is_some()) { params.clip.serial() } else { 0 },
        if params.source.value().follows_chords() { params.heard_chord.packed() } else { 0 },
        float(&params.morph),
        params.morph_points.serial(),
        int(params.style.value()),
    ];
    let tracks_from = KNOBS + NAMED_KNOBS + scalars.len();
    values[KNOBS + NAMED_KNOBS..tracks_from].copy_from_slice(&scalars);
    for (i, track) in params.tracks.iter().enumerate() {
        values[tracks_from + 2 * i] = u64::from(track.mute.value());
        values[tracks_from + 2 * i + 1] = int(track.channel.value());
    }
    crate::hash::fnv1a(values.iter().flat_map(|v| v.to_le_bytes()))
}

/// The named knobs' values by attribute, as `dreamroll render --named` sends them: a knob the
/// card does not have is 0, so that a render request names only what its model can turn.
fn named_knob_values(values: [f32; NAMED_KNOBS], card: &ModelCard) -> Vec<f32> {
    Attribute::ALL
        .iter()
        .zip(values)
        .map(|(&attribute, value)| if card.named_knobs.iter().any(|k| k.attribute == attribute) { value } else { 0.0 })
        .collect()
}

/// The card's style at *Style*'s step (0, or a step past the model's styles: any style).
pub fn style_of(step: i32, card: &ModelCard) -> Option<String> {
    usize::try_from(step).ok().filter(|&n| n > 0).and_then(|n| card.styles.get(n - 1)).map(|style| style.name.clone())
}

/// A float parameter's value, or its default where a host has sent something that is not a
/// number (nice-plug passes NaN through): settings are saved as JSON, which has no NaN, so a
/// project holding one could not be reopened.
fn finite(param: &FloatParam) -> f32 {
    Some(param.value()).filter(|v| v.is_finite()).unwrap_or_else(|| param.default_plain_value())
}

/// The settings the parameters ask of `card`'s model. Pure but for atomic loads.
pub fn settings_for(params: &DreamrollParams, card: &ModelCard) -> Settings {
    let (mode, held) = (params.source.value(), params.heard_chord.get());
    let tracks = &card.representation.tracks;
    let seed = render_seed(params.seed.value(), params.takes.load(Ordering::Acquire));
    // A slot mutes and routes a part: a whole kit, a hand of voices.
    let parts = card.representation.parts();
    let slot = |track: usize| parts.iter().position(|part| part.contains(&track)).and_then(|p| params.tracks.get(p));
    Settings {
        request: RenderRequest {
            bars: params.loop_bars.value().bars(),
            seed,
            knobs: params.knobs.iter().take(card.macro_knobs.len()).map(|k| finite(&k.value)).collect(),
            variation: finite(&params.variation),
            temperature: Some(card.decoding.temperature * finite(&params.temperature)),
            density: finite(&params.density),
            named: named_knob_values(params.named.each_ref().map(|k| finite(&k.value)), card),
            style: style_of(params.style.value(), card),
        },
        voicing: PatternOptions {
            key: params.key.value().to_index() as u8,
            scale: params.scale.value(),
            transpose: params.transpose.value() as i8,
            velocity: params.velocity.value() as u8,
            humanise: finite(&params.humanise),
            seed,
            channels: tracks
                .iter()
                .enumerate()
                .map(|(i, track)| match slot(i).map(|s| s.channel.value()) {
                    Some(channel @ 1..=16) => (channel - 1) as u8,
                    _ => track.channel,
                })
                .collect(),
            muted: (0..tracks.len()).map(|i| slot(i).is_some_and(|s| s.mute.value())).collect(),
            swing: Swing::new(params.swing.value().clamp(0, 255) as u8),
        },
        source: Source {
            mode,
            distance: finite(&params.distance),
            keep: Vec::new(),
            chords: match held {
                Some((classes, _)) if mode.follows_chords() => vec![classes],
                _ => Vec::new(),
            },
            morph: match mode.morphs().then(|| params.morph_points.get()) {
                Some([Some(a), Some(b)]) => Some(Morph { a, b, amount: finite(&params.morph) }),
                _ => None,
            },
        },
        clip: mode.reads_clip(held.is_some()).then(|| params.clip.get()).flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::default_generator;

    #[test]
    fn style_steps_name_the_models_styles_shown_and_read_back_by_name() {
        let generator = default_generator().unwrap();
        let mut card = generator.card().clone();
        let style = |name: &str| crate::model::card::Style {
            name: name.into(),
            center: vec![0.0; card.latent_size],
            spread: vec![1.0; card.latent_size],
            phrases: 20,
        };
        card.styles = vec![style("60srock"), style("bossanova")];
        let params = DreamrollParams::default();
        assert_eq!(params.style.to_string(), "Any", "before any model, and at 0");
        params.style_names.show(card.styles.iter().map(|s| &s.name));
        let text = |step: i32| params.style_names.text(step);
        assert_eq!((text(0), text(2), text(3)), ("Any".into(), "bossanova".into(), "Style 3".into()));
        assert_eq!(params.style_names.step("BossaNova"), Some(2));
        assert_eq!(params.style_names.step("Style 7"), Some(7));
        assert_eq!(params.style_names.step("any"), Some(0));
        assert_eq!(style_of(2, &card).as_deref(), Some("bossanova"));
        assert_eq!(style_of(0, &card), None);
        assert_eq!(style_of(9, &card), None, "a step past the model's styles dreams anywhere");
        assert_eq!(settings_for(&params, &card).request.style, None);
    }

    #[test]
    fn default_parameters_ask_for_what_render_makes_by_default() {
        let generator = default_generator().unwrap();
        let card = generator.card();
        let settings = settings_for(&DreamrollParams::default(), card);
        assert_eq!(settings.request.seed, 42);
        assert_eq!(settings.request.bars, 8);
        assert_eq!(settings.request.knobs, vec![0.0; card.macro_knobs.len()]);
        assert_eq!(settings.request.temperature, Some(card.decoding.temperature), "×1 is the model's own");
        assert_eq!(settings.voicing.channels, card.representation.tracks.iter().map(|t| t.channel).collect::<Vec<_>>());
        assert_eq!(settings.voicing.velocity, 90);
    }

    #[test]
    fn the_named_knobs_the_model_has_reach_its_request_by_attribute() {
        let generator = default_generator().unwrap();
        let card = generator.card();
        let has = |attribute: Attribute| card.named_knobs.iter().any(|k| k.attribute == attribute);
        let (turned, lacking) = (
            Attribute::ALL.into_iter().find(|&a| has(a)).unwrap(),
            Attribute::ALL.into_iter().find(|&a| !has(a)).unwrap(),
        );
        let mut values = [0.0; NAMED_KNOBS];
        values[turned.index()] = 1.5;
        values[lacking.index()] = -1.0;
        let mut expected = vec![0.0; NAMED_KNOBS];
        expected[turned.index()] = 1.5;
        assert_eq!(
            named_knob_values(values, card),
            expected,
            "as `dreamroll render --named` asks: a knob the model lacks is 0"
        );
        assert_eq!(settings_for(&DreamrollParams::default(), card).request.named, vec![0.0; NAMED_KNOBS]);
    }

    #[test]
    fn morph_reads_what_it_shows_and_a_share_typed_alone() {
        let morph = DreamrollParams::default().morph;
        for (text, value) in [
            ("A 100 % · B 0 %", 0.0),
            ("A 30 % · B 70 %", 0.7),
            ("B 25", 0.25),
            ("a 60 %", 0.4),
            ("45 %", 0.45),
            ("12.5", 0.125),
            ("72.5", 0.725),
        ] {
            assert!(morph_from_text(text).is_some_and(|read| (read - value).abs() < 1e-6), "{text}");
            let shown = morph.normalized_value_to_string(value, false);
            let read = morph_from_text(&shown).unwrap();
            assert!((read - value).abs() <= 0.005 + 1e-6, "{shown}: to the whole percent it shows");
            assert_eq!(
                morph.normalized_value_to_string(read, false),
                shown,
                "the shares make 100 % and read back as shown"
            );
        }
        assert_eq!(morph_from_text("halfway"), None);
        assert_eq!(morph_from_text("B NaN"), None);
    }

    #[test]
    fn takes_change_the_seed_and_the_fingerprint_but_the_preview_does_not() {
        let params = DreamrollParams::default();
        let before = pattern_fingerprint(&params);
        params.takes.store(1, Ordering::Release);
        assert_ne!(pattern_fingerprint(&params), before);
        assert_eq!(render_seed(42, 1), 42 + (1 << 32));
        params.takes.store(0, Ordering::Release);
        assert_eq!(pattern_fingerprint(&params), before, "a pure function of the values");
    }

    #[test]
    fn scales_keep_their_saved_ids() {
        assert_eq!(Scale::ids().unwrap()[Scale::Dorian.to_index()], "dorian");
        for (index, scale) in Scale::ALL.into_iter().enumerate() {
            assert_eq!(Scale::from_index(index), scale);
            assert_eq!(Scale::variants()[index], scale.name());
        }
    }

    #[test]
    fn a_new_take_changes_nothing_while_dreamroll_dreams() {
        let generator = default_generator().unwrap();
        let params = DreamrollParams::default();
        let take = crate::roll::Take::from_midi(
            &crate::roll::write_midi(
                480,
                500_000,
                crate::roll::Meter::COMMON,
                &[crate::roll::TrackToWrite { name: "a".into(), channel: 0, notes: vec![(0, 480, 72, 90)] }],
                1920,
            ),
            8,
        )
        .unwrap();
        let dreaming = pattern_fingerprint(&params);
        params.clip.set(Some(Arc::new(take)));
        assert_eq!(pattern_fingerprint(&params), dreaming, "a new take changes nothing while Dreamroll dreams");
        assert_eq!(settings_for(&params, generator.card()).clip, None, "(tests/clap_plugin.rs varies a recorded take)");
        assert_eq!(
            SourceMode::ids().unwrap(),
            ["dream", "vary", "harmonise", "continue", "follow-chords"],
            "saved projects name sources by these"
        );
        let heard = HeardChord::default();
        assert_eq!(heard.get(), None);
        heard.set(Some((0b1000_1001_0001, Some(45))));
        assert_eq!(heard.get(), Some((0b1000_1001_0001, Some(45))));
        heard.set(Some((0b1001_0001, None)));
        assert_eq!(heard.get(), Some((0b1001_0001, None)));
    }
}
