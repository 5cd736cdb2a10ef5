//! MultiHeadAttention (self-attention) as Keras computes it: the query, key and value
//! projections and the output projection are matmuls on the layer's kernels (Keras's
//! EinsumDense layouts, `[C, heads, dim]` and `[heads, value_dim, C]`, are row-major
//! `[C, heads · dim]` and `[heads · value_dim, C]` matrices), and the attention itself is
//! `shaders/attention.wgsl`. Backward: the output projection's gradients, the attention's
//! (`scores_grad`, `key_value_grad`), then each projection's kernel and bias gradients and
//! the input's gradient as the sum of the three projections' in the order query, key, value.

use super::LayerLaunch;
use crate::gpu::bindings::ActBackwardBindings;
use crate::gpu::layer_kernels::{AttentionDims, LayerKernel};
use crate::gpu::{ActDims, Dispatch, MatmulDims, Slice, grid};
use crate::layer::{Activation, LayerKind, LayerSpec};

/// `(T, C, heads, key_dim, value_dim, causal)` of the layer.
fn shape(spec: &LayerSpec) -> (usize, usize, usize, usize, usize, bool) {
    let LayerKind::MultiHeadAttention {
        num_heads,
        key_dim,
        value_dim,
        use_causal_mask,
        ..
    } = spec.kind
    else {
        panic!("attention launches for a {} layer", spec.kind.class_name());
    };
    (
        spec.in_shape[0],
        spec.in_shape[1],
        num_heads,
        key_dim,
        value_dim,
        use_causal_mask,
    )
}

/// The scratch buffers, in this order.
const Q: usize = 0;
const K: usize = 1;
const V: usize = 2;
const P: usize = 3;
const CTX: usize = 4;
const D_CTX: usize = 5;
const D_S: usize = 6;
const D_Q: usize = 7;
const D_K: usize = 8;
const D_V: usize = 9;
const D_X_PART: usize = 10;

/// Floats of each scratch buffer for batches of `rows` rows.
pub(super) fn scratch_floats(spec: &LayerSpec, rows: usize) -> Vec<usize> {
    let (t, c, heads, key_dim, value_dim, _) = shape(spec);
    let positions = rows * t;
    let (qk, vc, scores) = (
        positions * heads * key_dim,
        positions * heads * value_dim,
        rows * heads * t * t,
    );
    vec![
        qk,
        qk,
        vc,
        scores,
        vc,
        vc,
        scores,
        qk,
        qk,
        vc,
        positions * c,
    ]
}

/// The loops one invocation of the attention kernels runs (see `loop_limit.rs`).
pub(super) fn invocation_loops(spec: &LayerSpec) -> usize {
    let (t, _, _, key_dim, value_dim, _) = shape(spec);
    t * (key_dim + value_dim) + 3 * t
}

/// `c = a · b (+ bias)`, `m × n` summing `k`, with the strides of a and b.
#[allow(clippy::too_many_arguments)]
fn product(
    l: &LayerLaunch<'_>,
    (m, n, k): (usize, usize, usize),
    a: Slice<'_>,
    (a_row, a_col): (usize, usize),
    b: Slice<'_>,
    (b_row, b_col): (usize, usize),
    bias: Option<Slice<'_>>,
    c: Slice<'_>,
) -> Dispatch {
    let dims = MatmulDims {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        a_row_stride: a_row as u32,
        a_col_stride: a_col as u32,
        b_row_stride: b_row as u32,
        b_col_stride: b_col as u32,
        epilogue: MatmulDims::epilogue(bias.is_some(), Activation::Linear.code()),
    };
    let unused = Slice::all(l.unused);
    l.gpu().matmul(dims, a, b, bias.unwrap_or(unused), c)
}

/// `db` = the column sums of the `m × cols` matrix `d` (the linear activation's backward,
/// which leaves `d` as it is; its derivative reads `same_size`, any other buffer as large,
/// and finds 1).
fn column_sums(
    l: &LayerLaunch<'_>,
    d: &wgpu::Buffer,
    same_size: &wgpu::Buffer,
    (m, cols): (usize, usize),
    db: Slice<'_>,
) -> Dispatch {
    let gpu = l.gpu();
    let dims = ActDims {
        rows: m as u32,
        cols: cols as u32,
        act: Activation::Linear.code(),
        _pad: 0,
    };
    let uniform = gpu.uniform("attention bias gradient", &dims);
    gpu.kernels.act_backward_dispatch(
        &gpu.device,
        gpu.uses_cpu_kernels(),
        &dims,
        &ActBackwardBindings {
            dims: Slice::all(&uniform),
            a: Slice::all(same_size),
            d: Slice::all(d),
            db,
        },
    )
}

fn attention(l: &LayerLaunch<'_>, which: LayerKernel, bindings: &[&wgpu::Buffer]) -> Dispatch {
    let (t, _, heads, key_dim, value_dim, causal) = shape(&l.layer.spec);
    // Head dimensions of whole vec4s take the kernels that read four floats at a time.
    let which = match (which, key_dim % 4 == 0 && value_dim % 4 == 0) {
        (LayerKernel::AttentionForward, true) => LayerKernel::AttentionForward4,
        (LayerKernel::AttentionScoresGrad, true) => LayerKernel::AttentionScoresGrad4,
        (LayerKernel::AttentionKeyValueGrad, true) => LayerKernel::AttentionKeyValueGrad4,
        (which, _) => which,
    };
    let gpu = l.gpu();
    let dims = AttentionDims {
        rows: l.rows as u32,
        t: t as u32,
        heads: heads as u32,
        key_dim: key_dim as u32,
        value_dim: value_dim as u32,
        causal: u32::from(causal),
        scale: 1.0 / (key_dim as f32).sqrt(),
        _pad: 0,
    };
    let uniform = gpu.uniform("attention", &dims);
    let slices: Vec<Slice<'_>> = std::iter::once(Slice::all(&uniform))
        .chain(bindings.iter().map(|b| Slice::all(b)))
        .collect();
    gpu.kernels.layer(&gpu.device, which).dispatch(
        &gpu.device,
        &slices,
        grid(l.rows * heads * t, 64),
    )
}

/// The projections `(kernel, bias, scratch, width)` of query, key and value.
fn projections(l: &LayerLaunch<'_>) -> [(&'static str, &'static str, usize, usize); 3] {
    let (_, _, heads, key_dim, value_dim, _) = shape(&l.layer.spec);
    [
        ("query_kernel", "query_bias", Q, heads * key_dim),
        ("key_kernel", "key_bias", K, heads * key_dim),
        ("value_kernel", "value_bias", V, heads * value_dim),
    ]
}

fn param<'b>(l: &LayerLaunch<'_>, buffer: &'b wgpu::Buffer, name: &str) -> Slice<'b> {
    l.tensor(buffer, name)
        .unwrap_or_else(|| panic!("a MultiHeadAttention layer without its {name}"))
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<Dispatch> {
    let (t, c, heads, _, value_dim, _) = shape(&l.layer.spec);
    let positions = l.rows * t;
    let params = &l.params.params;
    let s = l.scratch;
    let mut out = Vec::new();
    for (kernel, bias, at, width) in projections(l) {
        // [positions, C] · [C, heads · dim] + bias
        out.push(product(
            l,
            (positions, width, c),
            Slice::all(l.input),
            (c, 1),
            param(l, params, kernel),
            (width, 1),
            l.tensor(params, bias),
            Slice::all(&s[at]),
        ));
    }
    out.push(attention(
        l,
        LayerKernel::AttentionForward,
        &[&s[Q], &s[K], &s[V], &s[P], &s[CTX]],
    ));
    // [positions, heads · value_dim] · [heads · value_dim, C] + bias
    let hv = heads * value_dim;
    out.push(product(
        l,
        (positions, c, hv),
        Slice::all(&s[CTX]),
        (hv, 1),
        param(l, params, "output_kernel"),
        (c, 1),
        l.tensor(params, "output_bias"),
        Slice::all(l.output),
    ));
    out
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let (t, c, heads, _, value_dim, _) = shape(&l.layer.spec);
    let positions = l.rows * t;
    let (params, grads) = (&l.params.params, l.grads);
    let s = l.scratch;
    let hv = heads * value_dim;
    let mut out = Vec::new();
    if let Some(db) = l.tensor(grads, "output_bias") {
        out.push((
            "output bias gradient",
            column_sums(l, l.d_output, l.input, (positions, c), db),
        ));
    }
    // d output_kernel [hv, C] = ctxᵀ · dY
    out.push((
        "output kernel gradient",
        product(
            l,
            (hv, c, positions),
            Slice::all(&s[CTX]),
            (1, hv),
            Slice::all(l.d_output),
            (c, 1),
            None,
            param(l, grads, "output_kernel"),
        ),
    ));
    // d ctx [positions, hv] = dY · output_kernelᵀ
    out.push((
        "context gradient",
        product(
            l,
            (positions, hv, c),
            Slice::all(l.d_output),
            (c, 1),
            param(l, params, "output_kernel"),
            (1, c),
            None,
            Slice::all(&s[D_CTX]),
        ),
    ));
    out.push((
        "scores gradient",
        attention(
            l,
            LayerKernel::AttentionScoresGrad,
            &[&s[K], &s[V], &s[P], &s[D_CTX], &s[D_S], &s[D_Q]],
        ),
    ));
    out.push((
        "key and value gradients",
        attention(
            l,
            LayerKernel::AttentionKeyValueGrad,
            &[&s[Q], &s[P], &s[D_CTX], &s[D_S], &s[D_K], &s[D_V]],
        ),
    ));
    let d_of = [D_Q, D_K, D_V];
    for ((kernel, bias, at, width), &d) in projections(l).iter().zip(&d_of) {
        if let Some(db) = l.tensor(grads, bias) {
            // The projection's output is as large as its gradient.
            let sums = column_sums(l, &s[d], &s[*at], (positions, *width), db);
            out.push(("projection bias gradient", sums));
        }
        // d kernel [C, width] = xᵀ · d
        out.push((
            "projection kernel gradient",
            product(
                l,
                (c, *width, positions),
                Slice::all(l.input),
                (1, c),
                Slice::all(&s[d]),
                (*width, 1),
                None,
                param(l, grads, kernel),
            ),
        ));
    }
    if let Some(d_input) = l.d_input {
        // dx = dq · Wqᵀ, then + dk · Wkᵀ, then + dv · Wvᵀ
        for (n, ((kernel, _, _, width), &d)) in projections(l).iter().zip(&d_of).enumerate() {
            let target = if n == 0 { d_input } else { &s[D_X_PART] };
            out.push((
                "input gradient",
                product(
                    l,
                    (positions, c, *width),
                    Slice::all(&s[d]),
                    (*width, 1),
                    param(l, params, kernel),
                    (1, *width),
                    None,
                    Slice::all(target),
                ),
            ));
            if n > 0 {
                out.push((
                    "input gradient sum",
                    super::add::accumulate(l, d_input, &s[D_X_PART], positions * c),
                ));
            }
        }
    }
    out
}
