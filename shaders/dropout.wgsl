// Dropout with counter-based masks: element j of the sample at position q of epoch e's order
// (q names the batch as well: batch b holds positions b·batch ..), in layer `layer`, is kept
// when the Philox4x32-10 output for counter (q, j / 4, layer, e low) and key (seed low, seed
// high ^ e high) (the run's seed, which orders its data) has word
// j % 4 ≥ threshold · 2⁸ (i.e. (word >> 8) ≥ threshold, threshold = round(rate · 2²⁴)). A mask
// is a function of its coordinates alone: nothing to save, and a resumed run (or another rank
// count) draws the same masks. Kept elements are scaled by 1 / (1 − rate).
//
//   forward   y = x · mask · scale   (training; evaluation copies x)
//   backward  dx = dy · mask · scale (the mask drawn again)

struct DropoutDims {
    features: u32,
    threshold: u32,
    scale: f32,
    layer: u32,
    training: u32,
    rows: u32,
    _p0: u32,
    _p1: u32,
}

// The batch table's entry (the first epoch position of this rank's rows) and the step's values
// (after the optimizer's: the epoch and the run's seed), both at the batch's offset.
struct Batch {
    start: u32,
    rows: u32,
    step: u32,
    first_position: u32,
}

struct StepValues {
    optimizer: vec4<u32>,
    epoch_lo: u32,
    epoch_hi: u32,
    seed_lo: u32,
    seed_hi: u32,
}

@group(0) @binding(0) var<uniform> batch: Batch;
@group(0) @binding(1) var<uniform> step: StepValues;
@group(0) @binding(2) var<uniform> d: DropoutDims;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// The high and low words of a · b.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lo_lo = a_lo * b_lo;
    let hi_lo = a_hi * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_hi = a_hi * b_hi;
    let cross = (lo_lo >> 16u) + (hi_lo & 0xffffu) + (lo_hi & 0xffffu);
    let hi = hi_hi + (hi_lo >> 16u) + (lo_hi >> 16u) + (cross >> 16u);
    return vec2<u32>(hi, a * b);
}

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        let p0 = mul_wide(0xD2511F53u, c.x);
        let p1 = mul_wide(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}

fn kept(position: u32, j: u32) -> bool {
    let counter = vec4<u32>(position, j / 4u, d.layer, step.epoch_lo);
    let key = vec2<u32>(step.seed_lo, step.seed_hi ^ step.epoch_hi);
    let words = philox(counter, key);
    return (words[j % 4u] >> 8u) >= d.threshold;
}

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// dst = src · mask · scale; `src`/`dst` are x/y forward, dy/dx backward.
fn apply(i: u32) {
    let row = i / d.features;
    let j = i % d.features;
    if (d.training == 0u) {
        dst[i] = src[i];
    } else if (kept(batch.first_position + row, j)) {
        dst[i] = src[i] * d.scale;
    } else {
        dst[i] = 0.0;
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.rows * d.features) {
        return;
    }
    apply(i);
}

// The generator alone, for its known-answer tests: out[4i..4i+4] = philox(counters[i], key).
@group(0) @binding(5) var<storage, read> counters: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> words: array<vec4<u32>>;

@compute @workgroup_size(64)
fn philox_words(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&counters) / 2u) {
        return;
    }
    // counters holds (counter, key as the first two words of the next vec4) pairs.
    let key = counters[2u * i + 1u];
    words[i] = philox(counters[2u * i], key.xy);
}
