//! The sum of a few table rows per output row, as one op.
//!
//! A voice decoder step reads every voice's pitch and note age through embeddings and then
//! a projection; the projection of an embedding is itself a table (what the sampler plays
//! from), so the step's input is a sum of rows of small tables rather than a product over
//! every step: a sixth of a training step's multiply-adds, gone.

use super::contiguous;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `tables` [entries, width] (f32) and `indices` [rows, picks] (u32) -> [rows, width], each
/// row the sum of the table rows it picks.
pub fn embedding_bag_sum(tables: &Tensor, indices: &Tensor) -> Result<Tensor> {
    tables.contiguous()?.apply_op2(&indices.contiguous()?, EmbeddingBagSum)
}

/// The same sum in candle's own ops: the reference the kernel is tested against, and the
/// voice-leading scores' on GPUs.
pub fn composite_sum_of_rows(tables: &Tensor, indices: &Tensor) -> Result<Tensor> {
    let (rows, picks) = indices.dims2()?;
    tables.index_select(&indices.flatten_all()?, 0)?.reshape((rows, picks, tables.dim(1)?))?.sum(1)
}

struct EmbeddingBagSum;

fn sizes(tables: &[usize], indices: &[usize]) -> Result<(usize, usize, usize, usize)> {
    match (tables, indices) {
        ([entries, width], [rows, picks]) => Ok((*entries, *width, *rows, *picks)),
        _ => candle_core::bail!("embedding_bag_sum: shapes {tables:?} and {indices:?} are not [entries, width] and [rows, picks]"),
    }
}

impl CustomOp2 for EmbeddingBagSum {
    fn name(&self) -> &'static str {
        "embedding-bag-sum"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (entries, width, rows, picks) = sizes(l1.dims(), l2.dims())?;
        let tables = contiguous(s1, l1, "embedding_bag_sum")?;
        let Some((start, end)) = l2.contiguous_offsets() else { candle_core::bail!("embedding_bag_sum reads contiguous indices") };
        let indices = &s2.as_slice::<u32>()?[start..end];
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= entries) {
            candle_core::bail!("embedding_bag_sum: index {bad} past the {entries} table rows");
        }
        let mut out = vec![0f32; rows * width];
        for (row, picked) in out.chunks_exact_mut(width).zip(indices.chunks_exact(picks.max(1))) {
            for &index in picked {
                let entry = &tables[index as usize * width..(index as usize + 1) * width];
                row.iter_mut().zip(entry).for_each(|(o, t)| *o += t);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, width))))
    }

    fn bwd(&self, tables: &Tensor, indices: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (entries, width, _, picks) = sizes(tables.dims(), indices.dims())?;
        if !tables.track_op() {
            return Ok((None, None));
        }
        let g = super::host(grad)?;
        let indices = indices.flatten_all()?.to_vec1::<u32>()?;
        let mut d_tables = vec![0f32; entries * width];
        for (row, picked) in g.chunks_exact(width).zip(indices.chunks_exact(picks.max(1))) {
            for &index in picked {
                d_tables[index as usize * width..(index as usize + 1) * width].iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
        }
        Ok((Some(Tensor::from_vec(d_tables, (entries, width), tables.device())?), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn sums_and_gradients_match_index_select() {
        let tables = Var::from_tensor(&Tensor::from_vec(crate::model::latent::noise(1, 6 * 4), (6, 4), &Device::Cpu).unwrap()).unwrap();
        let picks: Vec<u32> = vec![0, 5, 2, 2, 1, 3, 4, 0, 5];
        let indices = Tensor::from_vec(picks, (3, 3), &Device::Cpu).unwrap();
        let fused = embedding_bag_sum(&tables, &indices).unwrap();
        let reference = composite_sum_of_rows(&tables, &indices).unwrap();
        let weights = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((3, 4)).unwrap().cos().unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let (a, b) = (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6)
        };
        assert!(close(&fused, &reference));
        let g1 = fused.mul(&weights).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = reference.mul(&weights).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(close(g1.get(&tables).unwrap(), g2.get(&tables).unwrap()));
    }

    #[test]
    fn an_index_past_the_tables_is_refused_in_words() {
        let tables = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let indices = Tensor::from_vec(vec![0u32, 2], (1, 2), &Device::Cpu).unwrap();
        let error = embedding_bag_sum(&tables, &indices).unwrap_err().to_string();
        assert!(error.contains("past the 2 table rows"), "{error}");
    }
}
