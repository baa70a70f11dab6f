//! `--warm-start`: a new run that begins from a trained model's weights — to fine-tune it
//! on other music, or to add a part its architecture lacked (a new part's weights start as
//! a fresh run's would; the voice-leading table starts at zero, which changes nothing).
//! Everything else is a fresh run: its own optimiser, schedule and checkpoints.

use super::objective::Objective;
use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use dreamroll::model::card::StartedFrom;
use dreamroll::model::generator::{CARD_FILE, DECODER_FILE, ENCODER_FILE};
use dreamroll::model::ModelCard;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A model folder's card and its encoder's and decoder's weights, as the trainer wrote them.
pub fn read_trained_model(folder: &Path) -> anyhow::Result<(ModelCard, HashMap<String, Tensor>)> {
    let card_path = folder.join(CARD_FILE);
    let text = std::fs::read_to_string(&card_path).with_context(|| format!("reading {}", card_path.display()))?;
    let card = ModelCard::from_json(&text).with_context(|| format!("{} is not a model card", card_path.display()))?;
    let mut weights = HashMap::new();
    for file in [ENCODER_FILE, DECODER_FILE] {
        let path = folder.join(file);
        weights.extend(
            candle_core::safetensors::load(&path, &Device::Cpu)
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok((card, weights))
}

pub struct WarmStart {
    folder: PathBuf,
    card: ModelCard,
    weights: HashMap<String, Tensor>,
}

impl WarmStart {
    pub fn read(folder: &Path) -> anyhow::Result<WarmStart> {
        let (card, weights) = read_trained_model(folder).context("--warm-start")?;
        Ok(WarmStart { folder: folder.to_path_buf(), card, weights })
    }

    /// The data is read into the model's own pitch window, so that its rows mean the same.
    pub fn pitch_window(&self) -> (u8, u8) {
        (self.card.representation.lowest_pitch, self.card.representation.pitch_count)
    }

    /// Refuses, in words, a model that the new run's card cannot continue from.
    pub fn check_fits(&self, card: &ModelCard) -> anyhow::Result<StartedFrom> {
        let (old, new) = (&self.card, card);
        let from = self.folder.display();
        if old.preset != new.preset {
            bail!("--warm-start {from} is a {} model; this run trains {}", old.preset, new.preset);
        }
        let (a, b) = (&old.representation, &new.representation);
        if a.track_count() != b.track_count()
            || a.steps_per_bar() != b.steps_per_bar()
            || a.bars_per_phrase != b.bars_per_phrase
            || (a.lowest_pitch, a.pitch_count) != (b.lowest_pitch, b.pitch_count)
        {
            bail!(
                "--warm-start {from} writes {} parts, {} steps a bar, {}-bar phrases, pitches {}+{}; this run's data and options give {}, {}, {}, {}+{}",
                a.track_count(),
                a.steps_per_bar(),
                a.bars_per_phrase,
                a.lowest_pitch,
                a.pitch_count,
                b.track_count(),
                b.steps_per_bar(),
                b.bars_per_phrase,
                b.lowest_pitch,
                b.pitch_count
            );
        }
        // A model that was itself warm-started brings its own start's training along.
        let earlier = old.training.started_from.clone().unwrap_or_default();
        Ok(StartedFrom {
            model: old.name.clone(),
            steps: old.training.steps + earlier.steps,
            wall_seconds: old.training.wall_seconds + earlier.wall_seconds,
        })
    }

    /// Sets every weight the model has under the same name and shape; the others keep
    /// their fresh values. A weight of the model that the run has no place for, or of
    /// another shape, means another architecture: refused. Says what was taken.
    pub fn load_into(&self, objective: &mut dyn Objective) -> anyhow::Result<String> {
        // Copies: a weight cannot be set from its own tensor.
        let mut merged: HashMap<String, Tensor> = objective
            .weights("")
            .into_iter()
            .map(|(name, tensor)| Ok((name, tensor.copy()?)))
            .collect::<candle_core::Result<_>>()?;
        let mut fresh: Vec<&str> =
            merged.keys().filter(|name| !self.weights.contains_key(*name)).map(String::as_str).collect();
        fresh.sort_unstable();
        let fresh = fresh.join(", ");
        for (name, tensor) in &self.weights {
            let Some(current) = merged.get(name) else {
                bail!("--warm-start {}: its weight `{name}` has no place in this run's network (other sizes or preset options?)", self.folder.display());
            };
            if current.dims() != tensor.dims() {
                bail!(
                    "--warm-start {}: `{name}` is {:?} there and {:?} here (other sizes?)",
                    self.folder.display(),
                    tensor.dims(),
                    current.dims()
                );
            }
            merged.insert(name.clone(), tensor.to_device(current.device())?.to_dtype(current.dtype())?);
        }
        objective.load_weights(&merged)?;
        let started = if fresh.is_empty() { String::new() } else { format!("; new: {fresh}") };
        Ok(format!("warm start from {} ({} weights taken{started})", self.folder.display(), self.weights.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::small_voices_objective as objective_with;

    fn saved(card: &ModelCard, objective: &dyn Objective, folder: &Path) {
        std::fs::create_dir_all(folder).unwrap();
        std::fs::write(folder.join(CARD_FILE), card.to_json()).unwrap();
        for (file, prefix) in [(ENCODER_FILE, "encoder."), (DECODER_FILE, "decoder.")] {
            let part: HashMap<String, Tensor> = objective.weights(prefix).into_iter().collect();
            candle_core::safetensors::save(&part, folder.join(file)).unwrap();
        }
    }

    #[test]
    fn a_model_without_voice_leading_starts_a_run_with_it_and_keeps_its_weights() {
        let folder = tempfile::tempdir().unwrap();
        let (old_card, old) = objective_with(false, 0, 1);
        saved(&old_card, old.as_ref(), folder.path());
        let (new_card, mut new) = objective_with(true, 0, 2);
        let warm = WarmStart::read(folder.path()).unwrap();
        warm.check_fits(&new_card).unwrap();
        let said = warm.load_into(new.as_mut()).unwrap();
        assert!(said.contains("new: decoder.leading"), "{said}");
        let before: HashMap<String, Tensor> = old.weights("").into_iter().collect();
        for (name, tensor) in new.weights("") {
            let values = tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            match before.get(&name) {
                Some(old) => {
                    assert_eq!(values, old.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "{name} is taken")
                }
                None => assert!(values.iter().all(|&x| x == 0.0), "{name} starts at zero"),
            }
        }
    }

    #[test]
    fn another_architecture_or_window_is_refused_in_words() {
        let folder = tempfile::tempdir().unwrap();
        let (old_card, old) = objective_with(true, 0, 1);
        saved(&old_card, old.as_ref(), folder.path());
        let (_, mut without) = objective_with(false, 0, 2);
        let refusal = WarmStart::read(folder.path()).unwrap().load_into(without.as_mut()).unwrap_err().to_string();
        assert!(refusal.contains("`decoder.leading` has no place"), "{refusal}");
        let mut other_window = old_card.clone();
        other_window.representation.lowest_pitch += 2;
        let refusal = WarmStart::read(folder.path()).unwrap().check_fits(&other_window).unwrap_err().to_string();
        assert!(refusal.contains("pitches"), "{refusal}");
        let missing = WarmStart::read(&folder.path().join("nothing")).err().unwrap();
        assert!(format!("{missing:#}").contains("--warm-start: reading"), "{missing:#}");
    }
}
