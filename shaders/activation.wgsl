// Backward pass of bias + activation, fused with the column sum that gives the bias gradient.
//
//   dZ[r, j] = dA[r, j] * act'(A[r, j])      (in place: d holds dA on entry, dZ on exit)
//   db[j]    = sum_r dZ[r, j]
//
// The derivative is taken from the layer's output A, which the forward pass kept
// (`derivative`, activation_fns.wgsl).
// One invocation owns one column and sums its rows in order: a fixed reduction order.

struct ActDims {
    rows: u32,
    cols: u32,
    act: u32, // an ACT_* code (activation_fns.wgsl)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: ActDims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;
// The same buffers as vec4s, for `backward4`.
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> d4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= dims.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < dims.rows; r++) {
        let i = r * dims.cols + j;
        let g = d[i] * derivative(a[i], dims.act);
        d[i] = g;
        sum += g;
    }
    db[j] = sum;
}

// `backward` for cols % 4 == 0: one invocation owns four neighbouring columns, with the same
// operations per column in the same order, so the results are the same bits. llvmpipe pays
// per load and store far more than per float, so this does a quarter of them; workgroups of 8
// keep enough of them for every core (256 columns: 8 workgroups).
@compute @workgroup_size(8)
fn backward4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cols4 = dims.cols / 4u;
    let j = gid.x;
    if (j >= cols4) {
        return;
    }
    var sum = vec4<f32>(0.0);
    for (var r = 0u; r < dims.rows; r++) {
        let i = r * cols4 + j;
        let y = a4[i];
        let g = d4[i] * vec4<f32>(
            derivative(y.x, dims.act),
            derivative(y.y, dims.act),
            derivative(y.z, dims.act),
            derivative(y.w, dims.act),
        );
        d4[i] = g;
        sum += g;
    }
    db[4u * j] = sum.x;
    db[4u * j + 1u] = sum.y;
    db[4u * j + 2u] = sum.z;
    db[4u * j + 3u] = sum.w;
}
