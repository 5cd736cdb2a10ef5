// MaxPooling2D and AveragePooling2D (channels_last), forward and backward; also
// GlobalAveragePooling2D, an average over one window of the whole input.
//
//   window of output (n, oy, ox): input rows oy·sh − pad_top + [0, ph), columns likewise;
//   elements outside the input are ignored (padding `same`), as Keras does.
//   max_forward   y = the largest element of the window
//   max_backward  dx[e] = Σ dy over the windows whose first largest element is e (the forward
//                 pass records each window's, `arg`)
//   max_scatter   the same for windows that do not overlap (strides ≥ pool size): each input
//                 element is in one window at most, so each output writes its dy to its
//                 argmax, after `zero` cleared dx
//   avg_forward   y = the mean of the window's elements inside the input
//   avg_backward  dx[e] = Σ dy / (elements of that window) over the windows holding e
//
// The backward kernels gather (one invocation per input element, the windows in order), so
// nothing is added concurrently and the sums have one fixed order.

struct PoolDims {
    rows: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32, ph: u32, pw: u32,
    sh: u32, sw: u32, pad_top: u32, pad_left: u32,
}

@group(0) @binding(0) var<uniform> d: PoolDims;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// The input index of each window's first largest element: max_forward writes it,
// max_backward reads it.
@group(0) @binding(4) var<storage, read_write> arg: array<u32>;
@group(0) @binding(3) var<storage, read> arg_in: array<u32>;

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// The window's first row and column (may be negative) of output (oy, ox).
fn origin(oy: u32, ox: u32) -> vec2<i32> {
    return vec2<i32>(i32(oy * d.sh) - i32(d.pad_top), i32(ox * d.sw) - i32(d.pad_left));
}

fn at(n: u32, iy: u32, ix: u32, ch: u32) -> u32 {
    return ((n * d.in_h + iy) * d.in_w + ix) * d.c + ch;
}

// Elements of window (oy, ox) inside the input.
fn count(oy: u32, ox: u32) -> f32 {
    let o = origin(oy, ox);
    let y0 = max(o.x, 0);
    let y1 = min(o.x + i32(d.ph), i32(d.in_h));
    let x0 = max(o.y, 0);
    let x1 = min(o.y + i32(d.pw), i32(d.in_w));
    return f32((y1 - y0) * (x1 - x0));
}

// The output rows (or columns) whose window holds input row `i`: [first, last].
fn covering(i: u32, pad: u32, size: u32, stride: u32, outs: u32) -> vec2<i32> {
    let hi = i32(i + pad);
    let first = max((hi - i32(size) + i32(stride)) / i32(stride), 0);
    let last = min(hi / i32(stride), i32(outs) - 1);
    return vec2<i32>(first, last);
}

struct Pooled {
    value: f32,
    // The input index of the first largest element (with `is_max`).
    at: u32,
}

// The largest element (`is_max`) or the mean of the elements inside the input of output i's
// window, reading `src`.
fn pool(i: u32, is_max: bool) -> Pooled {
    let ch = i % d.c;
    let t = i / d.c;
    let ox = t % d.out_w;
    let t2 = t / d.out_w;
    let oy = t2 % d.out_h;
    let n = t2 / d.out_h;
    let o = origin(oy, ox);
    var best = -3.4028235e38;
    var best_at = 0u;
    var any = false;
    var sum = 0.0;
    for (var ky = 0u; ky < d.ph; ky++) {
        let iy = o.x + i32(ky);
        if (iy < 0 || iy >= i32(d.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < d.pw; kx++) {
            let ix = o.y + i32(kx);
            if (ix < 0 || ix >= i32(d.in_w)) {
                continue;
            }
            let e = at(n, u32(iy), u32(ix), ch);
            let v = src[e];
            sum += v;
            if (!any || v > best) {
                best = v;
                best_at = e;
                any = true;
            }
        }
    }
    if (is_max) {
        return Pooled(best, best_at);
    }
    return Pooled(sum / count(oy, ox), 0u);
}

@compute @workgroup_size(64)
fn max_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < d.rows * d.out_h * d.out_w * d.c) {
        let pooled = pool(i, true);
        dst[i] = pooled.value;
        arg[i] = pooled.at;
    }
}

@compute @workgroup_size(64)
fn avg_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < d.rows * d.out_h * d.out_w * d.c) {
        dst[i] = pool(i, false).value;
    }
}

// Backward: `src` is dy, `dst` dx. Input element i lies in
// the windows of the outputs in `rows_of(i)` × `cols_of(i)`.
struct Covering {
    n: u32,
    ch: u32,
    ys: vec2<i32>,
    xs: vec2<i32>,
}

fn covering_of(i: u32) -> Covering {
    let ch = i % d.c;
    let t = i / d.c;
    let ix = t % d.in_w;
    let t2 = t / d.in_w;
    let iy = t2 % d.in_h;
    let n = t2 / d.in_h;
    let ys = covering(iy, d.pad_top, d.ph, d.sh, d.out_h);
    let xs = covering(ix, d.pad_left, d.pw, d.sw, d.out_w);
    return Covering(n, ch, ys, xs);
}

fn dy_at(n: u32, oy: i32, ox: i32, ch: u32) -> f32 {
    return src[((n * d.out_h + u32(oy)) * d.out_w + u32(ox)) * d.c + ch];
}

@compute @workgroup_size(64)
fn max_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.rows * d.in_h * d.in_w * d.c) {
        return;
    }
    let w = covering_of(i);
    var sum = 0.0;
    for (var oy = w.ys.x; oy <= w.ys.y; oy++) {
        for (var ox = w.xs.x; ox <= w.xs.y; ox++) {
            let o = ((w.n * d.out_h + u32(oy)) * d.out_w + u32(ox)) * d.c + w.ch;
            if (arg_in[o] == i) {
                sum += src[o];
            }
        }
    }
    dst[i] = sum;
}

@compute @workgroup_size(64)
fn avg_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.rows * d.in_h * d.in_w * d.c) {
        return;
    }
    let w = covering_of(i);
    var sum = 0.0;
    for (var oy = w.ys.x; oy <= w.ys.y; oy++) {
        for (var ox = w.xs.x; ox <= w.xs.y; ox++) {
            sum += dy_at(w.n, oy, ox, w.ch) / count(u32(oy), u32(ox));
        }
    }
    dst[i] = sum;
}

@compute @workgroup_size(64)
fn zero(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i < d.rows * d.in_h * d.in_w * d.c) {
        dst[i] = 0.0;
    }
}

@compute @workgroup_size(64)
fn max_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = flat(gid, groups);
    if (o < d.rows * d.out_h * d.out_w * d.c) {
        dst[arg_in[o]] = src[o];
    }
}
