//! A GRU's recurrence over a whole sequence as one op.
//!
//! Written with candle's own ops, a step is a dozen small tensors, and backward through
//! time pads each step's slice of the inputs back to the size of the whole sequence before
//! adding it up: most of a training step went to allocating and adding zeros. Here forward
//! runs the steps in place, and backward recomputes the gates from the states it returned
//! (one matrix product for every step at once) and walks back through time with one small
//! product per step. PyTorch's gate order and formulas (reset, update, candidate).

use super::{contiguous, cpu_values, exp, filled, host, matmul, parallel_for, widest_simd, DisjointWrites, Strided};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// The recurrence of a GRU layer for `rows` sequences side by side.
///
/// `gates_in` [rows × steps, 3H] is the input's projection (W_ih x + b_ih, for every step at
/// once outside; a row's steps consecutive), `initial` [rows, H] the state before the first
/// step, and `recurrent` [3H, H + 1] the recurrent weights W_hh with their bias b_hh as the
/// last column (one tensor, because a custom op takes at most three). Returns the states
/// after each step, [rows × steps, H]: flat, as the layers before and after read them, since
/// a reshape is a zero-filled copy of its gradient in candle's backward.
pub fn gru_sequence(gates_in: &Tensor, initial: &Tensor, recurrent: &Tensor) -> Result<Tensor> {
    gates_in.contiguous()?.apply_op3(&initial.contiguous()?, &recurrent.contiguous()?, GruSequence::default())
}

/// One use of the recurrence. Forward keeps every step's gates, so that backward need not
/// recompute them (a matrix product and a tanh per unit and step).
#[derive(Default)]
struct GruSequence {
    kept: Mutex<Option<Vec<f32>>>,
}

/// Per (row, step), what forward keeps: reset, update, candidate and the state's candidate
/// projection (W_hn h + b_hn), H values each.
const KEPT_PER_UNIT: usize = 4;

/// Element operations per unit and step, forward or backward (three exponentials): what
/// [`parallel_for`] weighs against the cost of sharing a step's rows between threads.
const UNIT_COST: usize = 40;

fn poisoned<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("gru_sequence: a poisoned lock".into())
}

/// The dimensions every part of the op agrees on.
#[derive(Clone, Copy)]
struct Sizes {
    rows: usize,
    steps: usize,
    hidden: usize,
}

impl Sizes {
    fn of(gates_in: &[usize], initial: &[usize], recurrent: &[usize]) -> Result<Sizes> {
        let wrong = || -> Result<Sizes> {
            candle_core::bail!("gru_sequence: shapes {gates_in:?}, {initial:?}, {recurrent:?} do not make one GRU (want [rows × steps, 3H], [rows, H], [3H, H + 1])")
        };
        let ([cells, gates], [rows, hidden]) = (gates_in, initial) else { return wrong() };
        if *rows == 0 || cells % rows != 0 || *gates != 3 * hidden || recurrent != [3 * hidden, hidden + 1] {
            return wrong();
        }
        Ok(Sizes { rows: *rows, steps: cells / rows, hidden: *hidden })
    }

    /// W_hh^T [H, 3H] as a view of `recurrent`.
    fn weight_transposed(&self) -> Strided {
        self.weight().t()
    }

    /// W_hh [3H, H] as a view of `recurrent`.
    fn weight(&self) -> Strided {
        Strided { rows: 3 * self.hidden, cols: self.hidden, row_stride: self.hidden + 1, col_stride: 1 }
    }

    fn bias(&self, recurrent: &[f32], gate: usize) -> f32 {
        recurrent[gate * (self.hidden + 1) + self.hidden]
    }
}

/// tanh through `exp`: glibc's `tanhf` (by way of `expm1f`) took a tenth of a training step.
/// Below |x| = 1/16 a series keeps the relative error small where 1 − 2/(e^2x + 1) would
/// cancel; elsewhere the error is a few parts in 10⁷. Both are computed and one chosen, so
/// that a loop of them vectorises.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    let near_zero = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0)));
    let elsewhere = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.0625 {
        near_zero
    } else {
        elsewhere
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

widest_simd! {
/// One row's step of the recurrence: from the input's and the state's projections (each
/// [reset | update | candidate], H wide; the state's without its bias `bias_state`) and the
/// state before, the state after, keeping reset, update, candidate and the state's
/// candidate projection for backward.
fn step_row(gates_in: &[f32], gates_state: &[f32], bias_state: &[f32], before: &[f32], after: &mut [f32], keep: &mut [f32]) {
    let h = after.len();
    // Every slice cut to exactly H, so that the loop has no bounds checks and vectorises.
    fn thirds(x: &[f32], h: usize) -> (&[f32], &[f32], &[f32]) {
        (&x[..h], &x[h..2 * h], &x[2 * h..3 * h])
    }
    let ((gi_r, gi_u, gi_n), (gs_r, gs_u, gs_n), (bs_r, bs_u, bs_n)) = (thirds(gates_in, h), thirds(gates_state, h), thirds(bias_state, h));
    let (before, keep) = (&before[..h], &mut keep[..KEPT_PER_UNIT * h]);
    let (kept_reset, rest) = keep.split_at_mut(h);
    let (kept_update, rest) = rest.split_at_mut(h);
    let (kept_candidate, kept_state_candidate) = rest.split_at_mut(h);
    for i in 0..h {
        let reset = sigmoid(gi_r[i] + (gs_r[i] + bs_r[i]));
        let update = sigmoid(gi_u[i] + (gs_u[i] + bs_u[i]));
        let state_candidate = gs_n[i] + bs_n[i];
        let candidate = tanh(gi_n[i] + reset * state_candidate);
        (kept_reset[i], kept_update[i], kept_candidate[i], kept_state_candidate[i]) = (reset, update, candidate, state_candidate);
        after[i] = candidate + update * (before[i] - candidate);
    }
}
}

widest_simd! {
/// One row's step back through the recurrence: from the gradient reaching the state after
/// the step (`grad` from outside, `d_state` from the steps after; on return, the gradient
/// reaching the state before), what forward kept and the state before, the gradients of the
/// input's and the state's projections.
fn step_row_backward(grad: &[f32], keep: &[f32], before: &[f32], d_state: &mut [f32], d_gates_in: &mut [f32], d_gates_state: &mut [f32]) {
    let h = d_state.len();
    // Every slice cut to exactly H, so that the loop has no bounds checks and vectorises.
    let (grad, before) = (&grad[..h], &before[..h]);
    let (reset, update, candidate, state_candidate) = (&keep[..h], &keep[h..2 * h], &keep[2 * h..3 * h], &keep[3 * h..4 * h]);
    let (dgi_r, rest) = d_gates_in[..3 * h].split_at_mut(h);
    let (dgi_u, dgi_n) = rest.split_at_mut(h);
    let (dgs_r, rest) = d_gates_state[..3 * h].split_at_mut(h);
    let (dgs_u, dgs_n) = rest.split_at_mut(h);
    for i in 0..h {
        let d_h = grad[i] + d_state[i];
        let d_candidate = d_h * (1.0 - update[i]) * (1.0 - candidate[i] * candidate[i]);
        let d_update = d_h * (before[i] - candidate[i]) * update[i] * (1.0 - update[i]);
        let d_reset = d_candidate * state_candidate[i] * reset[i] * (1.0 - reset[i]);
        (dgi_r[i], dgi_u[i], dgi_n[i]) = (d_reset, d_update, d_candidate);
        (dgs_r[i], dgs_u[i], dgs_n[i]) = (d_reset, d_update, d_candidate * reset[i]);
        d_state[i] = d_h * update[i];
    }
}
}

impl CustomOp3 for GruSequence {
    fn name(&self) -> &'static str {
        "gru-sequence"
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
        let (gates_in, initial, recurrent) = (
            contiguous(s1, l1, "gru_sequence")?,
            contiguous(s2, l2, "gru_sequence")?,
            contiguous(s3, l3, "gru_sequence")?,
        );
        let Sizes { rows, steps, hidden: h } = sizes;
        let mut states = filled(rows * steps * h, 0.0);
        let mut kept = filled(rows * steps * KEPT_PER_UNIT * h, 0.0);
        let mut gates_state = vec![0f32; rows * 3 * h];
        let bias_state: Vec<f32> = (0..3 * h).map(|gate| sizes.bias(recurrent, gate)).collect();
        for t in 0..steps {
            let (previous, previous_view) = if t == 0 {
                (initial, Strided::row_major(rows, h))
            } else {
                (&states[(t - 1) * h..], Strided { rows, cols: h, row_stride: steps * h, col_stride: 1 })
            };
            matmul(
                &mut gates_state,
                Strided::row_major(rows, 3 * h),
                previous,
                previous_view,
                recurrent,
                sizes.weight_transposed(),
                false,
            );
            // Rows are independent within a step; each thread takes whole rows (every step of
            // them, so that a row's state before the step is in its part too).
            let (all_states, all_kept, gates_state, bias_state) =
                (DisjointWrites::new(&mut states), DisjointWrites::new(&mut kept), &gates_state, &bias_state);
            parallel_for(rows, h * UNIT_COST, |part| {
                // SAFETY: the parts of `parallel_for` are disjoint ranges of rows.
                let (states, kept) = unsafe {
                    (
                        all_states.part(part.start * steps * h..part.end * steps * h),
                        all_kept.part(part.start * steps * KEPT_PER_UNIT * h..part.end * steps * KEPT_PER_UNIT * h),
                    )
                };
                for r in part.clone() {
                    let (cell, local) = (r * steps + t, (r - part.start) * steps + t);
                    let (earlier, from_now) = states.split_at_mut(local * h);
                    let before = if t == 0 { &initial[r * h..(r + 1) * h] } else { &earlier[(local - 1) * h..] };
                    let keep = &mut kept[local * KEPT_PER_UNIT * h..(local + 1) * KEPT_PER_UNIT * h];
                    step_row(
                        &gates_in[cell * 3 * h..],
                        &gates_state[r * 3 * h..],
                        bias_state,
                        before,
                        &mut from_now[..h],
                        keep,
                    );
                }
            });
        }
        *self.kept.lock().map_err(poisoned)? = Some(kept);
        Ok((CpuStorage::F32(states), Shape::from((rows * steps, h))))
    }

    fn bwd(
        &self,
        gates_in: &Tensor,
        initial: &Tensor,
        recurrent: &Tensor,
        states: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let sizes = Sizes::of(gates_in.dims(), initial.dims(), recurrent.dims())?;
        let Sizes { rows, steps, hidden: h } = sizes;
        let (initial_values, weights) = (host(initial)?, host(recurrent)?);
        let (states, grad) = (states.contiguous()?, grad.contiguous()?);
        let ((states_storage, states_layout), (grad_storage, grad_layout)) =
            (states.storage_and_layout(), grad.storage_and_layout());
        let (state_values, grad_values) = (
            cpu_values(&states_storage, states_layout, "gru_sequence")?,
            cpu_values(&grad_storage, grad_layout, "gru_sequence")?,
        );
        let guard = self.kept.lock().map_err(poisoned)?;
        let kept =
            guard.as_ref().ok_or_else(|| candle_core::Error::Msg("gru_sequence: backward before forward".into()))?;
        let cells = rows * steps;
        // The state before every step, and a 1 after it: W_hh's gradient and b_hh's are then
        // one product, laid out as `recurrent` is.
        let mut before = filled(cells * (h + 1), 1.0);
        for (cell, row) in before.chunks_exact_mut(h + 1).enumerate() {
            let (r, t) = (cell / steps, cell % steps);
            let state =
                if t == 0 { &initial_values[r * h..(r + 1) * h] } else { &state_values[(cell - 1) * h..cell * h] };
            row[..h].copy_from_slice(state);
        }

        let mut d_gates_in = filled(cells * 3 * h, 0.0);
        let mut d_gates_state = filled(cells * 3 * h, 0.0);
        // The gradient reaching the state after step t from the steps after it.
        let mut d_state = vec![0f32; rows * h];
        for t in (0..steps).rev() {
            let (all_d_gates_in, all_d_gates_state, all_d_state) = (
                DisjointWrites::new(&mut d_gates_in),
                DisjointWrites::new(&mut d_gates_state),
                DisjointWrites::new(&mut d_state),
            );
            parallel_for(rows, h * UNIT_COST, |part| {
                let gates_part = part.start * steps * 3 * h..part.end * steps * 3 * h;
                // SAFETY: the parts of `parallel_for` are disjoint ranges of rows.
                let (d_gates_in, d_gates_state, d_state) = unsafe {
                    (
                        all_d_gates_in.part(gates_part.clone()),
                        all_d_gates_state.part(gates_part),
                        all_d_state.part(part.start * h..part.end * h),
                    )
                };
                for r in part.clone() {
                    let (cell, local, local_row) = (r * steps + t, (r - part.start) * steps + t, r - part.start);
                    let range = local * 3 * h..(local + 1) * 3 * h;
                    let keep = &kept[cell * KEPT_PER_UNIT * h..(cell + 1) * KEPT_PER_UNIT * h];
                    let d_state_row = &mut d_state[local_row * h..(local_row + 1) * h];
                    step_row_backward(
                        &grad_values[cell * h..(cell + 1) * h],
                        keep,
                        &before[cell * (h + 1)..cell * (h + 1) + h],
                        d_state_row,
                        &mut d_gates_in[range.clone()],
                        &mut d_gates_state[range],
                    );
                }
            });
            let step_view = Strided { rows, cols: 3 * h, row_stride: steps * 3 * h, col_stride: 1 };
            matmul(
                &mut d_state,
                Strided::row_major(rows, h),
                &d_gates_state[t * 3 * h..],
                step_view,
                &weights,
                sizes.weight(),
                true,
            );
        }
        let device = gates_in.device();
        let d_recurrent = if recurrent.track_op() {
            let mut d_weights = vec![0f32; 3 * h * (h + 1)];
            matmul(
                &mut d_weights,
                Strided::row_major(3 * h, h + 1),
                &d_gates_state,
                Strided::row_major(cells, 3 * h).t(),
                &before,
                Strided::row_major(cells, h + 1),
                false,
            );
            Some(Tensor::from_vec(d_weights, (3 * h, h + 1), device)?)
        } else {
            None
        };
        let d_gates_in =
            if gates_in.track_op() { Some(Tensor::from_vec(d_gates_in, (cells, 3 * h), device)?) } else { None };
        let d_initial = if initial.track_op() { Some(Tensor::from_vec(d_state, (rows, h), device)?) } else { None };
        Ok((d_gates_in, d_initial, d_recurrent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::voices::network::GruWeights;
    use candle_core::{Device, Var};

    /// The same recurrence in candle's own ops: the reference.
    fn composite(gates_in: &Tensor, initial: &Tensor, recurrent: &Tensor) -> Result<Tensor> {
        let h = initial.dim(1)?;
        let unused = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu)?;
        let weights = GruWeights {
            weight_ih: unused.clone(),
            bias_ih: unused,
            weight_hh: recurrent.narrow(1, 0, h)?,
            bias_hh: recurrent.narrow(1, h, 1)?.squeeze(1)?,
        };
        weights.composite_sequence(gates_in, initial)
    }

    fn random(shape: &[usize], seed: u64, scale: f64) -> Var {
        super::super::random_var(shape, seed, scale)
    }

    fn inputs(rows: usize, steps: usize, h: usize) -> (Var, Var, Var) {
        (random(&[rows * steps, 3 * h], 1, 0.8), random(&[rows, h], 2, 0.5), random(&[3 * h, h + 1], 3, 0.4))
    }

    /// A loss that weighs every state differently, so that no gradient can hide.
    fn loss(states: &Tensor) -> Tensor {
        let weights =
            Tensor::arange(0f32, states.elem_count() as f32, &Device::Cpu).unwrap().reshape(states.shape()).unwrap();
        (states.mul(&(weights * 0.01).unwrap().sin().unwrap()).unwrap()).sum_all().unwrap()
    }

    fn max_relative(a: &Tensor, b: &Tensor) -> f32 {
        let difference = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap();
        difference / b.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap().max(1e-12)
    }

    #[test]
    fn states_and_every_gradient_match_candles_own_ops() {
        // The second size is large enough for the rows to be shared between threads, in
        // uneven parts.
        for (rows, steps, h) in [(5, 7, 6), (37, 5, 40)] {
            let (gates_in, initial, recurrent) = inputs(rows, steps, h);
            let fused = gru_sequence(&gates_in, &initial, &recurrent).unwrap();
            let reference = composite(&gates_in, &initial, &recurrent).unwrap();
            assert!(max_relative(&fused, &reference) < 1e-6, "states differ by {}", max_relative(&fused, &reference));
            let fused_grads = loss(&fused).backward().unwrap();
            let reference_grads = loss(&reference).backward().unwrap();
            for (name, var) in [("gates_in", &gates_in), ("initial", &initial), ("recurrent", &recurrent)] {
                let (a, b) = (fused_grads.get(var).unwrap(), reference_grads.get(var).unwrap());
                assert!(
                    max_relative(a, b) < 1e-5,
                    "{rows}x{steps}x{h} {name}: gradients differ by {}",
                    max_relative(a, b)
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (gates_in, initial, recurrent) = inputs(2, 4, 3);
        super::super::assert_gradients_match_finite_differences(
            &[&gates_in, &initial, &recurrent],
            |x| loss(&gru_sequence(&x[0], &x[1], &x[2]).unwrap()),
            1e-2,
            5,
            2e-3,
        );
    }

    #[test]
    fn constants_get_no_gradient() {
        let (gates_in, initial, recurrent) = inputs(2, 3, 2);
        let constant_input = gates_in.as_tensor().detach();
        let grads = loss(&gru_sequence(&constant_input, &initial, &recurrent).unwrap()).backward().unwrap();
        assert!(grads.get(&constant_input).is_none());
        assert!(grads.get(&recurrent).is_some() && grads.get(&initial).is_some());
    }

    #[test]
    fn the_sigmoid_saturates_without_overflow() {
        assert_eq!((sigmoid(-200.0) < 1e-37, sigmoid(200.0)), (true, 1.0));
    }

    #[test]
    fn the_fast_tanh_is_close_to_the_library_one() {
        for i in -4000..=4000 {
            let x = i as f32 * 0.0025;
            let (fast, exact) = (tanh(x), x.tanh());
            assert!((fast - exact).abs() <= 2e-7 + 1e-6 * exact.abs(), "tanh({x}): {fast} vs {exact}");
        }
        assert_eq!((tanh(50.0), tanh(-50.0)), (1.0, -1.0));
    }

    #[test]
    fn mismatched_shapes_are_refused_in_words() {
        let (gates_in, initial, _) = inputs(2, 3, 2);
        let wrong = Tensor::zeros((6, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = gru_sequence(&gates_in, &initial, &wrong).unwrap_err().to_string();
        assert!(error.contains("do not make one GRU"), "{error}");
    }
}
