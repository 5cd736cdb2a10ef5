// Gradient accumulation, Keras 3 semantics (base_optimizer.py, gradient_accumulation_steps N):
// on N - 1 of every N micro-batches the gradients are added to the accumulator and nothing is
// updated (`add`); on the N-th the update uses g ← (g + acc) / N and the accumulator starts
// again from zero (`average`). Four values per invocation, as the update kernels.

struct Accumulate {
    // Values / 4.
    n4: u32,
    // N, as a float.
    steps: f32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> s: Accumulate;
@group(0) @binding(1) var<storage, read_write> g: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> acc: array<vec4<f32>>;

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= s.n4) {
        return;
    }
    acc[i] = g[i] + acc[i];
}

@compute @workgroup_size(256)
fn average(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= s.n4) {
        return;
    }
    g[i] = (g[i] + acc[i]) / s.steps;
    acc[i] = vec4<f32>(0.0);
}
