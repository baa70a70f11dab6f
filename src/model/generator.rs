//! A trained decoder ready to make phrases: its card, its network, its weights — loaded with
//! every check, since a bad model file must cost the user an error message, not a crash.

use super::card::{CardError, ModelCard, Preset};
use super::completion::{kept_when_varied, slerp, GivenParts, SourceError, CHORD_BIAS, KEY_BIAS};
use super::latent::{anchored_latent, phrase_latents};
use super::layers::Shape;
use super::learned_phrases::{LearnedPhrases, LEARNED_PHRASES_FILE, REDRAWS};
use super::midinet::{MidinetGenerator, CHORD_SIZE};
use super::musegan::MuseganGenerator;
use super::rolls::{logits_to_rolls, DecodeOptions};
use super::source::{Morph, MorphPoint, Source, SourceMode};
use super::vae::{Decoder, Encoder};
use super::voices::network::VoiceNetwork;
use super::voices::sampler::{ChordGuide, ALL_PITCH_CLASSES, GUIDE_BARS};
use super::voices::sampler::{JoinDraws, Sampling};
use super::voices::seams::{given_around, seams, window, write_back};
use super::voices::tokens::tokens_to_roll;
use super::voices::{VoiceDecoder, DENSITY_LOGITS as VOICE_DENSITY_LOGITS};
use crate::files::{read_limited, FileError};
use crate::metrics::chords::{
    bar_chords, bar_key_scales, key_scale, key_scale_of_chords, strong_beat_steps, PitchClasses,
};
use crate::roll::{Clip, ClipError, Take, MOST_TAKE_BARS};
use crate::roll::{Representation, Roll};
use candle_core::{bail, DType, Device, Tensor};
use candle_nn::VarBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file names of a model folder.
pub const CARD_FILE: &str = "model.json";
pub const DECODER_FILE: &str = "decoder.safetensors";
pub const ENCODER_FILE: &str = "encoder.safetensors";

/// Largest weights file accepted; far above any model this product trains, far below what
/// would hurt a host to read.
pub const MAX_WEIGHTS_BYTES: u64 = 256 << 20;
/// Largest card (model.json) accepted: a card is a few kilobytes of JSON.
pub const MAX_CARD_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("{path}: {bytes} bytes is more than a model file can be ({MAX_WEIGHTS_BYTES} bytes at most)")]
    TooLarge { path: PathBuf, bytes: u64 },
    #[error("{path}: {source}")]
    InFile { path: PathBuf, source: Box<ModelError> },
    #[error("weights: not a readable safetensors file: {0}")]
    NotSafetensors(String),
    #[error("weights: tensor `{name}` holds {count} values that are NaN or infinite")]
    NotFinite { name: String, count: usize },
    #[error("weights do not fit the card: {0}")]
    Mismatch(String),
    #[error("learned phrases: {0}")]
    LearnedPhrases(String),
}

/// The network a preset decodes with.
enum Network {
    Phrase(Decoder),
    Musegan(MuseganGenerator),
    Midinet(MidinetGenerator),
    /// Boxed: its sampler's tables make it far larger than the others.
    Voices(Box<VoiceDecoder>),
}

pub struct Generator {
    card: ModelCard,
    network: Network,
    device: Device,
    /// The training data's phrases, never to be handed out note for note (the voice decoder
    /// draws again); empty for a model folder from before them.
    learned: LearnedPhrases,
    /// The encoder, where the folder has one: it reads a producer's clip into the latent
    /// space (vary it; harmonise or continue it in its own key and manner).
    encoder: Option<Encoder>,
}

impl Generator {
    /// Builds the network around weights in `vb` (a trainer's `VarMap`, or loaded tensors).
    pub fn build(card: ModelCard, vb: VarBuilder, device: &Device) -> Result<Generator, ModelError> {
        let shape = Shape::of(&card);
        let mismatch = |e: candle_core::Error| ModelError::Mismatch(e.to_string());
        let vb = vb.pp("decoder");
        let network = match (card.preset, card.architecture.track_latents) {
            (Preset::Voices, _) => Network::Voices(Box::new(VoiceDecoder::new(&card, vb).map_err(mismatch)?)),
            (Preset::Musegan, Some(mode)) => {
                Network::Musegan(MuseganGenerator::new(shape, mode, vb).map_err(mismatch)?)
            }
            (Preset::Midinet, _) => {
                let chords = if card.architecture.chord_condition { CHORD_SIZE } else { 0 };
                Network::Midinet(MidinetGenerator::new(shape, chords, vb).map_err(mismatch)?)
            }
            _ => Network::Phrase(Decoder::new(shape, vb).map_err(mismatch)?),
        };
        Ok(Generator { card, network, device: device.clone(), learned: LearnedPhrases::default(), encoder: None })
    }

    /// A generator from a card's JSON and a safetensors file's bytes, on the CPU.
    pub fn from_bytes(card_json: &str, weights: &[u8]) -> Result<Generator, ModelError> {
        Generator::from_card(ModelCard::from_json(card_json)?, weights)
    }

    /// A generator from a validated card and a safetensors file's bytes, on the CPU.
    pub fn from_card(card: ModelCard, weights: &[u8]) -> Result<Generator, ModelError> {
        let device = Device::Cpu;
        Generator::build(card, VarBuilder::from_tensors(finite_tensors(weights)?, DType::F32, &device), &device)
    }

    /// The generator with the encoder whose weights are a safetensors file's bytes (as the
    /// trainer writes `encoder.safetensors`).
    pub fn with_encoder_bytes(mut self, weights: &[u8]) -> Result<Generator, ModelError> {
        let vb = VarBuilder::from_tensors(finite_tensors(weights)?, DType::F32, &self.device);
        self.encoder = Some(
            Encoder::new(Shape::of(&self.card), vb.pp("encoder")).map_err(|e| ModelError::Mismatch(e.to_string()))?,
        );
        Ok(self)
    }

    /// The latent means the encoder reads from `phrases` (each one phrase on the model's
    /// grid); `None` when the model has no encoder.
    pub fn encode(&self, phrases: &[Roll]) -> candle_core::Result<Option<Vec<Vec<f32>>>> {
        let Some(encoder) = &self.encoder else { return Ok(None) };
        if phrases.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let batch = super::rolls::rolls_to_tensor(&phrases.iter().collect::<Vec<_>>(), &self.device)?;
        Ok(Some(encoder.forward(&batch)?.0.to_dtype(DType::F32)?.to_vec2::<f32>()?))
    }

    /// A generator from a model folder (`model.json` + `decoder.safetensors`).
    pub fn from_dir(dir: &Path) -> Result<Generator, ModelError> {
        let card = read_limited(&dir.join(CARD_FILE), MAX_CARD_BYTES)?;
        let card = String::from_utf8(card).map_err(|_| CardError::Json("model.json is not UTF-8 text".into()))?;
        // The card first: a card from a newer Dreamroll should say so, whatever else is there.
        let card = ModelCard::from_json(&card)?;
        let path = dir.join(DECODER_FILE);
        let weights = read_limited(&path, MAX_WEIGHTS_BYTES)?;
        Generator::from_card(card, &weights)
            .map_err(|source| ModelError::InFile { path, source: Box::new(source) })?
            .with_optional_file(dir, ENCODER_FILE, Generator::with_encoder_bytes)?
            .with_optional_file(dir, LEARNED_PHRASES_FILE, Generator::with_learned_phrases_bytes)
    }

    /// The generator with a folder's optional file taken in by `take`: older folders lack
    /// the encoder and the learned phrases, but a damaged one is an error, not an absence.
    fn with_optional_file(
        self,
        dir: &Path,
        file: &str,
        take: fn(Generator, &[u8]) -> Result<Generator, ModelError>,
    ) -> Result<Generator, ModelError> {
        let path = dir.join(file);
        if !path.exists() {
            return Ok(self);
        }
        let bytes = read_limited(&path, MAX_WEIGHTS_BYTES)?;
        take(self, &bytes).map_err(|source| ModelError::InFile { path, source: Box::new(source) })
    }

    /// The generator guarding against the phrases of a learned-phrases file's bytes.
    pub fn with_learned_phrases_bytes(self, bytes: &[u8]) -> Result<Generator, ModelError> {
        Ok(self.with_learned_phrases(LearnedPhrases::from_bytes(bytes).map_err(ModelError::LearnedPhrases)?))
    }

    pub fn with_learned_phrases(mut self, learned: LearnedPhrases) -> Generator {
        self.learned = learned;
        self
    }

    pub fn learned_phrases(&self) -> &LearnedPhrases {
        &self.learned
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The generator decoding by other settings, checked as a card's are: for calibrating
    /// them against the music they should match.
    pub fn with_decoding(mut self, decoding: super::card::Decoding) -> Result<Generator, ModelError> {
        let card = ModelCard { decoding, ..self.card.clone() };
        card.validate()?;
        self.card = card;
        Ok(self)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Logits [batch, 2 * tracks, steps, pitches] for latents [batch, latent].
    pub fn logits(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        self.logits_with_chords(z, None)
    }

    /// Logits with a chord per bar ([batch, bars, 13]) for a chord-conditioned MidiNet; other
    /// presets have no chord input and ignore it. The voice decoder has no per-cell logits:
    /// its choices depend on each other, so it only samples.
    pub fn logits_with_chords(&self, z: &Tensor, chords: Option<&Tensor>) -> candle_core::Result<Tensor> {
        match &self.network {
            Network::Phrase(decoder) => decoder.forward(z),
            Network::Musegan(generator) => generator.forward(z),
            Network::Midinet(generator) => generator.forward(z, chords),
            Network::Voices(_) => Err(candle_core::Error::Msg(
                "the voices preset has no per-cell logits; it samples choice by choice".into(),
            )),
        }
    }

    /// The voice network, for the trainer (`voices` preset only).
    pub fn voice_network(&self) -> Option<&VoiceNetwork> {
        match &self.network {
            Network::Voices(decoder) => Some(&decoder.network),
            _ => None,
        }
    }

    /// Makes sampling follow weights the trainer has changed in place.
    pub fn refresh(&mut self) -> candle_core::Result<()> {
        match &mut self.network {
            Network::Voices(decoder) => decoder.refresh(),
            _ => Ok(()),
        }
    }

    /// One phrase's logits per latent, as host data laid out as [`super::rolls::logits_to_roll`] reads them.
    pub fn phrase_logits(&self, latents: &[Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        let logits = self.batch_logits(latents)?;
        let per_phrase = logits.len() / latents.len().max(1);
        Ok(logits.chunks(per_phrase.max(1)).map(<[f32]>::to_vec).collect())
    }

    /// Every latent's phrase logits one after another, as [`logits_to_rolls`] reads them.
    fn batch_logits(&self, latents: &[Vec<f32>]) -> candle_core::Result<Vec<f32>> {
        let flat: Vec<f32> = latents.iter().flat_map(|z| z.iter().copied()).collect();
        let z = Tensor::from_vec(flat, (latents.len(), self.card.latent_size), &self.device)?;
        self.logits(&z)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
    }

    /// One phrase per latent, on every core candle computes with (see [`Self::generate_on`]).
    pub fn generate(
        &self,
        latents: &[Vec<f32>],
        options: &DecodeOptions,
        rng: &mut ChaCha8Rng,
    ) -> candle_core::Result<Vec<Roll>> {
        self.generate_on(latents, options, rng, candle_core::utils::get_num_threads())
    }

    /// One phrase per latent, on up to `threads` threads. The phrases, and where `rng` is
    /// left, are those of writing them one after another. Each thread's share starts at the
    /// word of the stream where the phrases before it would leave it if each took the usual
    /// draws; a share is kept only if the phrases before it did (a phrase drawn again for
    /// equalling a learned one takes more), and the rest are written again from where they
    /// really start.
    pub fn generate_on(
        &self,
        latents: &[Vec<f32>],
        options: &DecodeOptions,
        rng: &mut ChaCha8Rng,
        threads: usize,
    ) -> candle_core::Result<Vec<Roll>> {
        let representation = Arc::new(self.card.representation.clone());
        if let Network::Voices(decoder) = &self.network {
            let write = |latents: &[Vec<f32>], rng: &mut ChaCha8Rng| {
                decoder.phrases(&representation, latents, voice_sampling(options), options.velocity, &self.learned, rng)
            };
            let Some(draws) = self.draws_per_phrase(options).filter(|_| threads > 1 && latents.len() > 1) else {
                return write(latents, rng);
            };
            let mut written = Vec::with_capacity(latents.len());
            while written.len() < latents.len() {
                let rest = &latents[written.len()..];
                let at = rng.get_word_pos();
                let per_share = rest.len().div_ceil(threads.min(rest.len()));
                // Each share: where it started, its phrases, and where it left its stream.
                let share = |(share, latents): (usize, &[Vec<f32>])| {
                    let mut rng = rng.clone();
                    let start = at + (share * per_share) as u128 * draws;
                    rng.set_word_pos(start);
                    (start, write(latents, &mut rng), rng.get_word_pos())
                };
                // The first share on this thread, the others on threads of their own.
                let shares = std::thread::scope(|scope| {
                    let others: Vec<_> =
                        rest.chunks(per_share).enumerate().skip(1).map(|s| scope.spawn(move || share(s))).collect();
                    let mut shares = vec![share((0, &rest[..per_share]))];
                    shares.extend(others.into_iter().map(|other| other.join().expect("a phrase writer panicked")));
                    shares
                });
                for (start, phrases, end) in shares {
                    if start != rng.get_word_pos() {
                        break;
                    }
                    written.extend(phrases?);
                    rng.set_word_pos(end);
                }
            }
            return Ok(written);
        }
        Ok(logits_to_rolls(&representation, &self.batch_logits(latents)?, latents.len(), options, rng))
    }

    /// The random draws one phrase from silence usually takes from its stream: the voice
    /// decoder draws once per voice and step when it samples (and once more for the stream of
    /// its loudness levels), and never at temperature 0. A phrase equal to a learned one is
    /// drawn again, taking more; the other presets decode a whole batch at once (`None`).
    fn draws_per_phrase(&self, options: &DecodeOptions) -> Option<u128> {
        let Network::Voices(decoder) = &self.network else { return None };
        let shape = decoder.network.shape;
        // A decoder with loudness levels seeds their stream with one more draw (a u64: two words).
        let loudness = if shape.velocity_levels > 0 { 2 } else { 0 };
        Some(if options.temperature > 0.0 { (shape.steps() * shape.voices + loudness) as u128 } else { 0 })
    }
}

/// The voice decoder reads the decoding options' temperature and density (as a bias on new
/// notes); thresholds are for models of independent cells.
pub(crate) fn voice_sampling(options: &DecodeOptions) -> Sampling {
    Sampling {
        temperature: options.temperature,
        new_note_bias: options.density * VOICE_DENSITY_LOGITS + options.new_note_bias,
        rest_bias: options.rest_bias,
        crossing_bias: options.crossing_bias,
        parallel_bias: options.parallel_bias,
        short_note_bias: options.short_note_bias,
        repeat_bias: options.repeat_bias,
        leap_bias: options.leap_bias,
        chords: options.guide,
    }
}

/// A safetensors file's tensors, each checked to hold only finite numbers.
/// A model folder's files keep the model's own words for what is wrong with them.
impl From<FileError> for ModelError {
    fn from(error: FileError) -> Self {
        match error {
            FileError::Io { path, source } => ModelError::Io { path, source },
            FileError::NotRegular { path } => {
                ModelError::Io { path, source: std::io::Error::other("not a regular file") }
            }
            FileError::TooLarge { path, bytes, .. } => ModelError::TooLarge { path, bytes },
        }
    }
}

fn finite_tensors(weights: &[u8]) -> Result<std::collections::HashMap<String, Tensor>, ModelError> {
    let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu)
        .map_err(|e| ModelError::NotSafetensors(e.to_string()))?;
    for (name, tensor) in &tensors {
        let values = tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| ModelError::Mismatch(format!("tensor `{name}`: {e}")))?;
        let count = values.iter().filter(|v| !v.is_finite()).count();
        if count > 0 {
            return Err(ModelError::NotFinite { name: name.clone(), count });
        }
    }
    Ok(tensors)
}

/// How far each phrase wanders from the one before until a producer turns it: the plugin's
/// sound, which `dreamroll render` and `cargo xtask eval` play too.
pub const DEFAULT_VARIATION: f32 = 0.3;

/// What to make: the same request gives the same notes, in the CLI and in the plugin.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RenderRequest {
    pub bars: usize,
    pub seed: u64,
    /// Macro-knob positions in standard deviations (missing knobs are 0).
    pub knobs: Vec<f32>,
    /// How far each phrase wanders from the one before (0 = strict loop).
    pub variation: f32,
    /// 0 decodes by threshold (the voices preset: takes the likeliest choice); above 0
    /// samples around it (the voices preset: the softmax temperature); `None` plays the
    /// card's default.
    pub temperature: Option<f32>,
    /// −1…1: fewer or more notes than the calibrated onset threshold gives (0); the voices
    /// preset reads it as a bias towards new notes.
    pub density: f32,
    /// Named-knob positions by attribute (`Attribute::ALL` order; missing ones are 0).
    #[serde(default)]
    pub named: Vec<f32>,
    /// One of the card's styles to dream in, by name; `None` (or a name the model lacks)
    /// dreams anywhere on the prior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
}

impl RenderRequest {
    /// `bars` bars of `seed` as the plugin and `dreamroll render` dream them by default: no
    /// knob turned, each phrase wandering 30 % from the one before, the model's temperature.
    pub fn new(bars: usize, seed: u64) -> RenderRequest {
        RenderRequest {
            bars,
            seed,
            knobs: Vec::new(),
            variation: DEFAULT_VARIATION,
            temperature: None,
            density: 0.0,
            named: Vec::new(),
            style: None,
        }
    }

    pub fn steering<'a>(&'a self, card: &'a ModelCard) -> super::latent::Knobs<'a> {
        let style = self.style.as_deref().and_then(|name| card.style(name).ok());
        super::latent::Knobs { macros: &self.knobs, named: &self.named, style }
    }
}

impl Generator {
    /// The card's decoding as a request changes it.
    pub(crate) fn request_options(&self, request: &RenderRequest) -> DecodeOptions {
        let mut options = DecodeOptions::from_card(&self.card.decoding).with_density(request.density);
        if let Some(temperature) = request.temperature {
            options.temperature = temperature;
        }
        options
    }

    /// The voice decoder, where the model is one.
    pub(crate) fn voice_decoder(&self) -> Option<&VoiceDecoder> {
        match &self.network {
            Network::Voices(decoder) => Some(decoder),
            _ => None,
        }
    }

    /// `bars` bars: phrases from the seed's latent walk, joined and cut to length.
    pub fn render(&self, request: &RenderRequest) -> candle_core::Result<Roll> {
        let latents = self.dream_latents(request);
        self.render_loop(&latents, request, None)
    }

    /// The latents a request dreams its phrases from: the seed's walk, in its style, steered.
    fn dream_latents(&self, request: &RenderRequest) -> Vec<Vec<f32>> {
        let steering = request.steering(&self.card);
        phrase_latents(&self.card, request.seed, steering, request.variation, self.phrases_of(request))
    }

    /// Phrases a request's loop takes (the last may be cut short).
    fn phrases_of(&self, request: &RenderRequest) -> usize {
        request.bars.max(1).div_ceil(usize::from(self.card.representation.bars_per_phrase))
    }

    /// The loop a request asks for, one phrase per latent (with the strong beats on `chords`,
    /// bar by bar, where given), cut to length and joined at every phrase start and at the wrap.
    fn render_loop(
        &self,
        latents: &[Vec<f32>],
        request: &RenderRequest,
        chords: Option<&[PitchClasses]>,
    ) -> candle_core::Result<Roll> {
        let options = self.request_options(request);
        let loop_steps = request.bars.max(1) * self.card.representation.steps_per_bar();
        let Network::Voices(decoder) = &self.network else {
            let phrases =
                self.generate(latents, &options, &mut rand_chacha::ChaCha8Rng::seed_from_u64(request.seed))?;
            return Ok(Roll::concat(&phrases).expect("at least one phrase").slice(0..loop_steps));
        };
        // Each phrase draws from a stream named by the seed and its own latent, so that the
        // same latent plays the same phrase: with no variation the loop repeats exactly, at any
        // temperature. Phrases start from silence, as the decoder learnt them; the seams are
        // joined afterwards, and the loop is voiced once it is whole.
        let representation = Arc::new(self.card.representation.clone());
        let bars_per_phrase = usize::from(representation.bars_per_phrase);
        let mut tokens = Vec::with_capacity(latents.len() * representation.steps_per_phrase());
        for (k, z) in latents.iter().enumerate() {
            let guide = chords.map(|chords| self.chord_guide(chords, k * bars_per_phrase..));
            let sampling = voice_sampling(&DecodeOptions { guide, ..options.clone() });
            let stream = &mut phrase_stream(request.seed, z);
            let phrase =
                decoder.unlearned_tokens(&representation, z, &[], sampling, options.velocity, &self.learned, stream)?;
            tokens.extend(self.closed(decoder, &representation, phrase, z, sampling, stream)?);
        }
        tokens.truncate(loop_steps);
        self.join_seams(decoder, &representation, tokens, latents, request, chords)
    }

    /// The phrase with its close, from its last strong beat, the likeliest of the card's
    /// `cadence_candidates` draws (see `Decoding::cadence_candidates`), the stream going on
    /// from the phrase's own draws. Only the phrase before it is given: the next phrase's
    /// opening is written afterwards to follow the close (`join_seams`), since a close drawn
    /// to reach given notes after it leaps onto them. At temperature 0 every draw is the
    /// phrase's own likeliest close: there is nothing to choose.
    fn closed(
        &self,
        decoder: &VoiceDecoder,
        representation: &Representation,
        phrase: Vec<Vec<u32>>,
        z: &[f32],
        sampling: Sampling,
        stream: &mut impl rand::Rng,
    ) -> candle_core::Result<Vec<Vec<u32>>> {
        let candidates = usize::from(self.card.decoding.cadence_candidates);
        if candidates <= 1 || sampling.temperature <= 0.0 {
            return Ok(phrase);
        }
        let close = phrase.len().saturating_sub(strong_beat_steps(representation))..phrase.len();
        let given = given_around(&phrase, &close);
        decoder.joined_tokens(z, &given, sampling, stream, JoinDraws { candidates, own_weight: 1.0 })
    }

    /// The loop with each phrase's opening — up to its first strong beat after the downbeat —
    /// written again knowing the half phrase before it (for the first phrase, the loop's
    /// end, which it follows when the loop comes round) and the rest of its own, so that the
    /// voices move into a phrase as they move inside one, rather than restart. The opening is
    /// written under the window's own latent (see `seam_latent`), with the card's
    /// `seam_leap_bias` on its leaps, from a stream named by the seed and that latent:
    /// without variation every seam is written alike and the loop still repeats exactly. The
    /// other presets decode every cell at once and cannot keep what is around a seam: their
    /// loops play as decoded.
    fn join_seams(
        &self,
        decoder: &VoiceDecoder,
        representation: &Arc<Representation>,
        mut tokens: Vec<Vec<u32>>,
        latents: &[Vec<f32>],
        request: &RenderRequest,
        chords: Option<&[PitchClasses]>,
    ) -> candle_core::Result<Roll> {
        // A note the wrap's seam holds from the loop's last step into its first would be cut
        // at the loop's end, leaving its downbeat silent: the loop plays it struck afresh.
        let as_played = |tokens: &[Vec<u32>]| window(tokens, 0, tokens.len());
        let (steps_per_bar, bars_per_phrase) =
            (representation.steps_per_bar(), usize::from(representation.bars_per_phrase));
        let loop_bars = tokens.len() / steps_per_bar;
        let options = self.request_options(request);
        let draws = JoinDraws { candidates: SEAM_CANDIDATES, own_weight: self.card.decoding.seam_opening_weight };
        for seam in seams(loop_bars, bars_per_phrase, steps_per_bar, strong_beat_steps(representation)) {
            let seam_window = window(&tokens, seam.window_start, bars_per_phrase * steps_per_bar);
            let given = given_around(&seam_window, &seam.rewrite);
            let z = self.seam_latent(&seam_window, representation, latents, seam.phrase, options.velocity)?;
            let first_bar = seam.window_start / steps_per_bar;
            let guide = chords.map(|chords| self.chord_guide(chords, (first_bar..).map(|bar| bar % loop_bars)));
            let leap_bias = options.leap_bias + self.card.decoding.seam_leap_bias;
            let sampling = voice_sampling(&DecodeOptions { guide, leap_bias, ..options.clone() });
            let stream = &mut phrase_stream(request.seed, &z);
            // A joined phrase equal to a learned one is written again, the stream going on, as
            // a phrase from silence is (see `VoiceDecoder::complete`). It is read as the loop
            // plays it: a note held into it from the phrase before sounds on without a strike.
            let phrase =
                seam.phrase * bars_per_phrase * steps_per_bar..(seam.phrase + 1) * bars_per_phrase * steps_per_bar;
            let redraws = if sampling.temperature > 0.0 { REDRAWS } else { 0 };
            for _ in 0..=redraws {
                let written = decoder.joined_tokens(&z, &given, sampling, stream, draws)?;
                write_back(&mut tokens, &written, &seam);
                let played = (phrase.end <= tokens.len()).then(|| {
                    tokens_to_roll(representation, &as_played(&tokens), options.velocity).slice(phrase.clone())
                });
                if !played.is_some_and(|played| self.learned.contains(&played)) {
                    break;
                }
            }
        }
        let tokens = as_played(&tokens);
        let loudness = &mut phrase_stream(request.seed ^ LOUDNESS_STREAM, &latents[0]);
        decoder.voiced(representation, &tokens, latents, options.velocity, options.temperature, loudness)
    }

    /// The latent a seam window is written under. The decoder's recurrent state starts every
    /// bar from the latent's embedding of that bar, so the latent must describe the window as
    /// it stands — the end of one phrase, then the start of the next — or the opening is
    /// written as the bar the latent describes and leaps to the kept notes after it: the
    /// encoder's reading of the window as first drawn, its opening still the one drawn from
    /// silence. A window read with rests where the opening goes describes a held or silent
    /// opening, and the openings were written so: the folk loops struck a phrase's second
    /// eighth 14 % of the time against the tunes' 47 %, a restart a listener hears and a
    /// classifier tells at once. Without an encoder, the latent halfway along the arc between
    /// the two phrases.
    fn seam_latent(
        &self,
        seam_window: &[Vec<u32>],
        representation: &Arc<Representation>,
        latents: &[Vec<f32>],
        phrase: usize,
        velocity: u8,
    ) -> candle_core::Result<Vec<f32>> {
        Ok(match self.encode(&[tokens_to_roll(representation, seam_window, velocity)])? {
            Some(mut codes) => codes.swap_remove(0),
            None => slerp(&latents[phrase.checked_sub(1).unwrap_or(latents.len() - 1)], &latents[phrase], 0.5),
        })
    }

    /// A guide putting the strong beats of each bar of a phrase on its chord (`chords` indexed
    /// by loop bar, repeating; the phrase's bars are `bars`), and the notes between them in the
    /// key the chords are in.
    fn chord_guide(&self, chords: &[PitchClasses], bars: impl IntoIterator<Item = usize>) -> ChordGuide {
        let representation = &self.card.representation;
        let mut guide = ChordGuide {
            bars: [0; GUIDE_BARS],
            steps_per_bar: representation.steps_per_bar(),
            strong_steps: strong_beat_steps(representation),
            lowest_pitch: representation.lowest_pitch,
            bias: CHORD_BIAS,
            scales: [key_scale_of_chords(chords).unwrap_or(ALL_PITCH_CLASSES); GUIDE_BARS],
            scale_bias: KEY_BIAS,
        };
        for (chord, bar) in guide.bars.iter_mut().zip(bars).take(usize::from(representation.bars_per_phrase)) {
            *chord = chords[bar % chords.len()];
        }
        guide
    }
}

impl Generator {
    /// A take (a recording or a MIDI file's start) as this model reads it: its first `bars` bars.
    pub fn read_take(&self, take: &Take, bars: usize) -> std::result::Result<Clip, ClipError> {
        let card = self.card();
        take.clip(&Arc::new(card.representation.clone()), card.training.track_assignment, bars)
    }

    /// The decoded bars `source` asks for: the one entry point of the plugin's engine and of
    /// `dreamroll render`, so that both write the same notes from the same clip and settings.
    pub fn render_from(
        &self,
        request: &RenderRequest,
        source: &Source,
        clip: Option<&Clip>,
    ) -> std::result::Result<Roll, SourceError> {
        match (source.mode, clip) {
            (SourceMode::Dream, _) => Ok(match &source.morph {
                Some(morph) => self.render_morph(request, morph)?,
                None => self.render(request)?,
            }),
            (SourceMode::FollowChords, clip) => {
                let mut chords = if source.chords.is_empty() {
                    clip.map(|c| bar_chords(&c.roll)).unwrap_or_default()
                } else {
                    source.chords.clone()
                };
                // A silent bar of a chord track keeps the chord before it.
                for bar in 1..chords.len() {
                    if chords[bar] == 0 {
                        chords[bar] = chords[bar - 1];
                    }
                }
                if chords.iter().all(|&c| c == 0) {
                    return Err(SourceError::NoChord);
                }
                let first = chords.iter().copied().find(|&c| c != 0).expect("a chord, checked above");
                chords.iter_mut().take_while(|c| **c == 0).for_each(|c| *c = first);
                Ok(self.render_following(request, &chords)?)
            }
            (mode, None) => Err(SourceError::NoClip(mode)),
            (SourceMode::Vary, Some(clip)) => {
                if !(0.0..=1.0).contains(&source.distance) {
                    return Err(SourceError::Distance);
                }
                Ok(self.render_varied(request, &clip.roll, source.distance)?)
            }
            (SourceMode::Harmonise, Some(clip)) => {
                let parts = self.card().representation.track_count();
                if let Some(&part) = source.keep.iter().find(|&&k| k >= parts) {
                    return Err(SourceError::NoSuchPart { part: part + 1, parts });
                }
                let kept = if source.keep.is_empty() { clip.tracks_given.clone() } else { source.keep.clone() };
                if kept.len() >= parts {
                    return Err(SourceError::NothingToHarmonise(parts));
                }
                Ok(self.render_harmonised(request, &clip.roll, &kept)?)
            }
            (SourceMode::Continue, Some(clip)) => Ok(self.render_continued(request, &clip.roll)?),
        }
    }

    /// `phrase` (one phrase on the model's grid) with its `given` parts kept and the rest
    /// written under `latent` (velocities are the pattern's to set, as for every note). Only
    /// the voice decoder can: the other presets decode every cell at once, with nothing to
    /// hold fixed.
    pub fn complete(
        &self,
        phrase: &Roll,
        given: &GivenParts,
        latent: &[f32],
        options: &DecodeOptions,
        rng: &mut impl rand::Rng,
    ) -> candle_core::Result<Roll> {
        let card = self.card();
        let Some(decoder) = self.voice_decoder() else {
            bail!("the {} preset writes every note at once and cannot keep given ones; a voices model can", card.preset)
        };
        let representation = Arc::new(card.representation.clone());
        if phrase.representation() != &representation || phrase.steps() != representation.steps_per_phrase() {
            bail!("a phrase to complete must be one phrase on the model's own grid");
        }
        if let Some(&track) = given.tracks.iter().find(|&&t| t >= representation.track_count()) {
            bail!("part {} is not one of the model's {} parts", track + 1, representation.track_count());
        }
        let tokens = super::voices::tokens::roll_to_tokens(phrase).tokens;
        let choices: Vec<Vec<Option<u32>>> = tokens
            .iter()
            .enumerate()
            .map(|(step, row)| {
                row.iter().enumerate().map(|(track, &token)| given.covers(track, step).then_some(token)).collect()
            })
            .collect();
        decoder.complete(
            &representation,
            latent,
            &choices,
            voice_sampling(options),
            options.velocity,
            self.learned_phrases(),
            rng,
        )
    }

    /// `request.bars` bars between two points: phrase k's latent is `morph.amount` of the way
    /// along the arc from A's phrase-k latent to B's (a clip point repeats its phrases).
    pub fn render_morph(&self, request: &RenderRequest, morph: &Morph) -> candle_core::Result<Roll> {
        let phrases = self.phrases_of(request);
        let (a, b) = (self.point_latents(&morph.a, request, phrases)?, self.point_latents(&morph.b, request, phrases)?);
        let latents: Vec<Vec<f32>> =
            a.iter().zip(&b).map(|(a, b)| slerp(a, b, super::latent::unit_interval(morph.amount))).collect();
        self.render_loop(&latents, request, None)
    }

    /// A point's latents for `count` phrases.
    fn point_latents(
        &self,
        point: &MorphPoint,
        request: &RenderRequest,
        count: usize,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        match point {
            MorphPoint::Dream { seed, knobs, named, style } => Ok(phrase_latents(
                self.card(),
                *seed,
                super::latent::Knobs {
                    macros: knobs,
                    named,
                    style: style.as_deref().and_then(|name| self.card().style(name).ok()),
                },
                request.variation,
                count,
            )),
            MorphPoint::Clip(take) => {
                let clip = self
                    .read_take(take, MOST_TAKE_BARS as usize)
                    .map_err(|e| candle_core::Error::Msg(format!("a morph point's clip: {e}")))?;
                let Some(codes) = self.encode(&self.clip_phrases(&clip.roll))? else {
                    bail!("model {} has no encoder (encoder.safetensors) to read a clip with", self.card().name)
                };
                Ok((0..count).map(|k| codes[k % codes.len()].clone()).collect())
            }
        }
    }

    /// `request.bars` bars from the seed's latent walk, as `render` writes them, but with the
    /// strong beats of bar b on `chords[b % chords.len()]` (see [`ChordGuide`]).
    pub fn render_following(&self, request: &RenderRequest, chords: &[PitchClasses]) -> candle_core::Result<Roll> {
        if self.voice_decoder().is_none() {
            bail!(
                "the {} preset writes every note at once and cannot follow chords; a voices model can",
                self.card.preset
            )
        }
        if chords.is_empty() {
            bail!("no chord to follow");
        }
        let latents = self.dream_latents(request);
        self.render_loop(&latents, request, Some(chords))
    }

    /// The clip varied, phrase by phrase, the way a composer reworks a passage: a share
    /// `distance` of it is written again and the rest kept (DeepBach's and Coconet's
    /// rewriting). Of several parts, that many parts (rounded up) are rewritten, chosen by
    /// the seed; of one part, its last bars. What is rewritten is written under the
    /// encoder's reading of the phrase, `distance` away, and kept to the clip's key the more
    /// firmly the nearer it is, so it stays in the clip's key and manner; at 0 the clip plays
    /// as it is, at 1 the whole phrase is new and unrelated (the knobs move from there). The
    /// length is the clip's.
    pub fn render_varied(&self, request: &RenderRequest, clip: &Roll, distance: f32) -> candle_core::Result<Roll> {
        let distance = distance.clamp(0.0, 1.0);
        let representation = &self.card().representation;
        let phrases = self.clip_phrases(clip);
        let Some(codes) = self.encode(&phrases)? else {
            bail!("model {} has no encoder (encoder.safetensors) to read a clip with", self.card().name)
        };
        let guide = self
            .clip_key_guide(clip)
            .map(|guide| ChordGuide { scale_bias: guide.scale_bias * (1.0 - distance), ..guide });
        let options = DecodeOptions { guide, ..self.request_options(request) };
        let mut written = Vec::with_capacity(phrases.len());
        let played = clip.sounding_tracks();
        for (k, (phrase, code)) in phrases.iter().zip(&codes).enumerate() {
            let z = anchored_latent(self.card(), code, request.seed, k, request.steering(&self.card), distance);
            let kept = kept_when_varied(
                &played,
                usize::from(representation.bars_per_phrase),
                representation.steps_per_bar(),
                distance,
                request.seed,
                k,
            );
            let everything_kept = kept.tracks.len() == played.len() || kept.steps.len() == phrase.steps();
            // A variation of a melody is a melody: what the model wrote in the parts the clip
            // leaves silent (its context while writing) is dropped.
            written.push(if everything_kept {
                phrase.clone()
            } else {
                self.complete(phrase, &kept, &z, &options, &mut phrase_stream(request.seed, &z))?
                    .only_notes(|note| played.contains(&note.track))
            });
        }
        Ok(Roll::concat(&written).expect("a clip holds at least one phrase").slice(0..clip.steps()))
    }

    /// The clip's bars harmonised: for each phrase of `clip`, its `given_tracks` kept and the
    /// other parts written, cut back to the clip's length. The latent is the encoder's
    /// reading of the given parts, `request.variation` away (so the harmony is in the
    /// melody's key); a model without an encoder takes the seed's latent walk. New notes get
    /// the card's harmonise bias, so that the written parts move as often as the composer's.
    /// The written parts keep to the key the given ones are in at each bar (the encoder's
    /// reading of a lone melody carries its key only loosely), read from the whole clip, so
    /// that a phrase is in the key its melody closes in and a melody that modulates is
    /// harmonised in each key in turn.
    pub fn render_harmonised(
        &self,
        request: &RenderRequest,
        clip: &Roll,
        given_tracks: &[usize],
    ) -> candle_core::Result<Roll> {
        let given = GivenParts { tracks: given_tracks.to_vec(), ..GivenParts::default() };
        let phrases = self.clip_phrases(clip);
        let guides = self.key_guides(clip, given_tracks);
        let decoding = &self.card().decoding;
        let options = DecodeOptions {
            new_note_bias: decoding.harmonise_bias,
            short_note_bias: decoding.harmonise_short_note_bias,
            rest_bias: decoding.rest_bias + decoding.harmonise_rest_bias,
            repeat_bias: decoding.harmonise_repeat_bias,
            leap_bias: decoding.harmonise_leap_bias,
            ..self.request_options(request)
        };
        let mut written = Vec::with_capacity(phrases.len());
        for (k, phrase) in phrases.iter().enumerate() {
            let z = self.latent_for_given(&given, phrase, request, k)?;
            let options = DecodeOptions { guide: guides.get(k).copied().flatten(), ..options.clone() };
            written.push(self.complete(phrase, &given, &z, &options, &mut phrase_stream(request.seed, &z))?);
        }
        Ok(Roll::concat(&written).expect("a clip holds at least one phrase").slice(0..clip.steps()))
    }

    /// `request.bars` bars that follow the clip: each phrase is written after the half
    /// phrase before it (the clip's last bars first, then the newest written), in the clip's
    /// key, so the music carries on rather than starting again or wandering off.
    pub fn render_continued(&self, request: &RenderRequest, clip: &Roll) -> candle_core::Result<Roll> {
        let representation = &self.card().representation;
        let (bar, phrase_bars) = (representation.steps_per_bar(), usize::from(representation.bars_per_phrase));
        let context_bars = (phrase_bars / 2).max(1);
        let new_bars = phrase_bars - context_bars;
        if new_bars == 0 {
            bail!("a model of one-bar phrases has no room to continue in");
        }
        let wanted = request.bars.max(1);
        let given = GivenParts { tracks: Vec::new(), steps: 0..context_bars * bar, steps_in: clip.sounding_tracks() };
        let grid = clip.representation();
        let options = DecodeOptions { guide: self.clip_key_guide(clip), ..self.request_options(request) };
        let mut so_far = clip.clone();
        for k in 0..wanted.div_ceil(new_bars) {
            let tail = so_far.slice(so_far.steps().saturating_sub(context_bars * bar)..so_far.steps());
            // A clip shorter than the context sits at its end, after silence.
            let before = Roll::new(grid.clone(), context_bars * bar - tail.steps());
            let phrase =
                Roll::concat(&[before, tail, Roll::new(grid.clone(), new_bars * bar)]).expect("parts of one grid");
            let z = self.latent_for_given(&given, &phrase, request, k)?;
            let written = self.complete(&phrase, &given, &z, &options, &mut phrase_stream(request.seed, &z))?;
            so_far = Roll::concat(&[so_far, written.slice(context_bars * bar..written.steps())]).expect("one grid");
        }
        Ok(so_far.slice(clip.steps()..clip.steps() + wanted * bar))
    }

    /// A guide for one phrase that keeps bar b of what is written in `bar_scales[b]`, and
    /// the bars after the last scale in the last (no scale: no guide).
    fn key_guide(&self, bar_scales: &[PitchClasses]) -> Option<ChordGuide> {
        let representation = &self.card().representation;
        let &last = bar_scales.last()?;
        let mut guide =
            ChordGuide::scale_only(last, representation.steps_per_bar(), representation.lowest_pitch, KEY_BIAS);
        for (bar, &scale) in guide.scales.iter_mut().zip(bar_scales) {
            *bar = scale;
        }
        Some(guide)
    }

    /// For each phrase of `clip`, a guide that keeps each of its bars to the key
    /// `given_tracks` are in there.
    fn key_guides(&self, clip: &Roll, given_tracks: &[usize]) -> Vec<Option<ChordGuide>> {
        let bars_per_phrase = usize::from(self.card().representation.bars_per_phrase);
        let bar_scales = bar_key_scales(clip, given_tracks).unwrap_or_default();
        bar_scales.chunks(bars_per_phrase).map(|scales| self.key_guide(scales)).collect()
    }

    /// The key of every part the clip plays, as a guide for what is written from it.
    fn clip_key_guide(&self, clip: &Roll) -> Option<ChordGuide> {
        let scale = key_scale(clip, &(0..clip.track_count()).collect::<Vec<_>>())?;
        self.key_guide(&[scale])
    }

    /// The latent to write phrase `k` under: the encoder's reading of its given parts,
    /// `request.variation` away, or without an encoder the seed's latent walk.
    fn latent_for_given(
        &self,
        given: &GivenParts,
        phrase: &Roll,
        request: &RenderRequest,
        k: usize,
    ) -> candle_core::Result<Vec<f32>> {
        let card = self.card();
        Ok(match self.encode(&[given.of(phrase)])? {
            Some(codes) => anchored_latent(card, &codes[0], request.seed, k, request.steering(card), request.variation),
            None => phrase_latents(card, request.seed, request.steering(card), request.variation, k + 1).swap_remove(k),
        })
    }

    /// The clip as whole phrases, the last padded with silence.
    fn clip_phrases(&self, clip: &Roll) -> Vec<Roll> {
        let representation = &self.card().representation;
        let length = representation.steps_per_phrase();
        let whole = clip.steps().div_ceil(length).max(1) * length;
        let padded = Roll::concat(&[clip.clone(), Roll::new(clip.representation().clone(), whole - clip.steps())])
            .expect("one grid");
        let bars = usize::from(representation.bars_per_phrase);
        padded.phrases(bars, bars)
    }
}

/// Openings drawn for each seam, of which the one the rest of the phrase follows from best is
/// kept: the decoder writes left to right, so a single draw follows the phrase before the seam
/// and may leap to the notes after it; scoring several by the network's own likelihood of what
/// follows lets the side after the seam choose too. On the chorale model's 16-bar loops (seeds
/// 1–125; its weights before the phrase-cut fine-tune), leaps past a fifth where the opening
/// meets the rest of the phrase: 10.9 % with one draw, 8.0 % with 4, 6.5 % with 8, 6.1 % with
/// 16. Each draw costs a bar of the network at every seam; with 4 an 8-bar chorale pattern
/// takes 10.5 ms on one core (`cargo bench --bench render`; 29.5 ms while the other core
/// trained), within the 30 ms budget. A card may also weigh each draw's own likelihood
/// (`Decoding::seam_opening_weight`): the chorale model's wrap then leaps past a fifth 2.4 %
/// of the time rather than 3.6 %.
const SEAM_CANDIDATES: usize = 4;

/// The stream a phrase draws from: named by the seed and its latent, as `render` names it.
/// Set apart the stream the loudness of a loop's notes is drawn from, so that drawing it
/// changes none of the notes.
const LOUDNESS_STREAM: u64 = 0x10ad_0e55;

fn phrase_stream(seed: u64, z: &[f32]) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(crate::hash::fnv1a(
        seed.to_le_bytes().into_iter().chain(z.iter().flat_map(|v| v.to_le_bytes())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::card::test_card;
    use crate::model::voices::tokens::roll_to_tokens;
    use candle_nn::VarMap;
    use std::collections::HashMap;

    /// A randomly initialised model's card and weights, as a trainer would save them.
    fn saved_model() -> (String, HashMap<String, Tensor>) {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        Generator::build(test_card(), vb, &Device::Cpu).unwrap();
        let tensors = varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        (test_card().to_json(), tensors)
    }

    fn bytes(tensors: &HashMap<String, Tensor>) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        candle_core::safetensors::save(tensors, &path).unwrap();
        std::fs::read(path).unwrap()
    }

    /// Phrases written side by side are those written one after another, and leave the
    /// stream where they would, also when a phrase is drawn again for equalling a learned one
    /// (so the shares after it started at the wrong word and are written again).
    #[test]
    fn phrases_written_side_by_side_are_those_written_one_after_another() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/folk-melody");
        let generator = Generator::from_dir(&folder).unwrap();
        let options = DecodeOptions::from_card(&generator.card().decoding);
        let latents: Vec<Vec<f32>> = (0..7)
            .map(|k| (0..generator.card().latent_size).map(|i| ((k * 31 + i) as f32 * 0.37).sin()).collect())
            .collect();
        let one_after_another = |generator: &Generator| {
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            let phrases = generator.generate_on(&latents, &options, &mut rng, 1).unwrap();
            (phrases, rng.get_word_pos())
        };
        let (plain, plain_end) = one_after_another(&generator);
        let draws = generator.draws_per_phrase(&options).unwrap();
        assert_eq!(plain_end, latents.len() as u128 * draws, "no phrase of these was drawn again");
        // Phrase 3 learned: it is drawn again, and every phrase after it moves along the stream.
        let generator = generator.with_learned_phrases(LearnedPhrases::of([&plain[3]]));
        let (expected, expected_end) = one_after_another(&generator);
        assert!(expected_end > plain_end && expected[..3] == plain[..3] && expected[3] != plain[3]);
        for threads in [2, 3, 4, 8] {
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            let phrases = generator.generate_on(&latents, &options, &mut rng, threads).unwrap();
            assert!(phrases == expected, "{threads} threads wrote other phrases");
            assert_eq!(rng.get_word_pos(), expected_end, "{threads} threads left the stream elsewhere");
        }
    }

    fn request(seed: u64) -> RenderRequest {
        RenderRequest {
            bars: 5,
            seed,
            knobs: vec![],
            variation: 0.5,
            temperature: Some(0.0),
            density: 0.0,
            named: Vec::new(),
            style: None,
        }
    }

    #[test]
    fn saved_weights_load_and_render_deterministically() {
        let (card, tensors) = saved_model();
        let generator = Generator::from_bytes(&card, &bytes(&tensors)).unwrap();
        let roll = generator.render(&request(3)).unwrap();
        assert_eq!(roll.steps(), 5 * 16, "cut to the bars asked for");
        assert_eq!(roll, generator.render(&request(3)).unwrap());
        let again = Generator::from_bytes(&card, &bytes(&tensors)).unwrap();
        assert_eq!(roll, again.render(&request(3)).unwrap());
    }

    #[test]
    fn density_thins_and_fills_the_same_music() {
        let (card, tensors) = saved_model();
        let generator = Generator::from_bytes(&card, &bytes(&tensors)).unwrap();
        let notes = |density: f32| generator.render(&RenderRequest { density, ..request(4) }).unwrap().notes().len();
        let (sparse, plain, busy) = (notes(-1.0), notes(0.0), notes(1.0));
        assert!(sparse < plain && plain < busy, "{sparse} < {plain} < {busy}");
    }

    #[test]
    fn without_variation_every_phrase_is_the_same() {
        let (card, tensors) = saved_model();
        let generator = Generator::from_bytes(&card, &bytes(&tensors)).unwrap();
        let mut strict = request(9);
        strict.variation = 0.0;
        strict.bars = 6;
        let roll = generator.render(&strict).unwrap();
        assert_eq!(roll.slice(0..32), roll.slice(32..64));
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let (card, mut tensors) = saved_model();
        tensors.remove("decoder.temporal.weight");
        let error = Generator::from_bytes(&card, &bytes(&tensors)).err().unwrap().to_string();
        assert!(error.contains("decoder.temporal.weight"), "{error}");
    }

    #[test]
    fn a_wrong_shape_is_named() {
        let (card, mut tensors) = saved_model();
        tensors.insert("decoder.bar.weight".into(), Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap());
        let error = Generator::from_bytes(&card, &bytes(&tensors)).err().unwrap().to_string();
        assert!(error.contains("decoder.bar.weight") && error.contains("shape"), "{error}");
    }

    #[test]
    fn nan_weights_are_named() {
        let (card, mut tensors) = saved_model();
        let poisoned = Tensor::new(&[1.0f32, f32::NAN, f32::INFINITY], &Device::Cpu).unwrap();
        tensors.insert("decoder.latent.bias".into(), poisoned);
        let error = Generator::from_bytes(&card, &bytes(&tensors)).err().unwrap();
        assert!(matches!(&error, ModelError::NotFinite { name, count: 2 } if name == "decoder.latent.bias"), "{error}");
    }

    #[test]
    fn garbage_weights_and_cards_are_refused_in_words() {
        let (card, tensors) = saved_model();
        let error = Generator::from_bytes(&card, b"\x08\0\0\0\0\0\0\0{garbage").err().unwrap();
        assert!(error.to_string().starts_with("weights: not a readable safetensors file"), "{error}");
        let mut truncated = bytes(&tensors);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(Generator::from_bytes(&card, &truncated), Err(ModelError::NotSafetensors(_))));
        let error = Generator::from_bytes("{}", &bytes(&tensors)).err().unwrap();
        assert!(error.to_string().contains("schema_version"), "{error}");
    }

    #[test]
    fn folders_report_missing_and_enormous_files() {
        let dir = tempfile::tempdir().unwrap();
        let error = Generator::from_dir(dir.path()).err().unwrap().to_string();
        assert!(error.contains("model.json: cannot read"), "{error}");
        let (card, _) = saved_model();
        std::fs::write(dir.path().join(CARD_FILE), card).unwrap();
        let huge = std::fs::File::create(dir.path().join(DECODER_FILE)).unwrap();
        huge.set_len(MAX_WEIGHTS_BYTES + 1).unwrap();
        let error = Generator::from_dir(dir.path()).err().unwrap();
        assert!(matches!(error, ModelError::TooLarge { .. }), "{error}");
    }

    /// A randomly initialised voices model's weights, as a trainer would save them.
    fn voices_weights() -> Vec<u8> {
        let varmap = VarMap::new();
        let card = crate::model::card::test_voice_card();
        Generator::build(card, VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), &Device::Cpu).unwrap();
        let tensors: HashMap<String, Tensor> =
            varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        bytes(&tensors)
    }

    fn voices_generator(weights: &[u8]) -> Generator {
        Generator::from_bytes(&crate::model::card::test_voice_card().to_json(), weights).unwrap()
    }

    #[test]
    fn a_request_in_a_style_dreams_in_its_region_and_a_style_the_model_lacks_dreams_anywhere() {
        let weights = voices_weights();
        let mut card = crate::model::card::test_voice_card();
        let size = card.latent_size;
        card.styles = vec![crate::model::card::Style {
            name: "far".into(),
            center: vec![3.0; size],
            spread: vec![0.2; size],
            phrases: 20,
        }];
        let generator = Generator::from_bytes(&card.to_json(), &weights).unwrap();
        let anywhere = RenderRequest { temperature: Some(0.0), ..request(3) };
        let styled = RenderRequest { style: Some("far".into()), ..anywhere.clone() };
        let latents = phrase_latents(generator.card(), 3, styled.steering(generator.card()), styled.variation, 1);
        assert!(latents[0].iter().all(|z| (z - 3.0).abs() < 1.5), "{:?}", latents[0]);
        assert_eq!(generator.render(&styled).unwrap(), generator.render(&styled).unwrap());
        let lacking = RenderRequest { style: Some("polka".into()), ..anywhere.clone() };
        assert_eq!(generator.render(&lacking).unwrap(), generator.render(&anywhere).unwrap());
    }

    #[test]
    fn a_voices_model_renders_one_note_at_a_time_per_voice_and_repeatably() {
        let generator = voices_generator(&voices_weights());
        let sampled = RenderRequest { temperature: Some(1.0), ..request(6) };
        let roll = generator.render(&sampled).unwrap();
        assert_eq!(roll.steps(), 5 * 16);
        assert_eq!(roll, generator.render(&sampled).unwrap(), "the same request, the same notes");
        for track in 0..roll.track_count() {
            assert!(
                (0..roll.steps()).all(|step| roll.sounding_at(track, step).iter().filter(|&&s| s).count() <= 1),
                "track {track} is one voice"
            );
        }
        assert!(
            generator.logits(&Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap()).is_err(),
            "no per-cell logits to misread"
        );
        let strict = generator.render(&RenderRequest { variation: 0.0, bars: 6, ..sampled.clone() }).unwrap();
        assert_eq!(strict.slice(0..32), strict.slice(32..64), "with no variation the loop repeats, even when sampling");
        let busy = generator.render(&RenderRequest { density: 1.0, ..sampled.clone() }).unwrap().notes().len();
        let sparse = generator.render(&RenderRequest { density: -1.0, ..sampled }).unwrap().notes().len();
        assert!(sparse < busy, "density favours new notes: {sparse} < {busy}");
    }

    /// A voices model's request that samples and varies, as a user's would.
    fn sampled_voices() -> RenderRequest {
        RenderRequest { temperature: Some(1.0), variation: 0.3, ..request(5) }
    }

    #[test]
    fn a_loop_is_written_again_only_at_its_phrase_openings() {
        let generator = voices_generator(&voices_weights());
        let card = generator.card();
        let (bar, phrase_bars) =
            (card.representation.steps_per_bar(), usize::from(card.representation.bars_per_phrase));
        let request = RenderRequest { bars: 3 * phrase_bars, ..sampled_voices() };
        let joined = roll_to_tokens(&generator.render(&request).unwrap()).tokens;
        // The same phrases from silence, as they were before their openings were joined.
        let latents = phrase_latents(card, request.seed, request.steering(card), request.variation, 3);
        let options = generator.request_options(&request);
        let representation = Arc::new(card.representation.clone());
        let unjoined: Vec<Vec<u32>> = latents
            .iter()
            .flat_map(|z| {
                let decoder = generator.voice_decoder().unwrap();
                let sampling = voice_sampling(&options);
                let stream = &mut phrase_stream(request.seed, z);
                decoder
                    .unlearned_tokens(
                        &representation,
                        z,
                        &[],
                        sampling,
                        options.velocity,
                        generator.learned_phrases(),
                        stream,
                    )
                    .unwrap()
            })
            .collect();
        let opening = strong_beat_steps(&card.representation);
        for start in (0..3).map(|phrase| phrase * phrase_bars * bar) {
            // Past the opening and the step after it (where a note held out of it is struck
            // afresh) the phrase is as it was written.
            let rest = start + opening + 1..start + phrase_bars * bar;
            assert_eq!(joined[rest.clone()], unjoined[rest]);
        }
        assert_ne!(joined, unjoined, "the openings were written again");
    }

    /// The test card with its decoding changed by `change`.
    fn voices_generator_decoding(weights: &[u8], change: impl FnOnce(&mut crate::model::card::Decoding)) -> Generator {
        let mut card = crate::model::card::test_voice_card();
        change(&mut card.decoding);
        Generator::from_bytes(&card.to_json(), weights).unwrap()
    }

    /// The test card drawing each phrase's close five times.
    fn closing_voices_generator(weights: &[u8]) -> Generator {
        voices_generator_decoding(weights, |decoding| decoding.cadence_candidates = 5)
    }

    #[test]
    fn a_phrase_close_is_drawn_again_and_nothing_before_it_changes() {
        let weights = voices_weights();
        let (once, closing) = (voices_generator(&weights), closing_voices_generator(&weights));
        let representation = &once.card().representation;
        let phrase = representation.steps_per_phrase();
        let (opening, close) = (strong_beat_steps(representation) + 1, strong_beat_steps(representation));
        let request = RenderRequest { bars: 3 * usize::from(representation.bars_per_phrase), ..sampled_voices() };
        let tokens = |generator: &Generator| roll_to_tokens(&generator.render(&request).unwrap()).tokens;
        let (drawn_once, closed) = (tokens(&once), tokens(&closing));
        let mut closes_changed = 0;
        for start in (0..3).map(|k| k * phrase) {
            // Between the phrase's opening (written to follow the close before it) and its
            // own close, the phrase is the one drawn from silence.
            let kept = start + opening..start + phrase - close;
            assert_eq!(closed[kept.clone()], drawn_once[kept], "phrase at step {start}");
            let close = start + phrase - close..start + phrase;
            closes_changed += usize::from(closed[close.clone()] != drawn_once[close]);
        }
        assert!(closes_changed > 0, "of five draws the likeliest close is not always the first");
        assert_eq!(closing.render(&request).unwrap(), closing.render(&request).unwrap(), "the same notes");
    }

    #[test]
    fn a_seam_leap_bias_holds_the_openings_to_the_phrase_before_and_moves_nothing_else() {
        use crate::metrics::seams::JunctionAccumulator;
        let weights = voices_weights();
        let free = voices_generator(&weights);
        let held =
            voices_generator_decoding(&weights, |decoding| decoding.seam_leap_bias = -crate::model::card::BIAS_LIMIT);
        let representation = &free.card().representation;
        let (phrase, opening) = (representation.steps_per_phrase(), strong_beat_steps(representation) + 1);
        let bars = 4 * usize::from(representation.bars_per_phrase);
        let (mut free_joins, mut held_joins) = (JunctionAccumulator::default(), JunctionAccumulator::default());
        for seed in 1..=8 {
            let request = RenderRequest { bars, seed, ..sampled_voices() };
            let (free_loop, held_loop) = (free.render(&request).unwrap(), held.render(&request).unwrap());
            free_joins.add_loop(&free_loop);
            held_joins.add_loop(&held_loop);
            let (free_tokens, held_tokens) = (roll_to_tokens(&free_loop).tokens, roll_to_tokens(&held_loop).tokens);
            for start in (0..4).map(|k| k * phrase) {
                let kept = start + opening..start + phrase;
                assert_eq!(free_tokens[kept.clone()], held_tokens[kept], "seed {seed}, phrase at step {start}");
            }
        }
        // Leaps onto the phrases' first notes, at the seams and the wrap.
        let leaps = |joins: &JunctionAccumulator| {
            let summary = joins.summary();
            [summary.seams, summary.wrap].iter().map(|moves| moves.leaps.unwrap() * moves.moves as f64).sum::<f64>()
        };
        let (free_leaps, held_leaps) = (leaps(&free_joins), leaps(&held_joins));
        assert!(free_leaps >= 4.0, "an untrained model leaps at its seams: {free_leaps}");
        assert!(held_leaps < free_leaps / 2.0, "{held_leaps} leaps held against {free_leaps} free");
    }

    #[test]
    fn joined_loops_of_every_length_repeat_exactly_without_variation() {
        let weights = voices_weights();
        for generator in [voices_generator(&weights), closing_voices_generator(&weights)] {
            joined_loops_repeat_exactly_without_variation(&generator);
        }
    }

    fn joined_loops_repeat_exactly_without_variation(generator: &Generator) {
        let bar = generator.card().representation.steps_per_bar();
        for bars in [1, 2, 3, 4, 5, 8] {
            let request = RenderRequest { bars, ..sampled_voices() };
            let roll = generator.render(&request).unwrap();
            assert_eq!(roll.steps(), bars * bar);
            assert_eq!(roll, generator.render(&request).unwrap(), "{bars} bars: the same request, the same notes");
        }
        let strict = RenderRequest { variation: 0.0, ..sampled_voices() };
        let phrase = generator.render(&RenderRequest { bars: 2, ..strict.clone() }).unwrap();
        let long = generator.render(&RenderRequest { bars: 8, ..strict }).unwrap();
        let sounding = |roll: &Roll| -> Vec<Vec<bool>> {
            (0..roll.track_count())
                .flat_map(|t| (0..roll.steps()).map(move |step| roll.sounding_at(t, step).to_vec()))
                .collect()
        };
        for k in 0..4 {
            // The same notes sound; where the loop comes round a note held into it is struck
            // afresh, where one phrase follows another it may be held on.
            let repeat = long.slice(k * 2 * bar..(k + 1) * 2 * bar);
            assert_eq!(sounding(&repeat), sounding(&phrase), "phrase {k} of the strict loop");
            let onsets_after_the_first_step =
                |roll: &Roll| -> Vec<_> { roll.notes().into_iter().filter(|note| note.start > 0).collect() };
            assert_eq!(onsets_after_the_first_step(&repeat), onsets_after_the_first_step(&phrase), "phrase {k}");
        }
        let downbeat = |roll: &Roll| (0..roll.track_count()).any(|t| roll.sounding_at(t, 0).iter().any(|&on| on));
        assert_eq!(downbeat(&long), downbeat(&phrase));
    }

    #[test]
    fn a_phrase_equal_to_a_learned_one_is_drawn_again_and_the_seed_still_decides() {
        let weights = voices_weights();
        let generator = voices_generator(&weights);
        let sampled = RenderRequest { temperature: Some(1.0), bars: 6, ..request(8) };
        let free = generator.render(&sampled).unwrap();
        let generator = generator.with_learned_phrases(LearnedPhrases::of(&free.phrases(2, 2)));
        let guarded = generator.render(&sampled).unwrap();
        assert!(
            guarded.phrases(2, 2).iter().all(|phrase| !generator.learned_phrases().contains(phrase)),
            "no learned phrase is handed out"
        );
        assert_eq!(guarded, generator.render(&sampled).unwrap(), "the same request, the same notes");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CARD_FILE), generator.card().to_json()).unwrap();
        std::fs::write(dir.path().join(DECODER_FILE), &weights).unwrap();
        std::fs::write(dir.path().join(LEARNED_PHRASES_FILE), generator.learned_phrases().to_bytes()).unwrap();
        assert_eq!(
            Generator::from_dir(dir.path()).unwrap().render(&sampled).unwrap(),
            guarded,
            "the folder's file guards the same"
        );
        std::fs::write(dir.path().join(LEARNED_PHRASES_FILE), b"DRPHRAS1garbage").unwrap();
        let error = Generator::from_dir(dir.path()).err().unwrap().to_string();
        assert!(error.contains("learned-phrases.bin: learned phrases: cut off"), "{error}");
    }

    #[test]
    fn the_embedded_default_model_loads() {
        let generator = crate::model::default_generator().unwrap();
        assert!(!generator.render(&request(1)).unwrap().notes().is_empty());
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;
    use crate::model::card::test_voice_card;
    use crate::model::layers::Shape;
    use crate::model::vae::Encoder;
    use crate::roll::GridNote;
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};
    use std::collections::HashMap;

    fn safetensors(varmap: &VarMap) -> Vec<u8> {
        let tensors: HashMap<String, Tensor> =
            varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        std::fs::read(path).unwrap()
    }

    /// A randomly initialised voices model with an encoder, loaded as from a folder.
    fn voices_with_encoder() -> Generator {
        let card = test_voice_card();
        let (decoder, encoder) = (VarMap::new(), VarMap::new());
        Generator::build(card.clone(), VarBuilder::from_varmap(&decoder, DType::F32, &Device::Cpu), &Device::Cpu)
            .unwrap();
        Encoder::new(Shape::of(&card), VarBuilder::from_varmap(&encoder, DType::F32, &Device::Cpu).pp("encoder"))
            .unwrap();
        Generator::from_bytes(&card.to_json(), &safetensors(&decoder))
            .unwrap()
            .with_encoder_bytes(&safetensors(&encoder))
            .unwrap()
    }

    /// Three bars of a melody on the lead (track 0) of the test card's grid.
    fn melody(generator: &Generator) -> Roll {
        melody_of(generator, &[60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 71].map(|pitch| (pitch, 4)))
    }

    fn sampled() -> RenderRequest {
        RenderRequest {
            bars: 3,
            seed: 5,
            knobs: vec![],
            variation: 0.3,
            temperature: Some(1.0),
            density: 0.0,
            named: Vec::new(),
            style: None,
        }
    }

    fn track_notes(roll: &Roll, track: usize) -> Vec<GridNote> {
        roll.notes().into_iter().filter(|n| n.track == track).map(|n| GridNote { velocity: 0, ..n }).collect()
    }

    #[test]
    fn harmonising_keeps_the_melody_and_writes_the_other_part_repeatably() {
        let generator = voices_with_encoder();
        let clip = melody(&generator);
        let harmonised = generator.render_harmonised(&sampled(), &clip, &[0]).unwrap();
        assert_eq!(harmonised.steps(), clip.steps(), "the clip's length");
        assert_eq!(track_notes(&harmonised, 0), track_notes(&clip, 0), "the melody as it was played");
        assert!(!track_notes(&harmonised, 1).is_empty(), "a part written under it");
        assert_eq!(
            harmonised,
            generator.render_harmonised(&sampled(), &clip, &[0]).unwrap(),
            "the same request, the same notes"
        );
        assert_ne!(
            harmonised,
            generator.render_harmonised(&RenderRequest { seed: 6, ..sampled() }, &clip, &[0]).unwrap()
        );
    }

    /// The grid's melody of (pitch, steps), one note after another, on track 0.
    fn melody_of(generator: &Generator, notes: &[(u8, usize)]) -> Roll {
        crate::metrics::chords::melody_roll(Arc::new(generator.card().representation.clone()), notes)
    }

    #[test]
    fn a_harmonised_melody_is_kept_to_the_key_of_each_of_its_bars() {
        use crate::metrics::chords::{c_then_g, ode_to_joy, parse_chord};
        let generator = voices_with_encoder();
        let scale = |chords: [&str; 3]| chords.iter().fold(0, |scale, chord| scale | parse_chord(chord).unwrap());
        let (c_major, g_major) = (scale(["C", "F", "G"]), scale(["G", "C", "D"]));
        let guides = generator.key_guides(&melody_of(&generator, &ode_to_joy()), &[0]);
        assert!(guides.iter().all(|guide| guide.unwrap().scales[..2] == [g_major; 2]), "Ode to Joy is in G major");
        // Sixteen bars, eight phrases of two: the first phrases in C, the last in G.
        let modulating = melody_of(&generator, &c_then_g());
        let guides = generator.key_guides(&modulating, &[0]);
        assert_eq!(guides.len(), 8);
        let phrase_scales = |k: usize| guides[k].unwrap().scales[..2].to_vec();
        assert_eq!((phrase_scales(0), phrase_scales(2)), (vec![c_major; 2], vec![c_major; 2]));
        assert_eq!((phrase_scales(6), phrase_scales(7)), (vec![g_major; 2], vec![g_major; 2]));
        assert_eq!(generator.key_guides(&modulating, &[1]), vec![], "a silent part: no guide");
    }

    /// Read in B minor, whose scale lacks C, Ode to Joy was harmonised with C# and G# against
    /// its G-major tune. Read in G, the built-in model's likeliest parts under it keep to G major
    /// but for a chromatic passing note now and then (the model's own: Bach writes them too).
    #[test]
    fn the_built_in_model_harmonises_ode_to_joy_in_g_major() {
        use crate::metrics::chords::{contains, ode_to_joy, parse_chord};
        let generator = crate::model::default_generator().unwrap();
        let g_major = ["G", "C", "D"].iter().fold(0, |scale, chord| scale | parse_chord(chord).unwrap());
        let an_octave_up: Vec<(u8, usize)> =
            ode_to_joy().into_iter().map(|(pitch, length)| (pitch + 12, length)).collect();
        let ode = melody_of(&generator, &an_octave_up);
        let mut written = Vec::new();
        for seed in 1..=3 {
            let likeliest = RenderRequest { bars: 8, seed, temperature: Some(0.0), ..sampled() };
            let harmonised = generator.render_harmonised(&likeliest, &ode, &[0]).unwrap();
            written.extend(harmonised.notes().into_iter().filter(|note| note.track > 0));
        }
        assert!(written.len() > 180, "three parts under eight bars of tune, three times: {}", written.len());
        let outside: Vec<&GridNote> = written.iter().filter(|note| !contains(g_major, note.pitch)).collect();
        assert!(
            outside.len() * 100 <= 3 * written.len(),
            "{} of {} notes outside G major: {outside:?}",
            outside.len(),
            written.len()
        );
    }
}
