//! A residual layer of a dilated convolution of width 3 over time, as one op: the voice
//! decoder's context reader.
//!
//! In candle's own ops a layer is two shifted copies of its input (each a block of zeros,
//! a narrow and a concatenation), the three side by side, two reshapes around the product
//! (with its relu) and the residual add: eleven nodes, each a full-size zero-filled
//! gradient and an add in backward. Here the windows are built inside the op, and backward scatters their
//! gradient back to the steps it came from.

use super::{column_sums, contiguous, cpu_values, filled, matmul, parallel_for, DisjointWrites, Strided};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// `x` + relu(`bias` + [x(t − d), x(t), x(t + d)] · `weight`ᵀ) for `x` [items, steps,
/// channels], `weight` [channels, 3 × channels], with zeros for the steps before the first
/// and after the last of each item: a dilated convolution of width 3 (dilation d =
/// `dilation`) with a residual connection.
pub fn dilated_residual(x: &Tensor, weight: &Tensor, bias: &Tensor, dilation: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        DilatedResidual { dilation, relu_out: Mutex::new(None) },
    )
}

struct DilatedResidual {
    dilation: usize,
    /// The relu's output, kept for backward's mask.
    relu_out: Mutex<Option<Vec<f32>>>,
}

#[derive(Clone, Copy)]
struct Sizes {
    items: usize,
    steps: usize,
    channels: usize,
}

impl Sizes {
    fn of(x: &[usize], weight: &[usize], bias: &[usize]) -> Result<Sizes> {
        match (x, weight, bias) {
            ([items, steps, channels], [out, inputs], [out_b]) if out == channels && *inputs == 3 * channels && out_b == channels => Ok(Sizes { items: *items, steps: *steps, channels: *channels }),
            _ => candle_core::bail!("dilated_residual: shapes {x:?}, {weight:?}, {bias:?} do not make a layer (want [items, steps, C], [C, 3C], [C])"),
        }
    }

    fn cells(&self) -> usize {
        self.items * self.steps
    }
}

/// Each step's window [x(t − d), x(t), x(t + d)], [cells, 3C], zeros past an item's ends.
fn windows(x: &[f32], sizes: Sizes, dilation: usize) -> Vec<f32> {
    let Sizes { steps, channels: c, .. } = sizes;
    let mut windows = filled(sizes.cells() * 3 * c, 0.0);
    let all_windows = DisjointWrites::new(&mut windows);
    parallel_for(sizes.cells(), 3 * c, |part| {
        // SAFETY: the parts of `parallel_for` are disjoint ranges of cells.
        let windows = unsafe { all_windows.part(part.start * 3 * c..part.end * 3 * c) };
        for (cell, window) in part.zip(windows.chunks_exact_mut(3 * c)) {
            let step = cell % steps;
            if step >= dilation {
                window[..c].copy_from_slice(&x[(cell - dilation) * c..][..c]);
            }
            window[c..2 * c].copy_from_slice(&x[cell * c..][..c]);
            if step + dilation < steps {
                window[2 * c..].copy_from_slice(&x[(cell + dilation) * c..][..c]);
            }
        }
    });
    windows
}

fn poisoned<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("dilated_residual: a poisoned lock".into())
}

impl CustomOp3 for DilatedResidual {
    fn name(&self) -> &'static str {
        "dilated-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let sizes = Sizes::of(l1.dims(), l2.dims(), l3.dims())?;
        let op = "dilated_residual";
        let (x, weight, bias) = (contiguous(s1, l1, op)?, contiguous(s2, l2, op)?, contiguous(s3, l3, op)?);
        let (cells, c) = (sizes.cells(), sizes.channels);
        let windows = windows(x, sizes, self.dilation);
        let mut relu_out = bias.repeat(cells);
        matmul(
            &mut relu_out,
            Strided::row_major(cells, c),
            &windows,
            Strided::row_major(cells, 3 * c),
            weight,
            Strided::row_major(c, 3 * c).t(),
            true,
        );
        relu_out.iter_mut().for_each(|y| *y = y.max(0.0));
        let out = x.iter().zip(&relu_out).map(|(x, y)| x + y).collect();
        *self.relu_out.lock().map_err(poisoned)? = Some(relu_out);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let sizes = Sizes::of(x.dims(), weight.dims(), bias.dims())?;
        let op = "dilated_residual";
        let (cells, c, steps, d) = (sizes.cells(), sizes.channels, sizes.steps, self.dilation);
        let grad = grad.contiguous()?;
        let (grad_storage, grad_layout) = grad.storage_and_layout();
        let g = cpu_values(&grad_storage, grad_layout, op)?;
        let guard = self.relu_out.lock().map_err(poisoned)?;
        let relu_out = guard
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("dilated_residual: backward before forward".into()))?;
        // relu passes the gradient where its output is positive.
        let g_relu: Vec<f32> = g.iter().zip(relu_out).map(|(&g, &y)| if y > 0.0 { g } else { 0.0 }).collect();
        let device = x.device();
        let d_x = if x.track_op() {
            let weight = weight.contiguous()?;
            let (storage, layout) = weight.storage_and_layout();
            let mut d_windows = filled(cells * 3 * c, 0.0);
            matmul(
                &mut d_windows,
                Strided::row_major(cells, 3 * c),
                &g_relu,
                Strided::row_major(cells, c),
                cpu_values(&storage, layout, op)?,
                Strided::row_major(c, 3 * c),
                false,
            );
            // The residual's gradient, and each window's part back at the step it was read from.
            let mut d_x = g.to_vec();
            let all_d_x = DisjointWrites::new(&mut d_x);
            parallel_for(cells, 3 * c, |part| {
                // SAFETY: the parts of `parallel_for` are disjoint ranges of cells.
                let d_x = unsafe { all_d_x.part(part.start * c..part.end * c) };
                for (cell, d_cell) in part.zip(d_x.chunks_exact_mut(c)) {
                    let step = cell % steps;
                    let mut add = |from: usize, part: usize| {
                        d_cell.iter_mut().zip(&d_windows[from * 3 * c + part * c..][..c]).for_each(|(d, w)| *d += w)
                    };
                    if step + d < steps {
                        add(cell + d, 0);
                    }
                    add(cell, 1);
                    if step >= d {
                        add(cell - d, 2);
                    }
                }
            });
            Some(Tensor::from_vec(d_x, x.shape(), device)?)
        } else {
            None
        };
        let d_weight = if weight.track_op() {
            let x = x.contiguous()?;
            let (storage, layout) = x.storage_and_layout();
            let windows = windows(cpu_values(&storage, layout, op)?, sizes, d);
            let mut d_weight = vec![0f32; c * 3 * c];
            matmul(
                &mut d_weight,
                Strided::row_major(c, 3 * c),
                &g_relu,
                Strided::row_major(cells, c).t(),
                &windows,
                Strided::row_major(cells, 3 * c),
                false,
            );
            Some(Tensor::from_vec(d_weight, (c, 3 * c), device)?)
        } else {
            None
        };
        let d_bias = if bias.track_op() { Some(Tensor::from_vec(column_sums(&g_relu, c), c, device)?) } else { None };
        Ok((d_x, d_weight, d_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::voices::network::composite_dilated_residual;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64, scale: f64) -> Var {
        super::super::random_var(shape, seed, scale)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// A loss that weighs every output differently, so that no gradient can hide.
    fn loss(y: &Tensor) -> Tensor {
        let weights = Tensor::arange(0f32, y.elem_count() as f32, &Device::Cpu).unwrap().reshape(y.shape()).unwrap();
        y.mul(&(weights * 0.37).unwrap().sin().unwrap()).unwrap().sum_all().unwrap()
    }

    #[test]
    fn the_layer_and_every_gradient_match_candles_own_ops() {
        // Dilations shorter than, equal to and longer than the steps; the last size is large
        // enough for the products to be shared between threads.
        for (items, steps, c, dilation) in [(2, 6, 3, 1), (3, 5, 4, 2), (2, 3, 2, 4), (40, 32, 24, 8)] {
            let (x, weight, bias) =
                (random(&[items, steps, c], 1, 1.0), random(&[c, 3 * c], 2, 0.5), random(&[c], 3, 0.5));
            let fused = dilated_residual(&x, &weight, &bias, dilation).unwrap();
            let reference = composite_dilated_residual(&x, &weight, &bias, dilation).unwrap();
            assert_eq!(values(&fused), values(&reference), "the same arithmetic, so the same values");
            assert!(
                values(&fused).iter().zip(values(x.as_tensor())).any(|(y, x)| *y == x),
                "the test reaches relu's flat side"
            );
            let (fused_grads, reference_grads) =
                (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
            for (name, var) in [("x", &x), ("weight", &weight), ("bias", &bias)] {
                let (a, b) = (values(fused_grads.get(var).unwrap()), values(reference_grads.get(var).unwrap()));
                assert!(
                    a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-4 * (1.0 + b.abs())),
                    "{items}x{steps}x{c} by {dilation}: {name}'s gradients differ"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (x, weight, bias) = (random(&[2, 4, 2], 4, 1.0), random(&[2, 6], 5, 0.7), random(&[2], 6, 0.3));
        super::super::assert_gradients_match_finite_differences(
            &[&x, &weight, &bias],
            |x| loss(&dilated_residual(&x[0], &x[1], &x[2], 1).unwrap()),
            1e-3,
            1,
            5e-3,
        );
    }

    #[test]
    fn constants_get_no_gradient_and_bad_shapes_are_refused_in_words() {
        let (x, weight, bias) =
            (random(&[1, 3, 2], 1, 1.0).as_tensor().detach(), random(&[2, 6], 2, 1.0), random(&[2], 3, 1.0));
        let grads = dilated_residual(&x, &weight, &bias, 1).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none() && grads.get(&weight).is_some() && grads.get(&bias).is_some());
        let error = dilated_residual(&x, &random(&[2, 4], 4, 1.0), &bias, 1).unwrap_err().to_string();
        assert!(error.contains("do not make a layer"), "{error}");
    }
}
