//! Conv2D as GEMMs on the tuned matmul kernels (`src/gpu/matmul.rs`) over the im2col matrix,
//! which `shaders/conv2d.wgsl` builds (`im2col`) and folds back (`col2im`): the forward pass
//! one product with the bias and activation in its epilogue; backward the activation's
//! derivative in place (`elementwise.wgsl`), the kernel's and bias's gradients as partial
//! products over chunks of output positions reduced in order, and the input's gradient as one
//! product folded back per input element.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{CONV_CHUNK, ConvDims, ElementDims, LayerKernel};
use crate::gpu::{Dispatch, MatmulDims, Slice, grid};
use crate::layer::{Activation, LayerKind, LayerSpec};

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
    let col_stride = (kernel[0] * kernel[1] * c + 1).next_multiple_of(4);
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
        col_stride: col_stride as u32,
        chunks: positions.div_ceil(CONV_CHUNK).max(1) as u32,
        // A whole number of 256-byte binding offsets apart.
        chunk_stride: (col_stride * filters).next_multiple_of(64) as u32,
    }
}

fn positions(d: &ConvDims) -> usize {
    (d.rows * d.out_h * d.out_w) as usize
}

fn taps(d: &ConvDims) -> usize {
    (d.kh * d.kw * d.in_c) as usize
}

/// Floats of the two scratch buffers: the im2col matrix (also the input gradient's dcol) and
/// the partial kernel gradients.
pub(super) fn scratch_floats(spec: &LayerSpec, rows: usize) -> Vec<usize> {
    let d = dims(spec, rows);
    vec![
        positions(&d) * d.col_stride as usize,
        (d.chunks * d.chunk_stride) as usize,
    ]
}

/// Bytes of the largest scratch buffer, which one binding must hold.
pub(super) fn largest_scratch_bytes(spec: &LayerSpec, rows: usize) -> u64 {
    scratch_floats(spec, rows).into_iter().max().unwrap_or(0) as u64 * 4
}

fn scratch<'a>(l: &'a LayerLaunch<'a>) -> (&'a wgpu::Buffer, &'a wgpu::Buffer) {
    match l.scratch {
        [col, partial] => (col, partial),
        _ => panic!("a Conv2D layer without its two scratch buffers"),
    }
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<(&'static str, super::Phase, Dispatch)> {
    let gpu = l.gpu();
    let dev = &gpu.device;
    let d = dims(&l.layer.spec, l.rows);
    let uniform = gpu.uniform("conv2d", &d);
    let (col, _) = scratch(l);
    let Some(kernel) = l.tensor(&l.params.params, "weight") else {
        panic!("a Conv2D layer without a kernel");
    };
    let bias = l.tensor(&l.params.params, "bias");
    let im2col = gpu.kernels.layer(dev, LayerKernel::ConvIm2col).dispatch(
        dev,
        &[Slice::all(&uniform), Slice::all(l.input), Slice::all(col)],
        grid(positions(&d) * (d.kh * d.kw) as usize, 64),
    );
    // y [P, F] = col [P, R] · K [R, F] (+ b, act)
    let product = gpu.matmul(
        MatmulDims {
            m: positions(&d) as u32,
            n: d.filters,
            k: taps(&d) as u32,
            a_row_stride: d.col_stride,
            a_col_stride: 1,
            b_row_stride: d.filters,
            b_col_stride: 1,
            epilogue: MatmulDims::epilogue(bias.is_some(), d.act),
        },
        Slice::all(col),
        kernel,
        // Without a bias the epilogue reads none: any binding will do.
        bias.unwrap_or(kernel),
        Slice::all(l.output),
    );
    let always = super::Phase::Always;
    vec![("im2col", always, im2col), ("forward", always, product)]
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let gpu = l.gpu();
    let dev = &gpu.device;
    let d = dims(&l.layer.spec, l.rows);
    let uniform = gpu.uniform("conv2d backward", &d);
    let (col, partial) = scratch(l);
    let (filters, stride) = (d.filters as usize, d.col_stride as usize);
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
    let (Some(d_kernel), Some(kernel)) = (
        l.tensor(&l.params.grads, "weight"),
        l.tensor(&l.params.params, "weight"),
    ) else {
        panic!("a Conv2D layer without a kernel");
    };
    // partial[chunk] [R + 1 (padded), F] = col[chunk]ᵀ · dz[chunk]; the last row sums dz (db)
    for chunk in 0..d.chunks as usize {
        let first = chunk * CONV_CHUNK;
        let rows = CONV_CHUNK.min(positions(&d) - first);
        let col_chunk = Slice::f32s(col, first * stride, rows * stride);
        out.push((
            "weight gradient partial product",
            gpu.matmul(
                MatmulDims {
                    m: stride as u32,
                    n: d.filters,
                    k: rows as u32,
                    a_row_stride: 1,
                    a_col_stride: d.col_stride,
                    b_row_stride: d.filters,
                    b_col_stride: 1,
                    epilogue: 0,
                },
                col_chunk,
                Slice::f32s(l.d_output, first * filters, rows * filters),
                col_chunk,
                Slice::f32s(partial, chunk * d.chunk_stride as usize, stride * filters),
            ),
        ));
    }
    let d_bias = l
        .tensor(&l.params.grads, "bias")
        .unwrap_or(Slice::all(l.unused));
    out.push((
        "weight gradient",
        gpu.kernels.layer(dev, LayerKernel::ConvReduce).dispatch(
            dev,
            &[Slice::all(&uniform), Slice::all(partial), d_kernel, d_bias],
            grid((taps(&d) + 1) * filters, 64),
        ),
    ));
    if let Some(d_input) = l.d_input {
        // dcol [P, R] = dz [P, F] · Kᵀ, into the im2col matrix's memory (read above)
        let dcol = Slice::f32s(col, 0, positions(&d) * taps(&d));
        out.push((
            "input gradient product",
            gpu.matmul(
                MatmulDims {
                    m: positions(&d) as u32,
                    n: taps(&d) as u32,
                    k: d.filters,
                    a_row_stride: d.filters,
                    a_col_stride: 1,
                    b_row_stride: 1,
                    b_col_stride: d.filters,
                    epilogue: 0,
                },
                Slice::all(l.d_output),
                kernel,
                kernel,
                dcol,
            ),
        ));
        out.push((
            "input gradient",
            gpu.kernels.layer(dev, LayerKernel::ConvCol2im).dispatch(
                dev,
                &[Slice::all(&uniform), dcol, Slice::all(d_input)],
                grid(l.rows * (d.in_h * d.in_w) as usize, 64),
            ),
        ));
    }
    out
}
