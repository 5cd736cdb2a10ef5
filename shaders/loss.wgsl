// Losses and their gradients, then the batch reduction of the per-row losses.
//
// loss_grad: one invocation per row r of the batch.
//   MSE  (Keras `mse`): loss_r = mean_j (y - t)²,            dY = 2 (y - t) / (rows · cols)
//   Cross-entropy on logits with an integer label l:
//        loss_r = logsumexp(y) - y[l] (max subtracted first), dY = (softmax(y) - onehot(l)) / rows
//   Targets: a class label (one column, made one-hot for MSE) or float values, where one value
//   column broadcasts to every output.
// reduce: one workgroup sums row losses and correct counts in a fixed tree order and writes the
// batch's mean loss into stats[step], so the host can read all losses of an epoch at once.
// loss_grad_reduce: both in one launch, for batches of at most 64 rows.
// loss_grad_wide: loss_grad for wide rows, one workgroup of WIDE lanes per row (see there).
// sample_means: with a class label per position (sequences), the loss launch runs on every
// token as a row; this turns the tokens' (loss, correct) into each sample's means, so that
// reduce's mean over samples is the mean over tokens and accuracy the fraction of tokens.

struct LossDims {
    rows: u32,
    cols: u32,
    kind: u32,        // 0 mse, 1 cross-entropy
    class_labels: u32, // 1: t holds one class label per row; 0: t holds float targets
    t_cols: u32,
    act: u32,         // loss_grad_reduce: the last layer's activation (activation.wgsl's codes)
    positions: u32,   // sample_means: the rows (tokens) of one sample
    _p2: u32,
}

struct Batch {
    start: u32,
    rows: u32,
    step: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: LossDims;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_stats: array<vec2<f32>>; // (loss, correct)

fn target_value(r: u32, j: u32) -> f32 {
    if (dims.class_labels == 1u) {
        return select(0.0, 1.0, u32(t[r]) == j);
    }
    if (dims.t_cols == 1u) {
        return t[r];
    }
    return t[r * dims.t_cols + j];
}

// Index of the first maximum of row r.
fn argmax(r: u32) -> u32 {
    let base = r * dims.cols;
    var best = 0u;
    var best_v = y[base];
    for (var j = 1u; j < dims.cols; j++) {
        if (y[base + j] > best_v) {
            best_v = y[base + j];
            best = j;
        }
    }
    return best;
}

// Writes dY for row r and returns its (loss, correct).
fn row_loss(r: u32) -> vec2<f32> {
    let base = r * dims.cols;
    var loss = 0.0;
    if (dims.kind == 0u) {
        let scale = 2.0 / f32(dims.rows * dims.cols);
        for (var j = 0u; j < dims.cols; j++) {
            let diff = y[base + j] - target_value(r, j);
            loss += diff * diff;
            dy[base + j] = scale * diff;
        }
        loss = loss / f32(dims.cols);
    } else {
        let label = u32(t[r]);
        var m = y[base];
        for (var j = 1u; j < dims.cols; j++) {
            m = max(m, y[base + j]);
        }
        var s = 0.0;
        for (var j = 0u; j < dims.cols; j++) {
            s += exp(y[base + j] - m);
        }
        loss = m + log(s) - y[base + label];
        let inv_rows = 1.0 / f32(dims.rows);
        for (var j = 0u; j < dims.cols; j++) {
            let p = exp(y[base + j] - m) / s;
            dy[base + j] = (p - select(0.0, 1.0, j == label)) * inv_rows;
        }
    }
    var correct = 0.0;
    if (dims.class_labels == 1u && argmax(r) == u32(t[r])) {
        correct = 1.0;
    }
    return vec2<f32>(loss, correct);
}

@compute @workgroup_size(64)
fn loss_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    // Grids of more than 65 535 workgroups are folded into a second dimension.
    let r = gid.x + gid.y * groups.x * 64u;
    if (r >= dims.rows) {
        return;
    }
    row_stats[r] = row_loss(r);
}

// ---- loss_grad_wide: loss_grad for rows wider than the host's WIDE_LOSS_COLS (params.rs).
// llvmpipe (lavapipe) ends every loop of an invocation once the invocation has run 65 535
// loop iterations in all (its LP_MAX_TGSI_LOOP_ITERATIONS), silently: row_loss loops about
// four times over a row, so rows past about 16 000 columns came out truncated. Here WIDE lanes
// share a row, each looping over every WIDE-th column, so a lane runs at most 3 · cols / WIDE
// iterations plus its trees: 49 200 for the widest row the host allows (WIDE · 16 384).
// The results are loss_grad's up to the order of the sums (trees here, not a chain), and the
// first maximum wins ties as in argmax.
const WIDE: u32 = 256u;

var<workgroup> wide_max: array<f32, 256>;
var<workgroup> wide_arg: array<u32, 256>;
var<workgroup> wide_sum: array<f32, 256>;

// Tree of wide_sum over the workgroup; every lane gets the total.
fn wide_total(lane: u32, own: f32) -> f32 {
    wide_sum[lane] = own;
    workgroupBarrier();
    for (var width = WIDE / 2u; width > 0u; width >>= 1u) {
        if (lane < width) {
            wide_sum[lane] += wide_sum[lane + width];
        }
        workgroupBarrier();
    }
    let total = wide_sum[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(256)
fn loss_grad_wide(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    // One workgroup per row; grids of more than 65 535 rows are folded into a second dimension.
    let r = wid.x + wid.y * groups.x;
    if (r >= dims.rows) {
        return;
    }
    let lane = lid.x;
    let base = r * dims.cols;

    // The row's maximum and its first column: each lane over its columns (in increasing
    // order, so a strict > keeps its first), then a tree that prefers the lower column on ties.
    // A lane with no column starts from column 0, which the tree then treats as any other.
    let first = select(0u, lane, lane < dims.cols);
    var best_v = y[base + first];
    var best = first;
    for (var j = lane + WIDE; j < dims.cols; j += WIDE) {
        if (y[base + j] > best_v) {
            best_v = y[base + j];
            best = j;
        }
    }
    wide_max[lane] = best_v;
    wide_arg[lane] = best;
    workgroupBarrier();
    for (var width = WIDE / 2u; width > 0u; width >>= 1u) {
        if (lane < width) {
            let v = wide_max[lane + width];
            let i = wide_arg[lane + width];
            if (v > wide_max[lane] || (v == wide_max[lane] && i < wide_arg[lane])) {
                wide_max[lane] = v;
                wide_arg[lane] = i;
            }
        }
        workgroupBarrier();
    }
    let m = wide_max[0];
    let argmax_r = wide_arg[0];

    var loss = 0.0;
    if (dims.kind == 0u) {
        let scale = 2.0 / f32(dims.rows * dims.cols);
        var own = 0.0;
        for (var j = lane; j < dims.cols; j += WIDE) {
            let diff = y[base + j] - target_value(r, j);
            own += diff * diff;
            dy[base + j] = scale * diff;
        }
        loss = wide_total(lane, own) / f32(dims.cols);
    } else {
        let label = u32(t[r]);
        var own = 0.0;
        for (var j = lane; j < dims.cols; j += WIDE) {
            own += exp(y[base + j] - m);
        }
        let s = wide_total(lane, own);
        loss = m + log(s) - y[base + label];
        let inv_rows = 1.0 / f32(dims.rows);
        for (var j = lane; j < dims.cols; j += WIDE) {
            let p = exp(y[base + j] - m) / s;
            dy[base + j] = (p - select(0.0, 1.0, j == label)) * inv_rows;
        }
    }
    if (lane == 0u) {
        var correct = 0.0;
        if (dims.class_labels == 1u && argmax_r == u32(t[r])) {
            correct = 1.0;
        }
        row_stats[r] = vec2<f32>(loss, correct);
    }
}

// The reduce entry point uses its own binding numbers so the two entry points can share a file.
@group(0) @binding(5) var<uniform> batch: Batch;
@group(0) @binding(6) var<storage, read> rows_in: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> stats: array<vec2<f32>>; // per step: (mean loss, correct)

var<workgroup> partial: array<vec2<f32>, 256>;

@compute @workgroup_size(256)
fn reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    var acc = vec2<f32>(0.0, 0.0);
    for (var r = lid.x; r < batch.rows; r += 256u) {
        acc += rows_in[r];
    }
    reduce_into_stats(lid.x, acc, 128u);
}

// partial[lane] = own, then a tree over the workgroup (halving from first_width), and
// stats[step] = (mean loss, correct). Both reducing entry points end with it, which keeps
// their sums in the same order.
fn reduce_into_stats(lane: u32, own: vec2<f32>, first_width: u32) {
    partial[lane] = own;
    workgroupBarrier();
    for (var width = first_width; width > 0u; width >>= 1u) {
        if (lane < width) {
            partial[lane] += partial[lane + width];
        }
        workgroupBarrier();
    }
    if (lane == 0u) {
        let total = partial[0];
        stats[batch.step] = vec2<f32>(total.x / f32(batch.rows), total.y);
    }
}

// ---- loss_grad_reduce: loss_grad, reduce and the last layer's activation backward
// (activation.wgsl) in one launch for batches of at most FUSED_ROWS rows (one workgroup),
// which saves two launches per step where launches dominate (llvmpipe, small batches). Its
// tree is reduce's with the levels that only add zeros left out, and its column sums run in
// activation.wgsl's order, so every result is bit-identical to the three launches'.
const FUSED_ROWS: u32 = 64u;

@group(0) @binding(8) var<storage, read_write> db: array<f32>; // the last layer's bias gradient

@compute @workgroup_size(64)
fn loss_grad_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
    var own = vec2<f32>(0.0, 0.0);
    if (lid.x < dims.rows) {
        own = row_loss(lid.x);
    }
    reduce_into_stats(lid.x, own, FUSED_ROWS / 2u);
    // dZ = dA ⊙ act'(A) in place, and db = Σ_rows dZ: one invocation per column, rows in
    // order, reading the dA other invocations wrote above.
    storageBarrier();
    for (var j = lid.x; j < dims.cols; j += FUSED_ROWS) {
        var sum = 0.0;
        for (var r = 0u; r < dims.rows; r++) {
            let i = r * dims.cols + j;
            let g = dy[i] * derivative(y[i], dims.act);
            dy[i] = g;
            sum += g;
        }
        db[j] = sum;
    }
}

// ---- sample_means: one invocation per sample, its positions summed in order.
@group(0) @binding(9) var<storage, read> token_stats: array<vec2<f32>>;

@compute @workgroup_size(64)
fn sample_means(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = gid.x + gid.y * groups.x * 64u;
    if (r * dims.positions >= dims.rows) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var p = 0u; p < dims.positions; p++) {
        acc += token_stats[r * dims.positions + p];
    }
    row_stats[r] = acc / f32(dims.positions);
}
