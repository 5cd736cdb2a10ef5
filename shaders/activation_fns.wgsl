// The activations: the one place their formulas are written, prepended to every kernel that
// applies one (the matmul epilogues) or differentiates one (activation.wgsl, loss.wgsl). The
// codes ACT_* come before this file, generated from the Rust enum `Activation` (src/activation.rs).

fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_TANH: { return tanh(x); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
        case ACT_GELU: { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752)); }
        case ACT_GELU_APPROXIMATE: { return 0.5 * x * (1.0 + tanh(gelu_inner(x))); }
        default: { return x; }
    }
}

// erf for f32 as Eigen and XLA compute it (a rational function on [-4, 4], within 7e-8 of
// the true erf): WGSL has no erf.
fn erf(x_in: f32) -> f32 {
    let x = clamp(x_in, -4.0, 4.0);
    let x2 = x * x;
    var p = -2.72614225801306e-10;
    p = p * x2 + 2.77068142495902e-08;
    p = p * x2 - 2.10102402082508e-06;
    p = p * x2 - 5.69250639462346e-05;
    p = p * x2 - 7.34990630326855e-04;
    p = p * x2 - 2.95459980854025e-03;
    p = p * x2 - 1.60960333262415e-02;
    var q = -1.45660718464996e-05;
    q = q * x2 - 2.13374055278905e-04;
    q = q * x2 - 1.68282697438203e-03;
    q = q * x2 - 7.37332916720468e-03;
    q = q * x2 - 1.42647390514189e-02;
    return x * p / q;
}

// √(2/π) · (x + 0.044715 x³): the tanh form's argument.
fn gelu_inner(x: f32) -> f32 {
    return 0.7978845608028654 * (x + 0.044715 * x * x * x);
}

// `activate` on each component (one switch per vec4: llvmpipe evaluates a switch lane by lane).
fn activate4(x: vec4<f32>, kind: u32) -> vec4<f32> {
    switch kind {
        case ACT_RELU: { return max(x, vec4<f32>(0.0)); }
        case ACT_TANH: { return tanh(x); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
        case ACT_GELU, ACT_GELU_APPROXIMATE: {
            return vec4<f32>(activate(x.x, kind), activate(x.y, kind), activate(x.z, kind), activate(x.w, kind));
        }
        default: { return x; }
    }
}

// The derivative, from the layer's output y = act(x), which the forward pass kept:
// relu' = y > 0, tanh' = 1 - y², sigmoid' = y (1 - y). GELU cannot be inverted: for it the
// argument is the input x, which its layers keep instead (Activation::differentiates_input).
fn derivative(y: f32, kind: u32) -> f32 {
    switch kind {
        case ACT_RELU: { return select(0.0, 1.0, y > 0.0); }
        case ACT_TANH: { return 1.0 - y * y; }
        case ACT_SIGMOID: { return y * (1.0 - y); }
        case ACT_GELU: {
            let x = y;
            return 0.5 * (1.0 + erf(x * 0.70710678118654752))
                + x * exp(-0.5 * x * x) * 0.3989422804014327;
        }
        case ACT_GELU_APPROXIMATE: {
            let x = y;
            let t = tanh(gelu_inner(x));
            return 0.5 * (1.0 + t)
                + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * x * x);
        }
        default: { return 1.0; }
    }
}
