// What the CPU-adapter matmul kernels `matmul_vec4.wgsl` and `matmul_subgroup.wgsl` share
// (WGSL has no includes: src/gpu/kernels.rs puts this file in front of each): Dims, the
// bindings of A, B and bias as in matmul.wgsl with A and B read as vec4<f32>, and the
// activations. Each kernel file declares C (binding 4) as it writes it.

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    a_row_stride: u32,
    a_col_stride: u32,
    b_row_stride: u32,
    b_col_stride: u32,
    // bit 0: add bias; bits 8..15: activation (0 linear, 1 relu, 2 tanh, 3 sigmoid)
    epilogue: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

// Invocations per workgroup (one SIMD group of llvmpipe, 8 lanes, side by side along n).
const LANES: u32 = 8u;

fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case 1u: { return max(x, 0.0); }
        case 2u: { return tanh(x); }
        case 3u: { return 1.0 / (1.0 + exp(-x)); }
        default: { return x; }
    }
}
