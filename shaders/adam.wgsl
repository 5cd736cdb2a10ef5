// Adam and AdamW update of every parameter in one dispatch, Keras 3 semantics
// (keras/src/optimizers/adam.py, and base_optimizer.py for the decoupled weight decay):
//   w -= w · weight_decay · lr                    (AdamW; weight_decay 0 for Adam)
//   m += (g - m) · (1 - beta_1)
//   v += (g² - v) · (1 - beta_2)
//   amsgrad: v_hat = max(v_hat, v), used in place of v
//   w -= m · alpha / (sqrt(v) + epsilon),   alpha = lr · sqrt(1 - beta_2^t) / (1 - beta_1^t)
// lr and alpha come per step from the host (src/optim/adam.rs), from the iteration count t.
// Four parameters per invocation, as sgd.wgsl.

struct Adam {
    // Parameters / 4.
    n4: u32,
    amsgrad: u32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> s: Adam;
@group(0) @binding(1) var<storage, read_write> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v_hat: array<vec4<f32>>;
// (lr, alpha, unused, unused) of this step.
@group(0) @binding(16) var<uniform> step: vec4<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= s.n4) {
        return;
    }
    var wi = w[i];
    let gi = g[i];
    if (s.weight_decay != 0.0) {
        wi -= wi * s.weight_decay * step.x;
    }
    let mi = m[i] + (gi - m[i]) * s.one_minus_beta_1;
    m[i] = mi;
    var vi = v[i] + (gi * gi - v[i]) * s.one_minus_beta_2;
    v[i] = vi;
    if (s.amsgrad == 1u) {
        vi = max(v_hat[i], vi);
        v_hat[i] = vi;
    }
    wi -= mi * step.y / (sqrt(vi) + s.epsilon);
    w[i] = wi;
}
