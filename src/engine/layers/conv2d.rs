//! Conv2D as GEMMs: the forward pass one product with the bias and activation in its
//! epilogue; backward the activation's derivative in place (`elementwise.wgsl`), the kernel's
//! and bias's gradients as partial products over chunks of output positions reduced in order,
//! and the input's gradient as one product.
//!
//! Where the adapter has the subgroup matmul kernels (lavapipe) and the input's channels and
//! the filters are multiples of 4, the products are implicit GEMMs (`shaders/conv2d_gemm.wgsl`):
//! their loads read the input or the output gradient where the im2col matrix would hold it, and
//! no matrix is written. Elsewhere `shaders/conv2d.wgsl` builds the im2col matrix (`im2col`),
//! the tuned matmul kernels (`src/gpu/matmul.rs`) multiply it, and `col2im` folds the input's
//! gradient back.

use super::LayerLaunch;
use crate::gpu::layer_kernels::{CONV_CHUNK, ConvDims, ElementDims, LayerKernel};
use crate::gpu::{Dispatch, Gpu, MatmulDims, Slice, grid};
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
        first: 0,
        product: 0,
        _pad: [0; 2],
    }
}

/// How a layer's three products run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Implicit GEMMs on the subgroup matmul kernels (`conv2d_gemm.wgsl`), where the adapter
    /// has them (lavapipe) and the channels and filters are multiples of 4: their vec4 loads
    /// need four consecutive taps to be one vec4 of the input, and their columns come in vec4s.
    Subgroup,
    /// Implicit GEMMs on 16×16 tiles (`conv2d_gemm_tiles.wgsl`): on GPUs, any shape.
    Tiles,
    /// The im2col matrix (`conv2d.wgsl`) on the tuned matmul kernels: on CPU adapters where
    /// the subgroup kernels do not apply (llvmpipe runs the tiles' barriers slowly).
    Im2col,
}

fn path(gpu: &Gpu, spec: &LayerSpec) -> Path {
    let LayerKind::Conv2D { filters, .. } = spec.kind else {
        panic!("conv2d paths for a {} layer", spec.kind.class_name());
    };
    if !gpu.uses_cpu_kernels() {
        Path::Tiles
    } else if gpu.kernels.matmul_sub.is_some()
        && spec.in_shape[2].is_multiple_of(4)
        && filters.is_multiple_of(4)
    {
        Path::Subgroup
    } else {
        Path::Im2col
    }
}

fn positions(d: &ConvDims) -> usize {
    (d.rows * d.out_h * d.out_w) as usize
}

fn taps(d: &ConvDims) -> usize {
    (d.kh * d.kw * d.in_c) as usize
}

/// Floats of the two scratch buffers: the im2col matrix (also the input gradient's dcol;
/// none for implicit GEMMs) and the partial kernel gradients.
pub(super) fn scratch_floats(gpu: &Gpu, spec: &LayerSpec, rows: usize) -> Vec<usize> {
    let d = dims(spec, rows);
    let col = match path(gpu, spec) {
        Path::Im2col => positions(&d) * d.col_stride as usize,
        Path::Subgroup | Path::Tiles => 0,
    };
    vec![col, (d.chunks * d.chunk_stride) as usize]
}

/// Bytes of the largest scratch buffer, which one binding must hold.
pub(super) fn largest_scratch_bytes(gpu: &Gpu, spec: &LayerSpec, rows: usize) -> u64 {
    scratch_floats(gpu, spec, rows)
        .into_iter()
        .max()
        .unwrap_or(0) as u64
        * 4
}

/// The subgroup entry point of the input gradient: with 32 channels or fewer, the one that
/// gives each lane 4 of them rather than 8, so that no lane idles at 32.
fn input_grad_kernel(d: &ConvDims) -> LayerKernel {
    if d.in_c <= NARROW_CHANNELS {
        LayerKernel::ConvGemmInputGradNarrow
    } else {
        LayerKernel::ConvGemmInputGrad
    }
}

/// The most channels `conv_input_grad_narrow` covers in one workgroup column (8 lanes × 4).
const NARROW_CHANNELS: u32 = 32;

/// Output rows and columns one workgroup of a launch covers.
fn block(path: Path, which: LayerKernel) -> (usize, usize) {
    match (path, which) {
        (Path::Subgroup, LayerKernel::ConvGemmInputGradNarrow) => (128, 32),
        (Path::Subgroup, _) => (64, 64),
        _ => (16, 16),
    }
}

/// Refuses a layer whose implicit GEMMs for batches of `rows` rows need more workgroups in
/// one dimension than a launch may have (65 535), naming the count.
pub(super) fn check_grid(gpu: &Gpu, spec: &LayerSpec, rows: usize) -> Option<String> {
    let p = path(gpu, spec);
    if p == Path::Im2col {
        return None;
    }
    let d = dims(spec, rows);
    let most_rows = positions(&d).max(rows * (d.in_h * d.in_w) as usize);
    // The forward pass's blocks are the shortest a path has.
    let groups = most_rows.div_ceil(block(p, LayerKernel::ConvGemmForward).0);
    (groups > 65_535).then(|| {
        format!("its {most_rows} output rows take {groups} workgroups, above one launch's 65 535")
    })
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
    let always = super::Phase::Always;
    let p = path(gpu, &l.layer.spec);
    if p != Path::Im2col {
        let product = MatmulDims {
            m: positions(&d) as u32,
            n: d.filters,
            k: taps(&d) as u32,
            a_row_stride: 0,
            a_col_stride: 0,
            b_row_stride: d.filters,
            b_col_stride: 1,
            epilogue: MatmulDims::epilogue(bias.is_some(), d.act),
        };
        let launch = gemm(
            l,
            p,
            LayerKernel::ConvGemmForward,
            &product,
            &ConvDims { product: 0, ..d },
            [
                Slice::all(l.input),
                kernel,
                bias.unwrap_or(kernel),
                Slice::all(l.output),
            ],
        );
        return vec![("forward", always, launch)];
    }
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
        l.tensor(l.grads, "weight"),
        l.tensor(&l.params.params, "weight"),
    ) else {
        panic!("a Conv2D layer without a kernel");
    };
    let p = path(gpu, &l.layer.spec);
    // partial[chunk] [R + 1 (padded), F] = col[chunk]ᵀ · dz[chunk]; the last row sums dz (db)
    for chunk in 0..d.chunks as usize {
        let first = chunk * CONV_CHUNK;
        let rows = CONV_CHUNK.min(positions(&d) - first);
        let product = MatmulDims {
            m: stride as u32,
            n: d.filters,
            k: rows as u32,
            a_row_stride: 1,
            a_col_stride: d.col_stride,
            b_row_stride: d.filters,
            b_col_stride: 1,
            epilogue: 0,
        };
        let dz = Slice::f32s(l.d_output, first * filters, rows * filters);
        let part = Slice::f32s(partial, chunk * d.chunk_stride as usize, stride * filters);
        let launch = if p != Path::Im2col {
            let chunk_dims = ConvDims {
                first: first as u32,
                product: 1,
                ..d
            };
            gemm(
                l,
                p,
                LayerKernel::ConvGemmKernelGrad,
                &product,
                &chunk_dims,
                [Slice::all(l.input), dz, kernel, part],
            )
        } else {
            let col_chunk = Slice::f32s(col, first * stride, rows * stride);
            gpu.matmul(product, col_chunk, dz, col_chunk, part)
        };
        out.push(("weight gradient partial product", launch));
    }
    let d_bias = l.tensor(l.grads, "bias").unwrap_or(Slice::all(l.unused));
    out.push((
        "weight gradient",
        gpu.kernels.layer(dev, LayerKernel::ConvReduce).dispatch(
            dev,
            &[Slice::all(&uniform), Slice::all(partial), d_kernel, d_bias],
            grid((taps(&d) + 1) * filters, 64),
        ),
    ));
    match l.d_input {
        Some(d_input) if p != Path::Im2col => {
            // dx [pixels, C] = Σ over (tap, f) of dz gathered per tap · K
            let product = MatmulDims {
                m: l.rows as u32 * d.in_h * d.in_w,
                n: d.in_c,
                k: taps(&d) as u32 * d.filters,
                a_row_stride: 0,
                a_col_stride: 0,
                b_row_stride: 0,
                b_col_stride: 0,
                epilogue: 0,
            };
            out.push((
                "input gradient",
                gemm(
                    l,
                    p,
                    input_grad_kernel(&d),
                    &product,
                    &ConvDims { product: 2, ..d },
                    [Slice::all(l.d_output), kernel, kernel, Slice::all(d_input)],
                ),
            ));
        }
        Some(d_input) => input_gradient_by_col2im(l, &d, &uniform, kernel, d_input, &mut out),
        None => {}
    }
    out
}

/// The input's gradient on the im2col path: dcol = dz · Kᵀ into the im2col matrix's memory
/// (read by the kernel gradient before), folded back by `col2im`.
fn input_gradient_by_col2im<'a>(
    l: &LayerLaunch<'a>,
    d: &ConvDims,
    uniform: &wgpu::Buffer,
    kernel: Slice<'_>,
    d_input: &wgpu::Buffer,
    out: &mut Vec<(&'static str, Dispatch)>,
) {
    let gpu = l.gpu();
    let dev = &gpu.device;
    let (col, _) = scratch(l);
    {
        // dcol [P, R] = dz [P, F] · Kᵀ, into the im2col matrix's memory (read above)
        let dcol = Slice::f32s(col, 0, positions(d) * taps(d));
        out.push((
            "input gradient product",
            gpu.matmul(
                MatmulDims {
                    m: positions(d) as u32,
                    n: taps(d) as u32,
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
                &[Slice::all(uniform), dcol, Slice::all(d_input)],
                grid(l.rows * (d.in_h * d.in_w) as usize, 64),
            ),
        ));
    }
}

/// A launch of the product `product` of the convolution `conv` on path `p`: `subgroup` (a
/// `conv2d_gemm.wgsl` entry point) or the tiles of `conv2d_gemm_tiles.wgsl`, which
/// `conv.product` steers. `operands` are A, B, the bias (read by the forward pass only) and C.
fn gemm(
    l: &LayerLaunch<'_>,
    p: Path,
    subgroup: LayerKernel,
    product: &MatmulDims,
    conv: &ConvDims,
    operands: [Slice<'_>; 4],
) -> Dispatch {
    let gpu = l.gpu();
    let product_uniform = gpu.uniform("conv2d product", product);
    let conv_uniform = gpu.uniform("conv2d", conv);
    let [a, b, bias, c] = operands;
    let (which, slices) = match p {
        Path::Subgroup => {
            if ![a, b, c].iter().all(Slice::vec4_bindable) {
                panic!("a conv2d_gemm.wgsl operand that is not whole vec4s");
            }
            let mut slices = vec![Slice::all(&product_uniform), a, b];
            if subgroup == LayerKernel::ConvGemmForward {
                slices.push(bias);
            }
            (subgroup, slices)
        }
        Path::Tiles => (
            LayerKernel::ConvTiles,
            vec![Slice::all(&product_uniform), a, b, bias],
        ),
        Path::Im2col => panic!("an implicit GEMM launched on the im2col path"),
    };
    let mut slices = slices;
    slices.push(c);
    slices.push(Slice::all(&conv_uniform));
    let (rows, cols) = block(p, which);
    gpu.kernels.layer(&gpu.device, which).dispatch(
        &gpu.device,
        &slices,
        (
            (product.n as usize).div_ceil(cols) as u32,
            (product.m as usize).div_ceil(rows) as u32,
        ),
    )
}
