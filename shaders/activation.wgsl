// Backward pass of bias + activation, fused with the column sum that gives the bias gradient.
//
//   dZ[r, j] = dA[r, j] * act'(A[r, j])      (in place: d holds dA on entry, dZ on exit)
//   db[j]    = sum_r dZ[r, j]
//
// The derivative is taken from the layer's output A, which the forward pass kept:
// relu' = A > 0, tanh' = 1 - A², sigmoid' = A (1 - A).
// One invocation owns one column and sums its rows in order: a fixed reduction order.

struct ActDims {
    rows: u32,
    cols: u32,
    act: u32, // 0 linear, 1 relu, 2 tanh, 3 sigmoid
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: ActDims;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

fn derivative(y: f32, kind: u32) -> f32 {
    switch kind {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return 1.0 - y * y; }
        case 3u: { return y * (1.0 - y); }
        default: { return 1.0; }
    }
}

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
