//! Matrix products run once on host data (tests) or timed (benchmarks).

use super::run;
use crate::Activation;
use crate::error::Result;
use crate::gpu::{Gpu, MatmulDims, MatmulVariant, Slice};
use std::time::Instant;

/// How a matmul operand is laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `A [rows, cols]` used as is.
    Normal,
    /// `A [cols, rows]` used transposed.
    Transposed,
}

/// A matrix product `C [m, n] = act(A · B + bias)` on the GPU, with `A` `m×k` and `B` `k×n`
/// after applying their layouts. This is the kernel behind `X·Wᵀ` (B transposed), `dY·W`
/// (both normal) and `dYᵀ·X` (A transposed).
#[derive(Debug, Clone, Copy)]
pub struct MatmulShape {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// The summed dimension.
    pub k: usize,
    /// Layout of A.
    pub a: Layout,
    /// Layout of B.
    pub b: Layout,
}

impl MatmulShape {
    fn dims(&self, bias: bool, act: Activation) -> MatmulDims {
        let (a_row_stride, a_col_stride) = match self.a {
            Layout::Normal => (self.k, 1),
            Layout::Transposed => (1, self.m),
        };
        let (b_row_stride, b_col_stride) = match self.b {
            Layout::Normal => (self.n, 1),
            Layout::Transposed => (1, self.k),
        };
        MatmulDims {
            m: self.m as u32,
            n: self.n as u32,
            k: self.k as u32,
            a_row_stride: a_row_stride as u32,
            a_col_stride: a_col_stride as u32,
            b_row_stride: b_row_stride as u32,
            b_col_stride: b_col_stride as u32,
            epilogue: MatmulDims::epilogue(bias, act.code()),
        }
    }
}

/// Runs the matmul kernel this adapter prefers once.
pub fn matmul(
    gpu: &Gpu,
    shape: MatmulShape,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<Vec<f32>> {
    matmul_on(gpu, None, shape, a, b, bias, act)
}

/// Runs a chosen matmul kernel once (`None`: the one this adapter prefers). `Tiled`,
/// `SmallTiles` and `Blocked` run on any adapter; the others only where
/// [`try_matmul_on`] finds that they apply, and this panics elsewhere.
pub fn matmul_on(
    gpu: &Gpu,
    variant: Option<MatmulVariant>,
    shape: MatmulShape,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<Vec<f32>> {
    match try_matmul_on(gpu, variant, shape, a, b, bias, act)? {
        Some(c) => Ok(c),
        None => panic!("{variant:?} cannot compute {shape:?} on this adapter"),
    }
}

/// [`matmul_on`], or `None` when the variant cannot compute this product on this adapter
/// (its layout or sizes do not fit, or its kernels need features the adapter lacks).
///
/// # Errors
/// [`Error::LoopLimit`](crate::Error::LoopLimit) for a k that llvmpipe would cut short.
pub fn try_matmul_on(
    gpu: &Gpu,
    variant: Option<MatmulVariant>,
    shape: MatmulShape,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> Result<Option<Vec<f32>>> {
    crate::engine::loop_limit::check(gpu, || "the summed dimension k".into(), shape.k)?;
    let a_buf = gpu.upload("a", a)?;
    let b_buf = gpu.upload("b", b)?;
    let bias_buf = gpu.upload("bias", bias.unwrap_or(&[0.0]))?;
    let c = gpu.storage("c", (shape.m * shape.n) as u64 * 4)?;
    let dims = shape.dims(bias.is_some(), act);
    let (a_slice, b_slice, c_slice) = (Slice::all(&a_buf), Slice::all(&b_buf), Slice::all(&c));
    if !fits(gpu, variant, &dims, [&a_slice, &b_slice, &c_slice]) {
        return Ok(None);
    }
    let launch = gpu.matmul_variant(
        dims,
        a_slice,
        b_slice,
        Slice::all(&bias_buf),
        c_slice,
        variant,
    );
    run(gpu, &[&launch])?;
    gpu.read_f32(&c, 0, shape.m * shape.n, "reading a matmul result")
        .map(Some)
}

/// Whether `variant` (`None`: the adapter's choice, which always fits) can compute `dims`
/// from these operands (A, B, C).
fn fits(
    gpu: &Gpu,
    variant: Option<MatmulVariant>,
    dims: &MatmulDims,
    ops: [&Slice<'_>; 3],
) -> bool {
    variant.is_none_or(|v| gpu.kernels.matmul_applies(v, dims, ops))
}

/// Times `reps` runs of one matmul on random-free data after one warm-up (all that `reps` 0
/// does); returns the seconds per launch of each run. A run is one submission waited for, of
/// as many launches as take about 20 ms (at most 256), so that the submission's fixed cost
/// does not hide a fast kernel's time.
pub fn time_matmul(gpu: &Gpu, shape: MatmulShape, reps: usize) -> Result<Vec<f64>> {
    match time_matmul_on(gpu, None, shape, reps)? {
        Some(times) => Ok(times),
        None => panic!("the adapter's own matmul kernel cannot compute {shape:?}"),
    }
}

/// [`time_matmul`] on a chosen kernel (`None`: the one this adapter prefers), or `None` when
/// that kernel cannot compute this product on this adapter (see [`try_matmul_on`]).
pub fn time_matmul_on(
    gpu: &Gpu,
    variant: Option<MatmulVariant>,
    shape: MatmulShape,
    reps: usize,
) -> Result<Option<Vec<f64>>> {
    let a = gpu.upload("a", &vec![0.5f32; shape.m * shape.k])?;
    let b = gpu.upload("b", &vec![0.25f32; shape.k * shape.n])?;
    let c = gpu.storage("c", (shape.m * shape.n) as u64 * 4)?;
    let dims = shape.dims(false, Activation::Linear);
    let (a, b, c) = (Slice::all(&a), Slice::all(&b), Slice::all(&c));
    if !fits(gpu, variant, &dims, [&a, &b, &c]) {
        return Ok(None);
    }
    // The bias binding is not read (no bias in `dims`); A stands in for it.
    let launch = gpu.matmul_variant(dims, a, b, a, c, variant);
    // A warm-up launch first: drivers may compile a kernel on its first launch (llvmpipe
    // does), and that time must not size the batch.
    run(gpu, &[&launch])?;
    if reps == 0 {
        return Ok(Some(Vec::new()));
    }
    let started = Instant::now();
    run(gpu, &[&launch])?;
    let first = started.elapsed().as_secs_f64();
    let batch = ((0.02 / first.max(1e-6)) as usize).clamp(1, 256);
    let launches = vec![&launch; batch];
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        run(gpu, &launches)?;
        times.push(started.elapsed().as_secs_f64() / batch as f64);
    }
    Ok(Some(times))
}
