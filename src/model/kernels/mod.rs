//! Fused CPU kernels for what candle's element-wise graph makes slow in training: each is a
//! candle custom op with its own backward, checked against candle's composite ops and
//! against finite differences. On other devices the networks use the composite ops.

pub mod bce;
pub mod choice_loss;
pub mod embedding_bag;
pub mod gru;
pub mod linear;
pub mod patches;
pub mod table_scores;

use candle_core::{CpuStorage, Layout, Result, Tensor};
use gemm::Parallelism;

/// An op's input as one slice; the ops make their inputs contiguous before they run.
fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => candle_core::bail!("{op} reads contiguous tensors"),
    }
}

/// A contiguous CPU tensor's values, borrowed from its storage (`storage_and_layout`), so that
/// a backward pass reads its large inputs without copying them.
fn cpu_values<'a>(storage: &'a candle_core::Storage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    match storage {
        candle_core::Storage::Cpu(cpu) => contiguous(cpu, layout, op),
        _ => candle_core::bail!("{op} runs on the CPU"),
    }
}

/// The sum of each column of a row-major matrix with `columns` columns: a bias's gradient.
fn column_sums(matrix: &[f32], columns: usize) -> Vec<f32> {
    matrix.chunks_exact(columns.max(1)).fold(vec![0f32; columns], |mut sum, row| {
        sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
        sum
    })
}

/// Test inputs: a variable of `shape` drawn from `seed`, times `scale`.
#[cfg(test)]
fn random_var(shape: &[usize], seed: u64, scale: f64) -> candle_core::Var {
    let values = crate::model::latent::noise(seed, shape.iter().product());
    candle_core::Var::from_tensor(&(Tensor::from_vec(values, shape, &candle_core::Device::Cpu).unwrap() * scale).unwrap()).unwrap()
}

/// A tensor's values on the host, in order, for a backward pass.
fn host(t: &Tensor) -> Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

/// A matrix inside a slice: element (i, j) at `offset + i * row_stride + j * col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct Strided {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Strided {
    pub fn row_major(rows: usize, cols: usize) -> Strided {
        Strided { rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The same elements read as the transpose.
    pub fn t(self) -> Strided {
        Strided { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }

    /// One past the last element read, so that a slice can be checked to hold the matrix.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `out (+)= a · b` for matrices laid out by their [`Strided`] views; `accumulate` keeps
/// what `out` held. Large products use candle's thread count.
pub fn matmul(out: &mut [f32], out_view: Strided, a: &[f32], a_view: Strided, b: &[f32], b_view: Strided, accumulate: bool) {
    let (m, k, n) = (a_view.rows, a_view.cols, b_view.cols);
    assert!(b_view.rows == k && out_view.rows == m && out_view.cols == n, "matmul shapes: {a_view:?} x {b_view:?} -> {out_view:?}");
    assert!(a.len() >= a_view.extent() && b.len() >= b_view.extent() && out.len() >= out_view.extent(), "matmul views outside their slices");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            (0..m).for_each(|i| (0..n).for_each(|j| out[i * out_view.row_stride + j * out_view.col_stride] = 0.0));
        }
        return;
    }
    let threads = candle_core::utils::get_num_threads();
    // Below about a million multiply-adds, waking threads costs more than it saves.
    let parallelism = if threads > 1 && m * n * k > 1 << 20 { Parallelism::Rayon(threads) } else { Parallelism::None };
    let stride = |s: usize| s as isize;
    // SAFETY: every index the product touches lies inside its slice (checked above against
    // each view's extent), `out` is borrowed mutably and so aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            stride(out_view.col_stride),
            stride(out_view.row_stride),
            accumulate,
            a.as_ptr(),
            stride(a_view.col_stride),
            stride(a_view.row_stride),
            b.as_ptr(),
            stride(b_view.col_stride),
            stride(b_view.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_of_strided_views_match_the_definition() {
        // a: 2x3, b stored transposed (b^T is 4x3), out 2x4 inside a wider buffer.
        let a: Vec<f32> = (0..6).map(|x| x as f32 - 2.0).collect();
        let b_transposed: Vec<f32> = (0..12).map(|x| (x as f32) * 0.5 - 1.0).collect();
        let mut out = vec![1.0f32; 2 * 5];
        let out_view = Strided { rows: 2, cols: 4, row_stride: 5, col_stride: 1 };
        matmul(&mut out, out_view, &a, Strided::row_major(2, 3), &b_transposed, Strided::row_major(4, 3).t(), true);
        for i in 0..2 {
            for j in 0..4 {
                let expected: f32 = 1.0 + (0..3).map(|p| a[i * 3 + p] * b_transposed[j * 3 + p]).sum::<f32>();
                assert_eq!(out[i * 5 + j], expected);
            }
            assert_eq!(out[i * 5 + 4], 1.0, "outside the view stays as it was");
        }
    }
}
