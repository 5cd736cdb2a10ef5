// Register-blocked matrix products for CPU adapters (lavapipe), one entry point per layout.
//
//   C[m, n] = act( sum_k A(m, k) * B(k, n) + bias[n] )      (same Dims as matmul.wgsl)
//
// Why a second kernel: on llvmpipe an invocation is one lane of an 8-wide SIMD loop, and every
// storage or workgroup load becomes a loop over the 8 lanes with a branch per lane, whatever
// its width. A vec4 load costs about what a scalar load costs, so these kernels read A and B as
// vec4 along their unit-stride dimension and give each invocation a large block of C, which
// makes several FMAs per load. No workgroup memory and no barriers: the CPU's caches do the
// tiling, and a barrier makes llvmpipe switch between coroutines.
//
// Each output element is still summed over k in increasing order by a single invocation, so
// results are bit-identical from run to run (no atomics, no split-k).
//
// Entry points and what src/gpu/kernels.rs checks before choosing one:
//   nn  A [m, k] rows, B [k, n] rows        (dX = dZ · W, square benchmarks)  k % 4 == 0, n % 4 == 0
//   nt  A [m, k] rows, B stored as [n, k]   (Z = X · Wᵀ)                       k % 4 == 0
//   tn  A stored as [k, m], B [k, n] rows   (dW = dZᵀ · X)                     m % 4 == 0, n % 4 == 0
// Row strides (in floats) are multiples of 4 in every case, so vec4 indices are exact.
// Rows or columns past the edge of C are clamped for loading and skipped when storing.

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
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

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

// Stores C[r, col] = act(v + bias) if (r, col) lies inside C.
fn store(r: u32, col: u32, v: f32) {
    if (r < dims.m && col < dims.n) {
        var x = v;
        if ((dims.epilogue & 1u) != 0u) {
            x += bias[col];
        }
        c[r * dims.n + col] = activate(x, (dims.epilogue >> 8u) & 255u);
    }
}

// Stores four consecutive columns col .. col + 3 of row r.
fn store4(r: u32, col: u32, v: vec4<f32>) {
    store(r, col, v.x);
    store(r, col + 1u, v.y);
    store(r, col + 2u, v.z);
    store(r, col + 3u, v.w);
}

// ---- nn: 4 rows × 8 columns (two vec4) per invocation ----------------------------------------
// Grid: x = column strips of LANES × 8 columns, y = blocks of 4 rows.
// Per 4 values of k: 4 vec4 loads of A and 8 of B for 128 FMAs.
@compute @workgroup_size(8)
fn nn(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let c0 = wid.x * LANES * 2u + lid.x; // vec4 column of this invocation; c0 + LANES the other
    let c1 = c0 + LANES;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c1, n4 - 1u);
    let r0 = wid.y * 4u;
    let ars = dims.a_row_stride / 4u;
    let brs = dims.b_row_stride / 4u;
    // First vec4 of each of the 4 rows of A (clamped inside A).
    let a0 = min(r0, dims.m - 1u) * ars;
    let a1 = min(r0 + 1u, dims.m - 1u) * ars;
    let a2 = min(r0 + 2u, dims.m - 1u) * ars;
    let a3 = min(r0 + 3u, dims.m - 1u) * ars;

    var s00 = vec4<f32>(0.0); var s01 = vec4<f32>(0.0);
    var s10 = vec4<f32>(0.0); var s11 = vec4<f32>(0.0);
    var s20 = vec4<f32>(0.0); var s21 = vec4<f32>(0.0);
    var s30 = vec4<f32>(0.0); var s31 = vec4<f32>(0.0);

    for (var q = 0u; q < dims.k / 4u; q++) {
        let x0 = a[a0 + q];
        let x1 = a[a1 + q];
        let x2 = a[a2 + q];
        let x3 = a[a3 + q];
        // k = 4q .. 4q + 3, in increasing order.
        for (var kk = 0u; kk < 4u; kk++) {
            let row = (4u * q + kk) * brs;
            let y0 = b[row + lc0];
            let y1 = b[row + lc1];
            s00 = fma(vec4<f32>(x0[kk]), y0, s00); s01 = fma(vec4<f32>(x0[kk]), y1, s01);
            s10 = fma(vec4<f32>(x1[kk]), y0, s10); s11 = fma(vec4<f32>(x1[kk]), y1, s11);
            s20 = fma(vec4<f32>(x2[kk]), y0, s20); s21 = fma(vec4<f32>(x2[kk]), y1, s21);
            s30 = fma(vec4<f32>(x3[kk]), y0, s30); s31 = fma(vec4<f32>(x3[kk]), y1, s31);
        }
    }

    if (c0 < n4) {
        store4(r0, 4u * c0, s00); store4(r0 + 1u, 4u * c0, s10);
        store4(r0 + 2u, 4u * c0, s20); store4(r0 + 3u, 4u * c0, s30);
    }
    if (c1 < n4) {
        store4(r0, 4u * c1, s01); store4(r0 + 1u, 4u * c1, s11);
        store4(r0 + 2u, 4u * c1, s21); store4(r0 + 3u, 4u * c1, s31);
    }
}

// ---- nt: 4 rows × 4 columns per invocation, both operands read as vec4 along k --------------
// Grid: x = strips of LANES × 4 columns, y = blocks of 4 rows.
// Per 4 values of k: 4 vec4 loads of A and 4 of B for 64 FMAs.
@compute @workgroup_size(8)
fn nt(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Columns col0 + LANES * j, j = 0..3, so neighbouring lanes read neighbouring rows of B.
    let col0 = wid.x * LANES * 4u + lid.x;
    let r0 = wid.y * 4u;
    let ars = dims.a_row_stride / 4u;
    let bcs = dims.b_col_stride / 4u;
    let a0 = min(r0, dims.m - 1u) * ars;
    let a1 = min(r0 + 1u, dims.m - 1u) * ars;
    let a2 = min(r0 + 2u, dims.m - 1u) * ars;
    let a3 = min(r0 + 3u, dims.m - 1u) * ars;
    let b0 = min(col0, dims.n - 1u) * bcs;
    let b1 = min(col0 + LANES, dims.n - 1u) * bcs;
    let b2 = min(col0 + 2u * LANES, dims.n - 1u) * bcs;
    let b3 = min(col0 + 3u * LANES, dims.n - 1u) * bcs;

    // s[i][j] = C(r0 + i, col0 + LANES j), one scalar per lane.
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);

    for (var q = 0u; q < dims.k / 4u; q++) {
        let x0 = a[a0 + q];
        let x1 = a[a1 + q];
        let x2 = a[a2 + q];
        let x3 = a[a3 + q];
        let y0 = b[b0 + q];
        let y1 = b[b1 + q];
        let y2 = b[b2 + q];
        let y3 = b[b3 + q];
        // k = 4q .. 4q + 3, in increasing order.
        for (var kk = 0u; kk < 4u; kk++) {
            let y = vec4<f32>(y0[kk], y1[kk], y2[kk], y3[kk]);
            s0 = fma(vec4<f32>(x0[kk]), y, s0);
            s1 = fma(vec4<f32>(x1[kk]), y, s1);
            s2 = fma(vec4<f32>(x2[kk]), y, s2);
            s3 = fma(vec4<f32>(x3[kk]), y, s3);
        }
    }

    let rows = array<vec4<f32>, 4>(s0, s1, s2, s3);
    for (var i = 0u; i < 4u; i++) {
        store(r0 + i, col0, rows[i].x);
        store(r0 + i, col0 + LANES, rows[i].y);
        store(r0 + i, col0 + 2u * LANES, rows[i].z);
        store(r0 + i, col0 + 3u * LANES, rows[i].w);
    }
}

// ---- tn: 4 rows × 8 columns per invocation, outer products of vec4 columns of A and rows of B
// Grid: x = strips of LANES × 8 columns, y = blocks of 4 rows.
// Per value of k: 1 vec4 load of A and 2 of B for 32 FMAs.
@compute @workgroup_size(8)
fn tn(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let c0 = wid.x * LANES * 2u + lid.x;
    let c1 = c0 + LANES;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c1, n4 - 1u);
    let r0 = wid.y * 4u; // m % 4 == 0: the 4 rows are one vec4 of a column of A
    let acs = dims.a_col_stride / 4u;
    let brs = dims.b_row_stride / 4u;
    let ar = min(r0, dims.m - 1u) / 4u;

    var s00 = vec4<f32>(0.0); var s01 = vec4<f32>(0.0);
    var s10 = vec4<f32>(0.0); var s11 = vec4<f32>(0.0);
    var s20 = vec4<f32>(0.0); var s21 = vec4<f32>(0.0);
    var s30 = vec4<f32>(0.0); var s31 = vec4<f32>(0.0);

    for (var k = 0u; k < dims.k; k++) {
        let x = a[k * acs + ar];
        let y0 = b[k * brs + lc0];
        let y1 = b[k * brs + lc1];
        s00 = fma(vec4<f32>(x.x), y0, s00); s01 = fma(vec4<f32>(x.x), y1, s01);
        s10 = fma(vec4<f32>(x.y), y0, s10); s11 = fma(vec4<f32>(x.y), y1, s11);
        s20 = fma(vec4<f32>(x.z), y0, s20); s21 = fma(vec4<f32>(x.z), y1, s21);
        s30 = fma(vec4<f32>(x.w), y0, s30); s31 = fma(vec4<f32>(x.w), y1, s31);
    }

    if (c0 < n4) {
        store4(r0, 4u * c0, s00); store4(r0 + 1u, 4u * c0, s10);
        store4(r0 + 2u, 4u * c0, s20); store4(r0 + 3u, 4u * c0, s30);
    }
    if (c1 < n4) {
        store4(r0, 4u * c1, s01); store4(r0 + 1u, 4u * c1, s11);
        store4(r0 + 2u, 4u * c1, s21); store4(r0 + 3u, 4u * c1, s31);
    }
}
