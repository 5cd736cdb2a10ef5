//! Dense: `y = act(x · Wᵀ + b)` on the last axis (the leading axes are more rows), on the
//! tiled matmul; backward `dZ = dA ⊙ act'(A)` with `db` (`activation.wgsl`), `dW = dZᵀ · X`
//! and `dX = dZ · W`. With GELU, which is not differentiated from its output, the matmul
//! writes the pre-activation `Z` to the layer's scratch and an element-wise launch applies
//! the activation; the backward pass takes the derivative at `Z`.

use super::LayerLaunch;
use crate::gpu::bindings::ActBackwardBindings;
use crate::gpu::{ActDims, Dispatch, MatmulDims, Slice};

/// `(rows of the matmul, input width, units)`: every position of every sample is a row.
fn shape(l: &LayerLaunch<'_>) -> (usize, usize, usize) {
    let spec = &l.layer.spec;
    let width = *spec.in_shape.last().unwrap_or(&1);
    let units = *spec.out_shape.last().unwrap_or(&1);
    (l.rows * (spec.inputs / width.max(1)), width, units)
}

/// The pre-activation kept for the backward pass, for activations differentiated from their
/// input.
fn pre_activation<'a>(l: &'a LayerLaunch<'a>) -> Option<&'a wgpu::Buffer> {
    l.layer.activation.differentiates_input().then(|| {
        l.scratch
            .first()
            .expect("a GELU Dense layer without its scratch")
    })
}

/// Floats of the scratch buffer: the pre-activation, for activations that need it.
pub(super) fn scratch_floats(spec: &crate::layer::LayerSpec, rows: usize) -> Vec<usize> {
    if spec.activation.differentiates_input() {
        vec![rows * spec.outputs]
    } else {
        Vec::new()
    }
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<Dispatch> {
    let (m, width, units) = shape(l);
    let pre = pre_activation(l);
    let epilogue_act = if pre.is_some() {
        crate::layer::Activation::Linear
    } else {
        l.layer.activation
    };
    let dims = MatmulDims {
        m: m as u32,
        n: units as u32,
        k: width as u32,
        a_row_stride: width as u32,
        a_col_stride: 1,
        b_row_stride: 1,
        b_col_stride: width as u32,
        epilogue: MatmulDims::epilogue(true, epilogue_act.code()),
    };
    let weight = l.tensor(&l.params.params, "weight");
    let bias = l.tensor(&l.params.params, "bias");
    let (Some(weight), Some(bias)) = (weight, bias) else {
        panic!("a Dense layer without a weight and a bias");
    };
    let product = l.params.gpu.matmul(
        dims,
        Slice::all(l.input),
        weight,
        bias,
        Slice::all(pre.unwrap_or(l.output)),
    );
    match pre {
        Some(pre) => vec![
            product,
            super::activation::apply(l, pre, l.output, m * units),
        ],
        None => vec![product],
    }
}

pub(super) fn backward(
    l: &LayerLaunch<'_>,
    activation_in_loss: bool,
) -> Vec<(&'static str, Dispatch)> {
    let gpu = l.gpu();
    let (m, width, units) = shape(l);
    let (Some(d_weight), Some(d_bias), Some(weight)) = (
        l.tensor(l.grads, "weight"),
        l.tensor(l.grads, "bias"),
        l.tensor(&l.params.params, "weight"),
    ) else {
        panic!("a Dense layer without a weight and a bias");
    };
    let mut out = Vec::new();
    if !activation_in_loss {
        let act_dims = ActDims {
            rows: m as u32,
            cols: units as u32,
            act: l.layer.activation.code(),
            _pad: 0,
        };
        let act_uniform = gpu.uniform("activation backward", &act_dims);
        out.push((
            "activation backward",
            gpu.kernels.act_backward_dispatch(
                &gpu.device,
                gpu.uses_cpu_kernels(),
                &act_dims,
                &ActBackwardBindings {
                    dims: Slice::all(&act_uniform),
                    a: Slice::all(pre_activation(l).unwrap_or(l.output)),
                    d: Slice::all(l.d_output),
                    db: d_bias,
                },
            ),
        ));
    }
    // grad W [out, in] = dZᵀ [out, rows] · A_prev [rows, in]
    out.push((
        "weight gradient",
        gpu.matmul(
            MatmulDims {
                m: units as u32,
                n: width as u32,
                k: m as u32,
                a_row_stride: 1,
                a_col_stride: units as u32,
                b_row_stride: width as u32,
                b_col_stride: 1,
                epilogue: 0,
            },
            Slice::all(l.d_output),
            Slice::all(l.input),
            Slice::all(l.input),
            d_weight,
        ),
    ));
    // dA_prev [rows, in] = dZ [rows, out] · W [out, in]
    if let Some(d_input) = l.d_input {
        out.push((
            "input gradient",
            gpu.matmul(
                MatmulDims {
                    m: m as u32,
                    n: width as u32,
                    k: units as u32,
                    a_row_stride: units as u32,
                    a_col_stride: 1,
                    b_row_stride: width as u32,
                    b_col_stride: 1,
                    epilogue: 0,
                },
                Slice::all(l.d_output),
                weight,
                weight,
                Slice::all(d_input),
            ),
        ));
    }
    out
}
