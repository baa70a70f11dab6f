//! A linear layer plus a few picked table rows per output row, as one op: the voice
//! decoder's GRU input projection.
//!
//! A step's input is partly dense (its position and context, a product over every step) and
//! partly sums of table rows: each voice's pitch and note age read through the projection
//! of their embeddings (the tables the sampler plays from), the bar's embedding projected
//! once per bar, and the bias. Built from separate ops, each part is a full-size
//! [cells, 3H] tensor, and candle's backward gives each of them, and every reshape between,
//! a zero-filled gradient and an add: a tenth of a training step spent moving zeros. Here
//! the sum is one output, and its gradient reaches the three inputs directly.

use super::{contiguous, cpu_values, filled, matmul, parallel_for, product_gradients, DisjointWrites, Strided};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::Mutex;

/// Which table rows each output row adds: `per_row` indices per row, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct RowPicks {
    pub indices: Vec<u32>,
    pub per_row: usize,
}

/// `x` [rows, in] · `weight` [width, in]ᵀ, plus for each row the sum of the rows of `table`
/// [entries, width] it picks -> [rows, width].
pub fn linear_plus_picked_rows(x: &Tensor, weight: &Tensor, table: &Tensor, picks: RowPicks) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &table.contiguous()?, LinearPlusPickedRows(picks))
}

/// The sum of the rows each row of `indices` [rows, picks] (u32) picks from `tables`
/// [entries, width], in candle's own ops: the voice-leading scores' on GPUs, and a reference.
pub fn composite_sum_of_rows(tables: &Tensor, indices: &Tensor) -> Result<Tensor> {
    let (rows, picks) = indices.dims2()?;
    tables.index_select(&indices.flatten_all()?, 0)?.reshape((rows, picks, tables.dim(1)?))?.sum(1)
}

struct LinearPlusPickedRows(RowPicks);

/// Element operations per picked row: what [`parallel_for`] weighs.
const PICK_COST: usize = 1;

/// (rows, in, width, entries)
fn sizes(x: &[usize], weight: &[usize], table: &[usize], picks: &RowPicks) -> Result<(usize, usize, usize, usize)> {
    match (x, weight, table) {
        ([rows, inputs], [width, inputs_w], [entries, width_t]) if inputs == inputs_w && width == width_t && picks.indices.len() == rows * picks.per_row => Ok((*rows, *inputs, *width, *entries)),
        _ => candle_core::bail!(
            "linear_plus_picked_rows: shapes {x:?}, {weight:?}, {table:?} with {} picks of {} per row do not fit (want [rows, in], [width, in], [entries, width] and rows × picks indices)",
            picks.indices.len(),
            picks.per_row
        ),
    }
}

impl LinearPlusPickedRows {
    fn rows_picked(&self) -> std::slice::ChunksExact<'_, u32> {
        self.0.indices.chunks_exact(self.0.per_row.max(1))
    }
}

impl CustomOp3 for LinearPlusPickedRows {
    fn name(&self) -> &'static str {
        "linear-plus-picked-rows"
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
        let (rows, inputs, width, entries) = sizes(l1.dims(), l2.dims(), l3.dims(), &self.0)?;
        let op = "linear_plus_picked_rows";
        let (x, weight, table) = (contiguous(s1, l1, op)?, contiguous(s2, l2, op)?, contiguous(s3, l3, op)?);
        if let Some(&bad) = self.0.indices.iter().find(|&&i| i as usize >= entries) {
            candle_core::bail!("{op}: index {bad} past the {entries} table rows");
        }
        let mut out = filled(rows * width, 0.0);
        let all_out = DisjointWrites::new(&mut out);
        parallel_for(rows, self.0.per_row * width * PICK_COST, |part| {
            // SAFETY: the parts of `parallel_for` are disjoint ranges of rows.
            let out = unsafe { all_out.part(part.start * width..part.end * width) };
            for (row, picked) in out.chunks_exact_mut(width).zip(self.rows_picked().skip(part.start)) {
                for &index in picked {
                    row.iter_mut().zip(&table[index as usize * width..][..width]).for_each(|(o, t)| *o += t);
                }
            }
        });
        matmul(
            &mut out,
            Strided::row_major(rows, width),
            x,
            Strided::row_major(rows, inputs),
            weight,
            Strided::row_major(width, inputs).t(),
            true,
        );
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        table: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, _, width, entries) = sizes(x.dims(), weight.dims(), table.dims(), &self.0)?;
        let op = "linear_plus_picked_rows";
        let grad = grad.contiguous()?;
        let (grad_storage, grad_layout) = grad.storage_and_layout();
        let g = cpu_values(&grad_storage, grad_layout, op)?;
        let device = x.device();
        let (d_x, d_weight) = product_gradients(x, weight, g, op)?;
        let d_table = if table.track_op() {
            // Rows of the output may pick the same table row, so each thread sums its part
            // of the output into a table of its own, and the tables are added after.
            let partial_sums = Mutex::new(Vec::new());
            parallel_for(rows, self.0.per_row * width * PICK_COST, |part| {
                let mut sums = vec![0f32; entries * width];
                for (row, picked) in
                    g[part.start * width..part.end * width].chunks_exact(width).zip(self.rows_picked().skip(part.start))
                {
                    for &index in picked {
                        sums[index as usize * width..][..width].iter_mut().zip(row).for_each(|(s, g)| *s += g);
                    }
                }
                partial_sums.lock().expect("no thread panics while holding it").push((part.start, sums));
            });
            // Added in the order of the parts, so the result does not depend on which
            // thread finished first.
            let mut partial_sums = partial_sums.into_inner().expect("no thread panicked");
            partial_sums.sort_by_key(|(start, _)| *start);
            let mut parts = partial_sums.into_iter().map(|(_, sums)| sums);
            let mut d_table = parts.next().unwrap_or_else(|| vec![0f32; entries * width]);
            for sums in parts {
                d_table.iter_mut().zip(&sums).for_each(|(d, s)| *d += s);
            }
            Some(Tensor::from_vec(d_table, (entries, width), device)?)
        } else {
            None
        };
        Ok((d_x, d_weight, d_table))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64) -> Var {
        super::super::random_var(shape, seed, 1.0)
    }

    fn picks(rows: usize, per_row: usize, entries: usize) -> RowPicks {
        RowPicks { indices: (0..rows * per_row).map(|i| ((i * 7 + i / 3) % entries) as u32).collect(), per_row }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) -> bool {
        values(a).iter().zip(&values(b)).all(|(x, y)| (x - y).abs() < 1e-4 * (1.0 + y.abs()))
    }

    #[test]
    fn the_sum_and_every_gradient_match_candles_own_ops() {
        // The second size is large enough for the rows to be shared between threads (and
        // the product to be cut into blocks), with rows picking the same table rows.
        for (rows, inputs, width, entries, per_row) in [(9, 5, 4, 6, 3), (611, 37, 53, 29, 4)] {
            let (x, weight, table) =
                (random(&[rows, inputs], 1), random(&[width, inputs], 2), random(&[entries, width], 3));
            let picks = picks(rows, per_row, entries);
            let fused = linear_plus_picked_rows(&x, &weight, &table, picks.clone()).unwrap();
            let indices = Tensor::from_vec(picks.indices, (rows, per_row), &Device::Cpu).unwrap();
            let reference =
                (x.matmul(&weight.t().unwrap()).unwrap() + composite_sum_of_rows(&table, &indices).unwrap()).unwrap();
            assert!(close(&fused, &reference), "{rows} rows: sums differ");
            let loss_weights = Tensor::arange(0f32, (rows * width) as f32, &Device::Cpu)
                .unwrap()
                .reshape((rows, width))
                .unwrap()
                .sin()
                .unwrap();
            let loss = |y: &Tensor| y.mul(&loss_weights).unwrap().sum_all().unwrap();
            let (fused_grads, reference_grads) =
                (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
            for (name, var) in [("x", &x), ("weight", &weight), ("table", &table)] {
                assert!(
                    close(fused_grads.get(var).unwrap(), reference_grads.get(var).unwrap()),
                    "{rows} rows: {name}'s gradients differ"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (x, weight, table) = (random(&[4, 3], 4), random(&[2, 3], 5), random(&[5, 2], 6));
        let picks = picks(4, 2, 5);
        super::super::assert_gradients_match_finite_differences(
            &[&x, &weight, &table],
            |x| linear_plus_picked_rows(&x[0], &x[1], &x[2], picks.clone()).unwrap().sqr().unwrap().sum_all().unwrap(),
            1e-2,
            1,
            2e-3,
        );
    }

    #[test]
    fn constants_get_no_gradient_and_bad_picks_are_refused_in_words() {
        let (x, weight, table) = (random(&[3, 2], 1).as_tensor().detach(), random(&[2, 2], 2), random(&[4, 2], 3));
        let grads = linear_plus_picked_rows(&x, &weight, &table, picks(3, 2, 4))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&x).is_none() && grads.get(&weight).is_some() && grads.get(&table).is_some());
        let past =
            linear_plus_picked_rows(&x, &weight, &table, RowPicks { indices: vec![0, 4, 1, 1, 2, 2], per_row: 2 })
                .unwrap_err()
                .to_string();
        assert!(past.contains("index 4 past the 4 table rows"), "{past}");
        let short = linear_plus_picked_rows(&x, &weight, &table, RowPicks { indices: vec![0, 1], per_row: 2 })
            .unwrap_err()
            .to_string();
        assert!(short.contains("do not fit"), "{short}");
    }
}
