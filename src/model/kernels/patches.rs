//! Non-overlapping patch convolutions (stride = kernel, no padding) as matrix products.
//!
//! candle runs these as direct convolutions, a dot product per output cell, and its
//! backward also computes a gradient for the phrase batch that nothing needs. With no
//! overlap, a patch convolution is only a rearrangement and one matrix product: patches
//! [cells, C·p·p] times the kernel. The bias rides along in the same op, so that its
//! gradient is one pass rather than a reduction over three dimensions. A phrase is read
//! bar by bar straight from its own layout, so no permuted copy of it (and in backward no
//! zero-filled gradient for each reshape and permute) is made.

use super::{column_sums, contiguous, filled, for_each_record, matmul, with_values, Strided};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use std::ops::Range;

/// The ops' name in their errors.
const OP: &str = "patch convolutions";

/// [phrases, in, bars·H, W] -> [phrases·bars, out, H / p, W / p] with `weight` [out, in, p,
/// p], `bias` [out]: each phrase cut into `bars` equal bars along its height (time), every
/// bar convolved as an item of its own (bar-major within a phrase).
pub fn patch_embed(x: &Tensor, weight: &Tensor, bias: &Tensor, bars: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, PatchEmbed { bars })
}

/// [phrases·bars, in, h, w] -> [phrases, out, bars·h·p, w·p] with `weight` [in, out, p, p],
/// `bias` [out]: the transpose of [`patch_embed`], the bars of a phrase joined in time.
pub fn patch_unembed(x: &Tensor, weight: &Tensor, bias: &Tensor, bars: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, PatchUnembed { bars })
}

/// The sizes of one patch convolution, named from the fine-grained side: `fine` channels at
/// full resolution (H = h·p, W = w·p), `coarse` channels at patch resolution (h, w). The
/// coarse side has `batch` items, each one bar of a phrase on the fine side, which holds
/// `bars` of them one after another in time.
#[derive(Clone, Copy, Debug)]
struct Patches {
    batch: usize,
    bars: usize,
    fine: usize,
    coarse: usize,
    h: usize,
    w: usize,
    p: usize,
}

impl Patches {
    /// Rows of the patch matrix: one per coarse cell.
    fn cells(&self) -> usize {
        self.batch * self.h * self.w
    }

    /// Columns of the patch matrix: one per fine channel and place in the patch.
    fn patch_size(&self) -> usize {
        self.fine * self.p * self.p
    }

    /// Elements of one phrase, in the fine tensor and in each layout of the patch matrix
    /// alike: each layout holds a phrase's elements together, one phrase after another.
    fn per_phrase(&self) -> usize {
        self.bars * self.h * self.w * self.patch_size()
    }

    /// Calls `copy(patch_matrix_offset, fine_offset)` for every run of `p` elements of
    /// `phrases` that lie together in both layouts (a patch's row in the fine tensor
    /// [phrases, fine, H, W]), both offsets counted from the first of `phrases`.
    fn for_each_run(&self, phrases: Range<usize>, mut copy: impl FnMut(usize, usize)) {
        let (p, width, bar_height) = (self.p, self.w * self.p, self.h * self.p);
        let columns = self.patch_size();
        for n in 0..phrases.len() * self.bars {
            let (phrase, bar) = (n / self.bars, n % self.bars);
            for i in 0..self.h {
                for j in 0..self.w {
                    let row = ((n * self.h + i) * self.w + j) * columns;
                    for c in 0..self.fine {
                        for a in 0..p {
                            let fine =
                                ((phrase * self.fine + c) * self.bars * bar_height + bar * bar_height + i * p + a)
                                    * width
                                    + j * p;
                            copy(row + (c * p + a) * p, fine);
                        }
                    }
                }
            }
        }
    }

    /// The fine tensor as the patch matrix [cells, fine·p·p], phrase by phrase on the
    /// worker pool's threads.
    fn gather_fine(&self, fine: &[f32]) -> Vec<f32> {
        let (p, per_phrase) = (self.p, self.per_phrase());
        let mut matrix = filled(self.cells() * self.patch_size(), 0.0);
        for_each_record(&mut matrix, per_phrase, per_phrase, |first, part| {
            let (phrases, fine) = (first..first + part.len() / per_phrase, &fine[first * per_phrase..]);
            self.for_each_run(phrases, |to, from| copy_run(&mut part[to..to + p], &fine[from..from + p]));
        });
        matrix
    }

    /// The patch matrix back into the fine layout, phrase by phrase on the worker pool's
    /// threads.
    fn scatter_fine(&self, matrix: &[f32]) -> Vec<f32> {
        let (p, per_phrase) = (self.p, self.per_phrase());
        let mut fine = filled(self.cells() * self.patch_size(), 0.0);
        for_each_record(&mut fine, per_phrase, per_phrase, |first, part| {
            let (phrases, matrix) = (first..first + part.len() / per_phrase, &matrix[first * per_phrase..]);
            self.for_each_run(phrases, |from, to| copy_run(&mut part[to..to + p], &matrix[from..from + p]));
        });
        fine
    }

    /// Index in the coarse tensor [batch, coarse, h, w] of (cell, coarse channel), both
    /// counted from the same item.
    fn coarse_index(&self, cell: usize, channel: usize) -> usize {
        let (n, rest) = (cell / (self.h * self.w), cell % (self.h * self.w));
        (n * self.coarse + channel) * self.h * self.w + rest
    }

    /// Elements of one item in the coarse tensor and in the matrix [cells, coarse] alike.
    fn per_item(&self) -> usize {
        self.h * self.w * self.coarse
    }

    /// The coarse tensor as a matrix [cells, coarse], item by item on the worker pool's
    /// threads.
    fn gather_coarse(&self, coarse: &[f32]) -> Vec<f32> {
        let per_item = self.per_item();
        let mut matrix = filled(self.cells() * self.coarse, 0.0);
        for_each_record(&mut matrix, per_item, per_item, |first, part| {
            let coarse = &coarse[first * per_item..];
            for (cell, row) in part.chunks_exact_mut(self.coarse).enumerate() {
                row.iter_mut().enumerate().for_each(|(channel, x)| *x = coarse[self.coarse_index(cell, channel)]);
            }
        });
        matrix
    }

    fn scatter_coarse(&self, matrix: &[f32]) -> Vec<f32> {
        let per_item = self.per_item();
        let mut coarse = filled(self.cells() * self.coarse, 0.0);
        for_each_record(&mut coarse, per_item, per_item, |first, part| {
            let matrix = &matrix[first * per_item..first * per_item + part.len()];
            for (cell, row) in matrix.chunks_exact(self.coarse).enumerate() {
                row.iter().enumerate().for_each(|(channel, &x)| part[self.coarse_index(cell, channel)] = x);
            }
        });
        coarse
    }

    fn fine_shape(&self) -> Shape {
        Shape::from((self.batch / self.bars, self.fine, self.bars * self.h * self.p, self.w * self.p))
    }

    fn coarse_shape(&self) -> Shape {
        Shape::from((self.batch, self.coarse, self.h, self.w))
    }
}

/// The bias gradient: the sum of each channel's gradient over every cell.
/// A few elements: as plain moves for the usual patch sizes, where a call to memmove per
/// run cost more than the matrix product.
fn copy_run(to: &mut [f32], from: &[f32]) {
    match (to.len(), <&mut [f32; 4]>::try_from(&mut *to), <&[f32; 4]>::try_from(from)) {
        (4, Ok(to), Ok(from)) => *to = *from,
        _ => to.copy_from_slice(from),
    }
}

struct PatchEmbed {
    bars: usize,
}

impl PatchEmbed {
    fn sizes(&self, x: &[usize], weight: &[usize], bias: &[usize]) -> Result<Patches> {
        let bars = self.bars;
        match (x, weight, bias) {
            ([phrases, fine, height, width], [coarse, fine_w, p, p2], [coarse_b]) if fine == fine_w && p == p2 && coarse == coarse_b && *p > 0 && bars > 0 && height % (bars * p) == 0 && width % p == 0 => {
                Ok(Patches { batch: phrases * bars, bars, fine: *fine, coarse: *coarse, h: height / (bars * p), w: width / p, p: *p })
            }
            _ => candle_core::bail!("patch_embed: shapes {x:?}, {weight:?}, {bias:?} in {bars} bars do not make a patch convolution (want [phrases, in, H, W], [out, in, p, p], [out], bars × p dividing H and p dividing W)"),
        }
    }
}

impl CustomOp3 for PatchEmbed {
    fn name(&self) -> &'static str {
        "patch-embed"
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
        let sizes = self.sizes(l1.dims(), l2.dims(), l3.dims())?;
        let (x, weight, bias) = (contiguous(s1, l1, OP)?, contiguous(s2, l2, OP)?, contiguous(s3, l3, OP)?);
        let patches = sizes.gather_fine(x);
        let mut out = bias.repeat(sizes.cells());
        // [cells, in·p·p] x [out, in·p·p]^T
        matmul(
            &mut out,
            Strided::row_major(sizes.cells(), sizes.coarse),
            &patches,
            Strided::row_major(sizes.cells(), sizes.patch_size()),
            weight,
            Strided::row_major(sizes.coarse, sizes.patch_size()).t(),
            true,
        );
        Ok((CpuStorage::F32(sizes.scatter_coarse(&out)), sizes.coarse_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let sizes = self.sizes(x.dims(), weight.dims(), bias.dims())?;
        let d_out = with_values(grad, OP, |grad| sizes.gather_coarse(grad))?;
        let (cells, columns) = (sizes.cells(), sizes.patch_size());
        let device = x.device();
        let d_x = if x.track_op() {
            let mut d_patches = filled(cells * columns, 0.0);
            with_values(weight, OP, |weight| {
                matmul(
                    &mut d_patches,
                    Strided::row_major(cells, columns),
                    &d_out,
                    Strided::row_major(cells, sizes.coarse),
                    weight,
                    Strided::row_major(sizes.coarse, columns),
                    false,
                )
            })?;
            Some(Tensor::from_vec(sizes.scatter_fine(&d_patches), sizes.fine_shape(), device)?)
        } else {
            None
        };
        let d_weight = if weight.track_op() {
            let patches = with_values(x, OP, |x| sizes.gather_fine(x))?;
            let mut d_weight = vec![0f32; sizes.coarse * columns];
            matmul(
                &mut d_weight,
                Strided::row_major(sizes.coarse, columns),
                &d_out,
                Strided::row_major(cells, sizes.coarse).t(),
                &patches,
                Strided::row_major(cells, columns),
                false,
            );
            Some(Tensor::from_vec(d_weight, weight.shape(), device)?)
        } else {
            None
        };
        let d_bias = if bias.track_op() {
            Some(Tensor::from_vec(column_sums(&d_out, sizes.coarse), sizes.coarse, device)?)
        } else {
            None
        };
        Ok((d_x, d_weight, d_bias))
    }
}

struct PatchUnembed {
    bars: usize,
}

impl PatchUnembed {
    fn sizes(&self, x: &[usize], weight: &[usize], bias: &[usize]) -> Result<Patches> {
        let bars = self.bars;
        match (x, weight, bias) {
            ([batch, coarse, h, w], [coarse_w, fine, p, p2], [fine_b]) if coarse == coarse_w && p == p2 && fine == fine_b && *p > 0 && bars > 0 && batch % bars == 0 => {
                Ok(Patches { batch: *batch, bars, fine: *fine, coarse: *coarse, h: *h, w: *w, p: *p })
            }
            _ => candle_core::bail!("patch_unembed: shapes {x:?}, {weight:?}, {bias:?} in {bars} bars do not make a patch convolution (want [phrases × bars, in, h, w], [in, out, p, p], [out])"),
        }
    }
}

impl CustomOp3 for PatchUnembed {
    fn name(&self) -> &'static str {
        "patch-unembed"
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
        let sizes = self.sizes(l1.dims(), l2.dims(), l3.dims())?;
        let (x, weight, bias) = (contiguous(s1, l1, OP)?, contiguous(s2, l2, OP)?, contiguous(s3, l3, OP)?);
        let (cells, columns) = (sizes.cells(), sizes.patch_size());
        // Every row of the patch matrix starts as the bias of each place of each channel: one
        // row built, then copied (an iterator of iterators per element was slower than the
        // product).
        let bias_row: Vec<f32> = bias.iter().flat_map(|&b| std::iter::repeat_n(b, sizes.p * sizes.p)).collect();
        let mut out = bias_row.repeat(cells);
        // [cells, in] x [in, out·p·p]
        matmul(
            &mut out,
            Strided::row_major(cells, columns),
            &sizes.gather_coarse(x),
            Strided::row_major(cells, sizes.coarse),
            weight,
            Strided::row_major(sizes.coarse, columns),
            true,
        );
        Ok((CpuStorage::F32(sizes.scatter_fine(&out)), sizes.fine_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let sizes = self.sizes(x.dims(), weight.dims(), bias.dims())?;
        let (cells, columns) = (sizes.cells(), sizes.patch_size());
        let d_out = with_values(grad, OP, |grad| sizes.gather_fine(grad))?;
        let device = x.device();
        let d_x = if x.track_op() {
            let mut d_matrix = filled(cells * sizes.coarse, 0.0);
            with_values(weight, OP, |weight| {
                matmul(
                    &mut d_matrix,
                    Strided::row_major(cells, sizes.coarse),
                    &d_out,
                    Strided::row_major(cells, columns),
                    weight,
                    Strided::row_major(sizes.coarse, columns).t(),
                    false,
                )
            })?;
            Some(Tensor::from_vec(sizes.scatter_coarse(&d_matrix), sizes.coarse_shape(), device)?)
        } else {
            None
        };
        let d_weight = if weight.track_op() {
            let mut d_weight = vec![0f32; sizes.coarse * columns];
            matmul(
                &mut d_weight,
                Strided::row_major(sizes.coarse, columns),
                &with_values(x, OP, |x| sizes.gather_coarse(x))?,
                Strided::row_major(cells, sizes.coarse).t(),
                &d_out,
                Strided::row_major(cells, columns),
                false,
            );
            Some(Tensor::from_vec(d_weight, weight.shape(), device)?)
        } else {
            None
        };
        let d_bias = if bias.track_op() {
            let per_column = column_sums(&d_out, columns);
            Some(Tensor::from_vec(
                per_column.chunks_exact(sizes.p * sizes.p).map(|c| c.iter().sum()).collect::<Vec<f32>>(),
                sizes.fine,
                device,
            )?)
        } else {
            None
        };
        Ok((d_x, d_weight, d_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn random(shape: &[usize], seed: u64) -> Var {
        super::super::random_var(shape, seed, 1.0)
    }

    fn loss(y: &Tensor) -> Tensor {
        let weights = Tensor::arange(0f32, y.elem_count() as f32, &Device::Cpu).unwrap().reshape(y.shape()).unwrap();
        y.mul(&(weights * 0.37).unwrap().cos().unwrap()).unwrap().sum_all().unwrap()
    }

    fn relative(a: &Tensor, b: &Tensor) -> f32 {
        let norm = |t: &Tensor| t.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap();
        norm(&(a - b).unwrap()) / norm(b).max(1e-12)
    }

    /// Both ops against candle's convolutions, values and every gradient: at a small size,
    /// and at one where every rearrangement is shared out on the worker pool.
    #[test]
    fn patch_convolutions_match_candles_convolutions() {
        // The bias gradients sum a channel's every cell, 49 152 of them at the larger size,
        // in another order than candle's: f32 rounding apart, hence the wider tolerance.
        for (phrases, fine, coarse, height, width, p, tolerance) in
            [(3, 4, 5, 6, 8, 2, 1e-5), (16, 4, 16, 64, 48, 4, 1e-4)]
        {
            let (x, w, b) =
                (random(&[phrases, fine, height, width], 1), random(&[coarse, fine, p, p], 2), random(&[coarse], 3));
            let fused = patch_embed(&x, &w, &b, 1).unwrap();
            let reference =
                x.conv2d(&w, 0, p, 1, 1).unwrap().broadcast_add(&b.reshape((1, coarse, 1, 1)).unwrap()).unwrap();
            assert!(relative(&fused, &reference) < 1e-6);
            let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
            for var in [&x, &w, &b] {
                assert!(relative(g1.get(var).unwrap(), g2.get(var).unwrap()) < tolerance);
            }

            let (x, w, b) = (
                random(&[phrases, coarse, height / p, width / p], 4),
                random(&[coarse, fine, p, p], 5),
                random(&[fine], 6),
            );
            let fused = patch_unembed(&x, &w, &b, 1).unwrap();
            let reference = x
                .conv_transpose2d(&w, 0, 0, p, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, fine, 1, 1)).unwrap())
                .unwrap();
            assert_eq!(fused.dims(), &[phrases, fine, height, width]);
            assert!(relative(&fused, &reference) < 1e-6);
            let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
            for var in [&x, &w, &b] {
                assert!(relative(g1.get(var).unwrap(), g2.get(var).unwrap()) < tolerance);
            }
        }
    }

    /// Reading a phrase bar by bar is the convolution of its bars split off first, and
    /// writing one is the convolution's bars joined after: the same values and gradients.
    #[test]
    fn phrases_read_and_written_bar_by_bar_match_the_split_bars() {
        use crate::model::layers::{bars_to_phrase, phrase_to_bars};
        let (p, bars) = (2, 3);
        let (x, w, b) = (random(&[2, 4, bars * 4, 6], 10), random(&[5, 4, p, p], 11), random(&[5], 12));
        let fused = patch_embed(&x, &w, &b, bars).unwrap();
        let reference = patch_embed(&phrase_to_bars(&x, bars).unwrap(), &w, &b, 1).unwrap();
        assert_eq!(
            fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            reference.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
        for var in [&x, &w, &b] {
            assert!(relative(g1.get(var).unwrap(), g2.get(var).unwrap()) < 1e-6);
        }

        let (x, w, b) = (random(&[2 * bars, 5, 2, 3], 13), random(&[5, 4, p, p], 14), random(&[4], 15));
        let fused = patch_unembed(&x, &w, &b, bars).unwrap();
        let reference = bars_to_phrase(&patch_unembed(&x, &w, &b, 1).unwrap(), bars).unwrap();
        assert_eq!(fused.dims(), &[2, 4, bars * 4, 6]);
        assert_eq!(
            fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            reference.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let (g1, g2) = (loss(&fused).backward().unwrap(), loss(&reference).backward().unwrap());
        for var in [&x, &w, &b] {
            assert!(relative(g1.get(var).unwrap(), g2.get(var).unwrap()) < 1e-6);
        }
        let error = patch_unembed(&x, &w, &b, 4).unwrap_err().to_string();
        assert!(error.contains("in 4 bars do not make"), "{error}");
    }

    #[test]
    fn a_constant_phrase_batch_gets_no_gradient() {
        let x = random(&[2, 3, 4, 4], 1).as_tensor().detach();
        let (w, b) = (random(&[2, 3, 2, 2], 2), random(&[2], 3));
        let grads = loss(&patch_embed(&x, &w, &b, 1).unwrap()).backward().unwrap();
        assert!(grads.get(&x).is_none() && grads.get(&w).is_some() && grads.get(&b).is_some());
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (x, w, b) = (random(&[2, 3, 2, 2], 7), random(&[3, 2, 2, 2], 8), random(&[2], 9));
        super::super::assert_gradients_match_finite_differences(
            &[&x, &w, &b],
            |x| loss(&patch_unembed(&x[0], &x[1], &x[2], 1).unwrap()),
            1e-2,
            1,
            1e-3,
        );
    }

    #[test]
    fn shapes_that_are_not_patch_convolutions_are_refused_in_words() {
        let (x, w, b) = (random(&[1, 3, 5, 4], 1), random(&[2, 3, 2, 2], 2), random(&[2], 3));
        let error = patch_embed(&x, &w, &b, 1).unwrap_err().to_string();
        assert!(error.contains("do not make a patch convolution"), "{error}");
    }
}
