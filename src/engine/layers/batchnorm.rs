//! BatchNormalization on `shaders/batchnorm.wgsl`: in training the batch's statistics (two
//! passes of partial sums over chunks of samples, reduced in order), which also update the
//! moving statistics kept with the parameters; in evaluation the moving statistics.

use super::{LayerLaunch, Phase};
use crate::gpu::layer_kernels::{LayerKernel, NormDims};
use crate::gpu::{Dispatch, Slice, grid};
use crate::layer::{LayerKind, LayerSpec};

/// Samples of a channel each partial sum covers (see `CONV_CHUNK` for the reason).
const CHUNK: usize = 512;

fn dims(spec: &LayerSpec, rows: usize, variance_at: usize) -> NormDims {
    let LayerKind::BatchNormalization {
        momentum,
        epsilon,
        center,
        scale,
    } = spec.kind
    else {
        panic!("batchnorm launches for a {} layer", spec.kind.class_name());
    };
    let channels = *spec.in_shape.last().unwrap_or(&1);
    let positions = spec.inputs / channels.max(1);
    NormDims {
        rows: rows as u32,
        positions: positions as u32,
        channels: channels as u32,
        chunk: CHUNK as u32,
        chunks: (rows * positions).div_ceil(CHUNK).max(1) as u32,
        epsilon,
        momentum,
        center: u32::from(center),
        scale: u32::from(scale),
        variance_at: variance_at as u32,
        _pad: [0; 2],
    }
}

/// Floats of the two scratch buffers: the partial sums (two per chunk and channel), and per
/// channel the mean, the inverse standard deviation and the two gradient sums.
pub(super) fn scratch_floats(spec: &LayerSpec, rows: usize) -> Vec<usize> {
    let d = dims(spec, rows, 0);
    vec![
        2 * (d.chunks * d.channels) as usize,
        4 * d.channels as usize,
    ]
}

/// Bindings shared by the launches.
struct Buffers<'a> {
    d: NormDims,
    uniform: wgpu::Buffer,
    partials: &'a wgpu::Buffer,
    stats: &'a wgpu::Buffer,
    /// `moving_mean` through `moving_variance` in the parameters.
    moving: Slice<'a>,
    gamma: Slice<'a>,
    beta: Slice<'a>,
}

fn buffers<'a>(l: &'a LayerLaunch<'a>) -> Buffers<'a> {
    let params = &l.params.params;
    let (Some((mean_at, channels)), Some((variance_at, _))) = (
        l.layer.tensor("moving_mean"),
        l.layer.tensor("moving_variance"),
    ) else {
        panic!("a BatchNormalization layer without its moving statistics");
    };
    let moving = Slice::f32s(params, mean_at, variance_at - mean_at + channels);
    let [partials, stats] = l.scratch else {
        panic!("a BatchNormalization layer without its two scratch buffers");
    };
    let d = dims(&l.layer.spec, l.rows, variance_at - mean_at);
    Buffers {
        uniform: l.gpu().uniform("batch normalization", &d),
        d,
        partials,
        stats,
        // Without gamma or beta the kernels read none: any binding will do.
        gamma: l.tensor(params, "gamma").unwrap_or(moving),
        beta: l.tensor(params, "beta").unwrap_or(moving),
        moving,
    }
}

/// One launch of `which` over `items` invocations.
fn run(l: &LayerLaunch<'_>, which: LayerKernel, bindings: &[Slice<'_>], items: usize) -> Dispatch {
    let dev = &l.gpu().device;
    l.gpu()
        .kernels
        .layer(dev, which)
        .dispatch(dev, bindings, grid(items, 64))
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<(Phase, Dispatch)> {
    let b = buffers(l);
    let run = |which, bindings: &[Slice<'_>], items| run(l, which, bindings, items);
    let u = Slice::all(&b.uniform);
    let (x, y) = (Slice::all(l.input), Slice::all(l.output));
    let (partials, stats) = (Slice::all(b.partials), Slice::all(b.stats));
    let per_chunk = (b.d.chunks * b.d.channels) as usize;
    let channels = b.d.channels as usize;
    let elements = l.rows * l.layer.inputs;
    vec![
        // Σx per chunk; mean
        (
            Phase::Training,
            run(LayerKernel::NormSumPartials, &[u, x, partials], per_chunk),
        ),
        (
            Phase::Training,
            run(LayerKernel::NormMean, &[u, partials, stats], channels),
        ),
        // Σ(x − mean)² per chunk; 1/sqrt(var + eps) and the moving statistics
        (
            Phase::Training,
            run(
                LayerKernel::NormSquarePartials,
                &[u, x, stats, partials],
                per_chunk,
            ),
        ),
        (
            Phase::Training,
            run(
                LayerKernel::NormVariance,
                &[u, partials, stats, b.moving],
                channels,
            ),
        ),
        (
            Phase::Training,
            run(
                LayerKernel::Normalize,
                &[u, x, stats, b.gamma, b.beta, y],
                elements,
            ),
        ),
        (
            Phase::Evaluation,
            run(
                LayerKernel::NormalizeMoving,
                &[u, x, b.moving, b.gamma, b.beta, y],
                elements,
            ),
        ),
    ]
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let b = buffers(l);
    let run = |which, bindings: &[Slice<'_>], items| run(l, which, bindings, items);
    let u = Slice::all(&b.uniform);
    let (x, dy) = (Slice::all(l.input), Slice::all(l.d_output));
    let (partials, stats) = (Slice::all(b.partials), Slice::all(b.stats));
    let grads = l.grads;
    let unused = Slice::all(l.unused);
    let d_gamma = l.tensor(grads, "gamma").unwrap_or(unused);
    let d_beta = l.tensor(grads, "beta").unwrap_or(unused);
    let per_chunk = (b.d.chunks * b.d.channels) as usize;
    let mut out = vec![
        (
            "gradient partial sums",
            run(
                LayerKernel::NormGradPartials,
                &[u, x, stats, dy, partials],
                per_chunk,
            ),
        ),
        (
            "gamma and beta gradients",
            run(
                LayerKernel::NormGradSums,
                &[u, partials, stats, d_gamma, d_beta],
                b.d.channels as usize,
            ),
        ),
    ];
    if let Some(d_input) = l.d_input {
        out.push((
            "input gradient",
            run(
                LayerKernel::NormInputGrad,
                &[u, x, stats, b.gamma, dy, Slice::all(d_input)],
                l.rows * l.layer.inputs,
            ),
        ));
    }
    out
}
