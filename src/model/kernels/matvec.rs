//! The sampler's matrix-vector products: writing a phrase is one small product after another
//! (the recurrence, then each voice's head), and most of its time is spent here.

use super::widest_simd;

widest_simd! {
/// `out[row] += matrix[row] · x` for each of `rows`, `matrix` row-major, `x.len()` wide.
/// Each dot product runs in eight lanes summed in a fixed order, so every CPU path gives the
/// same scores bit for bit, and the same notes.
pub fn multiply_add_rows(matrix: &[f32], rows: impl Iterator<Item = usize>, x: &[f32], out: &mut [f32]) {
    let columns = x.len();
    for row in rows {
        out[row] += dot(&matrix[row * columns..(row + 1) * columns], x);
    }
}
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_dot_products_added_to_what_is_there_and_other_rows_are_left() {
        // Three rows of 19 columns: two full chunks of eight and a tail of three.
        let columns = 19;
        let matrix: Vec<f32> = (0..3 * columns).map(|i| (i % 7) as f32 - 3.0).collect();
        let x: Vec<f32> = (0..columns).map(|i| 0.5 * i as f32).collect();
        let mut out = vec![1.0, 2.0, 3.0];
        multiply_add_rows(&matrix, [0, 2].into_iter(), &x, &mut out);
        let reference =
            |row: usize| -> f32 { matrix[row * columns..(row + 1) * columns].iter().zip(&x).map(|(a, b)| a * b).sum() };
        assert_eq!(out[0], 1.0 + reference(0));
        assert_eq!(out[1], 2.0, "a row not asked for");
        assert_eq!(out[2], 3.0 + reference(2));
    }
}
