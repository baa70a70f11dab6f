//! The model card (`model.json`): everything needed to rebuild a decoder around its weights
//! and to use it well, validated before a single weight is read.

use crate::metrics::attributes::Attribute;
use crate::roll::{Representation, RepresentationError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bumped whenever a field changes meaning; an unknown version is refused rather than
/// guessed at, since a misread card makes wrong music without any error.
pub const SCHEMA_VERSION: u32 = 1;

/// The model family a decoder was trained as. All produce the same decoder interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Vae,
    Musegan,
    Midinet,
    CnnLstm,
    /// One categorical choice per voice and step, written step by step under a latent
    /// conductor (see [`crate::model::voices`]).
    Voices,
}

impl Preset {
    /// Trained against a critic with a gradient penalty, which differentiates a gradient.
    pub fn is_adversarial(self) -> bool {
        matches!(self, Preset::Musegan | Preset::Midinet | Preset::CnnLstm)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Vae => "vae",
            Preset::Musegan => "musegan",
            Preset::Midinet => "midinet",
            Preset::CnnLstm => "cnn-lstm",
            Preset::Voices => "voices",
        })
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(text: &str) -> Result<Preset, String> {
        match text {
            "vae" => Ok(Preset::Vae),
            "musegan" => Ok(Preset::Musegan),
            "midinet" => Ok(Preset::Midinet),
            "cnn-lstm" => Ok(Preset::CnnLstm),
            "voices" => Ok(Preset::Voices),
            other => Err(format!("unknown preset `{other}`; choose voices, vae, musegan, midinet or cnn-lstm")),
        }
    }
}

/// How MuseGAN's generator shares its latent between tracks (Dong et al. 2018, section 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrackLatents {
    /// One generator per track, each with a private latent: players improvising apart.
    Jamming,
    /// One generator for all tracks from a shared latent: one composer writing the score.
    Composer,
    /// One generator per track from a shared and a private latent.
    Hybrid,
}

impl TrackLatents {
    /// How a latent of `latent` values splits: (shared, private per track).
    pub fn split(self, latent: usize, tracks: usize) -> (usize, usize) {
        match self {
            TrackLatents::Composer => (latent, 0),
            TrackLatents::Jamming => (0, latent / tracks),
            TrackLatents::Hybrid => {
                let shared = latent / 2;
                (shared, (latent - shared) / tracks)
            }
        }
    }

    /// Whether a latent of `latent` splits into these latents for `tracks` tracks exactly,
    /// each track with a private part where the mode gives one.
    pub fn fits(self, latent: usize, tracks: usize) -> bool {
        let (shared, private) = self.split(latent, tracks);
        shared + private * tracks == latent && (self == TrackLatents::Composer || private > 0)
    }
}

/// Network sizes. `patch` is the side of the square convolution patches (steps x semitones)
/// at the edge of the network; it must divide steps per bar and the pitch count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub hidden: usize,
    pub bar_hidden: usize,
    pub channels: usize,
    pub patch: usize,
    /// MuseGAN only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_latents: Option<TrackLatents>,
    /// MidiNet only: a 13-dimensional chord condition per bar (12 roots + minor flag).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chord_condition: bool,
    /// The voice decoder's own sizes (`voices` only; `hidden` is its GRU state and
    /// `bar_hidden` its conductor's embedding per bar, and the encoder uses the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceArchitecture>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceArchitecture {
    /// A pitch's embedding.
    pub embed: usize,
    /// How long a note has sounded, embedded.
    pub age_embed: usize,
    /// The step's position in its bar, embedded.
    pub position_embed: usize,
    /// Channels of the reader of given voices and bars.
    pub context: usize,
    /// Each voice's output layer.
    pub head: usize,
    /// Voice-leading scores (`leading` in the decoder's weights); absent in models made
    /// before them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leading: bool,
    /// How many loudness levels (ghost, normal, accent…) each voice chooses among for each
    /// note it strikes; 0 for models whose notes all play at the *Velocity* parameter.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub velocity_levels: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The most loudness levels a voice decoder learns.
pub const MOST_VELOCITY_LEVELS: usize = 8;

/// The widest calibrated bias (rest, crossing) a card may carry, in logits: past it a voice
/// all but never does the thing, or all but always does.
pub const BIAS_LIMIT: f32 = 6.0;

/// The most a seam opening's own likelihood may count beside what follows it: past a few
/// times, what follows no longer has a say and the opening is simply the likeliest.
pub const MOST_SEAM_OPENING_WEIGHT: f32 = 4.0;

/// A bound on a card's cost: each cadence draw runs the network over its phrase's last bar
/// again.
pub const MOST_CADENCE_CANDIDATES: u8 = 16;

/// How probabilities become notes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoding {
    /// Onset probability above which a note starts, calibrated after training so that
    /// generated note density matches the training data's.
    pub onset_threshold: f32,
    /// Sustain probability above which a note keeps sounding.
    pub sustain_threshold: f32,
    /// Per track: at most one note at a time (each voice of a chorale, a folk melody),
    /// decoded by taking the likeliest pitch rather than every pitch over the threshold.
    pub monophonic: Vec<bool>,
    pub default_velocity: u8,
    /// Per track, the velocity of each loudness level the voice decoder learned (quietest
    /// first), as the training music played it — a ghost note, a normal hit, an accent —
    /// at the *Velocity* parameter's default (`default_velocity`); the parameter scales them
    /// all. Empty for models without levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamics: Vec<Vec<u8>>,
    /// Default sampling temperature (0 decodes by threshold alone). Sampling is how a model of
    /// per-cell probabilities is meant to be played; the threshold alone keeps to the likeliest
    /// pitch and repeats itself.
    #[serde(default)]
    pub temperature: f32,
    /// Voice decoder: added to each voice's rest score, in logits. A decoder that writes its
    /// steps one after another drifts from how often the music it learned rests; this is
    /// calibrated after training so that phrases from the prior rest as often as the
    /// training phrases. 0 in models from before it.
    #[serde(default)]
    pub rest_bias: f32,
    /// Voice decoder: added to the score of every pitch that would sound below a voice above
    /// (a crossing), in logits. Written one choice after another, a decoder crosses voices
    /// more often than the music it learned (small errors in spacing compound); calibrated
    /// after training so that phrases from the prior cross as often as the training phrases.
    /// 0 in models from before it.
    #[serde(default)]
    pub crossing_bias: f32,
    /// Voice decoder: added to the score of every new note that would move in parallel
    /// perfect fifths or octaves with a voice above, in logits; calibrated after training
    /// so that phrases from the prior move in parallels as often as the training phrases
    /// (the learned voice-leading scores bring them near it, not to it). 0 in models from
    /// before it.
    #[serde(default)]
    pub parallel_bias: f32,
    /// Voice decoder: added to every new-note score of the parts written around a given one
    /// (harmonise). Under a fixed melody the decoder holds its notes longer than its corpus
    /// does; this is calibrated (`cargo xtask listen --calibrate`) on the training phrases so
    /// that the written parts' notes last as long as the composer's. 0 in models before it.
    #[serde(default)]
    pub harmonise_bias: f32,
    /// Voice decoder, harmonise: added to every choice ending a written part's note one step
    /// after it was struck. The new-note bias that gets the parts moving also breaks notes
    /// off early; calibrated with it so that the written parts have as many one-step notes as
    /// the composer's. 0 in models before it.
    #[serde(default)]
    pub harmonise_short_note_bias: f32,
    /// Voice decoder, harmonise: added to the written parts' rest scores on top of the
    /// rest bias, calibrated with the others so that they rest as often as the composer's.
    /// 0 in models before it.
    #[serde(default)]
    pub harmonise_rest_bias: f32,
    /// Voice decoder, harmonise: added to a written part's repeat of its last pitch. Once
    /// new notes are as frequent as the composer's, the decoder spends too many of them
    /// striking the same pitch again; calibrated with the harmonise bias so that the written
    /// parts repeat as often as the composer's. 0 in models before it.
    #[serde(default)]
    pub harmonise_repeat_bias: f32,
    /// Voice decoder, harmonise: added to a written part's leaps beyond a fifth. Under a
    /// melody in a key of its own, a bass reaches for the chord more by leap than the
    /// composer's; calibrated with the others so that the written parts leap as often as the
    /// composer's. 0 in models before it.
    #[serde(default)]
    pub harmonise_leap_bias: f32,
    /// Voice decoder, seams: of the openings drawn for a seam, the one kept is the one with the
    /// highest likelihood of the given notes after it plus this share of the likelihood of its
    /// own choices. At 0 the notes after it choose alone, and an opening may leap from the
    /// phrase before it as often as the model leaps anywhere; at 1 the likeliest window is
    /// kept, which joins more smoothly than its corpus's phrases may. Chosen per model from
    /// its loops' seams and wrap beside the corpus's phrase starts (`cargo xtask eval
    /// --seam-opening-weight`). 0 in models before it.
    #[serde(default)]
    pub seam_opening_weight: f32,
    /// Voice decoder, seams: added (in logits) to every new note of a seam's opening that
    /// lies more than a fifth from its voice's last note. The opening is written under the
    /// encoder's reading of its window as first drawn, so that it moves with the rhythm of a
    /// phrase start; that reading also carries the first-drawn opening's pitches, which may
    /// lie far from the phrase before it, and this keeps the voices near the phrase before as
    /// the corpus's phrase starts keep near theirs. Chosen per model with its loops' seams and
    /// wrap beside the corpus's phrase starts (`cargo xtask eval --seam-leap-bias`). 0 in
    /// models before it.
    #[serde(default)]
    pub seam_leap_bias: f32,
    /// Voice decoder, cadences: each phrase of a loop has its close, from its last strong
    /// beat, drawn this many times, and the draw the network finds likeliest is kept (0 or 1:
    /// the phrase as first drawn). A single draw at the model's temperature ends a phrase on a
    /// passing or incomplete chord more often than its corpus does, and the likeliest of a few
    /// is the close the model learned most: the chorale model's loops end their phrases on a
    /// triad 41–42 % of the time with one draw, 52–53 % with five and 54–55 % with six, its
    /// card's (Bach: 52.2 %), the root in the bass more often with each. More draws overshoot
    /// the corpus, and a close that is too settled leaves the next phrase's opening further
    /// to go. Chosen per model with `cargo xtask eval --cadence-candidates`. 0 in
    /// models before it.
    #[serde(default)]
    pub cadence_candidates: u8,
}

/// One macro knob: a direction in latent space and the corpus spread along it, so that a
/// knob at +2 means two standard deviations along the direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacroKnob {
    pub name: String,
    pub direction: Vec<f32>,
    pub spread: f32,
    /// Share of the latent variance this direction carries.
    pub variance_share: f32,
}

/// A knob with a musical name: the latent direction along which the corpus's phrases rise in
/// one attribute (its top quarter's mean code minus its bottom quarter's, MusicVAE's
/// attribute vector), kept only when a sweep showed the decoder follows it. At +1 a phrase
/// moves `spread` (half the quarters' gap) along `direction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKnob {
    pub attribute: Attribute,
    pub direction: Vec<f32>,
    pub spread: f32,
    /// Spearman's ρ between knob position and the attribute of what the decoder wrote, when
    /// the knob was learned (`cargo xtask knobs`).
    pub rho: f64,
}

/// A style the model learnt (a folder of its training data: an MMA groove family, a game's
/// soundtrack, a user's own sub-folder), as the region of the latent space where the encoder
/// reads that style's phrases: their mean code and, per dimension, their spread. A groove
/// dreamed in the style draws the prior's noise into that region, so seed, variation and the
/// knobs keep their meaning inside it; morphing between two styles' points moves one groove
/// into the other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Style {
    pub name: String,
    pub center: Vec<f32>,
    pub spread: Vec<f32>,
    /// The training phrases it was read from.
    pub phrases: usize,
}

/// The most styles a card holds: the plugin's *Style* parameter has a step for each.
pub const MOST_STYLES: usize = 255;

/// Where a model came from and what it cost, for the people who pick or retrain it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    pub data: String,
    pub terms: String,
    pub pieces: usize,
    pub bars: usize,
    pub epochs: usize,
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub wall_seconds: f64,
    pub bars_per_second: f64,
    pub device: String,
    /// How the macro-knob directions were found.
    pub knob_method: String,
    /// How the training files' notes were given to tracks; evaluation reads them the same way.
    #[serde(default)]
    pub track_assignment: crate::roll::TrackAssignment,
    /// The trained model this run started from (`--warm-start`), and all the training that
    /// went into it, which counts towards this model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<StartedFrom>,
    /// The step whose weights these are, when training went on past its lowest validation
    /// loss and those earlier weights were kept (the steps and seconds count all training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_step: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartedFrom {
    pub model: String,
    pub steps: usize,
    pub wall_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub schema_version: u32,
    pub name: String,
    pub description: String,
    pub preset: Preset,
    pub representation: Representation,
    pub latent_size: usize,
    pub architecture: Architecture,
    pub decoding: Decoding,
    /// Mean of the latent codes of the training phrases: where the knobs' zero lies.
    pub latent_center: Vec<f32>,
    pub macro_knobs: Vec<MacroKnob>,
    /// Absent from cards made before named knobs.
    #[serde(default)]
    pub named_knobs: Vec<NamedKnob>,
    /// Absent from cards made before styles, and from models trained on one folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub styles: Vec<Style>,
    pub training: TrainingInfo,
}

/// What is wrong with a card, naming the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CardError {
    #[error("model.json is not a valid model card: {0}")]
    Json(String),
    #[error("model.json has schema version {found}; this Dreamroll reads version {SCHEMA_VERSION} (update Dreamroll, or re-export the model)")]
    SchemaVersion { found: u32 },
    #[error("model.json: representation: {0}")]
    Representation(#[from] RepresentationError),
    #[error("model.json: {field}: {problem}")]
    Field { field: String, problem: String },
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> CardError {
    CardError::Field { field: field.into(), problem: problem.into() }
}

impl ModelCard {
    /// Parses and validates; the version is checked first so that a future card gets the
    /// message about versions, not about some field it renamed.
    pub fn from_json(text: &str) -> Result<ModelCard, CardError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            schema_version: Option<u32>,
        }
        let version: VersionOnly = serde_json::from_str(text).map_err(|e| CardError::Json(e.to_string()))?;
        match version.schema_version {
            None => return Err(field("schema_version", "missing")),
            Some(SCHEMA_VERSION) => {}
            Some(found) => return Err(CardError::SchemaVersion { found }),
        }
        let card: ModelCard = serde_json::from_str(text).map_err(|e| CardError::Json(e.to_string()))?;
        card.validate()?;
        Ok(card)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a card always serialises") + "\n"
    }

    pub fn validate(&self) -> Result<(), CardError> {
        let representation = &self.representation;
        representation.validate()?;
        if self.name.trim().is_empty() {
            return Err(field("name", "empty"));
        }
        if self.latent_size == 0 || self.latent_size > 4096 {
            return Err(field("latent_size", format!("{} is not 1..=4096", self.latent_size)));
        }
        let arch = &self.architecture;
        for (name, value) in [("hidden", arch.hidden), ("bar_hidden", arch.bar_hidden), ("channels", arch.channels)] {
            if value == 0 || value > 8192 {
                return Err(field(format!("architecture.{name}"), format!("{value} is not 1..=8192")));
            }
        }
        if arch.patch == 0
            || !representation.steps_per_bar().is_multiple_of(arch.patch)
            || !representation.pitch_count().is_multiple_of(arch.patch)
        {
            return Err(field(
                "architecture.patch",
                format!(
                    "{} must divide the steps per bar ({}) and the pitch count ({})",
                    arch.patch,
                    representation.steps_per_bar(),
                    representation.pitch_count()
                ),
            ));
        }
        if (self.preset == Preset::Musegan) != arch.track_latents.is_some() {
            return Err(field("architecture.track_latents", "set for the musegan preset, and only for it"));
        }
        if let Some(mode) = arch.track_latents {
            if !mode.fits(self.latent_size, representation.track_count()) {
                return Err(field(
                    "latent_size",
                    format!(
                        "{} does not split into {mode:?} latents for {} tracks",
                        self.latent_size,
                        representation.track_count()
                    ),
                ));
            }
        }
        if self.preset == Preset::Midinet
            && !self.latent_size.is_multiple_of(usize::from(representation.bars_per_phrase))
        {
            return Err(field(
                "latent_size",
                format!(
                    "{} is not a whole latent per bar for {} bars (midinet)",
                    self.latent_size, representation.bars_per_phrase
                ),
            ));
        }
        if arch.chord_condition && self.preset != Preset::Midinet {
            return Err(field("architecture.chord_condition", "only the midinet preset takes a chord condition"));
        }
        if (self.preset == Preset::Voices) != arch.voice.is_some() {
            return Err(field("architecture.voice", "set for the voices preset, and only for it"));
        }
        if let Some(voice) = &arch.voice {
            for (name, value) in [
                ("embed", voice.embed),
                ("age_embed", voice.age_embed),
                ("position_embed", voice.position_embed),
                ("context", voice.context),
                ("head", voice.head),
            ] {
                if value == 0 || value > 8192 {
                    return Err(field(format!("architecture.voice.{name}"), format!("{value} is not 1..=8192")));
                }
            }
        }
        let decoding = &self.decoding;
        for (name, value) in
            [("onset_threshold", decoding.onset_threshold), ("sustain_threshold", decoding.sustain_threshold)]
        {
            if !(value > 0.0 && value < 1.0) {
                return Err(field(
                    format!("decoding.{name}"),
                    format!("{value} is not a probability strictly between 0 and 1"),
                ));
            }
        }
        if decoding.monophonic.len() != representation.track_count() {
            return Err(field(
                "decoding.monophonic",
                format!("{} entries for {} tracks", decoding.monophonic.len(), representation.track_count()),
            ));
        }
        if !(decoding.temperature.is_finite() && (0.0..=4.0).contains(&decoding.temperature)) {
            return Err(field("decoding.temperature", format!("{} is not 0..=4", decoding.temperature)));
        }
        for (name, bias) in [
            ("decoding.rest_bias", decoding.rest_bias),
            ("decoding.crossing_bias", decoding.crossing_bias),
            ("decoding.parallel_bias", decoding.parallel_bias),
            ("decoding.harmonise_bias", decoding.harmonise_bias),
            ("decoding.harmonise_short_note_bias", decoding.harmonise_short_note_bias),
            ("decoding.harmonise_rest_bias", decoding.harmonise_rest_bias),
            ("decoding.harmonise_repeat_bias", decoding.harmonise_repeat_bias),
            ("decoding.harmonise_leap_bias", decoding.harmonise_leap_bias),
            ("decoding.seam_leap_bias", decoding.seam_leap_bias),
        ] {
            if !(bias.is_finite() && (-BIAS_LIMIT..=BIAS_LIMIT).contains(&bias)) {
                return Err(field(name, format!("{bias} is not within ±{BIAS_LIMIT}")));
            }
        }
        if !(decoding.seam_opening_weight.is_finite()
            && (0.0..=MOST_SEAM_OPENING_WEIGHT).contains(&decoding.seam_opening_weight))
        {
            return Err(field(
                "decoding.seam_opening_weight",
                format!("{} is not 0..={MOST_SEAM_OPENING_WEIGHT}", decoding.seam_opening_weight),
            ));
        }
        if decoding.cadence_candidates > MOST_CADENCE_CANDIDATES {
            return Err(field(
                "decoding.cadence_candidates",
                format!("{} is not 0..={MOST_CADENCE_CANDIDATES}", decoding.cadence_candidates),
            ));
        }
        let levels = self.architecture.voice.as_ref().map_or(0, |voice| voice.velocity_levels);
        if levels > MOST_VELOCITY_LEVELS {
            return Err(field(
                "architecture.voice.velocity_levels",
                format!("{levels} is not 0..={MOST_VELOCITY_LEVELS}"),
            ));
        }
        let dynamics_fit = match levels {
            0 => decoding.dynamics.is_empty(),
            _ => {
                decoding.dynamics.len() == representation.track_count()
                    && decoding.dynamics.iter().all(|track| {
                        (1..=levels).contains(&track.len())
                            && track.iter().all(|v| (1..=127).contains(v))
                            && track.windows(2).all(|pair| pair[0] < pair[1])
                    })
            }
        };
        if !dynamics_fit {
            return Err(field(
                "decoding.dynamics",
                format!(
                    "needs, for each of the {} tracks, 1..={levels} velocities in 1..=127, quietest first \
                     (none when the decoder has no loudness levels)",
                    representation.track_count()
                ),
            ));
        }
        if !(1..=127).contains(&decoding.default_velocity) {
            return Err(field("decoding.default_velocity", format!("{} is not 1..=127", decoding.default_velocity)));
        }
        if self.latent_center.len() != self.latent_size {
            return Err(field(
                "latent_center",
                format!("{} values for a latent of {}", self.latent_center.len(), self.latent_size),
            ));
        }
        if self.latent_center.iter().any(|v| !v.is_finite()) {
            return Err(field("latent_center", "holds a value that is not a finite number"));
        }
        let directions =
            self.macro_knobs.iter().enumerate().map(|(i, k)| (format!("macro_knobs[{i}]"), &k.direction, k.spread));
        let named =
            self.named_knobs.iter().enumerate().map(|(i, k)| (format!("named_knobs[{i}]"), &k.direction, k.spread));
        for (name, direction, spread) in directions.chain(named) {
            if direction.len() != self.latent_size {
                return Err(field(
                    format!("{name}.direction"),
                    format!("{} values for a latent of {}", direction.len(), self.latent_size),
                ));
            }
            let norm = direction.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
                return Err(field(format!("{name}.direction"), format!("length {norm}, not a unit vector")));
            }
            if !(spread.is_finite() && spread >= 0.0) {
                return Err(field(format!("{name}.spread"), format!("{spread} is not a finite spread")));
            }
        }
        if let Some(twice) = self
            .named_knobs
            .iter()
            .enumerate()
            .find(|(i, k)| self.named_knobs[..*i].iter().any(|other| other.attribute == k.attribute))
        {
            return Err(field(
                format!("named_knobs[{}]", twice.0),
                format!("a second knob for {:?}", twice.1.attribute),
            ));
        }
        if self.styles.len() > MOST_STYLES {
            return Err(field("styles", format!("{} styles; a card holds at most {MOST_STYLES}", self.styles.len())));
        }
        for (i, style) in self.styles.iter().enumerate() {
            let name = format!("styles[{i}]");
            if style.name.trim().is_empty() || self.styles[..i].iter().any(|other| other.name == style.name) {
                return Err(field(format!("{name}.name"), format!("{:?} is empty or named twice", style.name)));
            }
            for (part, values) in [("center", &style.center), ("spread", &style.spread)] {
                if values.len() != self.latent_size {
                    return Err(field(
                        format!("{name}.{part}"),
                        format!("{} values for a latent of {}", values.len(), self.latent_size),
                    ));
                }
                if values.iter().any(|v| !v.is_finite()) || (part == "spread" && values.iter().any(|&v| v < 0.0)) {
                    return Err(field(format!("{name}.{part}"), "holds a value that is not a finite number (≥ 0)"));
                }
            }
        }
        Ok(())
    }

    /// The style named `name`, or an error that lists the model's styles.
    pub fn style(&self, name: &str) -> Result<&Style, String> {
        self.styles.iter().find(|style| style.name.eq_ignore_ascii_case(name.trim())).ok_or_else(|| {
            match self.styles.is_empty() {
                true => format!("style `{name}`: model {} has no styles", self.name),
                false => format!(
                    "style `{name}`: model {} has {}",
                    self.name,
                    self.styles.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        })
    }
}

impl fmt::Display for ModelCard {
    /// The card as a person reads it: what the model makes, from what, and its knobs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.representation;
        writeln!(f, "{} ({} preset, card schema {})", self.name, self.preset, self.schema_version)?;
        writeln!(f, "  {}", self.description)?;
        let tracks: Vec<String> = r.tracks.iter().map(|t| format!("{} (channel {})", t.name, t.channel + 1)).collect();
        writeln!(f, "  tracks: {}", tracks.join(", "))?;
        writeln!(
            f,
            "  phrases of {} bars of {} at {} steps per beat, pitches {}..{}",
            r.bars_per_phrase,
            r.meter,
            r.steps_per_beat,
            r.lowest_pitch,
            u16::from(r.lowest_pitch) + u16::from(r.pitch_count)
        )?;
        writeln!(
            f,
            "  latent {}; hidden {}, bar hidden {}, {} channels, {}x{} patches",
            self.latent_size,
            self.architecture.hidden,
            self.architecture.bar_hidden,
            self.architecture.channels,
            self.architecture.patch,
            self.architecture.patch
        )?;
        let d = &self.decoding;
        match &self.architecture.voice {
            Some(v) => {
                let leading = if v.leading { ", voice-leading scores" } else { "" };
                writeln!(
                    f,
                    "  voices: pitch embedding {}, age {}, position {}, context {}, heads {}{leading}",
                    v.embed, v.age_embed, v.position_embed, v.context, v.head
                )?;
                writeln!(
                    f,
                    "  temperature {:.2}, rest bias {:+.2}, crossing bias {:+.2}, parallel bias {:+.2}",
                    d.temperature, d.rest_bias, d.crossing_bias, d.parallel_bias
                )?;
            }
            None => writeln!(
                f,
                "  onset threshold {:.3}, sustain threshold {:.3}, temperature {:.2}",
                d.onset_threshold, d.sustain_threshold, d.temperature
            )?,
        }
        for knob in &self.macro_knobs {
            writeln!(
                f,
                "  {}: spread {:.3}, {:.1} % of the latent variance",
                knob.name,
                knob.spread,
                100.0 * knob.variance_share
            )?;
        }
        for knob in &self.named_knobs {
            writeln!(
                f,
                "  {}: spread {:.3}, Spearman ρ {:.3} over its sweep",
                knob.attribute.knob_name(),
                knob.spread,
                knob.rho
            )?;
        }
        if !self.styles.is_empty() {
            let names: Vec<&str> = self.styles.iter().map(|s| s.name.as_str()).collect();
            writeln!(f, "  {} styles: {}", names.len(), names.join(", "))?;
        }
        let t = &self.training;
        writeln!(
            f,
            "  trained on {} ({} pieces, {} bars): {} epochs, {} steps, {:.0} s, {:.0} bars/s on {}",
            t.data, t.pieces, t.bars, t.epochs, t.steps, t.wall_seconds, t.bars_per_second, t.device
        )?;
        if !t.terms.is_empty() {
            writeln!(f, "  terms: {}", t.terms)?;
        }
        Ok(())
    }
}

/// A small valid card of the voices preset.
#[cfg(test)]
pub(crate) fn test_voice_card() -> ModelCard {
    let mut card = test_card();
    card.preset = Preset::Voices;
    card.decoding.monophonic = vec![true, true];
    card.architecture.voice = Some(VoiceArchitecture {
        embed: 5,
        age_embed: 3,
        position_embed: 2,
        context: 4,
        head: 7,
        leading: true,
        velocity_levels: 0,
    });
    card
}

/// A small valid card, for tests here and in the modules that build networks from cards.
#[cfg(test)]
pub(crate) fn test_card() -> ModelCard {
    use crate::roll::{Meter, TrackSpec};
    ModelCard {
        schema_version: SCHEMA_VERSION,
        name: "test".into(),
        description: "a card for tests".into(),
        preset: Preset::Vae,
        representation: Representation {
            steps_per_beat: 4,
            meter: Meter::COMMON,
            bars_per_phrase: 2,
            lowest_pitch: 48,
            pitch_count: 24,
            tracks: vec![TrackSpec::new("Lead", 0), TrackSpec::new("Bass", 1)],
        },
        latent_size: 4,
        architecture: Architecture {
            hidden: 8,
            bar_hidden: 6,
            channels: 3,
            patch: 4,
            track_latents: None,
            chord_condition: false,
            voice: None,
        },
        decoding: Decoding {
            onset_threshold: 0.5,
            sustain_threshold: 0.5,
            monophonic: vec![true, false],
            default_velocity: 90,
            dynamics: Vec::new(),
            temperature: 0.0,
            rest_bias: 0.0,
            crossing_bias: 0.0,
            parallel_bias: 0.0,
            harmonise_bias: 0.0,
            harmonise_short_note_bias: 0.0,
            harmonise_rest_bias: 0.0,
            harmonise_repeat_bias: 0.0,
            harmonise_leap_bias: 0.0,
            seam_opening_weight: 0.0,
            seam_leap_bias: 0.0,
            cadence_candidates: 0,
        },
        latent_center: vec![0.0; 4],
        macro_knobs: vec![MacroKnob {
            name: "Macro 1".into(),
            direction: vec![0.0, 1.0, 0.0, 0.0],
            spread: 2.0,
            variance_share: 0.5,
        }],
        named_knobs: Vec::new(),
        styles: Vec::new(),
        training: TrainingInfo::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(change: impl FnOnce(&mut ModelCard)) -> String {
        let mut card = test_card();
        change(&mut card);
        ModelCard::from_json(&card.to_json()).unwrap_err().to_string()
    }

    #[test]
    fn named_knobs_are_checked_like_macro_knobs_and_never_twice() {
        let knob =
            NamedKnob { attribute: Attribute::Register, direction: vec![1.0, 0.0, 0.0, 0.0], spread: 0.5, rho: 0.97 };
        let mut card = test_card();
        card.named_knobs = vec![knob.clone()];
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
        assert!(refusal(|c| c.named_knobs = vec![NamedKnob { direction: vec![2.0, 0.0, 0.0, 0.0], ..knob.clone() }])
            .contains("named_knobs[0].direction: length 2"));
        assert!(refusal(|c| c.named_knobs = vec![knob.clone(), knob.clone()])
            .contains("named_knobs[1]: a second knob for Register"));
        let mut old: serde_json::Value = serde_json::from_str(&test_card().to_json()).unwrap();
        assert!(old.as_object_mut().unwrap().remove("named_knobs").is_some());
        assert_eq!(
            ModelCard::from_json(&old.to_string()).unwrap(),
            test_card(),
            "cards from before named knobs still load"
        );
    }

    #[test]
    fn track_latents_fit_a_latent_that_splits_evenly() {
        assert!(TrackLatents::Hybrid.fits(30, 3) && TrackLatents::Hybrid.fits(36, 3));
        assert!(!TrackLatents::Hybrid.fits(32, 3), "16 shared and 3 x 5 private leave one over");
        assert!(TrackLatents::Jamming.fits(32, 4) && !TrackLatents::Jamming.fits(2, 4));
        assert!(TrackLatents::Composer.fits(7, 3));
    }

    #[test]
    fn styles_are_checked_and_found_by_name_in_any_case() {
        let style = Style { name: "bossanova".into(), center: vec![0.5; 4], spread: vec![0.8; 4], phrases: 40 };
        let mut card = test_card();
        card.styles = vec![style.clone(), Style { name: "60srock".into(), ..style.clone() }];
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
        assert_eq!(card.style("BossaNova").unwrap().name, "bossanova");
        assert!(card.style("polka").unwrap_err().contains("has bossanova, 60srock"));
        assert!(test_card().style("polka").unwrap_err().contains("has no styles"));
        assert!(refusal(|c| c.styles = vec![style.clone(), style.clone()]).contains("styles[1].name"));
        assert!(refusal(|c| c.styles = vec![Style { center: vec![0.0; 3], ..style.clone() }])
            .contains("styles[0].center: 3 values for a latent of 4"));
        assert!(
            refusal(|c| c.styles = vec![Style { spread: vec![-1.0; 4], ..style.clone() }]).contains("styles[0].spread")
        );
        assert!(!test_card().to_json().contains("styles"), "a card without styles says nothing of them");
    }

    #[test]
    fn a_card_round_trips_through_json() {
        let card = test_card();
        assert_eq!(ModelCard::from_json(&card.to_json()).unwrap(), card);
        assert!(card.to_string().contains("Lead (channel 1), Bass (channel 2)"));
    }

    #[test]
    fn versions_are_checked_first() {
        let future = test_card()
            .to_json()
            .replace("\"schema_version\": 1", "\"schema_version\": 7")
            .replace("\"name\"", "\"renamed\"");
        assert_eq!(ModelCard::from_json(&future).unwrap_err(), CardError::SchemaVersion { found: 7 });
        let unversioned = test_card().to_json().replace("\"schema_version\": 1,", "");
        assert!(ModelCard::from_json(&unversioned).unwrap_err().to_string().contains("schema_version: missing"));
        assert!(ModelCard::from_json("{ not json").unwrap_err().to_string().contains("not a valid model card"));
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(refusal(|c| c.latent_size = 0).contains("latent_size: 0"));
        assert!(refusal(|c| c.architecture.patch = 5).contains("architecture.patch: 5 must divide"));
        assert!(refusal(|c| c.architecture.hidden = 0).contains("architecture.hidden"));
        assert!(refusal(|c| c.architecture.track_latents = Some(TrackLatents::Hybrid)).contains("track_latents"));
        assert!(refusal(|c| c.architecture.chord_condition = true).contains("chord_condition"));
        assert!(refusal(|c| c.preset = Preset::Voices).contains("architecture.voice: set for the voices preset"));
        assert!(refusal(|c| c.decoding.onset_threshold = 1.0).contains("decoding.onset_threshold"));
        assert!(refusal(|c| c.decoding.monophonic.pop().map(drop).unwrap_or(())).contains("1 entries for 2 tracks"));
        assert!(refusal(|c| c.decoding.default_velocity = 0).contains("default_velocity"));
        assert!(refusal(|c| c.decoding.dynamics = vec![vec![60, 100]; 2]).contains("decoding.dynamics"));
        assert!(refusal(|c| c.latent_center = vec![0.0; 3]).contains("latent_center: 3 values"));
        assert!(refusal(|c| c.macro_knobs[0].direction = vec![0.0, 2.0, 0.0, 0.0]).contains("not a unit vector"));
        assert!(refusal(|c| c.macro_knobs[0].direction.push(0.0)).contains("macro_knobs[0].direction: 5 values"));
        assert!(refusal(|c| c.representation.pitch_count = 0).contains("representation"));
        assert!(refusal(|c| c.name = " ".into()).contains("name: empty"));
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        let mut card = test_card();
        card.latent_center[1] = f32::NAN;
        assert!(card.validate().unwrap_err().to_string().contains("latent_center"));
    }

    #[test]
    fn unknown_fields_are_refused_rather_than_ignored() {
        let json = test_card().to_json().replace("\"latent_size\"", "\"latnet_size\"");
        assert!(ModelCard::from_json(&json).unwrap_err().to_string().contains("latnet_size"));
    }
}
