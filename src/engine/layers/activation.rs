//! The Activation layer on `shaders/elementwise.wgsl`.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{ElementDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};

fn launch(
    l: &LayerLaunch<'_>,
    which: LayerKernel,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    n: usize,
) -> Dispatch {
    let gpu = l.gpu();
    let e = ElementDims {
        n: n as u32,
        act: l.layer.activation.code(),
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("activation", &e);
    let mut bindings = vec![Slice::all(&uniform), Slice::all(src)];
    if which == LayerKernel::ActBackward {
        // The derivative is taken from the output, or for GELU from the input.
        let at = if l.layer.activation.differentiates_input() {
            l.input
        } else {
            l.output
        };
        bindings.push(Slice::all(at));
    }
    bindings.push(Slice::all(dst));
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(n, 64))
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    apply(l, l.input, l.output, l.rows * l.layer.outputs)
}

/// `dst = act(src)` over `n` elements with the layer's activation (also Dense's GELU).
pub(super) fn apply(
    l: &LayerLaunch<'_>,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    n: usize,
) -> Dispatch {
    launch(l, LayerKernel::ActForward, src, dst, n)
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    match l.d_input {
        Some(d_input) => vec![(
            "input gradient",
            launch(
                l,
                LayerKernel::ActBackward,
                l.d_output,
                d_input,
                l.rows * l.layer.outputs,
            ),
        )],
        None => Vec::new(),
    }
}
