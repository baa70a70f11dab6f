//! Binary cross-entropy from logits, summed, as one op.
//!
//! In candle's own ops the stable form relu(x) − x·t + log(1 + e^−|x|) is seven full-size
//! temporaries forward and as many backward, plus a gradient for the constant targets: on
//! the `vae` preset's rolls, over a third of a training step. Fused, forward is one pass and
//! backward is σ(x) − t. Forward shares its blocks of cells between candle's worker threads,
//! with e^x and ln(1 + x) in arithmetic the compiler vectorises (libm's are calls per cell).

use super::{contiguous, exp, filled, host, ln_1p_unit, parallel_for, widest_simd, DisjointWrites};
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

/// Beyond this |x|, e^−|x| (< 5e-18) is held there. It is then still below anything it is
/// added to (1 in σ's denominator, the cell's other terms, the sum's last bit), and no
/// product in ln(1 + e) underflows: below e ≈ 2e-19 its square would be a subnormal number,
/// which this CPU computes some hundred times slower, and a trained VAE's empty cells
/// have logits far below −44 (their loss took a third of a training step).
const TAIL_LIMIT: f32 = 40.0;

/// Cells per partial sum: blocks are what the threads share out, and adding the blocks'
/// sums in block order keeps the total the same whatever the thread count.
const BLOCK: usize = 4096;

/// Summed in f64, since a million cells in f32 would lose the small ones; in four lanes,
/// since one chain of dependent additions runs at a quarter of the speed.
#[inline(always)]
fn sum_in_f64(values: &[f32]) -> f64 {
    let mut lanes = [0f64; 4];
    let chunks = values.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

widest_simd! {
/// One block's loss, and each cell's gradient (times `per_cell`) into `gradient`.
fn block_loss(logits: &[f32], targets: &[f32], gradient: &mut [f32], terms: &mut [f32], per_cell: f32) -> f64 {
    // No sum inside this loop, so that it vectorises.
    for (((&x, &t), g), term) in logits.iter().zip(targets).zip(gradient.iter_mut()).zip(terms.iter_mut()) {
        let e = exp((-x.abs()).max(-TAIL_LIMIT));
        *term = x.max(0.0) - x * t + ln_1p_unit(e);
        let sigmoid = if x >= 0.0 { 1.0 } else { e } / (1.0 + e);
        *g = (sigmoid - t) * per_cell;
    }
    sum_in_f64(&terms[..logits.len()])
}
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
        let per_cell = (1.0 / batch) as f32;
        let mut gradient = filled(logits.len(), 0.0);
        let blocks = logits.len().div_ceil(BLOCK);
        let mut partial_sums = vec![0f64; blocks];
        let (all_gradient, all_sums) = (DisjointWrites::new(&mut gradient), DisjointWrites::new(&mut partial_sums));
        parallel_for(blocks, BLOCK * 20, |part| {
            let cells = part.start * BLOCK..(part.end * BLOCK).min(logits.len());
            // SAFETY: the parts of `parallel_for` are disjoint ranges of blocks.
            let (gradient, sums) = unsafe { (all_gradient.part(cells.clone()), all_sums.part(part)) };
            let (x_blocks, t_blocks) = (logits[cells.clone()].chunks(BLOCK), targets[cells].chunks(BLOCK));
            let mut terms = vec![0f32; BLOCK];
            for (((x, t), g), sum) in x_blocks.zip(t_blocks).zip(gradient.chunks_mut(BLOCK)).zip(sums) {
                *sum = block_loss(x, t, g, &mut terms, per_cell);
            }
        });
        let total: f64 = partial_sums.iter().sum();
        *self.gradient.lock().map_err(|_| candle_core::Error::Msg("bce: a poisoned lock".into()))? = Some(gradient);
        Ok((CpuStorage::F32(vec![(total / batch) as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = grad.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        let d_logits = if logits.track_op() {
            let kept =
                self.gradient.lock().map_err(|_| candle_core::Error::Msg("bce: a poisoned lock".into()))?.clone();
            let per_cell = kept.ok_or_else(|| candle_core::Error::Msg("bce: backward before forward".into()))?;
            Some(Tensor::from_vec(
                per_cell.into_iter().map(|g| g * scale).collect::<Vec<_>>(),
                logits.shape(),
                logits.device(),
            )?)
        } else {
            None
        };
        let d_targets = if targets.track_op() {
            let scale = scale / batch_of(logits.dims()) as f32;
            Some(Tensor::from_vec(
                host(logits)?.iter().map(|&x| -scale * x).collect::<Vec<_>>(),
                targets.shape(),
                targets.device(),
            )?)
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
        let targets: Vec<f32> =
            crate::model::latent::noise(2, logits.len()).iter().map(|&x| f32::from(u8::from(x > 0.3))).collect();
        let logits = Var::from_tensor(&Tensor::from_vec(logits, (2, 3, 40), &Device::Cpu).unwrap()).unwrap();
        let targets = Tensor::from_vec(targets, (2, 3, 40), &Device::Cpu).unwrap();
        let fused = bce_with_logits_sum(&logits, &targets).unwrap();
        let reference = composite_bce_with_logits(&logits, &targets).unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5 * b.abs(), "{a} vs {b}");
        let (ga, gb) = ((fused * 3.0).unwrap().backward().unwrap(), (reference * 3.0).unwrap().backward().unwrap());
        let (ga, gb) = (
            ga.get(&logits).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            gb.get(&logits).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
            assert!((x - y).abs() < 1e-6, "cell {i}: {x} vs {y}");
        }
    }

    #[test]
    fn blocks_shared_between_threads_sum_to_the_composite_loss() {
        let cells = 2 * 3 * 20_001;
        let logits: Vec<f32> = crate::model::latent::noise(3, cells).iter().map(|x| x * 6.0).collect();
        let targets: Vec<f32> =
            crate::model::latent::noise(4, cells).iter().map(|&x| f32::from(u8::from(x > 0.0))).collect();
        let logits = Var::from_tensor(&Tensor::from_vec(logits, (2, 3, 20_001), &Device::Cpu).unwrap()).unwrap();
        let targets = Tensor::from_vec(targets, (2, 3, 20_001), &Device::Cpu).unwrap();
        let fused = bce_with_logits_sum(&logits, &targets).unwrap().to_scalar::<f32>().unwrap();
        let reference = composite_bce_with_logits(&logits, &targets).unwrap().to_scalar::<f32>().unwrap();
        assert!((fused - reference).abs() < 1e-5 * reference.abs(), "{fused} vs {reference}");
        let again = bce_with_logits_sum(&logits, &targets).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(fused, again, "the same total every time");
    }

    #[test]
    fn constant_targets_get_no_gradient_and_shapes_must_agree() {
        let logits = Var::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let targets = Tensor::ones((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let grads = bce_with_logits_sum(&logits, &targets).unwrap().backward().unwrap();
        assert!(grads.get(&targets).is_none() && grads.get(&logits).is_some());
        let error = bce_with_logits_sum(&logits, &Tensor::ones((4, 2), candle_core::DType::F32, &Device::Cpu).unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.contains("differ in shape"), "{error}");
    }
}
