//! The negative log-likelihood of one categorical choice per row, as one op.
//!
//! The voice decoder's loss in candle's own ops is a bar on some classes, a log-softmax of
//! six element-wise steps, a gather and a mask, each a full-size temporary forward and
//! backward over every (phrase, step, voice, class). Fused, forward is one pass per row, and
//! it keeps softmax − one-hot for backward.

use super::{contiguous, filled, parallel_for, DisjointWrites};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// What each row of scores is scored against.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceTargets {
    /// The class chosen, per row.
    pub chosen: Vec<u32>,
    /// How much the row counts (0 for a choice that was given rather than made).
    pub weight: Vec<f32>,
    /// A class that was not open to the row (hold, for a silent voice), if any.
    pub barred: Vec<Option<u32>>,
    /// The loss is divided by this (the phrases in the batch).
    pub batch: usize,
}

/// Σ over rows of weight · −log softmax(scores)[chosen], barred classes left out, divided
/// by the batch: a scalar. `scores` is [.., classes] with one row per target.
pub fn choice_loss(scores: &Tensor, targets: ChoiceTargets) -> Result<Tensor> {
    let rows = scores.elem_count() / scores.dims().last().copied().unwrap_or(1).max(1);
    if targets.chosen.len() != rows || targets.weight.len() != rows || targets.barred.len() != rows {
        candle_core::bail!(
            "choice_loss: {rows} rows of scores but {} / {} / {} targets",
            targets.chosen.len(),
            targets.weight.len(),
            targets.barred.len()
        );
    }
    scores.contiguous()?.apply_op1(ChoiceLoss { targets, gradient: Mutex::new(None) })
}

struct ChoiceLoss {
    targets: ChoiceTargets,
    gradient: Mutex<Option<Vec<f32>>>,
}

/// Rows per partial sum: blocks are what the threads share out, and adding the blocks' sums
/// in block order keeps the total the same whatever the thread count.
const ROWS_PER_BLOCK: usize = 256;

/// One row's weighted −log softmax of its chosen class, and its gradient (softmax − one-hot,
/// weighted, over the batch) into `gradient`.
fn row_loss(row: usize, scores: &[f32], gradient: &mut [f32], t: &ChoiceTargets, batch: f32) -> f64 {
    let chosen = t.chosen[row] as usize;
    let open = |class: usize| t.barred[row] != Some(class as u32);
    let max = scores.iter().enumerate().filter(|&(c, _)| open(c)).map(|(_, &s)| s).fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for (class, (g, &s)) in gradient.iter_mut().zip(scores).enumerate() {
        *g = if open(class) { (s - max).exp() } else { 0.0 };
        sum += *g;
    }
    let weight = t.weight[row];
    let scale = weight / (sum * batch);
    gradient.iter_mut().for_each(|g| *g *= scale);
    gradient[chosen] -= weight / batch;
    f64::from(weight * (max + sum.ln() - scores[chosen]))
}

fn poisoned<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("choice_loss: a poisoned lock".into())
}

impl CustomOp1 for ChoiceLoss {
    fn name(&self) -> &'static str {
        "choice-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous(storage, layout, "choice_loss")?;
        let classes = layout.dims().last().copied().unwrap_or(1).max(1);
        let t = &self.targets;
        let batch = t.batch.max(1) as f32;
        let rows = scores.len() / classes;
        if let Some(row) = t.chosen.iter().position(|&chosen| chosen as usize >= classes) {
            candle_core::bail!("choice_loss: row {row} chose class {} of {classes}", t.chosen[row]);
        }
        let mut gradient = filled(scores.len(), 0.0);
        let blocks = rows.div_ceil(ROWS_PER_BLOCK);
        let mut partial_sums = vec![0f64; blocks];
        let (all_gradient, all_sums) = (DisjointWrites::new(&mut gradient), DisjointWrites::new(&mut partial_sums));
        parallel_for(blocks, ROWS_PER_BLOCK * classes * 8, |part| {
            let first_row = part.start * ROWS_PER_BLOCK;
            let end_row = (part.end * ROWS_PER_BLOCK).min(rows);
            // SAFETY: the parts of `parallel_for` are disjoint ranges of blocks.
            let (gradient, sums) =
                unsafe { (all_gradient.part(first_row * classes..end_row * classes), all_sums.part(part.clone())) };
            for (block, sum) in part.zip(sums) {
                let block_rows = block * ROWS_PER_BLOCK..((block + 1) * ROWS_PER_BLOCK).min(rows);
                *sum = block_rows
                    .map(|row| {
                        row_loss(
                            row,
                            &scores[row * classes..][..classes],
                            &mut gradient[(row - first_row) * classes..][..classes],
                            t,
                            batch,
                        )
                    })
                    .sum();
            }
        });
        let total: f64 = partial_sums.iter().sum();
        *self.gradient.lock().map_err(poisoned)? = Some(gradient);
        Ok((CpuStorage::F32(vec![(total / f64::from(batch)) as f32]), Shape::from(())))
    }

    fn bwd(&self, scores: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let scale = grad.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
        let kept = self
            .gradient
            .lock()
            .map_err(poisoned)?
            .clone()
            .ok_or_else(|| candle_core::Error::Msg("choice_loss: backward before forward".into()))?;
        Ok(Some(Tensor::from_vec(
            kept.into_iter().map(|g| g * scale).collect::<Vec<_>>(),
            scores.shape(),
            scores.device(),
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    /// The same loss in candle's own ops.
    fn composite(scores: &Tensor, t: &ChoiceTargets) -> Tensor {
        let (rows, classes) = scores.dims2().unwrap();
        let mut bar = vec![0f32; rows * classes];
        for (row, barred) in t.barred.iter().enumerate() {
            if let Some(class) = barred {
                bar[row * classes + *class as usize] = -1e4;
            }
        }
        let bar = Tensor::from_vec(bar, (rows, classes), &Device::Cpu).unwrap();
        let log_p = candle_nn::ops::log_softmax(&(scores + bar).unwrap(), D::Minus1).unwrap();
        let chosen = Tensor::from_vec(t.chosen.clone(), (rows, 1), &Device::Cpu).unwrap();
        let picked = log_p.gather(&chosen, D::Minus1).unwrap().squeeze(D::Minus1).unwrap();
        let weight = Tensor::from_vec(t.weight.clone(), rows, &Device::Cpu).unwrap();
        (picked.mul(&weight).unwrap().sum_all().unwrap().neg().unwrap() / t.batch as f64).unwrap()
    }

    #[test]
    fn loss_and_gradient_match_candles_log_softmax() {
        // The second size is shared between threads in blocks, the last one short.
        for (rows, classes) in [(12, 7), (3 * ROWS_PER_BLOCK + 41, 38)] {
            loss_and_gradient_match_at(rows, classes);
        }
    }

    fn loss_and_gradient_match_at(rows: usize, classes: usize) {
        let scores = Var::from_tensor(
            &(Tensor::from_vec(crate::model::latent::noise(3, rows * classes), (rows, classes), &Device::Cpu).unwrap()
                * 3.0)
                .unwrap(),
        )
        .unwrap();
        let targets = ChoiceTargets {
            chosen: (0..rows).map(|r| (r * 5 % classes) as u32).collect(),
            weight: (0..rows).map(|r| if r % 4 == 0 { 0.0 } else { 1.0 }).collect(),
            barred: (0..rows).map(|r| (r % 3 == 0 && r * 5 % classes != 1).then_some(1)).collect(),
            batch: 3,
        };
        let fused = choice_loss(&scores, targets.clone()).unwrap();
        let reference = composite(&scores, &targets);
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5 * b.abs(), "{a} vs {b}");
        assert_eq!(
            a,
            choice_loss(&scores, targets.clone()).unwrap().to_scalar::<f32>().unwrap(),
            "the same total every time"
        );
        let ga = (fused * 2.0)
            .unwrap()
            .backward()
            .unwrap()
            .get(&scores)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let gb = (reference * 2.0)
            .unwrap()
            .backward()
            .unwrap()
            .get(&scores)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
            assert!((x - y).abs() < 1e-6, "element {i}: {x} vs {y}");
        }
    }

    #[test]
    fn targets_that_do_not_fit_are_refused_in_words() {
        let scores = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let one_row = ChoiceTargets { chosen: vec![0], weight: vec![1.0], barred: vec![None], batch: 1 };
        assert!(choice_loss(&scores, one_row).unwrap_err().to_string().contains("2 rows of scores"));
        let out_of_range = ChoiceTargets { chosen: vec![0, 5], weight: vec![1.0; 2], barred: vec![None; 2], batch: 1 };
        assert!(choice_loss(&scores, out_of_range).unwrap_err().to_string().contains("chose class 5"));
    }
}
