// The decoupled weight decay of an optimizer that exempts some parameters (Keras's
// exclude_from_weight_decay): w -= w · weight_decay · lr over one run of the parameters that
// take it, before the update, which then applies none (src/engine/update.rs). The same
// arithmetic the update kernels do in place (adam.wgsl), so the bits are those of a decay
// applied there. Four parameters per invocation.

struct Decay {
    n4: u32,
    weight_decay: f32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> s: Decay;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
// (lr, ...) of this step.
@group(0) @binding(16) var<uniform> step: vec4<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= s.n4) {
        return;
    }
    let wi = w[i];
    w[i] = wi - wi * s.weight_decay * step.x;
}
