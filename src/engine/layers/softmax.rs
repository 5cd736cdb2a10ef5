//! Softmax over the last axis on `shaders/softmax.wgsl`: one invocation per row; backward
//! from the output it kept.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{LayerKernel, SoftmaxDims};
use crate::gpu::{Dispatch, Slice, grid};

/// `(rows, cols)`: every position of every sample is a row of the last axis.
fn rows_cols(l: &LayerLaunch<'_>) -> (usize, usize) {
    let cols = *l.layer.spec.in_shape.last().unwrap_or(&1);
    (l.rows * l.layer.spec.inputs / cols.max(1), cols)
}

fn run(l: &LayerLaunch<'_>, which: LayerKernel, buffers: &[&wgpu::Buffer]) -> Dispatch {
    let gpu = l.gpu();
    let (rows, cols) = rows_cols(l);
    let dims = SoftmaxDims {
        rows: rows as u32,
        cols: cols as u32,
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("softmax", &dims);
    let bindings: Vec<Slice<'_>> = std::iter::once(Slice::all(&uniform))
        .chain(buffers.iter().map(|b| Slice::all(b)))
        .collect();
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(rows, 64))
}

/// The loops one invocation runs over a row of `cols` (see `loop_limit.rs`).
pub(super) fn invocation_loops(cols: usize) -> usize {
    3 * cols
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    run(l, LayerKernel::SoftmaxForward, &[l.input, l.output])
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    match l.d_input {
        Some(d_input) => vec![(
            "input gradient",
            run(
                l,
                LayerKernel::SoftmaxBackward,
                &[l.output, l.d_output, d_input],
            ),
        )],
        None => Vec::new(),
    }
}
