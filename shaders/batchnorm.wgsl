// BatchNormalization over the last axis (channels): every other axis of the batch is one of
// P = rows · positions samples of each channel.
//
//   training   mean = Σx / P, var = Σ(x − mean)² / P (biased, as Keras), both in two passes of
//              partial sums over chunks of `chunk` samples reduced in chunk order;
//              moving ← moving · momentum + batch · (1 − momentum);
//              y = gamma · (x − mean) / sqrt(var + eps) + beta
//   evaluation y = gamma · (x − moving_mean) / sqrt(moving_variance + eps) + beta
//   backward   x̂ = (x − mean) / sqrt(var + eps); dbeta = Σdy, dgamma = Σ dy · x̂;
//              dx = gamma / sqrt(var + eps) · (dy − Σdy / P − x̂ · Σ(dy · x̂) / P)
//
// One invocation per (chunk, channel) for the partial sums and one per channel for their
// reduction, so no sum depends on the launch; a chunk keeps every loop far below llvmpipe's
// 65 535 iterations.

struct NormDims {
    rows: u32,
    positions: u32,
    channels: u32,
    chunk: u32,
    chunks: u32,
    epsilon: f32,
    momentum: f32,
    center: u32,
    scale: u32,
    // Elements from moving_mean to moving_variance in the `moving` binding.
    variance_at: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> d: NormDims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Per channel: mean, inverse standard deviation, Σdy, Σdy·x̂ (4 · channels floats).
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<storage, read> partial_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> moving: array<f32>;
@group(0) @binding(6) var<storage, read> stats_in: array<f32>;
@group(0) @binding(7) var<storage, read> gamma: array<f32>;
@group(0) @binding(8) var<storage, read> beta: array<f32>;
@group(0) @binding(9) var<storage, read_write> y: array<f32>;
@group(0) @binding(10) var<storage, read> moving_in: array<f32>;
@group(0) @binding(11) var<storage, read> dy: array<f32>;
@group(0) @binding(12) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(13) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(14) var<storage, read_write> dx: array<f32>;

fn samples() -> u32 {
    return d.rows * d.positions;
}

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Pass 1: partial[chunk, c] = Σ x over the chunk's samples.
@compute @workgroup_size(64)
fn sum_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.chunks * d.channels) {
        return;
    }
    let c = i % d.channels;
    let first = (i / d.channels) * d.chunk;
    let last = min(first + d.chunk, samples());
    var sum = 0.0;
    for (var s = first; s < last; s++) {
        sum += x[s * d.channels + c];
    }
    partial[i] = sum;
}

// stats.mean[c] = Σ partial / P.
@compute @workgroup_size(64)
fn mean(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= d.channels) {
        return;
    }
    var sum = 0.0;
    for (var k = 0u; k < d.chunks; k++) {
        sum += partial_in[k * d.channels + c];
    }
    stats[c] = sum / f32(samples());
}

// Pass 2: partial[chunk, c] = Σ (x − mean)² over the chunk's samples.
@compute @workgroup_size(64)
fn square_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.chunks * d.channels) {
        return;
    }
    let c = i % d.channels;
    let m = stats_in[c];
    let first = (i / d.channels) * d.chunk;
    let last = min(first + d.chunk, samples());
    var sum = 0.0;
    for (var s = first; s < last; s++) {
        let e = x[s * d.channels + c] - m;
        sum += e * e;
    }
    partial[i] = sum;
}

// The variance, the inverse standard deviation into stats, and the moving statistics.
@compute @workgroup_size(64)
fn variance(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= d.channels) {
        return;
    }
    var sum = 0.0;
    for (var k = 0u; k < d.chunks; k++) {
        sum += partial_in[k * d.channels + c];
    }
    let var_ = sum / f32(samples());
    let m = stats[c];
    stats[d.channels + c] = 1.0 / sqrt(var_ + d.epsilon);
    moving[c] = moving[c] * d.momentum + m * (1.0 - d.momentum);
    let v = d.variance_at + c;
    moving[v] = moving[v] * d.momentum + var_ * (1.0 - d.momentum);
}

fn affine(c: u32, xhat: f32) -> f32 {
    var out = xhat;
    if (d.scale != 0u) {
        out = out * gamma[c];
    }
    if (d.center != 0u) {
        out = out + beta[c];
    }
    return out;
}

// y from the batch's statistics (training).
@compute @workgroup_size(64)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= samples() * d.channels) {
        return;
    }
    let c = i % d.channels;
    y[i] = affine(c, (x[i] - stats_in[c]) * stats_in[d.channels + c]);
}

// y from the moving statistics (evaluation and prediction).
@compute @workgroup_size(64)
fn normalize_moving(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= samples() * d.channels) {
        return;
    }
    let c = i % d.channels;
    let inv = 1.0 / sqrt(moving_in[d.variance_at + c] + d.epsilon);
    y[i] = affine(c, (x[i] - moving_in[c]) * inv);
}

// Backward pass 1: partial[chunk, c] = Σ dy and partial[chunks + chunk, c] = Σ dy · x̂.
@compute @workgroup_size(64)
fn grad_partials(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.chunks * d.channels) {
        return;
    }
    let c = i % d.channels;
    let m = stats_in[c];
    let inv = stats_in[d.channels + c];
    let first = (i / d.channels) * d.chunk;
    let last = min(first + d.chunk, samples());
    var sum = 0.0;
    var dot = 0.0;
    for (var s = first; s < last; s++) {
        let e = s * d.channels + c;
        sum += dy[e];
        dot += dy[e] * (x[e] - m) * inv;
    }
    partial[i] = sum;
    partial[d.chunks * d.channels + i] = dot;
}

// The sums per channel: into stats (for dx) and dbeta, dgamma.
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
    stats[2u * d.channels + c] = sum;
    stats[3u * d.channels + c] = dot;
    if (d.center != 0u) {
        dbeta[c] = sum;
    }
    if (d.scale != 0u) {
        dgamma[c] = dot;
    }
}

@compute @workgroup_size(64)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= samples() * d.channels) {
        return;
    }
    let c = i % d.channels;
    let inv = stats_in[d.channels + c];
    let n = f32(samples());
    let xhat = (x[i] - stats_in[c]) * inv;
    var g = inv;
    if (d.scale != 0u) {
        g = g * gamma[c];
    }
    dx[i] = g * (dy[i] - stats_in[2u * d.channels + c] / n - xhat * stats_in[3u * d.channels + c] / n);
}
