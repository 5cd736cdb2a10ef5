// Element-wise activations for layers whose activation is not fused into a matmul epilogue:
// the Activation layer (forward and backward) and Conv2D's backward (in place, before its
// gradient products).
//
//   forward      y = act(x)
//   backward     dx = dy ⊙ act'(y)
//   in_place     d ← d ⊙ act'(y)
//   add, accumulate: sums (below)

struct ElementDims {
    n: u32,
    act: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> e: ElementDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < e.n) {
        dst[i] = activate(src[i], e.act);
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < e.n) {
        dst[i] = src[i] * derivative(y[i], e.act);
    }
}

@compute @workgroup_size(64)
fn in_place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < e.n) {
        dst[i] = dst[i] * derivative(y[i], e.act);
    }
}

// Add's forward and backward, and the sum of a tensor's gradient edges (src/engine/graph.rs):
//   add          dst = src + y
//   accumulate   dst ← dst + src
//   copy         dst = src
@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < e.n) {
        dst[i] = src[i] + y[i];
    }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < e.n) {
        dst[i] = dst[i] + src[i];
    }
}

@compute @workgroup_size(64)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < e.n) {
        dst[i] = src[i];
    }
}
