// Gradient clipping, between the backward pass and the optimizer's update, with Keras 3's
// semantics (keras/src/optimizers/base_optimizer.py):
//   clipnorm c:        each tensor's gradient g ← g · c / max(‖g‖, c)
//   global_clipnorm c: every gradient g ← g · (c · min(1/‖G‖, 1/c) + (‖G‖ - ‖G‖)), ‖G‖ over all
//   clipvalue c:       g ← clamp(g, -c, c)
// `norms` sums the squares of each tensor's gradient with one workgroup per tensor: a strided
// pass, then a tree, the same order every run, so clipped runs stay bit-exact on resume.
// The gradients live in one flat buffer, bound whole or (for a model past one binding) in
// pieces of whole tensors, one launch of each kernel per piece: `g` is the piece, and `tensors`
// gives each of its tensors' (first element in the piece, length, index among all tensors).
// `sums` always holds every tensor's sum, so the scaling of a piece sees all of them.

struct Clip {
    // 1 clipnorm, 2 global_clipnorm, 3 clipvalue.
    kind: u32,
    // Tensors in this piece.
    tensors: u32,
    // Elements of this piece.
    len: u32,
    c: f32,
    // Tensors in the model.
    all_tensors: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> clip: Clip;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> tensors: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn norms(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = wid.x;
    let first = tensors[t].x;
    let len = tensors[t].y;
    var s = 0.0;
    for (var i = lid.x; i < len; i += 256u) {
        let v = g[first + i];
        s += v * v;
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half /= 2u) {
        if (lid.x < half) {
            partial[lid.x] += partial[lid.x + half];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        sums[tensors[t].z] = partial[0];
    }
}

// Keras's clip_by_norm: the norm of a tensor whose squares sum to `l2sum`.
fn norm_of(l2sum: f32) -> f32 {
    return select(l2sum, sqrt(l2sum), l2sum > 0.0);
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= clip.len) {
        return;
    }
    let c = clip.c;
    if (clip.kind == 3u) {
        g[i] = clamp(g[i], -c, c);
        return;
    }
    if (clip.kind == 2u) {
        var total = 0.0;
        for (var t = 0u; t < clip.all_tensors; t++) {
            total += sums[t];
        }
        let use_norm = sqrt(total);
        g[i] = g[i] * (c * min(1.0 / use_norm, 1.0 / c) + (use_norm - use_norm));
        return;
    }
    // clipnorm: the tensor this element belongs to (padding between tensors belongs to none).
    for (var t = 0u; t < clip.tensors; t++) {
        let first = tensors[t].x;
        if (i >= first && i < first + tensors[t].y) {
            g[i] = g[i] * c / max(norm_of(sums[tensors[t].z]), c);
            return;
        }
    }
}
