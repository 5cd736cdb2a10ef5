// LayerNormalization over the last axis (channels), each of the P = rows · positions samples
// by its own statistics, in training and evaluation alike:
//
//   forward    mean_p = Σ_c x / C, var_p = Σ_c (x − mean_p)² / C (biased, as Keras),
//              inv_p = 1 / sqrt(var_p + eps), x̂ = (x − mean_p) · inv_p, y = gamma · x̂ + beta
//   backward   dbeta = Σ_p dy, dgamma = Σ_p dy · x̂ (partial sums over chunks of samples,
//              reduced in chunk order); with g = dy · gamma,
//              dx = inv_p · (g − Σ_c g / C − x̂ · Σ_c (g · x̂) / C)
//
// One invocation per sample for the forward pass and the input gradient (its loops run over the
// channels in order), one per (chunk, channel) for the partial sums and one per channel for
// their reduction: no sum depends on the launch.

struct LayerNormDims {
    samples: u32,
    channels: u32,
    chunk: u32,
    chunks: u32,
    epsilon: f32,
    center: u32,
    scale: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> d: LayerNormDims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// Per sample: mean, then inverse standard deviation (2 · samples floats).
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read> stats_in: array<f32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read_write> partial: array<f32>;
@group(0) @binding(9) var<storage, read> partial_in: array<f32>;
@group(0) @binding(10) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(11) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(12) var<storage, read_write> dx: array<f32>;

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

fn scaled(c: u32, v: f32) -> f32 {
    if (d.scale != 0u) {
        return v * gamma[c];
    }
    return v;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let p = flat(gid, groups);
    if (p >= d.samples) {
        return;
    }
    let first = p * d.channels;
    var sum = 0.0;
    for (var c = 0u; c < d.channels; c++) {
        sum += x[first + c];
    }
    let mean = sum / f32(d.channels);
    var squares = 0.0;
    for (var c = 0u; c < d.channels; c++) {
        let e = x[first + c] - mean;
        squares += e * e;
    }
    let inv = 1.0 / sqrt(squares / f32(d.channels) + d.epsilon);
    stats[2u * p] = mean;
    stats[2u * p + 1u] = inv;
    for (var c = 0u; c < d.channels; c++) {
        var v = scaled(c, (x[first + c] - mean) * inv);
        if (d.center != 0u) {
            v += beta[c];
        }
        y[first + c] = v;
    }
}

// partial[chunk, c] = Σ dy and partial[chunks + chunk, c] = Σ dy · x̂ over the chunk's samples.
@compute @workgroup_size(64)
fn grad_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.chunks * d.channels) {
        return;
    }
    let c = i % d.channels;
    let first = (i / d.channels) * d.chunk;
    let last = min(first + d.chunk, d.samples);
    var sum = 0.0;
    var dot = 0.0;
    for (var p = first; p < last; p++) {
        let e = p * d.channels + c;
        sum += dy[e];
        dot += dy[e] * (x[e] - stats_in[2u * p]) * stats_in[2u * p + 1u];
    }
    partial[i] = sum;
    partial[d.chunks * d.channels + i] = dot;
}

// dbeta and dgamma: the partial sums of each channel in chunk order.
@compute @workgroup_size(64)
fn grad_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= d.channels) {
        return;
    }
    var sum = 0.0;
    var dot = 0.0;
    for (var k = 0u; k < d.chunks; k++) {
        sum += partial_in[k * d.channels + c];
        dot += partial_in[(d.chunks + k) * d.channels + c];
    }
    if (d.center != 0u) {
        dbeta[c] = sum;
    }
    if (d.scale != 0u) {
        dgamma[c] = dot;
    }
}

@compute @workgroup_size(64)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let p = flat(gid, groups);
    if (p >= d.samples) {
        return;
    }
    let first = p * d.channels;
    let mean = stats_in[2u * p];
    let inv = stats_in[2u * p + 1u];
    var sum = 0.0;
    var dot = 0.0;
    for (var c = 0u; c < d.channels; c++) {
        let g = scaled(c, dy[first + c]);
        sum += g;
        dot += g * (x[first + c] - mean) * inv;
    }
    let n = f32(d.channels);
    for (var c = 0u; c < d.channels; c++) {
        let xhat = (x[first + c] - mean) * inv;
        dx[first + c] = inv * (scaled(c, dy[first + c]) - sum / n - xhat * dot / n);
    }
}
