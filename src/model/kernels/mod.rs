//! Fused CPU kernels for what candle's element-wise graph makes slow in training: each is a
//! candle custom op with its own backward, checked against candle's composite ops and
//! against finite differences. On other devices the networks use the composite ops. Beside
//! them, the sampler's matrix-vector product (`matvec`) and the piano-roll decoder's onset
//! cutoffs (`onset_cutoffs`), which are no ops of a graph.
//!
//! The one place in the crate where `unsafe` is allowed: SIMD intrinsics and split buffers
//! shared between threads, each with its safety argument beside it.
#![allow(unsafe_code)]

pub mod bce;
pub mod choice_loss;
pub mod dilated;
pub mod gru;
pub mod linear;
pub mod matvec;
pub mod onset_cutoffs;
pub mod patches;
pub mod picked_rows;
pub mod table_scores;

use candle_core::{CpuStorage, Layout, Result, Tensor};
use gemm::Parallelism;
use std::marker::PhantomData;
use std::ops::Range;

/// Defines a function whose body is compiled three times, for AVX-512, for AVX2 with FMA
/// and for the baseline x86-64 every build targets, and runs the widest this CPU has (the
/// check is a cached load). The element-wise loops with exponentials run two to three times
/// faster at 8 or 16 lanes than at the baseline's 4. Rust never fuses a multiply and an add
/// on its own, so every version computes the same numbers.
macro_rules! widest_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use widest_simd;

/// Below this many element operations a loop runs on the calling thread alone: handing
/// work to another thread and waiting for it costs a few microseconds.
const PARALLEL_MIN_WORK: usize = 1 << 15;

/// Runs `work` over `0..items` in one contiguous range per thread of candle's own worker
/// pool (the threads its element-wise ops run on, awake between ops), or at once on this
/// thread when `items × cost_per_item` is too little to share (and then the pool is not
/// started for it). Each item must be independent of the others; every item is computed
/// exactly as it would be in one range, so results do not depend on the thread count.
///
/// The pool is one per process, shared by every plugin instance in a host, and a panic
/// unwinding through it poisons its lock for good; so a panic in `work`, on whichever
/// thread, is caught there and resumed here once the pool is done, where the engine's own
/// catch reports it.
fn parallel_for(items: usize, cost_per_item: usize, work: impl Fn(Range<usize>) + Sync) {
    if items < 2 || items * cost_per_item < PARALLEL_MIN_WORK {
        return work(0..items);
    }
    let pool = candle_core::utils::barrier_pool();
    if pool.n_workers() == 0 {
        return work(0..items);
    }
    let chunk = items.div_ceil(pool.n_workers() + 1);
    let first_panic = std::sync::Mutex::new(None);
    pool.execute(|part| {
        let start = part * chunk;
        if start < items {
            if let Err(panic) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(start..items.min(start + chunk))))
            {
                first_panic.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(panic);
            }
        }
    });
    if let Some(panic) = first_panic.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `work(offset, piece)` over `values` cut into one piece per thread of candle's
/// worker pool (see [`parallel_for`]), `offset` being where the piece starts: an
/// element-wise update in place, shared out safely.
pub fn for_each_piece(values: &mut [f32], cost_per_element: usize, work: impl Fn(usize, &mut [f32]) + Sync) {
    for_each_record(values, 1, cost_per_element, work);
}

/// [`for_each_piece`] for `values` made of records of `record_len` elements each, cut only
/// between records: `work(first, piece)` writes records `first..` (a phrase's entries, say,
/// that depend on the phrase's steps before them but on no other phrase).
pub fn for_each_record<T: Send>(
    values: &mut [T],
    record_len: usize,
    cost_per_record: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    assert!(
        record_len > 0 && values.len().is_multiple_of(record_len),
        "{} values in records of {record_len}",
        values.len()
    );
    let all_values = DisjointWrites::new(values);
    parallel_for(all_values.len / record_len, cost_per_record, |records| {
        // SAFETY: the parts of `parallel_for` are disjoint ranges of records.
        work(records.start, unsafe { all_values.part(records.start * record_len..records.end * record_len) });
    });
}

/// Elements per piece of a fill shared between threads.
const FILL_PIECE: usize = 1 << 14;

/// `vec![value; len]`, written by the pool's threads when it is large. The trainer keeps
/// freed memory, so each of a step's big buffers is written over before use; done on one
/// thread, those fills were a tenth of a voices step while the other thread waited.
fn filled(len: usize, value: f32) -> Vec<f32> {
    let mut buffer = Vec::with_capacity(len);
    let spare = DisjointWrites::new(&mut buffer.spare_capacity_mut()[..len]);
    parallel_for(len.div_ceil(FILL_PIECE), FILL_PIECE / 4, |part| {
        // SAFETY: the parts of `parallel_for` are disjoint ranges of pieces.
        let piece = unsafe { spare.part(part.start * FILL_PIECE..(part.end * FILL_PIECE).min(len)) };
        piece.iter_mut().for_each(|x| {
            x.write(value);
        });
    });
    // SAFETY: every element of 0..len was written above.
    unsafe { buffer.set_len(len) };
    buffer
}

/// A slice that the ranges of [`parallel_for`] write in disjoint parts.
struct DisjointWrites<'a, T = f32> {
    start: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: the slice is borrowed mutably for 'a, so only `part` reaches it, and `part`'s
// contract keeps the threads' parts apart.
unsafe impl<T: Send> Send for DisjointWrites<'_, T> {}
unsafe impl<T: Send> Sync for DisjointWrites<'_, T> {}

impl<'a, T> DisjointWrites<'a, T> {
    fn new(slice: &'a mut [T]) -> DisjointWrites<'a, T> {
        DisjointWrites { start: slice.as_mut_ptr(), len: slice.len(), _borrow: PhantomData }
    }

    /// The elements `range` of the slice.
    ///
    /// # Safety
    /// No two parts in use at the same time may overlap.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, range: Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.len, "part {range:?} of a slice of {}", self.len);
        // SAFETY: inside the borrowed slice (checked above); disjointness is the caller's.
        unsafe { std::slice::from_raw_parts_mut(self.start.add(range.start), range.len()) }
    }
}

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

/// e^x in straight-line arithmetic that the compiler vectorises: libm's `expf` is a call
/// per element, and the GRU's gates and the BCE spent most of their element-wise time in
/// it. x = n ln 2 + r with |r| ≤ ln 2 / 2 (n rounded by the 1.5 · 2²³ trick, which needs
/// no rounding instruction), e^r by Cephes' polynomial, 2^n built in the exponent bits.
/// Relative error a few parts in 10⁷; x is clamped to where e^x is a normal f32 (from −86:
/// at −87 the result can fall below 2⁻¹²⁶, and arithmetic on subnormal numbers is a slow
/// microcode path on this CPU).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUNDING: f32 = 12_582_912.0;
    let x = x.clamp(-86.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUNDING;
    let n = shifted - ROUNDING;
    // n as an integer, read off the bits of the shifted sum (whose last mantissa bits hold
    // it): a float-to-int conversion would keep the loop from vectorising.
    let whole = shifted.to_bits().wrapping_sub(ROUNDING.to_bits());
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 5e-1;
    (p * r * r + r + 1.0) * f32::from_bits(whole.wrapping_add(127) << 23)
}

/// ln(1 + e) for e in [0, 1], vectorisable as [`exp`] is: 2 atanh(s) with s = e / (2 + e)
/// ≤ 1/3, whose odd series to s¹⁵ is within a few parts in 10⁸ and, unlike log(1 + e),
/// loses nothing to cancellation when e is tiny.
#[inline(always)]
fn ln_1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0)))))));
    2.0 * s * series
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
    candle_core::Var::from_tensor(
        &(Tensor::from_vec(values, shape, &candle_core::Device::Cpu).unwrap() * scale).unwrap(),
    )
    .unwrap()
}

/// Checks the gradients backward gives `inputs` against central differences of `loss`,
/// which is handed every input's current values (one of them moved by ±`delta` at a time),
/// at every `stride`-th element of each input: what every kernel's test does for its op.
#[cfg(test)]
fn assert_gradients_match_finite_differences(
    inputs: &[&candle_core::Var],
    loss: impl Fn(&[Tensor]) -> Tensor,
    delta: f32,
    stride: usize,
    tolerance: f64,
) {
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let current: Vec<Tensor> = inputs.iter().map(|var| var.as_tensor().clone()).collect();
    let grads = loss(&current).backward().unwrap();
    for (which, var) in inputs.iter().enumerate() {
        let analytic = values(grads.get(var).unwrap());
        let base = values(var.as_tensor());
        for index in (0..base.len()).step_by(stride) {
            let at = |moved_by: f32| {
                let mut moved = base.clone();
                moved[index] += moved_by;
                let mut args = current.clone();
                args[which] = Tensor::from_vec(moved, var.shape(), &candle_core::Device::Cpu).unwrap();
                f64::from(loss(&args).to_scalar::<f32>().unwrap())
            };
            let numeric = (at(delta) - at(-delta)) / (2.0 * f64::from(delta));
            assert!(
                (numeric - f64::from(analytic[index])).abs() < tolerance * (1.0 + numeric.abs()),
                "input {which}, element {index}: numeric {numeric}, analytic {}",
                analytic[index]
            );
        }
    }
}

/// The gradients of `x` [rows, in] and `weight` [out, in] in y = x · weightᵀ from y's
/// gradient `g` [rows, out], each only where it is tracked: every linear-like op's
/// backward.
fn product_gradients(x: &Tensor, weight: &Tensor, g: &[f32], op: &str) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let ((rows, inputs), outputs) = (x.dims2()?, weight.dim(0)?);
    let d_x = if x.track_op() {
        let mut d_x = filled(rows * inputs, 0.0);
        with_values(weight, op, |weight| {
            matmul(
                &mut d_x,
                Strided::row_major(rows, inputs),
                g,
                Strided::row_major(rows, outputs),
                weight,
                Strided::row_major(outputs, inputs),
                false,
            )
        })?;
        Some(Tensor::from_vec(d_x, (rows, inputs), x.device())?)
    } else {
        None
    };
    let d_weight = if weight.track_op() {
        let mut d_weight = vec![0f32; outputs * inputs];
        with_values(x, op, |x| {
            matmul(
                &mut d_weight,
                Strided::row_major(outputs, inputs),
                g,
                Strided::row_major(rows, outputs).t(),
                x,
                Strided::row_major(rows, inputs),
                false,
            )
        })?;
        Some(Tensor::from_vec(d_weight, (outputs, inputs), x.device())?)
    } else {
        None
    };
    Ok((d_x, d_weight))
}

/// Runs `read` on a CPU tensor's values, borrowed from its storage (the tensor made
/// contiguous first only where it is not): a backward pass reads its large inputs without
/// a copy of each.
fn with_values<R>(t: &Tensor, op: &str, read: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    Ok(read(cpu_values(&storage, layout, op)?))
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

/// Multiply-adds below which a product runs on the calling thread alone.
const PARALLEL_MIN_PRODUCT: usize = 1 << 22;

/// `out (+)= a · b` for matrices laid out by their [`Strided`] views; `accumulate` keeps
/// what `out` held. A large product is cut into as many blocks of rows of `out` (or of
/// columns, where those are what lie apart in memory) as candle's pool has threads, each
/// block one single-threaded product: products and the element-wise kernels then share one
/// set of threads, rather than gemm waking its own while candle's still spin.
pub fn matmul(
    out: &mut [f32],
    out_view: Strided,
    a: &[f32],
    a_view: Strided,
    b: &[f32],
    b_view: Strided,
    accumulate: bool,
) {
    let (m, k, n) = (a_view.rows, a_view.cols, b_view.cols);
    let rows_apart = out_view.row_stride >= out_view.cols * out_view.col_stride;
    let columns_apart = out_view.col_stride >= out_view.rows * out_view.row_stride;
    // Below about four million multiply-adds (a tenth of a millisecond), waking another
    // thread costs more than it saves once the machine is busy: a render of a few bars
    // (whose largest product is about a million) stays on its own thread, as a plugin's
    // should beside a host's audio threads.
    if m * n * k <= PARALLEL_MIN_PRODUCT || !(rows_apart || columns_apart) {
        return matmul_on_this_thread(out, out_view, a, a_view, b, b_view, accumulate);
    }
    let all_out = DisjointWrites::new(out);
    let (items, cost_per_item) = if rows_apart { (m, k * n) } else { (n, k * m) };
    parallel_for(items, cost_per_item, |part| {
        let (rows, columns) = if rows_apart { (part, 0..n) } else { (0..m, part) };
        let first = rows.start * out_view.row_stride + columns.start * out_view.col_stride;
        let block_view = Strided { rows: rows.len(), cols: columns.len(), ..out_view };
        // SAFETY: a block reaches from its first element to `extent` past it, and blocks of
        // distinct rows (columns) of a layout whose rows (columns) lie apart do not overlap.
        let block = unsafe { all_out.part(first..first + block_view.extent()) };
        let a_block = Strided { rows: rows.len(), ..a_view };
        let b_block = Strided { cols: columns.len(), ..b_view };
        matmul_on_this_thread(
            block,
            block_view,
            &a[rows.start * a_view.row_stride..],
            a_block,
            &b[columns.start * b_view.col_stride..],
            b_block,
            accumulate,
        );
    });
}

fn matmul_on_this_thread(
    out: &mut [f32],
    out_view: Strided,
    a: &[f32],
    a_view: Strided,
    b: &[f32],
    b_view: Strided,
    accumulate: bool,
) {
    let (m, k, n) = (a_view.rows, a_view.cols, b_view.cols);
    assert!(
        b_view.rows == k && out_view.rows == m && out_view.cols == n,
        "matmul shapes: {a_view:?} x {b_view:?} -> {out_view:?}"
    );
    assert!(
        a.len() >= a_view.extent() && b.len() >= b_view.extent() && out.len() >= out_view.extent(),
        "matmul views outside their slices"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            (0..m).for_each(|i| (0..n).for_each(|j| out[i * out_view.row_stride + j * out_view.col_stride] = 0.0));
        }
        return;
    }
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
            Parallelism::None,
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

    #[test]
    fn the_vectorisable_exp_and_log_are_close_to_the_exact_ones() {
        let mut worst = 0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 * 0.001;
            let exact = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - exact).abs() / exact);
        }
        assert!(worst < 4e-7, "exp: relative error {worst}");
        assert!(exp(-200.0) > 0.0 && exp(-200.0) < 1e-37 && exp(200.0).is_finite(), "clamped, not zero or infinite");
        let mut worst = 0f64;
        for i in 0..=100_000 {
            let e = i as f32 * 1e-5;
            let exact = f64::from(e).ln_1p();
            worst = worst.max((f64::from(ln_1p_unit(e)) - exact).abs() / exact.max(f64::MIN_POSITIVE));
        }
        assert!(worst < 4e-7, "ln(1 + e): relative error {worst}");
        assert_eq!(ln_1p_unit(0.0), 0.0);
        assert!((ln_1p_unit(1e-30) / 1e-30 - 1.0).abs() < 1e-6, "no cancellation for tiny e");
    }

    #[test]
    fn pieces_shared_between_threads_cover_every_element_once() {
        let mut values = vec![0f32; 100_003];
        for_each_piece(&mut values, 10, |offset, piece| {
            piece.iter_mut().enumerate().for_each(|(i, x)| *x += (offset + i) as f32)
        });
        assert!(values.iter().enumerate().all(|(i, &x)| x == i as f32));
    }

    #[test]
    fn a_panic_in_shared_work_reaches_the_caller_and_leaves_the_pool_working() {
        for panicking_part in [0, usize::MAX] {
            let panicked = std::panic::catch_unwind(|| {
                parallel_for(100_000, 10, |part| {
                    // The first part runs on a pool thread, the last on this one.
                    if part.start == 0 && panicking_part == 0 || part.end == 100_000 && panicking_part == usize::MAX {
                        panic!("a kernel fault");
                    }
                })
            });
            let payload = panicked.expect_err("the panic reaches the caller");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"a kernel fault"));
            let mut values = vec![0f32; 100_003];
            for_each_piece(&mut values, 10, |offset, piece| {
                piece.iter_mut().enumerate().for_each(|(i, x)| *x = (offset + i) as f32)
            });
            assert!(values.iter().enumerate().all(|(i, &x)| x == i as f32), "the pool still shares work");
        }
        let generator = crate::model::default_generator().unwrap();
        let request = crate::model::generator::RenderRequest {
            bars: 2,
            seed: 1,
            knobs: vec![],
            variation: 0.2,
            temperature: None,
            density: 0.0,
            named: Vec::new(),
            style: None,
        };
        assert!(!generator.render(&request).unwrap().notes().is_empty(), "and a model renders");
    }

    #[test]
    fn a_fill_shared_between_threads_writes_every_element() {
        for len in [0, 5, FILL_PIECE * 9 + 17] {
            let buffer = filled(len, 1.5);
            assert_eq!((buffer.len(), buffer.iter().all(|&x| x == 1.5)), (len, true));
        }
    }

    #[test]
    fn a_product_shared_between_threads_matches_the_definition() {
        // Large enough to be cut into blocks: by rows into a row-major `out`, by columns
        // into a transposed one.
        let (m, k, n) = (131, 300, 117);
        let a: Vec<f32> = crate::model::latent::noise(1, m * k);
        let b: Vec<f32> = crate::model::latent::noise(2, k * n);
        let expected =
            |i: usize, j: usize| (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j])).sum::<f64>();
        for out_view in [Strided::row_major(m, n), Strided::row_major(n, m).t()] {
            let mut out = vec![0.5f32; m * n];
            matmul(&mut out, out_view, &a, Strided::row_major(m, k), &b, Strided::row_major(k, n), true);
            for i in 0..m {
                for j in 0..n {
                    let got = f64::from(out[i * out_view.row_stride + j * out_view.col_stride]);
                    assert!((got - 0.5 - expected(i, j)).abs() < 1e-4, "({i}, {j}) of {out_view:?}: {got}");
                }
            }
        }
    }
}
