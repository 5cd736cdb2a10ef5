//! Add on `shaders/elementwise.wgsl`: the sum of the inputs in the order given (`add`, then
//! `accumulate` for a third and later input). Its backward pass records nothing (`graph.rs`);
//! the same launches sum a tensor's gradient edges.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{ElementDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<Dispatch> {
    sum_into(l, l.output, &l.inputs, l.rows * l.layer.outputs)
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

/// `which` over `n` elements with `buffers` bound after its dims.
fn run(l: &LayerLaunch<'_>, which: LayerKernel, buffers: &[&wgpu::Buffer], n: usize) -> Dispatch {
    let gpu = l.gpu();
    let dims = ElementDims {
        n: n as u32,
        act: 0,
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("sum", &dims);
    let bindings: Vec<Slice<'_>> = std::iter::once(Slice::all(&uniform))
        .chain(buffers.iter().map(|b| Slice::all(b)))
        .collect();
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(n, 64))
}
