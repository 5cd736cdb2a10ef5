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
// Entry points and what src/gpu/matmul.rs checks before choosing one:
//   nn  A [m, k] rows, B [k, n] rows        (dX = dZ · W, square benchmarks)  k % 4 == 0, n % 4 == 0
//   nt  A [m, k] rows, B stored as [n, k]   (Z = X · Wᵀ)                       k % 4 == 0
//   tn  A stored as [k, m], B [k, n] rows   (dW = dZᵀ · X)                     m % 4 == 0, n % 4 == 0
// Row strides (in floats) are multiples of 4 in every case, so vec4 indices are exact.
// Rows or columns past the edge of C are clamped for loading and skipped when storing.

// Dims, its uniform, the bias and C bindings, activate and store: matmul_common.wgsl.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

// Invocations per workgroup (one SIMD group of llvmpipe, 8 lanes, side by side along n).
const LANES: u32 = 8u;

// Stores four consecutive columns col .. col + 3 of row r.
fn store4(r: u32, col: u32, v: vec4<f32>) {
    store(r, col, v.x);
    store(r, col + 1u, v.y);
    store(r, col + 2u, v.z);
    store(r, col + 3u, v.w);
}

// ---- nn: 16 rows × 2 vec4 columns (8 columns) per invocation ---------------------------
// Grid: x = column strips of LANES × 8 columns, y = blocks of 16 rows.
// Per 4 values of k: 16 vec4 loads of A and 8 of B for 512 FMAs. Written out by hand
// (no arrays): llvmpipe keeps loose variables in registers but not always arrays.
@compute @workgroup_size(8)
fn nn(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let c0 = wid.x * LANES * 2u + lid.x; // vec4 columns c0, c0 + LANES, ...
    let r0 = wid.y * 16u;
    let ars = dims.a_row_stride / 4u;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0 + 0u * LANES, n4 - 1u);
    let lc1 = min(c0 + 1u * LANES, n4 - 1u);
    let a0 = min(r0 + 0u, dims.m - 1u) * ars;
    let a1 = min(r0 + 1u, dims.m - 1u) * ars;
    let a2 = min(r0 + 2u, dims.m - 1u) * ars;
    let a3 = min(r0 + 3u, dims.m - 1u) * ars;
    let a4 = min(r0 + 4u, dims.m - 1u) * ars;
    let a5 = min(r0 + 5u, dims.m - 1u) * ars;
    let a6 = min(r0 + 6u, dims.m - 1u) * ars;
    let a7 = min(r0 + 7u, dims.m - 1u) * ars;
    let a8 = min(r0 + 8u, dims.m - 1u) * ars;
    let a9 = min(r0 + 9u, dims.m - 1u) * ars;
    let a10 = min(r0 + 10u, dims.m - 1u) * ars;
    let a11 = min(r0 + 11u, dims.m - 1u) * ars;
    let a12 = min(r0 + 12u, dims.m - 1u) * ars;
    let a13 = min(r0 + 13u, dims.m - 1u) * ars;
    let a14 = min(r0 + 14u, dims.m - 1u) * ars;
    let a15 = min(r0 + 15u, dims.m - 1u) * ars;

    var s0_0 = vec4<f32>(0.0); var s0_1 = vec4<f32>(0.0);
    var s1_0 = vec4<f32>(0.0); var s1_1 = vec4<f32>(0.0);
    var s2_0 = vec4<f32>(0.0); var s2_1 = vec4<f32>(0.0);
    var s3_0 = vec4<f32>(0.0); var s3_1 = vec4<f32>(0.0);
    var s4_0 = vec4<f32>(0.0); var s4_1 = vec4<f32>(0.0);
    var s5_0 = vec4<f32>(0.0); var s5_1 = vec4<f32>(0.0);
    var s6_0 = vec4<f32>(0.0); var s6_1 = vec4<f32>(0.0);
    var s7_0 = vec4<f32>(0.0); var s7_1 = vec4<f32>(0.0);
    var s8_0 = vec4<f32>(0.0); var s8_1 = vec4<f32>(0.0);
    var s9_0 = vec4<f32>(0.0); var s9_1 = vec4<f32>(0.0);
    var s10_0 = vec4<f32>(0.0); var s10_1 = vec4<f32>(0.0);
    var s11_0 = vec4<f32>(0.0); var s11_1 = vec4<f32>(0.0);
    var s12_0 = vec4<f32>(0.0); var s12_1 = vec4<f32>(0.0);
    var s13_0 = vec4<f32>(0.0); var s13_1 = vec4<f32>(0.0);
    var s14_0 = vec4<f32>(0.0); var s14_1 = vec4<f32>(0.0);
    var s15_0 = vec4<f32>(0.0); var s15_1 = vec4<f32>(0.0);

    for (var q = 0u; q < dims.k / 4u; q++) {
        let x0 = a[a0 + q];
        let x1 = a[a1 + q];
        let x2 = a[a2 + q];
        let x3 = a[a3 + q];
        let x4 = a[a4 + q];
        let x5 = a[a5 + q];
        let x6 = a[a6 + q];
        let x7 = a[a7 + q];
        let x8 = a[a8 + q];
        let x9 = a[a9 + q];
        let x10 = a[a10 + q];
        let x11 = a[a11 + q];
        let x12 = a[a12 + q];
        let x13 = a[a13 + q];
        let x14 = a[a14 + q];
        let x15 = a[a15 + q];
        // k = 4q .. 4q + 3, in increasing order.
        for (var kk = 0u; kk < 4u; kk++) {
            let row = (4u * q + kk) * brs;
            let y0 = b[row + lc0];
            let y1 = b[row + lc1];
            s0_0 = fma(vec4<f32>(x0[kk]), y0, s0_0); s0_1 = fma(vec4<f32>(x0[kk]), y1, s0_1);
            s1_0 = fma(vec4<f32>(x1[kk]), y0, s1_0); s1_1 = fma(vec4<f32>(x1[kk]), y1, s1_1);
            s2_0 = fma(vec4<f32>(x2[kk]), y0, s2_0); s2_1 = fma(vec4<f32>(x2[kk]), y1, s2_1);
            s3_0 = fma(vec4<f32>(x3[kk]), y0, s3_0); s3_1 = fma(vec4<f32>(x3[kk]), y1, s3_1);
            s4_0 = fma(vec4<f32>(x4[kk]), y0, s4_0); s4_1 = fma(vec4<f32>(x4[kk]), y1, s4_1);
            s5_0 = fma(vec4<f32>(x5[kk]), y0, s5_0); s5_1 = fma(vec4<f32>(x5[kk]), y1, s5_1);
            s6_0 = fma(vec4<f32>(x6[kk]), y0, s6_0); s6_1 = fma(vec4<f32>(x6[kk]), y1, s6_1);
            s7_0 = fma(vec4<f32>(x7[kk]), y0, s7_0); s7_1 = fma(vec4<f32>(x7[kk]), y1, s7_1);
            s8_0 = fma(vec4<f32>(x8[kk]), y0, s8_0); s8_1 = fma(vec4<f32>(x8[kk]), y1, s8_1);
            s9_0 = fma(vec4<f32>(x9[kk]), y0, s9_0); s9_1 = fma(vec4<f32>(x9[kk]), y1, s9_1);
            s10_0 = fma(vec4<f32>(x10[kk]), y0, s10_0); s10_1 = fma(vec4<f32>(x10[kk]), y1, s10_1);
            s11_0 = fma(vec4<f32>(x11[kk]), y0, s11_0); s11_1 = fma(vec4<f32>(x11[kk]), y1, s11_1);
            s12_0 = fma(vec4<f32>(x12[kk]), y0, s12_0); s12_1 = fma(vec4<f32>(x12[kk]), y1, s12_1);
            s13_0 = fma(vec4<f32>(x13[kk]), y0, s13_0); s13_1 = fma(vec4<f32>(x13[kk]), y1, s13_1);
            s14_0 = fma(vec4<f32>(x14[kk]), y0, s14_0); s14_1 = fma(vec4<f32>(x14[kk]), y1, s14_1);
            s15_0 = fma(vec4<f32>(x15[kk]), y0, s15_0); s15_1 = fma(vec4<f32>(x15[kk]), y1, s15_1);
        }
    }

    if (c0 + 0u * LANES < n4) {
        store4(r0 + 0u, 4u * (c0 + 0u * LANES), s0_0);
        store4(r0 + 1u, 4u * (c0 + 0u * LANES), s1_0);
        store4(r0 + 2u, 4u * (c0 + 0u * LANES), s2_0);
        store4(r0 + 3u, 4u * (c0 + 0u * LANES), s3_0);
        store4(r0 + 4u, 4u * (c0 + 0u * LANES), s4_0);
        store4(r0 + 5u, 4u * (c0 + 0u * LANES), s5_0);
        store4(r0 + 6u, 4u * (c0 + 0u * LANES), s6_0);
        store4(r0 + 7u, 4u * (c0 + 0u * LANES), s7_0);
        store4(r0 + 8u, 4u * (c0 + 0u * LANES), s8_0);
        store4(r0 + 9u, 4u * (c0 + 0u * LANES), s9_0);
        store4(r0 + 10u, 4u * (c0 + 0u * LANES), s10_0);
        store4(r0 + 11u, 4u * (c0 + 0u * LANES), s11_0);
        store4(r0 + 12u, 4u * (c0 + 0u * LANES), s12_0);
        store4(r0 + 13u, 4u * (c0 + 0u * LANES), s13_0);
        store4(r0 + 14u, 4u * (c0 + 0u * LANES), s14_0);
        store4(r0 + 15u, 4u * (c0 + 0u * LANES), s15_0);
    }
    if (c0 + 1u * LANES < n4) {
        store4(r0 + 0u, 4u * (c0 + 1u * LANES), s0_1);
        store4(r0 + 1u, 4u * (c0 + 1u * LANES), s1_1);
        store4(r0 + 2u, 4u * (c0 + 1u * LANES), s2_1);
        store4(r0 + 3u, 4u * (c0 + 1u * LANES), s3_1);
        store4(r0 + 4u, 4u * (c0 + 1u * LANES), s4_1);
        store4(r0 + 5u, 4u * (c0 + 1u * LANES), s5_1);
        store4(r0 + 6u, 4u * (c0 + 1u * LANES), s6_1);
        store4(r0 + 7u, 4u * (c0 + 1u * LANES), s7_1);
        store4(r0 + 8u, 4u * (c0 + 1u * LANES), s8_1);
        store4(r0 + 9u, 4u * (c0 + 1u * LANES), s9_1);
        store4(r0 + 10u, 4u * (c0 + 1u * LANES), s10_1);
        store4(r0 + 11u, 4u * (c0 + 1u * LANES), s11_1);
        store4(r0 + 12u, 4u * (c0 + 1u * LANES), s12_1);
        store4(r0 + 13u, 4u * (c0 + 1u * LANES), s13_1);
        store4(r0 + 14u, 4u * (c0 + 1u * LANES), s14_1);
        store4(r0 + 15u, 4u * (c0 + 1u * LANES), s15_1);
    }
}

// ---- nt: 8 rows × 4 columns per invocation, both operands read as vec4 along k ---------------
// Grid: x = strips of LANES × 4 columns, y = blocks of 8 rows.
// Per 4 values of k: 8 vec4 loads of A and 4 of B for 128 FMAs.
@compute @workgroup_size(8)
fn nt(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Columns col0 + LANES j, so neighbouring lanes read neighbouring rows of B.
    let col0 = wid.x * LANES * 4u + lid.x;
    let r0 = wid.y * 8u;
    let ars = dims.a_row_stride / 4u;
    let bcs = dims.b_col_stride / 4u;
    let a0 = min(r0 + 0u, dims.m - 1u) * ars;
    let a1 = min(r0 + 1u, dims.m - 1u) * ars;
    let a2 = min(r0 + 2u, dims.m - 1u) * ars;
    let a3 = min(r0 + 3u, dims.m - 1u) * ars;
    let a4 = min(r0 + 4u, dims.m - 1u) * ars;
    let a5 = min(r0 + 5u, dims.m - 1u) * ars;
    let a6 = min(r0 + 6u, dims.m - 1u) * ars;
    let a7 = min(r0 + 7u, dims.m - 1u) * ars;
    let b0 = min(col0 + 0u * LANES, dims.n - 1u) * bcs;
    let b1 = min(col0 + 1u * LANES, dims.n - 1u) * bcs;
    let b2 = min(col0 + 2u * LANES, dims.n - 1u) * bcs;
    let b3 = min(col0 + 3u * LANES, dims.n - 1u) * bcs;

    // s_i = C(r0 + i, col0 + LANES j) for j = 0..3 in its components.
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    var s4 = vec4<f32>(0.0);
    var s5 = vec4<f32>(0.0);
    var s6 = vec4<f32>(0.0);
    var s7 = vec4<f32>(0.0);

    for (var q = 0u; q < dims.k / 4u; q++) {
        let x0 = a[a0 + q];
        let x1 = a[a1 + q];
        let x2 = a[a2 + q];
        let x3 = a[a3 + q];
        let x4 = a[a4 + q];
        let x5 = a[a5 + q];
        let x6 = a[a6 + q];
        let x7 = a[a7 + q];
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
            s4 = fma(vec4<f32>(x4[kk]), y, s4);
            s5 = fma(vec4<f32>(x5[kk]), y, s5);
            s6 = fma(vec4<f32>(x6[kk]), y, s6);
            s7 = fma(vec4<f32>(x7[kk]), y, s7);
        }
    }

    store(r0 + 0u, col0, s0.x); store(r0 + 0u, col0 + LANES, s0.y);
    store(r0 + 0u, col0 + 2u * LANES, s0.z); store(r0 + 0u, col0 + 3u * LANES, s0.w);
    store(r0 + 1u, col0, s1.x); store(r0 + 1u, col0 + LANES, s1.y);
    store(r0 + 1u, col0 + 2u * LANES, s1.z); store(r0 + 1u, col0 + 3u * LANES, s1.w);
    store(r0 + 2u, col0, s2.x); store(r0 + 2u, col0 + LANES, s2.y);
    store(r0 + 2u, col0 + 2u * LANES, s2.z); store(r0 + 2u, col0 + 3u * LANES, s2.w);
    store(r0 + 3u, col0, s3.x); store(r0 + 3u, col0 + LANES, s3.y);
    store(r0 + 3u, col0 + 2u * LANES, s3.z); store(r0 + 3u, col0 + 3u * LANES, s3.w);
    store(r0 + 4u, col0, s4.x); store(r0 + 4u, col0 + LANES, s4.y);
    store(r0 + 4u, col0 + 2u * LANES, s4.z); store(r0 + 4u, col0 + 3u * LANES, s4.w);
    store(r0 + 5u, col0, s5.x); store(r0 + 5u, col0 + LANES, s5.y);
    store(r0 + 5u, col0 + 2u * LANES, s5.z); store(r0 + 5u, col0 + 3u * LANES, s5.w);
    store(r0 + 6u, col0, s6.x); store(r0 + 6u, col0 + LANES, s6.y);
    store(r0 + 6u, col0 + 2u * LANES, s6.z); store(r0 + 6u, col0 + 3u * LANES, s6.w);
    store(r0 + 7u, col0, s7.x); store(r0 + 7u, col0 + LANES, s7.y);
    store(r0 + 7u, col0 + 2u * LANES, s7.z); store(r0 + 7u, col0 + 3u * LANES, s7.w);
}

// ---- tn: 8 rows × 2 vec4 columns per invocation: outer products of a column of A (read as
// vec4 along m) and a row of B (vec4 along n).
// Grid: x = strips of LANES × 8 columns, y = blocks of 8 rows.
// Per value of k: 2 vec4 loads of A and 2 of B for 64 FMAs.
@compute @workgroup_size(8)
fn tn(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let m4 = dims.m / 4u;
    let c0 = wid.x * LANES * 2u + lid.x;
    let r0 = wid.y * 8u; // m % 4 == 0: rows r0 .. r0 + 3 are one vec4 of a column of A
    let acs = dims.a_col_stride / 4u;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0 + 0u * LANES, n4 - 1u);
    let lc1 = min(c0 + 1u * LANES, n4 - 1u);
    let ar0 = min(r0 / 4u + 0u, m4 - 1u);
    let ar1 = min(r0 / 4u + 1u, m4 - 1u);

    var s0_0 = vec4<f32>(0.0); var s0_1 = vec4<f32>(0.0);
    var s1_0 = vec4<f32>(0.0); var s1_1 = vec4<f32>(0.0);
    var s2_0 = vec4<f32>(0.0); var s2_1 = vec4<f32>(0.0);
    var s3_0 = vec4<f32>(0.0); var s3_1 = vec4<f32>(0.0);
    var s4_0 = vec4<f32>(0.0); var s4_1 = vec4<f32>(0.0);
    var s5_0 = vec4<f32>(0.0); var s5_1 = vec4<f32>(0.0);
    var s6_0 = vec4<f32>(0.0); var s6_1 = vec4<f32>(0.0);
    var s7_0 = vec4<f32>(0.0); var s7_1 = vec4<f32>(0.0);

    for (var k = 0u; k < dims.k; k++) {
        let x0 = a[k * acs + ar0];
        let x1 = a[k * acs + ar1];
        let y0 = b[k * brs + lc0];
        let y1 = b[k * brs + lc1];
        s0_0 = fma(vec4<f32>(x0.x), y0, s0_0); s0_1 = fma(vec4<f32>(x0.x), y1, s0_1);
        s1_0 = fma(vec4<f32>(x0.y), y0, s1_0); s1_1 = fma(vec4<f32>(x0.y), y1, s1_1);
        s2_0 = fma(vec4<f32>(x0.z), y0, s2_0); s2_1 = fma(vec4<f32>(x0.z), y1, s2_1);
        s3_0 = fma(vec4<f32>(x0.w), y0, s3_0); s3_1 = fma(vec4<f32>(x0.w), y1, s3_1);
        s4_0 = fma(vec4<f32>(x1.x), y0, s4_0); s4_1 = fma(vec4<f32>(x1.x), y1, s4_1);
        s5_0 = fma(vec4<f32>(x1.y), y0, s5_0); s5_1 = fma(vec4<f32>(x1.y), y1, s5_1);
        s6_0 = fma(vec4<f32>(x1.z), y0, s6_0); s6_1 = fma(vec4<f32>(x1.z), y1, s6_1);
        s7_0 = fma(vec4<f32>(x1.w), y0, s7_0); s7_1 = fma(vec4<f32>(x1.w), y1, s7_1);
    }

    if (c0 + 0u * LANES < n4) {
        store4(r0 + 0u, 4u * (c0 + 0u * LANES), s0_0);
        store4(r0 + 1u, 4u * (c0 + 0u * LANES), s1_0);
        store4(r0 + 2u, 4u * (c0 + 0u * LANES), s2_0);
        store4(r0 + 3u, 4u * (c0 + 0u * LANES), s3_0);
        store4(r0 + 4u, 4u * (c0 + 0u * LANES), s4_0);
        store4(r0 + 5u, 4u * (c0 + 0u * LANES), s5_0);
        store4(r0 + 6u, 4u * (c0 + 0u * LANES), s6_0);
        store4(r0 + 7u, 4u * (c0 + 0u * LANES), s7_0);
    }
    if (c0 + 1u * LANES < n4) {
        store4(r0 + 0u, 4u * (c0 + 1u * LANES), s0_1);
        store4(r0 + 1u, 4u * (c0 + 1u * LANES), s1_1);
        store4(r0 + 2u, 4u * (c0 + 1u * LANES), s2_1);
        store4(r0 + 3u, 4u * (c0 + 1u * LANES), s3_1);
        store4(r0 + 4u, 4u * (c0 + 1u * LANES), s4_1);
        store4(r0 + 5u, 4u * (c0 + 1u * LANES), s5_1);
        store4(r0 + 6u, 4u * (c0 + 1u * LANES), s6_1);
        store4(r0 + 7u, 4u * (c0 + 1u * LANES), s7_1);
    }
}
