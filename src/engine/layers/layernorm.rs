//! LayerNormalization on `shaders/layernorm.wgsl`: each sample normalized over the last axis by
//! its own mean and variance (one invocation a sample, channels summed in order), the same in
//! training and evaluation; `gamma` and `beta`'s gradients as partial sums over chunks of
//! samples reduced in chunk order.

use super::{LayerLaunch, Phase};
use crate::gpu::layer_kernels::{LayerKernel, LayerNormDims};
use crate::gpu::{Dispatch, Slice, grid};
use crate::layer::{LayerKind, LayerSpec};

/// Samples each partial sum of the gradients covers (see `CONV_CHUNK` for the reason).
const CHUNK: usize = 512;

fn dims(spec: &LayerSpec, rows: usize) -> LayerNormDims {
    let LayerKind::LayerNormalization {
        epsilon,
        center,
        scale,
    } = spec.kind
    else {
        panic!("layernorm launches for a {} layer", spec.kind.class_name());
    };
    let channels = *spec.in_shape.last().unwrap_or(&1);
    let samples = rows * spec.inputs / channels.max(1);
    LayerNormDims {
        samples: samples as u32,
        channels: channels as u32,
        chunk: CHUNK as u32,
        chunks: samples.div_ceil(CHUNK).max(1) as u32,
        epsilon,
        center: u32::from(center),
        scale: u32::from(scale),
        _pad: 0,
    }
}

/// Floats of the two scratch buffers: each sample's mean and inverse standard deviation, and
/// the gradients' partial sums (two per chunk and channel).
pub(super) fn scratch_floats(spec: &LayerSpec, rows: usize) -> Vec<usize> {
    let d = dims(spec, rows);
    vec![2 * d.samples as usize, 2 * (d.chunks * d.channels) as usize]
}

/// The launch of `which` over `items` invocations.
fn run(l: &LayerLaunch<'_>, which: LayerKernel, bindings: &[Slice<'_>], items: usize) -> Dispatch {
    let dev = &l.gpu().device;
    l.gpu()
        .kernels
        .layer(dev, which)
        .dispatch(dev, bindings, grid(items, 64))
}

fn scratch<'a>(l: &'a LayerLaunch<'a>) -> (&'a wgpu::Buffer, &'a wgpu::Buffer) {
    match l.scratch {
        [stats, partials] => (stats, partials),
        _ => panic!("a LayerNormalization layer without its two scratch buffers"),
    }
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<(Phase, Dispatch)> {
    let d = dims(&l.layer.spec, l.rows);
    let uniform = l.gpu().uniform("layer normalization", &d);
    let (stats, _) = scratch(l);
    let params = &l.params.params;
    // Without gamma or beta the kernel reads none: any binding will do.
    let unused = Slice::all(l.unused);
    let gamma = l.tensor(params, "gamma").unwrap_or(unused);
    let beta = l.tensor(params, "beta").unwrap_or(unused);
    vec![(
        Phase::Always,
        run(
            l,
            LayerKernel::LayerNormForward,
            &[
                Slice::all(&uniform),
                Slice::all(l.input),
                gamma,
                beta,
                Slice::all(l.output),
                Slice::all(stats),
            ],
            d.samples as usize,
        ),
    )]
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let d = dims(&l.layer.spec, l.rows);
    let uniform = l.gpu().uniform("layer normalization backward", &d);
    let u = Slice::all(&uniform);
    let (stats, partials) = scratch(l);
    let (stats, partials) = (Slice::all(stats), Slice::all(partials));
    let (x, dy) = (Slice::all(l.input), Slice::all(l.d_output));
    let unused = Slice::all(l.unused);
    let grads = l.grads;
    let d_gamma = l.tensor(grads, "gamma").unwrap_or(unused);
    let d_beta = l.tensor(grads, "beta").unwrap_or(unused);
    let gamma = l.tensor(&l.params.params, "gamma").unwrap_or(unused);
    let mut out = vec![
        (
            "gradient partial sums",
            run(
                l,
                LayerKernel::LayerNormGradPartials,
                &[u, x, stats, dy, partials],
                (d.chunks * d.channels) as usize,
            ),
        ),
        (
            "gamma and beta gradients",
            run(
                l,
                LayerKernel::LayerNormGradSums,
                &[u, partials, d_gamma, d_beta],
                d.channels as usize,
            ),
        ),
    ];
    if let Some(d_input) = l.d_input {
        out.push((
            "input gradient",
            run(
                l,
                LayerKernel::LayerNormInputGrad,
                &[u, x, gamma, stats, dy, Slice::all(d_input)],
                d.samples as usize,
            ),
        ));
    }
    out
}
