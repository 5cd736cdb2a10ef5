// Tiled matrix product with a fused bias + activation epilogue.
//
//   C[m, n] = act( sum_k A(m, k) * B(k, n) + bias[n] )
//
// A and B are addressed through row and column strides, so one kernel serves every product the
// training step needs without transposing anything in memory:
//   forward  Z  = X · Wᵀ   (A = X [rows, in],  B(k, n) = W[n, k])
//   backward dX = dZ · W   (A = dZ [rows, out], B = W [out, in])
//   backward dW = dZᵀ · X  (A(m, k) = dZ[k, m], B = X [rows, in])
//
// Each output element is summed over k in increasing order by a single invocation, so results
// are bit-identical from run to run (no atomics, no split-k).
//
// Dims, its uniform, the bias and C bindings, activate and store: matmul_common.wgsl.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

// A workgroup of 16×16 invocations computes a 64×64 tile of C; each invocation a 4×4 block,
// strided by 16 so that neighbouring invocations touch neighbouring columns.
const TILE: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;

var<workgroup> a_tile: array<f32, 1024>; // [TILE_K][TILE], k-major so the inner loop reads rows
var<workgroup> b_tile: array<f32, 1024>; // [TILE_K][TILE]

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;

    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }

    for (var k0 = 0u; k0 < dims.k; k0 += TILE_K) {
        // Cooperative load: 1024 elements of each tile, four per invocation; zero outside.
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * THREADS;
            let am = e / TILE_K;
            let ak = e % TILE_K;
            let gm = row0 + am;
            let gk = k0 + ak;
            var av = 0.0;
            if (gm < dims.m && gk < dims.k) {
                av = a[gm * dims.a_row_stride + gk * dims.a_col_stride];
            }
            a_tile[ak * TILE + am] = av;

            let bk = e / TILE;
            let bn = e % TILE;
            let gk2 = k0 + bk;
            let gn = col0 + bn;
            var bv = 0.0;
            if (gk2 < dims.k && gn < dims.n) {
                bv = b[gk2 * dims.b_row_stride + gn * dims.b_col_stride];
            }
            b_tile[bk * TILE + bn] = bv;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE + lid.y + 16u * i];
                bv[i] = b_tile[kk * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            store(row0 + lid.y + 16u * i, col0 + lid.x + 16u * j, acc[i * 4u + j]);
        }
    }
}

// `small`: the same product with 16×16 tiles and one output per invocation, for GPUs when C
// has too few 64×64 tiles to fill the device (the W1 layers have 8). Every output is still
// summed over k in increasing order by one invocation, with the same fma chain as `main`, so
// both entry points give identical bits. Each operand tile is loaded with neighbouring
// invocations on neighbouring addresses, whichever of its strides is 1.
const SMALL: u32 = 16u;

var<workgroup> a_small: array<f32, 256>; // [k][row]
var<workgroup> b_small: array<f32, 256>; // [k][col]

@compute @workgroup_size(16, 16)
fn small(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * SMALL;
    let col0 = wid.x * SMALL;
    var acc = 0.0;
    for (var k0 = 0u; k0 < dims.k; k0 += SMALL) {
        var ar = lid.y;
        var ak = lid.x;
        if (dims.a_col_stride != 1u) {
            ar = lid.x;
            ak = lid.y;
        }
        var av = 0.0;
        if (row0 + ar < dims.m && k0 + ak < dims.k) {
            av = a[(row0 + ar) * dims.a_row_stride + (k0 + ak) * dims.a_col_stride];
        }
        a_small[ak * SMALL + ar] = av;

        var bk = lid.y;
        var bc = lid.x;
        if (dims.b_col_stride != 1u) {
            bk = lid.x;
            bc = lid.y;
        }
        var bv = 0.0;
        if (k0 + bk < dims.k && col0 + bc < dims.n) {
            bv = b[(k0 + bk) * dims.b_row_stride + (col0 + bc) * dims.b_col_stride];
        }
        b_small[bk * SMALL + bc] = bv;
        workgroupBarrier();

        for (var kk = 0u; kk < SMALL; kk++) {
            acc = fma(a_small[kk * SMALL + lid.y], b_small[kk * SMALL + lid.x], acc);
        }
        workgroupBarrier();
    }

    store(row0 + lid.y, col0 + lid.x, acc);
}

// ---- blocked: 4 rows × 4 columns per invocation, scalar loads, any strides, no workgroup
// memory. For CPU adapters on products the vec4 kernels of matmul_vec4.wgsl cannot take (a
// 10-wide output layer): llvmpipe runs the invocations of a workgroup as coroutines and
// switches between all of them at every barrier, which makes `main` slow on narrow products.
// Lanes sit side by side along n (columns col0 + BLOCK_LANES j) so they read neighbouring
// columns of B; all lanes read the same elements of A.
const BLOCK_LANES: u32 = 8u;

// Columns col0 + BLOCK_LANES j (j = 0..3) of row r.
fn store_blocked4(r: u32, col0: u32, v: vec4<f32>) {
    store(r, col0, v.x);
    store(r, col0 + BLOCK_LANES, v.y);
    store(r, col0 + 2u * BLOCK_LANES, v.z);
    store(r, col0 + 3u * BLOCK_LANES, v.w);
}

@compute @workgroup_size(8)
fn blocked(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let col0 = wid.x * BLOCK_LANES * 4u + lid.x;
    let r0 = wid.y * 4u;
    // Rows and columns past the edge are clamped for loading and skipped when storing.
    let a0 = min(r0, dims.m - 1u) * dims.a_row_stride;
    let a1 = min(r0 + 1u, dims.m - 1u) * dims.a_row_stride;
    let a2 = min(r0 + 2u, dims.m - 1u) * dims.a_row_stride;
    let a3 = min(r0 + 3u, dims.m - 1u) * dims.a_row_stride;
    let b0 = min(col0, dims.n - 1u) * dims.b_col_stride;
    let b1 = min(col0 + BLOCK_LANES, dims.n - 1u) * dims.b_col_stride;
    let b2 = min(col0 + 2u * BLOCK_LANES, dims.n - 1u) * dims.b_col_stride;
    let b3 = min(col0 + 3u * BLOCK_LANES, dims.n - 1u) * dims.b_col_stride;

    // s_i = C(r0 + i, col0 + BLOCK_LANES j) for j = 0..3 in its components.
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    for (var k = 0u; k < dims.k; k++) {
        let ak = k * dims.a_col_stride;
        let bk = k * dims.b_row_stride;
        let y = vec4<f32>(b[bk + b0], b[bk + b1], b[bk + b2], b[bk + b3]);
        s0 = fma(vec4<f32>(a[a0 + ak]), y, s0);
        s1 = fma(vec4<f32>(a[a1 + ak]), y, s1);
        s2 = fma(vec4<f32>(a[a2 + ak]), y, s2);
        s3 = fma(vec4<f32>(a[a3 + ak]), y, s3);
    }
    store_blocked4(r0, col0, s0);
    store_blocked4(r0 + 1u, col0, s1);
    store_blocked4(r0 + 2u, col0, s2);
    store_blocked4(r0 + 3u, col0, s3);
}
