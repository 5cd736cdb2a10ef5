// Conv2D (channels_last) as an implicit GEMM: the im2col matrix A[p, r] is never stored, each
// tile of it is read from the input as the tile is loaded.
//
//   p = (n, oy, ox)  an output position, P = rows · out_h · out_w
//   r = (ky, kx, c)  a kernel tap,        R = kh · kw · in_c   (c fastest, Keras's layout)
//   A[p, r] = x[n, oy·sh + ky·dh − pad_top, ox·sw + kx·dw − pad_left, c]   (0 outside)
//
//   forward       y[p, f]  = act(Σ_r A[p, r] · K[r, f] + b[f])
//   weight_grad   partial[chunk, r, f] = Σ_{p in chunk} A[p, r] · dz[p, f]  (row r = R: A = 1,
//                 the bias gradient), positions cut into chunks of `chunk` so that no
//                 invocation loops more than llvmpipe allows (65 535 iterations)
//   reduce        dK[r, f] = Σ_chunk partial[chunk, r, f] (and db from row R), chunks in order
//   input_grad    dx[n, y, x, c] = Σ_{ky, kx, f} dz[n, oy, ox, f] · K[ky, kx, c, f] over the
//                 output positions whose window reads (y, x)
//
// Every sum runs in one fixed order, so results do not depend on the launch or the device.

struct ConvDims {
    rows: u32, in_h: u32, in_w: u32, in_c: u32,
    out_h: u32, out_w: u32, filters: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, dh: u32,
    dw: u32, pad_top: u32, pad_left: u32, act: u32,
    use_bias: u32, chunk: u32, chunks: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> d: ConvDims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const T: u32 = 16u;
var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;

fn positions() -> u32 {
    return d.rows * d.out_h * d.out_w;
}

fn taps() -> u32 {
    return d.kh * d.kw * d.in_c;
}

// A[p, r]; the caller checks p < P and r < R.
fn im2col(p: u32, r: u32) -> f32 {
    let ox = p % d.out_w;
    let t = p / d.out_w;
    let oy = t % d.out_h;
    let n = t / d.out_h;
    let c = r % d.in_c;
    let t2 = r / d.in_c;
    let kx = t2 % d.kw;
    let ky = t2 / d.kw;
    let iy = i32(oy * d.sh + ky * d.dh) - i32(d.pad_top);
    let ix = i32(ox * d.sw + kx * d.dw) - i32(d.pad_left);
    if (iy < 0 || ix < 0 || iy >= i32(d.in_h) || ix >= i32(d.in_w)) {
        return 0.0;
    }
    return x[((n * d.in_h + u32(iy)) * d.in_w + u32(ix)) * d.in_c + c];
}

@compute @workgroup_size(16, 16)
fn forward(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let pn = positions();
    let rn = taps();
    let fn_ = d.filters;
    let p = wg.y * T + l.y;
    let f = wg.x * T + l.x;
    var acc = 0.0;
    for (var r0 = 0u; r0 < rn; r0 += T) {
        let ra = r0 + l.x;
        var av = 0.0;
        if (p < pn && ra < rn) {
            av = im2col(p, ra);
        }
        ta[l.y][l.x] = av;
        let rb = r0 + l.y;
        var bv = 0.0;
        if (rb < rn && f < fn_) {
            bv = k[rb * fn_ + f];
        }
        tb[l.y][l.x] = bv;
        workgroupBarrier();
        for (var i = 0u; i < T; i++) {
            acc += ta[l.y][i] * tb[i][l.x];
        }
        workgroupBarrier();
    }
    if (p < pn && f < fn_) {
        var v = acc;
        if (d.use_bias != 0u) {
            v += b[f];
        }
        y[p * fn_ + f] = activate(v, d.act);
    }
}

// weight_grad's bindings: x and dz in, the partial sums out.
@group(0) @binding(5) var<storage, read> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(16, 16)
fn weight_grad(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let pn = positions();
    let rn = taps();
    let fn_ = d.filters;
    let r_tiles = (rn + 1u + T - 1u) / T;
    let chunk = wg.y / r_tiles;
    let r_first = (wg.y % r_tiles) * T;
    let f = wg.x * T + l.x;
    let p_begin = chunk * d.chunk;
    let p_end = min(p_begin + d.chunk, pn);
    var acc = 0.0;
    for (var p0 = p_begin; p0 < p_end; p0 += T) {
        let pa = p0 + l.y;
        let ra = r_first + l.x;
        var av = 0.0;
        if (pa < p_end && ra < rn) {
            av = im2col(pa, ra);
        } else if (pa < p_end && ra == rn) {
            av = 1.0;
        }
        ta[l.y][l.x] = av;
        var bv = 0.0;
        if (pa < p_end && f < fn_) {
            bv = dz[pa * fn_ + f];
        }
        tb[l.y][l.x] = bv;
        workgroupBarrier();
        for (var i = 0u; i < T; i++) {
            acc += ta[i][l.y] * tb[i][l.x];
        }
        workgroupBarrier();
    }
    let r = r_first + l.y;
    if (r <= rn && f < fn_) {
        partial[(chunk * (rn + 1u) + r) * fn_ + f] = acc;
    }
}

// reduce's bindings: the partial sums in, the kernel's and the bias's gradients out.
@group(0) @binding(7) var<storage, read> partial_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> dk: array<f32>;
@group(0) @binding(9) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(64)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let rn = taps();
    let fn_ = d.filters;
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= (rn + 1u) * fn_) {
        return;
    }
    var sum = 0.0;
    for (var c = 0u; c < d.chunks; c++) {
        sum += partial_in[c * (rn + 1u) * fn_ + i];
    }
    let r = i / fn_;
    if (r < rn) {
        dk[i] = sum;
    } else if (d.use_bias != 0u) {
        db[i - rn * fn_] = sum;
    }
}

// input_grad's bindings: dz and the kernel in, dx out.
@group(0) @binding(10) var<storage, read> dz_in: array<f32>;
@group(0) @binding(11) var<storage, read> k_in: array<f32>;
@group(0) @binding(12) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= d.rows * d.in_h * d.in_w * d.in_c) {
        return;
    }
    let c = i % d.in_c;
    let t = i / d.in_c;
    let ix = t % d.in_w;
    let t2 = t / d.in_w;
    let iy = t2 % d.in_h;
    let n = t2 / d.in_h;
    let fn_ = d.filters;
    var sum = 0.0;
    for (var ky = 0u; ky < d.kh; ky++) {
        // oy · sh = iy + pad_top − ky · dh
        let ty = i32(iy + d.pad_top) - i32(ky * d.dh);
        if (ty < 0 || u32(ty) % d.sh != 0u || u32(ty) / d.sh >= d.out_h) {
            continue;
        }
        let oy = u32(ty) / d.sh;
        for (var kx = 0u; kx < d.kw; kx++) {
            let tx = i32(ix + d.pad_left) - i32(kx * d.dw);
            if (tx < 0 || u32(tx) % d.sw != 0u || u32(tx) / d.sw >= d.out_w) {
                continue;
            }
            let ox = u32(tx) / d.sw;
            let zrow = ((n * d.out_h + oy) * d.out_w + ox) * fn_;
            let krow = ((ky * d.kw + kx) * d.in_c + c) * fn_;
            for (var f = 0u; f < fn_; f++) {
                sum += dz_in[zrow + f] * k_in[krow + f];
            }
        }
    }
    dx[i] = sum;
}
