// Builds one batch from the data set that lives on the GPU:
//   xb[r, :] = x[perm[start + r], :],  tb[r, :] = t[perm[start + r], :]
// The batch record (start, rows) comes from the epoch's batch table through a dynamic offset,
// so many batches can be recorded into one submission without touching host memory.

struct Batch {
    start: u32,
    rows: u32,
    step: u32,
    _pad: u32,
}

struct GatherDims {
    features: u32,
    t_cols: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<uniform> dims: GatherDims;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> t: array<f32>;
@group(0) @binding(5) var<storage, read_write> xb: array<f32>;
@group(0) @binding(6) var<storage, read_write> tb: array<f32>;
// x and xb as vec4s, for `main4`.
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> xb4: array<vec4<f32>>;

// One workgroup per batch row, its invocations striding along the row: no division of a flat
// index (llvmpipe divides integers one lane at a time), and the source row is looked up once.
// Batches of more than 65 535 rows (the most workgroups one dimension allows) take several
// rows per workgroup.
@compute @workgroup_size(64)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    for (var r = wid.x; r < batch.rows; r += groups.x) {
        let src = perm[batch.start + r];
        for (var c = lid.x; c < dims.features; c += 64u) {
            xb[r * dims.features + c] = x[src * dims.features + c];
        }
        for (var c = lid.x; c < dims.t_cols; c += 64u) {
            tb[r * dims.t_cols + c] = t[src * dims.t_cols + c];
        }
    }
}

// `main` for features % 4 == 0: rows copied four floats at a time, a quarter of the loads and
// stores (llvmpipe pays per load far more than per float).
@compute @workgroup_size(64)
fn main4(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let f4 = dims.features / 4u;
    for (var r = wid.x; r < batch.rows; r += groups.x) {
        let src = perm[batch.start + r];
        for (var c = lid.x; c < f4; c += 64u) {
            xb4[r * f4 + c] = x4[src * f4 + c];
        }
        for (var c = lid.x; c < dims.t_cols; c += 64u) {
            tb[r * dims.t_cols + c] = t[src * dims.t_cols + c];
        }
    }
}
