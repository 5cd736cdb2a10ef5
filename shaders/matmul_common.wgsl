// What every matmul kernel file shares (WGSL has no includes: the `matmul_source!` macro of
// src/gpu/mod.rs puts this file in front of matmul.wgsl, matmul_vec4.wgsl, matmul_subgroup.wgsl
// and matmul_gpu.wgsl): the product's dimensions and strides, the bias binding, C as floats
// and the epilogue (bias, activation).
// Each kernel file declares A and B (bindings 1, 2) with the element type it reads them as.

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    a_row_stride: u32,
    a_col_stride: u32,
    b_row_stride: u32,
    b_col_stride: u32,
    // bit 0: add bias; bits 8..15: activation (an ACT_* code, activation_fns.wgsl)
    epilogue: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// C[r, col] = act(v + bias[col]) (the bias if the epilogue asks for it), if (r, col) lies
// inside C.
fn store(r: u32, col: u32, v: f32) {
    if (r < dims.m && col < dims.n) {
        var x = v;
        if ((dims.epilogue & 1u) != 0u) {
            x += bias[col];
        }
        c[r * dims.n + col] = activate(x, (dims.epilogue >> 8u) & 255u);
    }
}
