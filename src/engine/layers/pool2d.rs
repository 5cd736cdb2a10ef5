//! MaxPooling2D, AveragePooling2D and GlobalAveragePooling2D (an average over one window of
//! the whole input) on `shaders/pool2d.wgsl`.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{LayerKernel, PoolDims};
use crate::gpu::{Dispatch, Slice, grid};
use crate::layer::{LayerKind, Padding};

/// The kernels' parameters and whether the layer takes the maximum.
fn dims(l: &LayerLaunch<'_>) -> (PoolDims, bool) {
    let spec = &l.layer.spec;
    let (h, w, c) = (spec.in_shape[0], spec.in_shape[1], spec.in_shape[2]);
    let (pool, strides, padding, max) = match spec.kind {
        LayerKind::MaxPooling2D {
            pool,
            strides,
            padding,
        } => (pool, strides, padding, true),
        LayerKind::AveragePooling2D {
            pool,
            strides,
            padding,
        } => (pool, strides, padding, false),
        LayerKind::GlobalAveragePooling2D => ([h, w], [h, w], Padding::Valid, false),
        _ => panic!("pooling launches for a {} layer", spec.kind.class_name()),
    };
    let pad = |size, k, s| padding.output(size, k, s).map_or(0, |(_, pad)| pad);
    let (out_h, out_w) = match spec.kind {
        LayerKind::GlobalAveragePooling2D => (1, 1),
        _ => (spec.out_shape[0], spec.out_shape[1]),
    };
    let d = PoolDims {
        rows: l.rows as u32,
        in_h: h as u32,
        in_w: w as u32,
        c: c as u32,
        out_h: out_h as u32,
        out_w: out_w as u32,
        ph: pool[0] as u32,
        pw: pool[1] as u32,
        sh: strides[0] as u32,
        sw: strides[1] as u32,
        pad_top: pad(h, pool[0], strides[0]) as u32,
        pad_left: pad(w, pool[1], strides[1]) as u32,
    };
    (d, max)
}

/// Where max pooling keeps each window's argmax from the forward pass to the backward.
fn argmax<'a>(l: &'a LayerLaunch<'a>) -> &'a wgpu::Buffer {
    match l.scratch {
        [argmax] => argmax,
        _ => panic!("a MaxPooling2D layer without its argmax buffer"),
    }
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    let gpu = l.gpu();
    let (d, max) = dims(l);
    let uniform = gpu.uniform("pooling", &d);
    let mut bindings = vec![
        Slice::all(&uniform),
        Slice::all(l.input),
        Slice::all(l.output),
    ];
    let which = if max {
        bindings.push(Slice::all(argmax(l)));
        LayerKernel::MaxForward
    } else {
        LayerKernel::AvgForward
    };
    gpu.kernels.layer(&gpu.device, which).dispatch(
        &gpu.device,
        &bindings,
        grid(l.rows * l.layer.outputs, 64),
    )
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let Some(d_input) = l.d_input else {
        return Vec::new();
    };
    let gpu = l.gpu();
    let (d, max) = dims(l);
    let uniform = gpu.uniform("pooling backward", &d);
    let mut bindings = vec![
        Slice::all(&uniform),
        Slice::all(l.d_output),
        Slice::all(d_input),
    ];
    let dev = &gpu.device;
    let run = |which, bindings: &[Slice<'_>], items| {
        gpu.kernels
            .layer(dev, which)
            .dispatch(dev, bindings, grid(items, 64))
    };
    if !max {
        let launch = run(LayerKernel::AvgBackward, &bindings, l.rows * l.layer.inputs);
        return vec![("input gradient", launch)];
    }
    bindings.push(Slice::all(argmax(l)));
    if d.sh >= d.ph && d.sw >= d.pw {
        // Windows that do not overlap: each output's gradient goes to its argmax alone.
        let zero = run(
            LayerKernel::PoolZero,
            &[bindings[0], bindings[2]],
            l.rows * l.layer.inputs,
        );
        let scatter = run(LayerKernel::MaxScatter, &bindings, l.rows * l.layer.outputs);
        return vec![("input gradient zero", zero), ("input gradient", scatter)];
    }
    vec![(
        "input gradient",
        run(LayerKernel::MaxBackward, &bindings, l.rows * l.layer.inputs),
    )]
}
