// The activations: the one place their formulas are written, prepended to every kernel that
// applies one (the matmul epilogues) or differentiates one (activation.wgsl, loss.wgsl). The
// codes ACT_* come before this file, generated from the Rust enum `Activation` (src/layer.rs).

fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case ACT_RELU: { return max(x, 0.0); }
        case ACT_TANH: { return tanh(x); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

// `activate` on each component (one switch per vec4: llvmpipe evaluates a switch lane by lane).
fn activate4(x: vec4<f32>, kind: u32) -> vec4<f32> {
    switch kind {
        case ACT_RELU: { return max(x, vec4<f32>(0.0)); }
        case ACT_TANH: { return tanh(x); }
        case ACT_SIGMOID: { return 1.0 / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

// The derivative, from the layer's output y = act(x), which the forward pass kept:
// relu' = y > 0, tanh' = 1 - y², sigmoid' = y (1 - y).
fn derivative(y: f32, kind: u32) -> f32 {
    switch kind {
        case ACT_RELU: { return select(0.0, 1.0, y > 0.0); }
        case ACT_TANH: { return 1.0 - y * y; }
        case ACT_SIGMOID: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}
