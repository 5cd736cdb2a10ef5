// Gradient clipping, between the backward pass and the optimizer's update, with Keras 3's
// semantics (keras/src/optimizers/base_optimizer.py):
//   clipnorm c:        each tensor's gradient g ← g · c / max(‖g‖, c)
//   global_clipnorm c: every gradient g ← g · (c · min(1/‖G‖, 1/c) + (‖G‖ - ‖G‖)), ‖G‖ over all
//   clipvalue c:       g ← clamp(g, -c, c)
// A tensor's squared norm is summed in two passes, in the same order every run, so clipped
// runs stay bit-exact on resume: `blocks` sums the squares of each block of 64 elements of a
// tensor in order, then `norms` sums a tensor's block sums with one workgroup per tensor (a
// strided pass, then a tree). Tensors and the shards of a distributed run start at multiples
// of 64 elements, so each rank can sum the blocks of its own shard alone; the ranks exchange
// the block sums (64 times fewer bytes than the gradients) and every rank then sums each
// tensor's norm in the one-rank order.
// The gradients live in one flat buffer, bound whole or in pieces (for a model past one
// binding, or a rank's shard), one launch of `blocks` and `scale` per piece: `g` is the piece,
// `tensors` gives the parts of tensors inside it (first element in the piece, length, index
// among all tensors), and `block_sums` holds the blocks of the whole flat buffer, so that
// `norms` (one launch, its `tensors` each tensor's first block, block count and index) sees
// them all.

struct Clip {
    // 1 clipnorm, 2 global_clipnorm, 3 clipvalue.
    kind: u32,
    // Tensors (or parts of tensors) in this piece.
    tensors: u32,
    // Elements of this piece.
    len: u32,
    c: f32,
    // Tensors in the model.
    all_tensors: u32,
    // The piece's first block in `block_sums` (its first element / 64).
    first_block: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> clip: Clip;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> tensors: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;
@group(0) @binding(4) var<storage, read_write> block_sums: array<f32>;

const BLOCK: u32 = 64u;

var<workgroup> partial: array<f32, 256>;

// One thread per block of 64 elements of the piece: the squares of the block's elements that
// belong to its tensor (not the padding after a tensor's end), summed in order.
@compute @workgroup_size(256)
fn blocks(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let b = gid.x + gid.y * groups.x * 256u;
    let at = b * BLOCK;
    if (at >= clip.len) {
        return;
    }
    for (var t = 0u; t < clip.tensors; t++) {
        let first = tensors[t].x;
        let end = first + tensors[t].y;
        if (at >= first && at < end) {
            var s = 0.0;
            for (var i = at; i < min(at + BLOCK, end); i++) {
                s += g[i] * g[i];
            }
            block_sums[clip.first_block + b] = s;
            return;
        }
    }
}

// One workgroup per tensor: its block sums, strided, then a tree.
@compute @workgroup_size(256)
fn norms(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = wid.x;
    let first = tensors[t].x;
    let count = tensors[t].y;
    var s = 0.0;
    for (var i = lid.x; i < count; i += 256u) {
        s += block_sums[first + i];
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
