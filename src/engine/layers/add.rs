//! Add on `shaders/elementwise.wgsl`: the sum of the inputs in the order given (`add`, then
//! `accumulate` for a third and later input); backward, its output's gradient copied to each
//! input's (`copy`, see `graph.rs` for why not shared). The same launches sum a tensor's
//! gradient edges.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{ElementDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<Dispatch> {
    sum_into(l, l.output, &l.inputs, l.rows * l.layer.outputs)
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let n = l.rows * l.layer.outputs;
    l.d_inputs
        .iter()
        .flatten()
        .map(|edge| {
            let copy = run(l, LayerKernel::Copy, &[l.d_output, edge], n);
            ("input gradient", copy)
        })
        .collect()
}

/// `dst = terms[0] + terms[1]`, then `dst += terms[k]` for each later term, over `n`
/// elements; nothing for fewer than two terms.
pub(super) fn sum_into(
    l: &LayerLaunch<'_>,
    dst: &wgpu::Buffer,
    terms: &[&wgpu::Buffer],
    n: usize,
) -> Vec<Dispatch> {
    let mut out = Vec::new();
    if let [first, second, rest @ ..] = terms {
        out.push(run(l, LayerKernel::Add, &[first, second, dst], n));
        out.extend(rest.iter().map(|term| accumulate(l, dst, term, n)));
    }
    out
}

/// `dst += src` over `n` elements.
pub(super) fn accumulate(
    l: &LayerLaunch<'_>,
    dst: &wgpu::Buffer,
    src: &wgpu::Buffer,
    n: usize,
) -> Dispatch {
    run(l, LayerKernel::Accumulate, &[src, dst], n)
}

/// `dst += src` over the `n` elements of two bound ranges.
pub(super) fn accumulate_ranges(
    l: &LayerLaunch<'_>,
    dst: Slice<'_>,
    src: Slice<'_>,
    n: usize,
) -> Dispatch {
    run_on(l, LayerKernel::Accumulate, vec![src, dst], n)
}

/// `which` over `n` elements with `buffers` bound after its dims.
fn run(l: &LayerLaunch<'_>, which: LayerKernel, buffers: &[&wgpu::Buffer], n: usize) -> Dispatch {
    run_on(l, which, buffers.iter().map(|b| Slice::all(b)).collect(), n)
}

fn run_on(l: &LayerLaunch<'_>, which: LayerKernel, buffers: Vec<Slice<'_>>, n: usize) -> Dispatch {
    let gpu = l.gpu();
    let dims = ElementDims {
        n: n as u32,
        act: 0,
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("sum", &dims);
    let bindings: Vec<Slice<'_>> = std::iter::once(Slice::all(&uniform))
        .chain(buffers)
        .collect();
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(n, 64))
}
