// MultiHeadAttention's scaled dot-product attention, as Keras computes it: for each sample b,
// head h and query position i, scores s_ij = (q_i · scale) · k_j over the key positions j
// (j ≤ i with the causal mask: the masked scores take no part), p_i = softmax(s_i), and the
// context c_i = Σ_j p_ij v_j. The projections before and after are matmuls (the host side is
// src/engine/layers/attention.rs). Every sum runs in index order in one invocation, so the
// results are the same bits every run.
//
//   forward          one invocation per (b, h, i): p_i (kept for the backward pass) and c_i
//   scores_grad      one per (b, h, i): dp_ij = dc_i · v_j, ds_ij = p_ij (dp_ij − Σ_j p_ij dp_ij),
//                    dq_i = scale · Σ_j ds_ij k_j
//   key_value_grad   one per (b, h, j): dk_j = scale · Σ_i ds_ij q_i, dv_j = Σ_i p_ij dc_i
//
// Layouts: q, k, dq, dk are [rows · T, heads · key_dim] (head h at columns h · key_dim ..),
// v, c, dv, dc [rows · T, heads · value_dim], p and ds [rows, heads, T, T].
//
// forward4, scores_grad4 and key_value_grad4 are the same with the head dimensions read four
// at a time (when key_dim and value_dim are multiples of 4): a quarter of the loads and loop
// iterations, 1.6 times faster on llvmpipe (bench/NOTES.md "T1"). Each product of four
// sums its lanes as (x + y) + (z + w), so their results are their own, the same every run.

struct AttentionDims {
    rows: u32,
    t: u32,
    heads: u32,
    key_dim: u32,
    value_dim: u32,
    causal: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> d: AttentionDims;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> p_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> c_out: array<f32>;
@group(0) @binding(6) var<storage, read> p: array<f32>;
@group(0) @binding(7) var<storage, read> dc: array<f32>;
@group(0) @binding(8) var<storage, read_write> ds_out: array<f32>;
@group(0) @binding(9) var<storage, read_write> dq: array<f32>;
@group(0) @binding(10) var<storage, read> ds: array<f32>;
@group(0) @binding(11) var<storage, read_write> dk: array<f32>;
@group(0) @binding(12) var<storage, read_write> dv: array<f32>;

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// The last key position query i attends to.
fn last_key(i: u32) -> u32 {
    return select(d.t - 1u, i, d.causal == 1u);
}

// The first element of position `pos` (of the whole batch) for head h in a matrix of heads ·
// `width` columns.
fn at(pos: u32, h: u32, width: u32) -> u32 {
    return (pos * d.heads + h) * width;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat(gid, groups);
    if (n >= d.rows * d.heads * d.t) {
        return;
    }
    // n = (b · heads + h) · T + i
    let i = n % d.t;
    let h = (n / d.t) % d.heads;
    let b = n / (d.t * d.heads);
    let qi = at(b * d.t + i, h, d.key_dim);
    let row = n * d.t;
    let last = last_key(i);
    var m = -3.4028235e38;
    for (var j = 0u; j <= last; j++) {
        let kj = at(b * d.t + j, h, d.key_dim);
        var s = 0.0;
        for (var c = 0u; c < d.key_dim; c++) {
            s += (q[qi + c] * d.scale) * k[kj + c];
        }
        p_out[row + j] = s;
        m = max(m, s);
    }
    var sum = 0.0;
    for (var j = 0u; j <= last; j++) {
        let e = exp(p_out[row + j] - m);
        p_out[row + j] = e;
        sum += e;
    }
    for (var j = 0u; j < d.t; j++) {
        if (j <= last) {
            p_out[row + j] = p_out[row + j] / sum;
        } else {
            p_out[row + j] = 0.0;
        }
    }
    let ci = at(b * d.t + i, h, d.value_dim);
    for (var c = 0u; c < d.value_dim; c++) {
        var acc = 0.0;
        for (var j = 0u; j <= last; j++) {
            acc += p_out[row + j] * v[at(b * d.t + j, h, d.value_dim) + c];
        }
        c_out[ci + c] = acc;
    }
}

@compute @workgroup_size(64)
fn scores_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat(gid, groups);
    if (n >= d.rows * d.heads * d.t) {
        return;
    }
    let i = n % d.t;
    let h = (n / d.t) % d.heads;
    let b = n / (d.t * d.heads);
    let row = n * d.t;
    let last = last_key(i);
    let ci = at(b * d.t + i, h, d.value_dim);
    var dot = 0.0;
    for (var j = 0u; j <= last; j++) {
        let vj = at(b * d.t + j, h, d.value_dim);
        var dp = 0.0;
        for (var c = 0u; c < d.value_dim; c++) {
            dp += dc[ci + c] * v[vj + c];
        }
        ds_out[row + j] = dp;
        dot += p[row + j] * dp;
    }
    for (var j = 0u; j < d.t; j++) {
        if (j <= last) {
            ds_out[row + j] = p[row + j] * (ds_out[row + j] - dot);
        } else {
            ds_out[row + j] = 0.0;
        }
    }
    let qi = at(b * d.t + i, h, d.key_dim);
    for (var c = 0u; c < d.key_dim; c++) {
        var acc = 0.0;
        for (var j = 0u; j <= last; j++) {
            acc += ds_out[row + j] * k[at(b * d.t + j, h, d.key_dim) + c];
        }
        dq[qi + c] = acc * d.scale;
    }
}

@compute @workgroup_size(64)
fn key_value_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat(gid, groups);
    if (n >= d.rows * d.heads * d.t) {
        return;
    }
    // n = (b · heads + h) · T + j: key position j
    let j = n % d.t;
    let h = (n / d.t) % d.heads;
    let b = n / (d.t * d.heads);
    let head = (b * d.heads + h) * d.t;
    // With the causal mask only queries i ≥ j attend to key j.
    let first = select(0u, j, d.causal == 1u);
    let kj = at(b * d.t + j, h, d.key_dim);
    for (var c = 0u; c < d.key_dim; c++) {
        var acc = 0.0;
        for (var i = first; i < d.t; i++) {
            acc += ds[(head + i) * d.t + j] * (q[at(b * d.t + i, h, d.key_dim) + c] * d.scale);
        }
        dk[kj + c] = acc;
    }
    let vj = at(b * d.t + j, h, d.value_dim);
    for (var c = 0u; c < d.value_dim; c++) {
        var acc = 0.0;
        for (var i = first; i < d.t; i++) {
            acc += p[(head + i) * d.t + j] * dc[at(b * d.t + i, h, d.value_dim) + c];
        }
        dv[vj + c] = acc;
    }
}

// ---- The vec4 forms: q, k, v, dc read four floats at a time (bindings 13 to 16).
@group(0) @binding(13) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read> dc4: array<vec4<f32>>;

fn lanes(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// Writes v to the four floats of `out` from `at` (out is one of the f32 outputs).
fn store4_c(at: u32, v: vec4<f32>) {
    c_out[at] = v.x;
    c_out[at + 1u] = v.y;
    c_out[at + 2u] = v.z;
    c_out[at + 3u] = v.w;
}

fn store4_dq(at: u32, v: vec4<f32>) {
    dq[at] = v.x;
    dq[at + 1u] = v.y;
    dq[at + 2u] = v.z;
    dq[at + 3u] = v.w;
}

fn store4_dk(at: u32, v: vec4<f32>) {
    dk[at] = v.x;
    dk[at + 1u] = v.y;
    dk[at + 2u] = v.z;
    dk[at + 3u] = v.w;
}

fn store4_dv(at: u32, v: vec4<f32>) {
    dv[at] = v.x;
    dv[at + 1u] = v.y;
    dv[at + 2u] = v.z;
    dv[at + 3u] = v.w;
}

@compute @workgroup_size(64)
fn forward4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat(gid, groups);
    if (n >= d.rows * d.heads * d.t) {
        return;
    }
    let i = n % d.t;
    let h = (n / d.t) % d.heads;
    let b = n / (d.t * d.heads);
    let qi = at(b * d.t + i, h, d.key_dim) / 4u;
    let row = n * d.t;
    let last = last_key(i);
    var m = -3.4028235e38;
    for (var j = 0u; j <= last; j++) {
        let kj = at(b * d.t + j, h, d.key_dim) / 4u;
        var s4 = vec4<f32>(0.0);
        for (var c = 0u; c < d.key_dim / 4u; c++) {
            s4 += (q4[qi + c] * d.scale) * k4[kj + c];
        }
        let s = lanes(s4);
        p_out[row + j] = s;
        m = max(m, s);
    }
    var sum = 0.0;
    for (var j = 0u; j <= last; j++) {
        let e = exp(p_out[row + j] - m);
        p_out[row + j] = e;
        sum += e;
    }
    for (var j = 0u; j < d.t; j++) {
        if (j <= last) {
            p_out[row + j] = p_out[row + j] / sum;
        } else {
            p_out[row + j] = 0.0;
        }
    }
    let ci = at(b * d.t + i, h, d.value_dim);
    for (var c = 0u; c < d.value_dim / 4u; c++) {
        var acc = vec4<f32>(0.0);
        for (var j = 0u; j <= last; j++) {
            acc += p_out[row + j] * v4[at(b * d.t + j, h, d.value_dim) / 4u + c];
        }
        store4_c(ci + 4u * c, acc);
    }
}

@compute @workgroup_size(64)
fn scores_grad4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat(gid, groups);
    if (n >= d.rows * d.heads * d.t) {
        return;
    }
    let i = n % d.t;
    let h = (n / d.t) % d.heads;
    let b = n / (d.t * d.heads);
    let row = n * d.t;
    let last = last_key(i);
    let ci = at(b * d.t + i, h, d.value_dim) / 4u;
    var dot = 0.0;
    for (var j = 0u; j <= last; j++) {
        let vj = at(b * d.t + j, h, d.value_dim) / 4u;
        var dp4 = vec4<f32>(0.0);
        for (var c = 0u; c < d.value_dim / 4u; c++) {
            dp4 += dc4[ci + c] * v4[vj + c];
        }
        let dp = lanes(dp4);
        ds_out[row + j] = dp;
        dot += p[row + j] * dp;
    }
    for (var j = 0u; j < d.t; j++) {
        if (j <= last) {
            ds_out[row + j] = p[row + j] * (ds_out[row + j] - dot);
        } else {
            ds_out[row + j] = 0.0;
        }
    }
    let qi = at(b * d.t + i, h, d.key_dim);
    for (var c = 0u; c < d.key_dim / 4u; c++) {
        var acc = vec4<f32>(0.0);
        for (var j = 0u; j <= last; j++) {
            acc += ds_out[row + j] * k4[at(b * d.t + j, h, d.key_dim) / 4u + c];
        }
        store4_dq(qi + 4u * c, acc * d.scale);
    }
}

@compute @workgroup_size(64)
fn key_value_grad4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = flat(gid, groups);
    if (n >= d.rows * d.heads * d.t) {
        return;
    }
    let j = n % d.t;
    let h = (n / d.t) % d.heads;
    let b = n / (d.t * d.heads);
    let head = (b * d.heads + h) * d.t;
    let first = select(0u, j, d.causal == 1u);
    let kj = at(b * d.t + j, h, d.key_dim);
    for (var c = 0u; c < d.key_dim / 4u; c++) {
        var acc = vec4<f32>(0.0);
        for (var i = first; i < d.t; i++) {
            acc += ds[(head + i) * d.t + j] * (q4[at(b * d.t + i, h, d.key_dim) / 4u + c] * d.scale);
        }
        store4_dk(kj + 4u * c, acc);
    }
    let vj = at(b * d.t + j, h, d.value_dim);
    for (var c = 0u; c < d.value_dim / 4u; c++) {
        var acc = vec4<f32>(0.0);
        for (var i = first; i < d.t; i++) {
            acc += p[(head + i) * d.t + j] * dc4[at(b * d.t + i, h, d.value_dim) / 4u + c];
        }
        store4_dv(vj + 4u * c, acc);
    }
}
