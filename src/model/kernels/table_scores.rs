//! Scores plus sums of picked table entries, as one op: the voice decoder's voice-leading
//! scores ([`crate::model::voices::leading`]). In candle's own ops that is an index-select of
//! every pick, a sum over the picks, a column of zeros put in front, and an add — four
//! full-size temporaries forward and as many backward, for a table of a few thousand numbers.

use super::{contiguous, host};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// Which entries each score gets: for every row and every column from `first_column` on,
/// `picks` indices into the table, row-major [rows, columns - first_column, picks].
#[derive(Clone, Debug, PartialEq)]
pub struct TablePicks {
    pub indices: Vec<u32>,
    pub picks: usize,
    pub first_column: usize,
}

/// `scores` [rows, columns] plus, at each column from `first_column` on, the sum of the
/// entries of `table` [entries, 1] it picks.
pub fn add_table_sums(scores: &Tensor, table: &Tensor, picks: TablePicks) -> Result<Tensor> {
    let (rows, columns) = scores.dims2()?;
    if picks.first_column > columns || picks.indices.len() != rows * (columns - picks.first_column) * picks.picks {
        candle_core::bail!(
            "add_table_sums: {} indices for {rows} rows of {columns} columns from column {}, {} picks each",
            picks.indices.len(),
            picks.first_column,
            picks.picks
        );
    }
    if scores.device().is_cpu() {
        return scores.contiguous()?.apply_op2(&table.contiguous()?, TableScores(picks));
    }
    composite_add_table_sums(scores, table, &picks)
}

/// The same in candle's own ops: where the fused op has no code (GPUs), and its reference.
pub fn composite_add_table_sums(scores: &Tensor, table: &Tensor, picks: &TablePicks) -> Result<Tensor> {
    let (rows, columns) = scores.dims2()?;
    let picked_columns = columns - picks.first_column;
    let indices = Tensor::from_slice(&picks.indices, (rows * picked_columns, picks.picks), scores.device())?;
    let sums = super::picked_rows::composite_sum_of_rows(table, &indices)?.reshape((rows, picked_columns))?;
    let untouched = Tensor::zeros((rows, picks.first_column), sums.dtype(), sums.device())?;
    scores + Tensor::cat(&[&untouched, &sums], 1)?
}

struct TableScores(TablePicks);

impl CustomOp2 for TableScores {
    fn name(&self) -> &'static str {
        "table-scores"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let scores = contiguous(s1, l1, "add_table_sums")?;
        let table = contiguous(s2, l2, "add_table_sums")?;
        let (indices, picks, first_column) = (&self.0.indices, self.0.picks.max(1), self.0.first_column);
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= table.len()) {
            candle_core::bail!("add_table_sums: index {bad} past the {} table entries", table.len());
        }
        let columns = l1.dims()[1];
        let mut out = scores.to_vec();
        for (row, picked) in out.chunks_exact_mut(columns).zip(indices.chunks_exact((columns - first_column) * picks)) {
            for (score, entries) in row[first_column..].iter_mut().zip(picked.chunks_exact(picks)) {
                *score += entries.iter().map(|&e| table[e as usize]).sum::<f32>();
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        scores: &Tensor,
        table: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d_scores = scores.track_op().then(|| grad.clone());
        if !table.track_op() {
            return Ok((d_scores, None));
        }
        let (indices, picks, first_column) = (&self.0.indices, self.0.picks.max(1), self.0.first_column);
        let columns = scores.dim(1)?;
        let g = host(grad)?;
        let mut d_table = vec![0f32; table.elem_count()];
        for (row, picked) in g.chunks_exact(columns).zip(indices.chunks_exact((columns - first_column) * picks)) {
            for (&g, entries) in row[first_column..].iter().zip(picked.chunks_exact(picks)) {
                entries.iter().for_each(|&e| d_table[e as usize] += g);
            }
        }
        Ok((d_scores, Some(Tensor::from_vec(d_table, table.shape(), table.device())?)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::random_var;
    use super::*;
    use candle_core::{Device, Var};

    fn picks() -> TablePicks {
        // 3 rows of 4 columns; columns 1..4 get two picks each from a table of 5.
        TablePicks { indices: vec![0, 4, 2, 2, 1, 3, 4, 0, 3, 3, 2, 1, 0, 0, 4, 4, 1, 2], picks: 2, first_column: 1 }
    }

    #[test]
    fn sums_and_gradients_match_candles_own_ops() {
        let scores = random_var(&[3, 4], 1, 1.0);
        let table = random_var(&[5, 1], 2, 1.0);
        let weights = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((3, 4)).unwrap().sin().unwrap();
        let run = |fused: bool| {
            let out = if fused {
                add_table_sums(&scores, &table, picks())
            } else {
                composite_add_table_sums(&scores, &table, &picks())
            }
            .unwrap();
            let grads = (out.clone() * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (values(&out), values(grads.get(&scores).unwrap()), values(grads.get(&table).unwrap()))
        };
        let (fused, reference) = (run(true), run(false));
        for (a, b) in [(&fused.0, &reference.0), (&fused.1, &reference.1), (&fused.2, &reference.2)] {
            assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5), "{a:?} vs {b:?}");
        }
        assert_eq!(fused.0[0], scores.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0], "column 0 is untouched");
        // And the table's gradient against finite differences of the weighted sum.
        let base = table.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for entry in 0..base.len() {
            let at = |delta: f32| {
                let mut moved = base.clone();
                moved[entry] += delta;
                let moved = Tensor::from_vec(moved, (5, 1), &Device::Cpu).unwrap();
                let out = add_table_sums(&scores, &moved, picks()).unwrap();
                f64::from((out * &weights).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap())
            };
            let numeric = (at(1e-2) - at(-1e-2)) / 2e-2;
            assert!(
                (numeric - f64::from(fused.2[entry])).abs() < 1e-3 * (1.0 + numeric.abs()),
                "entry {entry}: numeric {numeric}, analytic {}",
                fused.2[entry]
            );
        }
    }

    #[test]
    fn a_constant_table_gets_no_gradient_and_bad_picks_are_refused() {
        let scores = random_var(&[3, 4], 1, 1.0);
        let table = Tensor::ones((5, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        let grads = add_table_sums(&scores, &table, picks()).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&table).is_none());
        let mut past = picks();
        past.indices[5] = 5;
        let error = add_table_sums(&scores, &table, past).unwrap_err().to_string();
        assert!(error.contains("index 5 past the 5 table entries"), "{error}");
        let short = TablePicks { indices: vec![0; 4], ..picks() };
        assert!(
            add_table_sums(&scores, &Var::ones((5, 1), candle_core::DType::F32, &Device::Cpu).unwrap(), short).is_err()
        );
    }
}
