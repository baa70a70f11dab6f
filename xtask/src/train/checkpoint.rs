//! Checkpoints: one safetensors file holding weights, optimiser moments, the epoch's batch
//! order and (as metadata) the trainer's state and configuration, written to a temporary
//! file and renamed into place, so that a crash at any moment leaves the previous checkpoint
//! whole.

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The weights at the checkpoint with the lowest validation loss so far.
pub const BEST_WEIGHTS_FILE: &str = "best.safetensors";

/// Tensors to bytes for safetensors (f32 and u32 are all the trainer stores).
fn raw(tensor: &Tensor) -> anyhow::Result<(Dtype, Vec<usize>, Vec<u8>)> {
    let shape = tensor.dims().to_vec();
    let flat = tensor.flatten_all()?;
    Ok(match tensor.dtype() {
        DType::F32 => (Dtype::F32, shape, flat.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::U32 => (Dtype::U32, shape, flat.to_vec1::<u32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        other => bail!("cannot checkpoint a {other:?} tensor"),
    })
}

/// A tensor as safetensors stores it: its type, shape and little-endian bytes.
type RawTensor = (Dtype, Vec<usize>, Vec<u8>);

/// Writes `tensors` with `metadata` to `path` atomically: temp file, fsync, rename, fsync of
/// the folder.
pub fn write_atomically(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let raws: Vec<(String, RawTensor)> =
        tensors.iter().map(|(name, t)| Ok((name.clone(), raw(t)?))).collect::<anyhow::Result<_>>()?;
    let views: Vec<(String, TensorView)> = raws
        .iter()
        .map(|(name, (dtype, shape, bytes))| Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?)))
        .collect::<anyhow::Result<_>>()?;
    let bytes = safetensors::serialize(views, Some(metadata))?;
    write_file_atomically(path, &bytes)
}

pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let temp = folder.join(format!(".{}.partial", path.file_name().unwrap_or_default().to_string_lossy()));
    let mut file = std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", temp.display()))?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path).with_context(|| format!("renaming {} to {}", temp.display(), path.display()))?;
    if let Ok(dir) = std::fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

pub struct Loaded {
    pub tensors: HashMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

pub fn read(path: &Path, device: &Device) -> anyhow::Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{} is not a checkpoint", path.display()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .with_context(|| format!("reading tensors of {}", path.display()))?;
    Ok(Loaded { tensors, metadata })
}
