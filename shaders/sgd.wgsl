// SGD update of every parameter of the model in one dispatch (all parameters live in one flat
// buffer, gradients and momentum in buffers of the same layout). Keras 3 semantics:
//   w -= lr · weight_decay · w                     (decoupled weight decay, applied first)
//   momentum = 0:  w -= lr · g
//   momentum > 0:  v = momentum · v - lr · g;  w += v            (plain)
//                                              w += momentum · v - lr · g   (Nesterov)
// Four parameters per invocation: the flat buffers hold a multiple of 64 floats, and on
// llvmpipe a vec4 load costs about what a scalar load costs. The arithmetic is per component,
// exactly what one invocation per parameter would do.

struct Sgd {
    // Parameters / 4.
    n4: u32,
    nesterov: u32,
    // The learning rate at compile time (the kernel reads the step's, below).
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> s: Sgd;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>;
// (lr, unused, unused, unused) of this step: the learning rate may follow a schedule.
@group(0) @binding(16) var<uniform> step: vec4<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= s.n4) {
        return;
    }
    let lr = step.x;
    var wi = w[i];
    let gi = g[i];
    if (s.weight_decay != 0.0) {
        wi -= lr * s.weight_decay * wi;
    }
    if (s.momentum == 0.0) {
        wi -= lr * gi;
    } else {
        let vi = s.momentum * v[i] - lr * gi;
        v[i] = vi;
        if (s.nesterov == 1u) {
            wi += s.momentum * vi - lr * gi;
        } else {
            wi += vi;
        }
    }
    w[i] = wi;
}
