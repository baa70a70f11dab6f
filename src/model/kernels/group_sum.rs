//! Two per-row terms and one per-group term added in one pass.
//!
//! The GRU's input projection is the sum of a per-step part, a per-step table lookup and a
//! per-bar part shared by the bar's steps. As candle ops that is an add and a broadcast add,
//! and the broadcast's backward is a sum over the middle axis of a [bars, steps, gates]
//! tensor, which candle reduces element by element with strided reads (a twentieth of a
//! training step). Here backward passes the gradient on to the two per-row terms unchanged
//! and sums each group's rows with contiguous adds.

use super::{contiguous, cpu_values};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

/// `a + b + per_group`, where `a` and `b` are [rows, width] and `per_group` [groups, width]
/// is added to each of its group's rows (rows = groups × rows per group, a group's rows
/// consecutive).
pub fn add_with_group_term(a: &Tensor, b: &Tensor, per_group: &Tensor) -> Result<Tensor> {
    a.contiguous()?.apply_op3(&b.contiguous()?, &per_group.contiguous()?, GroupSum)
}

struct GroupSum;

/// (rows, width, rows per group)
fn sizes(a: &[usize], b: &[usize], per_group: &[usize]) -> Result<(usize, usize, usize)> {
    match (a, b, per_group) {
        ([rows, width], [rows_b, width_b], [groups, width_g]) if rows == rows_b && width == width_b && width == width_g && *groups > 0 && rows % groups == 0 => Ok((*rows, *width, rows / groups)),
        _ => candle_core::bail!("add_with_group_term: shapes {a:?}, {b:?}, {per_group:?} do not fit (want [rows, width] twice and [groups, width], rows a multiple of groups)"),
    }
}

impl CustomOp3 for GroupSum {
    fn name(&self) -> &'static str {
        "add-with-group-term"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, width, per_group_rows) = sizes(l1.dims(), l2.dims(), l3.dims())?;
        let op = "add_with_group_term";
        let (a, b, per_group) = (contiguous(s1, l1, op)?, contiguous(s2, l2, op)?, contiguous(s3, l3, op)?);
        let mut out = Vec::with_capacity(rows * width);
        for (row, (a, b)) in a.chunks_exact(width).zip(b.chunks_exact(width)).enumerate() {
            let shared = &per_group[row / per_group_rows * width..][..width];
            out.extend(a.iter().zip(b).zip(shared).map(|((a, b), c)| a + b + c));
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }

    fn bwd(&self, a: &Tensor, b: &Tensor, per_group: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, width, per_group_rows) = sizes(a.dims(), b.dims(), per_group.dims())?;
        let d_per_group = if per_group.track_op() {
            let grad = grad.contiguous()?;
            let (storage, layout) = grad.storage_and_layout();
            let values = cpu_values(&storage, layout, "add_with_group_term")?;
            let mut sums = vec![0f32; per_group.elem_count()];
            for (group, rows) in sums.chunks_exact_mut(width).zip(values.chunks_exact(per_group_rows * width)) {
                for row in rows.chunks_exact(width) {
                    group.iter_mut().zip(row).for_each(|(s, g)| *s += g);
                }
            }
            Some(Tensor::from_vec(sums, per_group.shape(), per_group.device())?)
        } else {
            None
        };
        let passed = |t: &Tensor| t.track_op().then(|| grad.clone());
        Ok((passed(a), passed(b), d_per_group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn random(shape: &[usize], seed: u64) -> candle_core::Var {
        super::super::random_var(shape, seed, 1.0)
    }

    #[test]
    fn the_sum_and_its_gradients_match_candles_broadcast_add() {
        let (groups, per_group, width) = (3, 4, 5);
        let (a, b, c) = (random(&[groups * per_group, width], 1), random(&[groups * per_group, width], 2), random(&[groups, width], 3));
        let fused = add_with_group_term(&a, &b, &c).unwrap();
        let reference = (a.as_tensor() + b.as_tensor()).unwrap().reshape((groups, per_group, width)).unwrap().broadcast_add(&c.unsqueeze(1).unwrap()).unwrap().reshape((groups * per_group, width)).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(&fused), values(&reference));
        let weights = Tensor::arange(0f32, (groups * per_group * width) as f32, &Device::Cpu).unwrap().reshape((groups * per_group, width)).unwrap().sin().unwrap();
        let loss = |y: &Tensor| y.mul(&weights).unwrap().sum_all().unwrap();
        let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
        for var in [&a, &b, &c] {
            let (x, y) = (values(g1.get(var).unwrap()), values(g2.get(var).unwrap()));
            assert!(x.iter().zip(&y).all(|(x, y)| (x - y).abs() < 1e-5 * (1.0 + y.abs())), "{x:?} vs {y:?}");
        }
    }

    #[test]
    fn constants_get_no_gradient_and_rows_outside_whole_groups_are_refused() {
        let (a, b, c) = (random(&[6, 2], 1).as_tensor().detach(), random(&[6, 2], 2), random(&[3, 2], 3));
        let grads = add_with_group_term(&a, &b, &c).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&a).is_none() && grads.get(&b).is_some() && grads.get(&c).is_some());
        let error = add_with_group_term(&a, &b, &random(&[4, 2], 4)).unwrap_err().to_string();
        assert!(error.contains("do not fit"), "{error}");
    }
}
