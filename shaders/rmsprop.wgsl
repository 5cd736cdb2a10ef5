// RMSprop update of every parameter in one dispatch, Keras 3 semantics
// (keras/src/optimizers/rmsprop.py, and base_optimizer.py for the decoupled weight decay):
//   w -= w · weight_decay · lr
//   velocity = rho · velocity + (1 - rho) · g²
//   centered: average_gradient = rho · average_gradient + (1 - rho) · g
//             denominator = velocity - average_gradient² + epsilon
//   else:     denominator = velocity + epsilon
//   increment = lr · g / sqrt(denominator)
//   momentum > 0: momentum = momentum_factor · momentum + increment;  w -= momentum
//   else:         w -= increment
// lr comes per step from the host. Four parameters per invocation, as sgd.wgsl.

struct RmsProp {
    // Parameters / 4.
    n4: u32,
    centered: u32,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    weight_decay: f32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> s: RmsProp;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> velocity: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> momentum: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> average_gradient: array<vec4<f32>>;
// (lr, unused, unused, unused) of this step.
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
        wi -= wi * s.weight_decay * lr;
    }
    let vel = s.rho * velocity[i] + s.one_minus_rho * (gi * gi);
    velocity[i] = vel;
    var denominator = vel + s.epsilon;
    if (s.centered == 1u) {
        let avg = s.rho * average_gradient[i] + s.one_minus_rho * gi;
        average_gradient[i] = avg;
        denominator = vel - avg * avg + s.epsilon;
    }
    let increment = lr * gi / sqrt(denominator);
    if (s.momentum > 0.0) {
        let mom = s.momentum * momentum[i] + increment;
        momentum[i] = mom;
        wi -= mom;
    } else {
        wi -= increment;
    }
    w[i] = wi;
}
