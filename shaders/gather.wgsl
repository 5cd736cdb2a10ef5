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

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i < batch.rows * dims.features) {
        let r = i / dims.features;
        let c = i % dims.features;
        xb[i] = x[perm[batch.start + r] * dims.features + c];
    }
    if (i < batch.rows * dims.t_cols) {
        let r = i / dims.t_cols;
        let c = i % dims.t_cols;
        tb[i] = t[perm[batch.start + r] * dims.t_cols + c];
    }
}
