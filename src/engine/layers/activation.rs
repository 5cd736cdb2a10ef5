//! The Activation layer on `shaders/elementwise.wgsl`.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{ElementDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};

fn launch(
    l: &LayerLaunch<'_>,
    which: LayerKernel,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
) -> Dispatch {
    let gpu = l.gpu();
    let n = l.rows * l.layer.outputs;
    let e = ElementDims {
        n: n as u32,
        act: l.layer.activation.code(),
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("activation", &e);
    let mut bindings = vec![Slice::all(&uniform), Slice::all(src)];
    if which == LayerKernel::ActBackward {
        // The derivative is taken from the output.
        bindings.push(Slice::all(l.output));
    }
    bindings.push(Slice::all(dst));
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(n, 64))
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    launch(l, LayerKernel::ActForward, l.input, l.output)
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    match l.d_input {
        Some(d_input) => vec![(
            "input gradient",
            launch(l, LayerKernel::ActBackward, l.d_output, d_input),
        )],
        None => Vec::new(),
    }
}
