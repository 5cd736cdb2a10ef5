// Embedding: integer ids (exact floats, checked in range on the host) to rows of a table.
//
//   forward      out[p, c] = table[id[p], c]                   one invocation per output
//   table_grad   dtable[v, c] = Σ_p [id[p] = v] dout[p, c]     one invocation per table entry,
//                positions summed in order, so the gradient is the same bits every run (a
//                scatter-add by atomics would sum in whatever order the invocations ran).
//   positions_forward  PositionEmbedding: out[b, t, c] = table[t, c]
//   positions_grad     dtable[t, c] = Σ_b dout[b, t, c] over the batch in order, one
//                      invocation per table entry; rows of the table past T get zero

struct EmbeddingDims {
    positions: u32,   // ids (or positions) in the batch: rows · T
    input_dim: u32,   // rows of the table (PositionEmbedding: its sequence_length)
    output_dim: u32,
    rows: u32,        // samples in the batch
}

@group(0) @binding(0) var<uniform> d: EmbeddingDims;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
// forward: the table; table_grad: the gradient by the output.
@group(0) @binding(2) var<storage, read> src: array<f32>;
// forward: the output; table_grad: the table's gradient.
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.positions * d.output_dim) {
        return;
    }
    let p = i / d.output_dim;
    let c = i % d.output_dim;
    dst[i] = src[u32(ids[p]) * d.output_dim + c];
}

@compute @workgroup_size(64)
fn table_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.input_dim * d.output_dim) {
        return;
    }
    let v = f32(i / d.output_dim);
    let c = i % d.output_dim;
    var sum = 0.0;
    for (var p = 0u; p < d.positions; p++) {
        if (ids[p] == v) {
            sum += src[p * d.output_dim + c];
        }
    }
    dst[i] = sum;
}

@compute @workgroup_size(64)
fn positions_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.positions * d.output_dim) {
        return;
    }
    let t = d.positions / d.rows;
    dst[i] = src[i % (t * d.output_dim)];
}

@compute @workgroup_size(64)
fn positions_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.input_dim * d.output_dim) {
        return;
    }
    let per_sample = (d.positions / d.rows) * d.output_dim;
    var sum = 0.0;
    if (i < per_sample) {
        for (var b = 0u; b < d.rows; b++) {
            sum += src[b * per_sample + i];
        }
    }
    dst[i] = sum;
}
