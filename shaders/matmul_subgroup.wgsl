// Matrix products for CPU adapters whose subgroups are exactly one 8-lane workgroup
// (lavapipe at 256 bits), one entry point per layout, like matmul_vec4.wgsl:
//
//   C[m, n] = act( sum_k A(m, k) * B(k, n) + bias[n] )
//
// Why: llvmpipe turns every storage load into a loop over the 8 lanes with a branch per lane,
// and in matmul_vec4.wgsl all 8 lanes of a workgroup load the same rows of A, eight times
// over. Here each lane loads different rows of A and subgroupBroadcast hands every row to all
// lanes, which costs an extract and a broadcast instead of a load: the loads of A fall
// eightfold, so a workgroup can afford ROWS = 64 rows of C per pass over B, the fastest of 8,
// 32, 64 and 128 on lavapipe (figures: bench/NOTES.md "Matmul on lavapipe").
//
// Every output is still summed over k in increasing order by one invocation with the same fma
// chain as matmul.wgsl, so results are bit-identical to the reference kernel (tested).
//
// Entry points and what src/gpu/matmul.rs checks before choosing one (as matmul_vec4.wgsl):
//   nn  A [m, k] rows, B [k, n] rows        (dX = dZ · W)   k % 4 == 0, n % 4 == 0
//   nt  A [m, k] rows, B stored as [n, k]   (Z = X · Wᵀ)    k % 4 == 0
//   tn  A stored as [k, m], B [k, n] rows   (dW = dZᵀ · X)  m % 4 == 0, n % 4 == 0
//   an  A in any layout, B [k, n] rows                       n % 4 == 0
// Each invocation computes ROWS rows × 8 columns of C; rows or columns past the edge of C are
// clamped for loading and skipped when storing.
//
// This file is a template: WGSL cannot unroll a loop, and neither naga nor Mesa unrolls one
// this large, while the 128 accumulators must be separate variables. src/gpu/unroll.rs
// repeats each block between `//@repeat v lo..hi` and `//@end` for v = lo .. hi - 1,
// replacing `{v}`, `{v/8}`, `{v%8}`, `{v/32}`, `{v%32/4}` and `{v%4}` by their values.

// Dims, its uniform, the bias and C bindings (C as floats, which `nt` writes: its n need not
// be a multiple of 4), activate and store: matmul_common.wgsl.

@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;

// Invocations per workgroup (one SIMD group of llvmpipe, 8 lanes, side by side along n).
const LANES: u32 = 8u;

// Rows of C per workgroup (the j ranges below).
const ROWS: u32 = 64u;

// C as vec4s: nn, tn and an write four consecutive columns at once (n % 4 == 0), which costs
// llvmpipe a quarter of the per-lane store loops of four scalar stores.
@group(0) @binding(4) var<storage, read_write> c4: array<vec4<f32>>;

// The epilogue in two steps, because its code must exist once and not once per accumulator:
// 128 inlined copies of the bias and activation took LLVM 15 s to compile. `put4` writes the
// raw sums, then, if the product has an epilogue, one loop over the block adds the bias and
// applies the activation in place: the same operations in the same order as matmul.wgsl. The
// loop loads each lane's bias once for all rows, and picks the activation once per vec4
// (llvmpipe evaluates a switch lane by lane).

// Columns col .. col + 3 of row r, if they lie inside C (n % 4 == 0: all four or none).
fn put4(r: u32, col: u32, v: vec4<f32>) {
    if (r < dims.m && col < dims.n) {
        c4[(r * dims.n + col) / 4u] = v;
    }
}

// bias[col .. col + 3] where the epilogue adds a bias and the columns lie inside C, else 0
// (then unused).
fn bias4(col: u32) -> vec4<f32> {
    if ((dims.epilogue & 1u) == 0u || col >= dims.n) {
        return vec4<f32>(0.0);
    }
    return vec4<f32>(bias[col], bias[col + 1u], bias[col + 2u], bias[col + 3u]);
}

// C[r, col .. col + 3] = act(C[r, col .. col + 3] + b), if inside C.
fn finish4(r: u32, col: u32, b: vec4<f32>) {
    if (r < dims.m && col < dims.n) {
        let i = (r * dims.n + col) / 4u;
        var x = c4[i];
        if ((dims.epilogue & 1u) != 0u) {
            x += b;
        }
        c4[i] = activate4(x, (dims.epilogue >> 8u) & 255u);
    }
}

// The epilogue of this lane's two groups of four columns, every row of the block at r0.
fn finish_block(r0: u32, col_a: u32, col_b: u32) {
    if (dims.epilogue != 0u) {
        let b_a = bias4(col_a);
        let b_b = bias4(col_b);
        for (var j = r0; j < min(r0 + ROWS, dims.m); j++) {
            finish4(j, col_a, b_a);
            finish4(j, col_b, b_b);
        }
    }
}

// Columns col .. col + 3 of row r, each if it lies inside C.
fn put4_scalar(r: u32, col: u32, v: vec4<f32>) {
    if (r < dims.m) {
        let i = r * dims.n + col;
        if (col < dims.n) { c[i] = v.x; }
        if (col + 1u < dims.n) { c[i + 1u] = v.y; }
        if (col + 2u < dims.n) { c[i + 2u] = v.z; }
        if (col + 3u < dims.n) { c[i + 3u] = v.w; }
    }
}

// `finish_block` for `nt`: columns col .. col + 7 of every row of the block at r0.
fn finish_block_scalar(r0: u32, col: u32) {
    if (dims.epilogue != 0u) {
        let act = (dims.epilogue >> 8u) & 255u;
        for (var q = col; q < min(col + 8u, dims.n); q++) {
            var b = 0.0;
            if ((dims.epilogue & 1u) != 0u) {
                b = bias[q];
            }
            for (var j = r0; j < min(r0 + ROWS, dims.m); j++) {
                var x = c[j * dims.n + q];
                if ((dims.epilogue & 1u) != 0u) {
                    x += b;
                }
                c[j * dims.n + q] = activate(x, act);
            }
        }
    }
}

// B at four values of k: kK_H is row K of the four, this lane's vec4 column group H.
struct BRows4 {
    k0_0: vec4<f32>,
    k0_1: vec4<f32>,
    k1_0: vec4<f32>,
    k1_1: vec4<f32>,
    k2_0: vec4<f32>,
    k2_1: vec4<f32>,
    k3_0: vec4<f32>,
    k3_1: vec4<f32>,
}

// Rows k .. k + 3 of a row-major B (row stride brs vec4s), at this lane's vec4 columns lc0
// and lc1.
fn b_rows4(k: u32, brs: u32, lc0: u32, lc1: u32) -> BRows4 {
    return BRows4(
        b[k * brs + lc0],
        b[k * brs + lc1],
        b[(k + 1u) * brs + lc0],
        b[(k + 1u) * brs + lc1],
        b[(k + 2u) * brs + lc0],
        b[(k + 2u) * brs + lc1],
        b[(k + 3u) * brs + lc0],
        b[(k + 3u) * brs + lc1],
    );
}

// Four values of k of eight columns of a B stored as [n, k] (z_i: column i as a vec4 along
// k), turned into the rows `add_row4` takes.
fn b_cols8(
    z0: vec4<f32>, z1: vec4<f32>, z2: vec4<f32>, z3: vec4<f32>,
    z4: vec4<f32>, z5: vec4<f32>, z6: vec4<f32>, z7: vec4<f32>,
) -> BRows4 {
    return BRows4(
        vec4<f32>(z0.x, z1.x, z2.x, z3.x),
        vec4<f32>(z4.x, z5.x, z6.x, z7.x),
        vec4<f32>(z0.y, z1.y, z2.y, z3.y),
        vec4<f32>(z4.y, z5.y, z6.y, z7.y),
        vec4<f32>(z0.z, z1.z, z2.z, z3.z),
        vec4<f32>(z4.z, z5.z, z6.z, z7.z),
        vec4<f32>(z0.w, z1.w, z2.w, z3.w),
        vec4<f32>(z4.w, z5.w, z6.w, z7.w),
    );
}

// One row of C's block: s0, s1 (its two vec4 column groups) += x[kk] · B row kk, for
// kk = 0..3 in increasing order, one fma at a time (as matmul.wgsl sums).
fn add_row4(s0: ptr<function, vec4<f32>>, s1: ptr<function, vec4<f32>>, x: vec4<f32>, y: BRows4) {
    *s0 = fma(vec4<f32>(x.x), y.k0_0, *s0);
    *s1 = fma(vec4<f32>(x.x), y.k0_1, *s1);
    *s0 = fma(vec4<f32>(x.y), y.k1_0, *s0);
    *s1 = fma(vec4<f32>(x.y), y.k1_1, *s1);
    *s0 = fma(vec4<f32>(x.z), y.k2_0, *s0);
    *s1 = fma(vec4<f32>(x.z), y.k2_1, *s1);
    *s0 = fma(vec4<f32>(x.w), y.k3_0, *s0);
    *s1 = fma(vec4<f32>(x.w), y.k3_1, *s1);
}

// ---- nn: rows r0 + j of A are loaded by lane j % 8 as vec4s along k ---------------------
// Grid: x = strips of LANES × 8 columns, y = blocks of ROWS rows.
// Per 4 values of k: 8 vec4 loads of A and 8 of B per lane for 512 FMAs.
@compute @workgroup_size(8)
fn nn(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let c0 = wid.x * LANES * 2u + lid.x; // vec4 columns c0 and c0 + LANES
    let r0 = wid.y * ROWS;
    let ars = dims.a_row_stride / 4u;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c0 + LANES, n4 - 1u);
    //@repeat g 0..8
    let ar{g} = min(r0 + {g}u * LANES + lid.x, dims.m - 1u) * ars;
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    for (var q = 0u; q < dims.k / 4u; q++) {
        //@repeat g 0..8
        let a{g} = a[ar{g} + q];
        //@end
        let y = b_rows4(4u * q, brs, lc0, lc1);
        // k = 4q .. 4q + 3 in increasing order, for row j.
        //@repeat j 0..64
        let x{j} = subgroupBroadcast(a{j/8}, {j%8}u);
        add_row4(&s{j}_0, &s{j}_1, x{j}, y);
        //@end
    }

    // The raw sums, then bias and activation in place (see `finish4`).
    //@repeat j 0..64
    put4(r0 + {j}u, 4u * c0, s{j}_0);
    put4(r0 + {j}u, 4u * (c0 + LANES), s{j}_1);
    //@end
    finish_block(r0, 4u * c0, 4u * (c0 + LANES));
}

// ---- nt: A as in nn; each lane reads its 8 rows of the stored B as vec4s along k ---------
// Lane l computes columns col0 .. col0 + 7 (col0 = 8 (LANES wid.x + l)); for row j, s_j_0
// holds the first four of them and s_j_1 the last four.
// Grid: x = strips of LANES × 8 columns, y = blocks of ROWS rows.
@compute @workgroup_size(8)
fn nt(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let col0 = (wid.x * LANES + lid.x) * 8u;
    let r0 = wid.y * ROWS;
    let ars = dims.a_row_stride / 4u;
    let bcs = dims.b_col_stride / 4u;
    //@repeat i 0..8
    let bc{i} = min(col0 + {i}u, dims.n - 1u) * bcs;
    //@end
    //@repeat g 0..8
    let ar{g} = min(r0 + {g}u * LANES + lid.x, dims.m - 1u) * ars;
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    for (var q = 0u; q < dims.k / 4u; q++) {
        //@repeat g 0..8
        let a{g} = a[ar{g} + q];
        //@end
        //@repeat i 0..8
        let z{i} = b[bc{i} + q];
        //@end
        let y = b_cols8(z0, z1, z2, z3, z4, z5, z6, z7);
        //@repeat j 0..64
        let x{j} = subgroupBroadcast(a{j/8}, {j%8}u);
        add_row4(&s{j}_0, &s{j}_1, x{j}, y);
        //@end
    }

    // The raw sums, then bias and activation in place (see `finish4`).
    //@repeat j 0..64
    put4_scalar(r0 + {j}u, col0, s{j}_0);
    put4_scalar(r0 + {j}u, col0 + 4u, s{j}_1);
    //@end
    finish_block_scalar(r0, col0);
}

// ---- tn: A stored as [k, m], so a column of A is contiguous along m: at each k, lane l
// loads rows r0 + 4l .. 4l + 3 and r0 + 32 + 4l .. 4l + 3 as two vec4s.
// Grid: x = strips of LANES × 8 columns, y = blocks of ROWS rows.
@compute @workgroup_size(8)
fn tn(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let m4 = dims.m / 4u;
    let c0 = wid.x * LANES * 2u + lid.x;
    let r0 = wid.y * ROWS;
    let acs = dims.a_col_stride / 4u;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c0 + LANES, n4 - 1u);
    //@repeat h 0..2
    let ac{h} = min(r0 / 4u + {h}u * LANES + lid.x, m4 - 1u);
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    // Four values of k per pass, so that each accumulator takes four fmas in a row: the 128
    // accumulators live in memory, not registers, and this loads and stores each a quarter as
    // often (figures: bench/NOTES.md "Matmul on lavapipe"). Then what is left of k one at a time.
    let k4 = dims.k / 4u * 4u;
    for (var k = 0u; k < k4; k += 4u) {
        //@repeat h 0..2
        let a{h}_0 = a[k * acs + ac{h}];
        let a{h}_1 = a[(k + 1u) * acs + ac{h}];
        let a{h}_2 = a[(k + 2u) * acs + ac{h}];
        let a{h}_3 = a[(k + 3u) * acs + ac{h}];
        //@end
        let y = b_rows4(k, brs, lc0, lc1);
        //@repeat j 0..64
        let x{j} = vec4<f32>(
            subgroupBroadcast(a{j/32}_0[{j%4}], {j%32/4}u),
            subgroupBroadcast(a{j/32}_1[{j%4}], {j%32/4}u),
            subgroupBroadcast(a{j/32}_2[{j%4}], {j%32/4}u),
            subgroupBroadcast(a{j/32}_3[{j%4}], {j%32/4}u),
        );
        add_row4(&s{j}_0, &s{j}_1, x{j}, y);
        //@end
    }
    for (var k = k4; k < dims.k; k++) {
        //@repeat h 0..2
        let a{h} = a[k * acs + ac{h}];
        //@end
        let y0 = b[k * brs + lc0];
        let y1 = b[k * brs + lc1];
        //@repeat j 0..64
        let z{j} = subgroupBroadcast(a{j/32}[{j%4}], {j%32/4}u);
        s{j}_0 = fma(vec4<f32>(z{j}), y0, s{j}_0);
        s{j}_1 = fma(vec4<f32>(z{j}), y1, s{j}_1);
        //@end
    }

    // The raw sums, then bias and activation in place (see `finish4`).
    //@repeat j 0..64
    put4(r0 + {j}u, 4u * c0, s{j}_0);
    put4(r0 + {j}u, 4u * (c0 + LANES), s{j}_1);
    //@end
    finish_block(r0, 4u * c0, 4u * (c0 + LANES));
}

// ---- an: A in any layout, read one float at a time; B [k, n] rows as in nn ----------------
// For the products whose A the vec4 loads cannot read: A [m, k] with k % 4 != 0, or A stored
// as [k, m] with m % 4 != 0 (the input and weight gradients of a 10-wide output layer).
// Scalar loads cost llvmpipe more per float than vec4 loads (`SubgroupAn` against `SubgroupNn`
// in bench/lavapipe-m-kernels.json), so this is the fallback, not the rule.
// Grid: x = strips of LANES × 8 columns, y = blocks of ROWS rows.
@group(0) @binding(1) var<storage, read> a_scalar: array<f32>;

@compute @workgroup_size(8)
fn an(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let c0 = wid.x * LANES * 2u + lid.x;
    let r0 = wid.y * ROWS;
    let acs = dims.a_col_stride;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c0 + LANES, n4 - 1u);
    //@repeat g 0..8
    let ar{g} = min(r0 + {g}u * LANES + lid.x, dims.m - 1u) * dims.a_row_stride;
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    // Four values of k per pass, as in tn, then the rest one at a time.
    let k4 = dims.k / 4u * 4u;
    for (var k = 0u; k < k4; k += 4u) {
        //@repeat g 0..8
        let a{g}_0 = a_scalar[ar{g} + k * acs];
        let a{g}_1 = a_scalar[ar{g} + (k + 1u) * acs];
        let a{g}_2 = a_scalar[ar{g} + (k + 2u) * acs];
        let a{g}_3 = a_scalar[ar{g} + (k + 3u) * acs];
        //@end
        let y = b_rows4(k, brs, lc0, lc1);
        //@repeat j 0..64
        let x{j} = vec4<f32>(
            subgroupBroadcast(a{j/8}_0, {j%8}u),
            subgroupBroadcast(a{j/8}_1, {j%8}u),
            subgroupBroadcast(a{j/8}_2, {j%8}u),
            subgroupBroadcast(a{j/8}_3, {j%8}u),
        );
        add_row4(&s{j}_0, &s{j}_1, x{j}, y);
        //@end
    }
    for (var k = k4; k < dims.k; k++) {
        //@repeat g 0..8
        let a{g} = a_scalar[ar{g} + k * acs];
        //@end
        let y0 = b[k * brs + lc0];
        let y1 = b[k * brs + lc1];
        //@repeat j 0..64
        let z{j} = subgroupBroadcast(a{j/8}, {j%8}u);
        s{j}_0 = fma(vec4<f32>(z{j}), y0, s{j}_0);
        s{j}_1 = fma(vec4<f32>(z{j}), y1, s{j}_1);
        //@end
    }

    // The raw sums, then bias and activation in place (see `finish4`).
    //@repeat j 0..64
    put4(r0 + {j}u, 4u * c0, s{j}_0);
    put4(r0 + {j}u, 4u * (c0 + LANES), s{j}_1);
    //@end
    finish_block(r0, 4u * c0, 4u * (c0 + LANES));
}
