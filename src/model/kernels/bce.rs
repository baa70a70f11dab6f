//! Binary cross-entropy from logits, summed, as one op.
//!
//! In candle's own ops the stable form relu(x) − x·t + log(1 + e^−|x|) is seven full-size
//! temporaries forward and as many backward, plus a gradient for the constant targets: on
//! the `vae` preset's rolls, over a third of a training step. Fused, forward is one pass and
//! backward is σ(x) − t.

use super::{contiguous, host};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// Σ over every cell of BCE(logits, targets), divided by `batch` (the first dimension), as
/// a scalar tensor.
pub fn bce_with_logits_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if logits.dims() != targets.dims() {
        candle_core::bail!("bce: logits {:?} and targets {:?} differ in shape", logits.dims(), targets.dims());
    }
    logits.contiguous()?.apply_op2(&targets.contiguous()?, BceSum::default())
}

/// One use of the loss. Forward already has e^−|x| for every cell, from which σ(x) is a
/// division, so it keeps the gradient (σ(x) − t) / batch for backward rather than have
/// backward exponentiate every cell again.
#[derive(Default)]
struct BceSum {
    gradient: Mutex<Option<Vec<f32>>>,
}

fn batch_of(dims: &[usize]) -> f64 {
    dims.first().copied().unwrap_or(1).max(1) as f64
}

impl CustomOp2 for BceSum {
    fn name(&self) -> &'static str {
        "bce-with-logits-sum"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (logits, targets) = (contiguous(s1, l1, "bce")?, contiguous(s2, l2, "bce")?);
        let batch = batch_of(l1.dims());
        let mut gradient = Vec::with_capacity(logits.len());
        // Summed in f64: a million cells in f32 would lose the small ones.
        let mut total = 0f64;
        for (&x, &t) in logits.iter().zip(targets) {
            let e = (-x.abs()).exp();
            total += f64::from(x.max(0.0) - x * t + e.ln_1p());
            let sigmoid = if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            gradient.push(((sigmoid - t) as f64 / batch) as f32);
        }
        *self.gradient.lock().map_err(|_| candle_core::Error::Msg("bce: a poisoned lock".into()))? = Some(gradient);
        Ok((CpuStorage::F32(vec![(total / batch) as f32]), Shape::from(())))
    }

    fn bwd(&self, logits: &Tensor, targets: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = grad.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        let d_logits = if logits.track_op() {
            let kept = self.gradient.lock().map_err(|_| candle_core::Error::Msg("bce: a poisoned lock".into()))?.clone();
            let per_cell = kept.ok_or_else(|| candle_core::Error::Msg("bce: backward before forward".into()))?;
            Some(Tensor::from_vec(per_cell.into_iter().map(|g| g * scale).collect::<Vec<_>>(), logits.shape(), logits.device())?)
        } else {
            None
        };
        let d_targets = if targets.track_op() {
            let scale = scale / batch_of(logits.dims()) as f32;
            Some(Tensor::from_vec(host(logits)?.iter().map(|&x| -scale * x).collect::<Vec<_>>(), targets.shape(), targets.device())?)
        } else {
            None
        };
        Ok((d_logits, d_targets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::vae::composite_bce_with_logits;
    use candle_core::{Device, Var};

    #[test]
    fn loss_and_gradient_match_the_composite_form_even_for_large_logits() {
        let mut logits: Vec<f32> = crate::model::latent::noise(1, 2 * 3 * 40).iter().map(|x| x * 4.0).collect();
        logits[0] = 120.0;
        logits[1] = -120.0;
        let targets: Vec<f32> = crate::model::latent::noise(2, logits.len()).iter().map(|&x| f32::from(u8::from(x > 0.3))).collect();
        let logits = Var::from_tensor(&Tensor::from_vec(logits, (2, 3, 40), &Device::Cpu).unwrap()).unwrap();
        let targets = Tensor::from_vec(targets, (2, 3, 40), &Device::Cpu).unwrap();
        let fused = bce_with_logits_sum(&logits, &targets).unwrap();
        let reference = composite_bce_with_logits(&logits, &targets).unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5 * b.abs(), "{a} vs {b}");
        let (ga, gb) = ((fused * 3.0).unwrap().backward().unwrap(), (reference * 3.0).unwrap().backward().unwrap());
        let (ga, gb) = (ga.get(&logits).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), gb.get(&logits).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap());
        for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
            assert!((x - y).abs() < 1e-6, "cell {i}: {x} vs {y}");
        }
    }

    #[test]
    fn constant_targets_get_no_gradient_and_shapes_must_agree() {
        let logits = Var::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let targets = Tensor::ones((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let grads = bce_with_logits_sum(&logits, &targets).unwrap().backward().unwrap();
        assert!(grads.get(&targets).is_none() && grads.get(&logits).is_some());
        let error = bce_with_logits_sum(&logits, &Tensor::ones((4, 2), candle_core::DType::F32, &Device::Cpu).unwrap()).unwrap_err().to_string();
        assert!(error.contains("differ in shape"), "{error}");
    }
}
