// Register-blocked matrix product for large products on GPUs, and on CPU adapters where no
// vec4 kernel applies (a template: src/gpu/unroll.rs expands its `//@repeat` blocks).
//
// A 16×16 workgroup computes a 128×128 tile of C; each invocation an 8×8 block of it, in 16
// vec4 registers. Both operand tiles go through workgroup memory DEPTH values of k at a time,
// so each value read from workgroup memory feeds 8 multiply-adds (the `small` kernel of
// matmul.wgsl, one output per invocation, reads two values per multiply-add).
//
// The 128×128 tiles and the unrolled accumulators are what make it fast: with 64×64 tiles, or
// with a loop over an accumulator array (which the driver left in memory), it ran several
// times slower on an H100 (figures: bench/h100-m-kernels.json, bench/NOTES.md "Matmul on the
// H100").
//
// Exactness: each output is still summed by one invocation over k in increasing order with
// the fma chain of matmul.wgsl `main` (zeros past k, like `main`), so it gives the same bits.
//
// Dims, its uniform, the bias and C bindings and `store`: matmul_common.wgsl.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;

const SIDE: u32 = 16u;
const TILE: u32 = 128u;
const DEPTH: u32 = 16u;
// vec4s per k-row of a workgroup tile: one more than TILE / 4, so that invocations storing
// neighbouring k of one row hit different banks.
const PITCH: u32 = TILE / 4u + 1u;

// [k][row] and [k][col]. An invocation's block is 2 groups of 4 neighbouring rows (columns),
// SIDE groups apart, so that neighbouring invocations read neighbouring vec4s. Together
// 16.5 KiB, more than some devices allow: src/gpu/matmul.rs (GPU_TILES_WORKGROUP_BYTES)
// checks the device's limit, and a test checks that constant against this declaration.
var<workgroup> a_tile: array<vec4<f32>, DEPTH * PITCH>;
var<workgroup> b_tile: array<vec4<f32>, DEPTH * PITCH>;

// C[r, col..col + 3] from the raw sums `v`.
fn store4(r: u32, col: u32, v: vec4<f32>) {
    store(r, col, v.x);
    store(r, col + 1u, v.y);
    store(r, col + 2u, v.z);
    store(r, col + 3u, v.w);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * SIDE + lid.x;
    // Load along whichever stride of each operand is 1, so neighbouring invocations read
    // neighbouring addresses.
    let a_along_k = dims.a_col_stride == 1u;
    let b_along_n = dims.b_col_stride == 1u;

    // acc{j}: row j/2 of this invocation's block, its (j%2)-th group of 4 columns.
//@repeat j 0..16
    var acc{j} = vec4<f32>(0.0);
//@end

    for (var k0 = 0u; k0 < dims.k; k0 += DEPTH) {
        for (var l = 0u; l < TILE * DEPTH / (SIDE * SIDE); l++) {
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
            a_tile[ka * PITCH + r / 4u][r % 4u] = av;

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
            b_tile[kb * PITCH + col / 4u][col % 4u] = bv;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < DEPTH; kk++) {
            let ar0 = a_tile[kk * PITCH + lid.y];
            let ar1 = a_tile[kk * PITCH + lid.y + SIDE];
            let bc0 = b_tile[kk * PITCH + lid.x];
            let bc1 = b_tile[kk * PITCH + lid.x + SIDE];
//@repeat j 0..16
            acc{j} = fma(vec4<f32>(ar{j/8}[{j/2%4}]), bc{j%2}, acc{j});
//@end
        }
        workgroupBarrier();
    }

//@repeat j 0..16
    store4(row0 + 4u * (lid.y + SIDE * {j/8}) + {j/2%4}, col0 + 4u * (lid.x + SIDE * {j%2}), acc{j});
//@end
}
