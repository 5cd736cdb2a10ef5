// Softmax over the last axis (Keras's Softmax layer), one invocation per row of `cols`
// values, every sum in order:
//   forward    y = exp(x − max x) / Σ exp(x − max x)
//   backward   dx = y ⊙ (dy − Σ dy ⊙ y)

struct SoftmaxDims {
    rows: u32,
    cols: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> d: SoftmaxDims;
// forward: x; backward: y.
@group(0) @binding(1) var<storage, read> a: array<f32>;
// backward: dy.
@group(0) @binding(2) var<storage, read> dy: array<f32>;
// forward: y; backward: dx.
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn row_of(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = row_of(gid, groups);
    if (r >= d.rows) {
        return;
    }
    let base = r * d.cols;
    var m = a[base];
    for (var j = 1u; j < d.cols; j++) {
        m = max(m, a[base + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < d.cols; j++) {
        let e = exp(a[base + j] - m);
        out[base + j] = e;
        sum += e;
    }
    for (var j = 0u; j < d.cols; j++) {
        out[base + j] = out[base + j] / sum;
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = row_of(gid, groups);
    if (r >= d.rows) {
        return;
    }
    let base = r * d.cols;
    var dot = 0.0;
    for (var j = 0u; j < d.cols; j++) {
        dot += dy[base + j] * a[base + j];
    }
    for (var j = 0u; j < d.cols; j++) {
        out[base + j] = a[base + j] * (dy[base + j] - dot);
    }
}
