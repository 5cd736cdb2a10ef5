//! Conv2D on `shaders/conv2d.wgsl`: the forward pass as an implicit GEMM with the bias and
//! activation in its epilogue; backward the activation's derivative in place
//! (`elementwise.wgsl`), the kernel's and the bias's gradients as partial sums over chunks of
//! output positions reduced in order, and the input's gradient gathered per input element.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{CONV_CHUNK, ConvDims, ElementDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};
use crate::layer::{Activation, LayerKind, LayerSpec};

/// Edge of the square tiles of `conv2d.wgsl`.
const TILE: usize = 16;

fn dims(spec: &LayerSpec, rows: usize) -> ConvDims {
    let LayerKind::Conv2D {
        filters,
        kernel,
        strides,
        padding,
        dilation,
        use_bias,
    } = spec.kind
    else {
        panic!("conv2d launches for a {} layer", spec.kind.class_name());
    };
    let (h, w, c) = (spec.in_shape[0], spec.in_shape[1], spec.in_shape[2]);
    let pad = |size, k: usize, d: usize, s| {
        padding
            .output(size, (k - 1) * d + 1, s)
            .map_or(0, |(_, pad)| pad)
    };
    let positions = rows * spec.out_shape[0] * spec.out_shape[1];
    ConvDims {
        rows: rows as u32,
        in_h: h as u32,
        in_w: w as u32,
        in_c: c as u32,
        out_h: spec.out_shape[0] as u32,
        out_w: spec.out_shape[1] as u32,
        filters: filters as u32,
        kh: kernel[0] as u32,
        kw: kernel[1] as u32,
        sh: strides[0] as u32,
        sw: strides[1] as u32,
        dh: dilation[0] as u32,
        dw: dilation[1] as u32,
        pad_top: pad(h, kernel[0], dilation[0], strides[0]) as u32,
        pad_left: pad(w, kernel[1], dilation[1], strides[1]) as u32,
        act: spec.activation.code(),
        use_bias: u32::from(use_bias),
        chunk: CONV_CHUNK as u32,
        chunks: positions.div_ceil(CONV_CHUNK).max(1) as u32,
        _pad: 0,
    }
}

/// Rows of the weight-gradient GEMM: every tap of the kernel, and one for the bias.
fn taps_and_bias(d: &ConvDims) -> usize {
    (d.kh * d.kw * d.in_c) as usize + 1
}

/// Floats of the partial sums of the weight gradient.
pub(super) fn scratch_floats(spec: &LayerSpec, rows: usize) -> usize {
    let d = dims(spec, rows);
    d.chunks as usize * taps_and_bias(&d) * d.filters as usize
}

/// Workgroups along the second grid axis of `weight_grad`.
pub(super) fn weight_grad_groups(spec: &LayerSpec, rows: usize) -> usize {
    let d = dims(spec, rows);
    taps_and_bias(&d).div_ceil(TILE) * d.chunks as usize
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    let gpu = l.gpu();
    let d = dims(&l.layer.spec, l.rows);
    let uniform = gpu.uniform("conv2d", &d);
    let Some(kernel) = l.tensor(&l.params.params, "weight") else {
        panic!("a Conv2D layer without a kernel");
    };
    // Without a bias the kernel reads none: any binding will do.
    let bias = l.tensor(&l.params.params, "bias").unwrap_or(kernel);
    let positions = l.rows * l.layer.spec.out_shape[0] * l.layer.spec.out_shape[1];
    let groups = (
        (d.filters as usize).div_ceil(TILE) as u32,
        positions.div_ceil(TILE) as u32,
    );
    gpu.kernels
        .layer(&gpu.device, LayerKernel::ConvForward)
        .dispatch(
            &gpu.device,
            &[
                Slice::all(&uniform),
                Slice::all(l.input),
                kernel,
                bias,
                Slice::all(l.output),
            ],
            groups,
        )
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let gpu = l.gpu();
    let dev = &gpu.device;
    let d = dims(&l.layer.spec, l.rows);
    let uniform = gpu.uniform("conv2d backward", &d);
    let mut out = Vec::new();
    if l.layer.activation != Activation::Linear {
        let n = l.rows * l.layer.outputs;
        let e = ElementDims {
            n: n as u32,
            act: l.layer.activation.code(),
            _pad: [0; 2],
        };
        let e_uniform = gpu.uniform("activation backward", &e);
        out.push((
            "activation backward",
            gpu.kernels.layer(dev, LayerKernel::ActInPlace).dispatch(
                dev,
                &[
                    Slice::all(&e_uniform),
                    Slice::all(l.output),
                    Slice::all(l.d_output),
                ],
                grid(n, 64),
            ),
        ));
    }
    let Some(scratch) = l.scratch.first() else {
        panic!("a Conv2D layer without its scratch buffer");
    };
    let (Some(d_kernel), Some(kernel)) = (
        l.tensor(&l.params.grads, "weight"),
        l.tensor(&l.params.params, "weight"),
    ) else {
        panic!("a Conv2D layer without a kernel");
    };
    let groups = (
        (d.filters as usize).div_ceil(TILE) as u32,
        weight_grad_groups(&l.layer.spec, l.rows) as u32,
    );
    out.push((
        "weight gradient partial sums",
        gpu.kernels
            .layer(dev, LayerKernel::ConvWeightGrad)
            .dispatch(
                dev,
                &[
                    Slice::all(&uniform),
                    Slice::all(l.input),
                    Slice::all(l.d_output),
                    Slice::all(scratch),
                ],
                groups,
            ),
    ));
    let d_bias = l
        .tensor(&l.params.grads, "bias")
        .unwrap_or(Slice::all(l.unused));
    out.push((
        "weight gradient",
        gpu.kernels.layer(dev, LayerKernel::ConvReduce).dispatch(
            dev,
            &[Slice::all(&uniform), Slice::all(scratch), d_kernel, d_bias],
            grid(taps_and_bias(&d) * d.filters as usize, 64),
        ),
    ));
    if let Some(d_input) = l.d_input {
        out.push((
            "input gradient",
            gpu.kernels.layer(dev, LayerKernel::ConvInputGrad).dispatch(
                dev,
                &[
                    Slice::all(&uniform),
                    Slice::all(l.d_output),
                    kernel,
                    Slice::all(d_input),
                ],
                grid(l.rows * l.layer.inputs, 64),
            ),
        ));
    }
    out
}
