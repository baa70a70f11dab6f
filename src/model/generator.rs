//! A trained decoder ready to make phrases: its card, its network, its weights — loaded with
//! every check, since a bad model file must cost the user an error message, not a crash.

use super::card::{CardError, ModelCard, Preset};
use super::learned_phrases::{LearnedPhrases, LEARNED_PHRASES_FILE};
use super::rolls::{logits_to_roll, DecodeOptions};
use super::midinet::{MidinetGenerator, CHORD_SIZE};
use super::musegan::MuseganGenerator;
use super::vae::{Decoder, Encoder, Shape};
use super::voices::network::{VoiceNetwork, VoiceShape};
use super::completion::phrase_stream;
use super::voices::sampler::Sampling;
use super::voices::{VoiceDecoder, DENSITY_LOGITS as VOICE_DENSITY_LOGITS};
use crate::files::read_limited;
use crate::roll::Roll;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file names of a model folder.
pub const CARD_FILE: &str = "model.json";
pub const DECODER_FILE: &str = "decoder.safetensors";
pub const ENCODER_FILE: &str = "encoder.safetensors";

/// Largest weights file accepted; far above any model this product trains, far below what
/// would hurt a host to read.
pub const MAX_WEIGHTS_BYTES: u64 = 256 << 20;

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
            (Preset::Voices, _) => {
                let shape = VoiceShape::of(&card).ok_or_else(|| ModelError::Mismatch("a voices card without voice sizes".into()))?;
                Network::Voices(Box::new(VoiceDecoder::new(shape, vb).map_err(mismatch)?))
            }
            (Preset::Musegan, Some(mode)) => Network::Musegan(MuseganGenerator::new(shape, mode, vb).map_err(mismatch)?),
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
        self.encoder = Some(Encoder::new(Shape::of(&self.card), vb.pp("encoder")).map_err(|e| ModelError::Mismatch(e.to_string()))?);
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
        let card = read_limited(&dir.join(CARD_FILE), 1 << 20)?;
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
    fn with_optional_file(self, dir: &Path, file: &str, take: fn(Generator, &[u8]) -> Result<Generator, ModelError>) -> Result<Generator, ModelError> {
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
            Network::Voices(_) => Err(candle_core::Error::Msg("the voices preset has no per-cell logits; it samples choice by choice".into())),
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

    /// One phrase's logits per latent, as host data laid out as [`logits_to_roll`] reads them.
    pub fn phrase_logits(&self, latents: &[Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
        let flat: Vec<f32> = latents.iter().flat_map(|z| z.iter().copied()).collect();
        let z = Tensor::from_vec(flat, (latents.len(), self.card.latent_size), &self.device)?;
        let logits = self.logits(&z)?.to_dtype(DType::F32)?;
        let per_phrase = logits.elem_count() / latents.len().max(1);
        Ok(logits.flatten_all()?.to_vec1::<f32>()?.chunks(per_phrase).map(<[f32]>::to_vec).collect())
    }

    /// One phrase per latent.
    pub fn generate(&self, latents: &[Vec<f32>], options: &DecodeOptions, rng: &mut impl Rng) -> candle_core::Result<Vec<Roll>> {
        let representation = Arc::new(self.card.representation.clone());
        if let Network::Voices(decoder) = &self.network {
            return decoder.phrases(&representation, latents, voice_sampling(options), options.velocity, &self.learned, rng);
        }
        Ok(self.phrase_logits(latents)?.iter().map(|phrase| logits_to_roll(&representation, phrase, options, rng)).collect())
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
fn finite_tensors(weights: &[u8]) -> Result<std::collections::HashMap<String, Tensor>, ModelError> {
    let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu).map_err(|e| ModelError::NotSafetensors(e.to_string()))?;
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
}

impl RenderRequest {
    pub fn steering(&self) -> super::latent::Knobs<'_> {
        super::latent::Knobs { macros: &self.knobs, named: &self.named }
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
        let bars_per_phrase = usize::from(self.card.representation.bars_per_phrase);
        let phrases = request.bars.max(1).div_ceil(bars_per_phrase);
        let latents = super::latent::phrase_latents(&self.card, request.seed, request.steering(), request.variation, phrases);
        let joined = self.decode_latents(&latents, request)?;
        Ok(joined.slice(0..request.bars.max(1) * self.card.representation.steps_per_bar()))
    }

    /// One phrase per latent, decoded as the request says and joined.
    pub(crate) fn decode_latents(&self, latents: &[Vec<f32>], request: &RenderRequest) -> candle_core::Result<Roll> {
        let options = self.request_options(request);
        let phrases = match &self.network {
            // Each phrase draws from a stream named by the seed and its own latent, so that the
            // same latent plays the same phrase: with no variation the loop repeats exactly, at
            // any temperature. Phrases start from silence, as the decoder learnt them.
            Network::Voices(decoder) => {
                let representation = Arc::new(self.card.representation.clone());
                let sampling = voice_sampling(&options);
                let mut phrases = Vec::with_capacity(latents.len());
                for z in latents {
                    phrases.extend(decoder.phrases(&representation, std::slice::from_ref(z), sampling, options.velocity, &self.learned, &mut phrase_stream(request.seed, z))?);
                }
                phrases
            }
            _ => self.generate(latents, &options, &mut rand_chacha::ChaCha8Rng::seed_from_u64(request.seed))?,
        };
        Ok(Roll::concat(&phrases).expect("at least one phrase"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::card::test_card;
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

    fn request(seed: u64) -> RenderRequest {
        RenderRequest { bars: 5, seed, knobs: vec![], variation: 0.5, temperature: Some(0.0), density: 0.0, named: Vec::new() }
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
        let tensors: HashMap<String, Tensor> = varmap.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        bytes(&tensors)
    }

    fn voices_generator(weights: &[u8]) -> Generator {
        Generator::from_bytes(&crate::model::card::test_voice_card().to_json(), weights).unwrap()
    }

    #[test]
    fn a_voices_model_renders_one_note_at_a_time_per_voice_and_repeatably() {
        let generator = voices_generator(&voices_weights());
        let sampled = RenderRequest { temperature: Some(1.0), ..request(6) };
        let roll = generator.render(&sampled).unwrap();
        assert_eq!(roll.steps(), 5 * 16);
        assert_eq!(roll, generator.render(&sampled).unwrap(), "the same request, the same notes");
        for track in 0..roll.track_count() {
            assert!((0..roll.steps()).all(|step| roll.sounding_at(track, step).iter().filter(|&&s| s).count() <= 1), "track {track} is one voice");
        }
        assert!(generator.logits(&Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap()).is_err(), "no per-cell logits to misread");
        let strict = generator.render(&RenderRequest { variation: 0.0, bars: 6, ..sampled.clone() }).unwrap();
        assert_eq!(strict.slice(0..32), strict.slice(32..64), "with no variation the loop repeats, even when sampling");
        let busy = generator.render(&RenderRequest { density: 1.0, ..sampled.clone() }).unwrap().notes().len();
        let sparse = generator.render(&RenderRequest { density: -1.0, ..sampled }).unwrap().notes().len();
        assert!(sparse < busy, "density favours new notes: {sparse} < {busy}");
    }

    #[test]
    fn a_phrase_equal_to_a_learned_one_is_drawn_again_and_the_seed_still_decides() {
        let weights = voices_weights();
        let generator = voices_generator(&weights);
        let sampled = RenderRequest { temperature: Some(1.0), bars: 6, ..request(8) };
        let free = generator.render(&sampled).unwrap();
        let generator = generator.with_learned_phrases(LearnedPhrases::of(&free.phrases(2, 2)));
        let guarded = generator.render(&sampled).unwrap();
        assert!(guarded.phrases(2, 2).iter().all(|phrase| !generator.learned_phrases().contains(phrase)), "no learned phrase is handed out");
        assert_eq!(guarded, generator.render(&sampled).unwrap(), "the same request, the same notes");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CARD_FILE), generator.card().to_json()).unwrap();
        std::fs::write(dir.path().join(DECODER_FILE), &weights).unwrap();
        std::fs::write(dir.path().join(LEARNED_PHRASES_FILE), generator.learned_phrases().to_bytes()).unwrap();
        assert_eq!(Generator::from_dir(dir.path()).unwrap().render(&sampled).unwrap(), guarded, "the folder's file guards the same");
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
