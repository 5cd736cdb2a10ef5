// Register-blocked matrix product for GPUs, in two sizes.
//
// A 16×16 workgroup computes a TILE×TILE tile of C; each invocation a THREAD×THREAD block of
// it, kept in registers. Both operand tiles go through workgroup memory DEPTH values of k at
// a time, so each value loaded from A or B feeds THREAD multiply-adds instead of one (the
// `small` kernel of matmul.wgsl, one output per invocation, is bound by workgroup-memory
// reads on large products).
//
// src/gpu/matmul.rs puts `const THREAD: u32 = 4u;` (64×64 tiles, for products with few
// tiles) or `8u` (128×128 tiles) in front of this file, and matmul_common.wgsl (Dims, the
// bias and C bindings, `store`) in front of that.
//
// Exactness: each output is still summed by one invocation over k in increasing order with
// the fma chain of matmul.wgsl `main` (zeros past k, like `main`), so it gives the same bits.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

const SIDE: u32 = 16u;
const TILE: u32 = SIDE * THREAD;
const DEPTH: u32 = 16u;
// vec4s per invocation along each side of its block.
const V: u32 = THREAD / 4u;
// Floats per k-row of a workgroup tile: 4 more than TILE, so that invocations storing
// neighbouring k of one row hit different banks.
const PITCH: u32 = TILE + 4u;
// Elements of each operand tile that one invocation loads.
const LOADS: u32 = TILE * DEPTH / (SIDE * SIDE);

// [k][row] and [k][col]. An invocation's block is V groups of 4 neighbouring rows (columns),
// SIDE groups apart, so that neighbouring invocations read neighbouring vec4s.
var<workgroup> a_tile: array<vec4<f32>, DEPTH * PITCH / 4u>;
var<workgroup> b_tile: array<vec4<f32>, DEPTH * PITCH / 4u>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * SIDE + lid.x;
    // Load along whichever stride of each operand is 1, so neighbouring invocations read
    // neighbouring addresses.
    let a_along_k = dims.a_col_stride == 1u;
    let b_along_n = dims.b_col_stride == 1u;

    // acc[i][v]: row i of this invocation's block, its v-th group of 4 columns.
    var acc: array<array<vec4<f32>, V>, THREAD>;

    for (var k0 = 0u; k0 < dims.k; k0 += DEPTH) {
        for (var l = 0u; l < LOADS; l++) {
            let e = tid + l * SIDE * SIDE;
            var r = e % TILE;
            var ka = e / TILE;
            if (a_along_k) {
                r = e / DEPTH;
                ka = e % DEPTH;
            }
            var av = 0.0;
            if (row0 + r < dims.m && k0 + ka < dims.k) {
                av = a[(row0 + r) * dims.a_row_stride + (k0 + ka) * dims.a_col_stride];
            }
            a_tile[(ka * PITCH + r) / 4u][r % 4u] = av;

            var col = e / DEPTH;
            var kb = e % DEPTH;
            if (b_along_n) {
                col = e % TILE;
                kb = e / TILE;
            }
            var bv = 0.0;
            if (k0 + kb < dims.k && col0 + col < dims.n) {
                bv = b[(k0 + kb) * dims.b_row_stride + (col0 + col) * dims.b_col_stride];
            }
            b_tile[(kb * PITCH + col) / 4u][col % 4u] = bv;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < DEPTH; kk++) {
            var ar: array<vec4<f32>, V>;
            var bc: array<vec4<f32>, V>;
            for (var v = 0u; v < V; v++) {
                ar[v] = a_tile[kk * PITCH / 4u + lid.y + SIDE * v];
                bc[v] = b_tile[kk * PITCH / 4u + lid.x + SIDE * v];
            }
            for (var i = 0u; i < THREAD; i++) {
                let x = vec4<f32>(ar[i / 4u][i % 4u]);
                for (var v = 0u; v < V; v++) {
                    acc[i][v] = fma(x, bc[v], acc[i][v]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < THREAD; i++) {
        let r = row0 + 4u * (lid.y + SIDE * (i / 4u)) + i % 4u;
        for (var v = 0u; v < V; v++) {
            let col = col0 + 4u * (lid.x + SIDE * v);
            for (var j = 0u; j < 4u; j++) {
                store(r, col + j, acc[i][v][j]);
            }
        }
    }
}
