// Conv2D (channels_last) as GEMMs on the tuned matmul kernels over the im2col matrix:
//
//   p = (n, oy, ox)  an output position, P = rows · out_h · out_w
//   r = (ky, kx, c)  a kernel tap,        R = kh · kw · in_c   (c fastest, Keras's layout)
//   col[p, r] = x[n, oy·sh + ky·dh − pad_top, ox·sw + kx·dw − pad_left, c]   (0 outside),
//   col[p, R] = 1 (the bias's column), and zeros up to the row stride `col_stride`
//
//   im2col    col from x (this file)
//   forward   y = act(col[:, :R] · K + b)                                   (matmul)
//   weights   partial[chunk] = col[chunk rows, :]ᵀ · dz[chunk rows]       (matmul per chunk)
//   reduce    dK[r, f] = Σ_chunk partial[chunk, r, f], db from row R, in chunk order (here)
//   inputs    dcol = dz · Kᵀ                                                (matmul)
//   col2im    dx[n, y, x, c] = Σ over the taps that read (y, x): dcol[p, r] (here)
//
// Chunks keep each matmul's sum over positions within what llvmpipe loops (65 535), and every
// sum has one fixed order, so results do not depend on the launch or the device.

// ConvDims: conv2d_dims.wgsl, put before this file.

@group(0) @binding(0) var<uniform> d: ConvDims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

fn positions() -> u32 {
    return d.rows * d.out_h * d.out_w;
}

fn taps() -> u32 {
    return d.kh * d.kw * d.in_c;
}

fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// One invocation per (output position, kernel row and column): it copies that tap's in_c
// channels (contiguous in x and in col); the (p, 0, 0) invocation also writes the row's tail
// (the bias's 1, then zeros).
@compute @workgroup_size(64)
fn im2col(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    let window = d.kh * d.kw;
    if (i >= positions() * window) {
        return;
    }
    let p = i / window;
    let k = i % window;
    let ky = k / d.kw;
    let kx = k % d.kw;
    let ox = p % d.out_w;
    let t = p / d.out_w;
    let oy = t % d.out_h;
    let n = t / d.out_h;
    let iy = i32(oy * d.sh + ky * d.dh) - i32(d.pad_top);
    let ix = i32(ox * d.sw + kx * d.dw) - i32(d.pad_left);
    let out = p * d.col_stride + k * d.in_c;
    if (iy >= 0 && ix >= 0 && iy < i32(d.in_h) && ix < i32(d.in_w)) {
        let src_at = ((n * d.in_h + u32(iy)) * d.in_w + u32(ix)) * d.in_c;
        for (var c = 0u; c < d.in_c; c++) {
            col[out + c] = x[src_at + c];
        }
    } else {
        for (var c = 0u; c < d.in_c; c++) {
            col[out + c] = 0.0;
        }
    }
    if (k == 0u) {
        let row = p * d.col_stride;
        col[row + taps()] = 1.0;
        for (var r = taps() + 1u; r < d.col_stride; r++) {
            col[row + r] = 0.0;
        }
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
    let i = flat(gid, groups);
    if (i >= (rn + 1u) * fn_) {
        return;
    }
    var sum = 0.0;
    for (var c = 0u; c < d.chunks; c++) {
        sum += partial_in[c * d.chunk_stride + i];
    }
    let r = i / fn_;
    if (r < rn) {
        dk[i] = sum;
    } else if (d.use_bias != 0u) {
        db[i - rn * fn_] = sum;
    }
}

// col2im's bindings: dcol ([P, R], dense) in, dx out.
@group(0) @binding(10) var<storage, read> dcol: array<f32>;
@group(0) @binding(12) var<storage, read_write> dx: array<f32>;

// One invocation per input pixel (n, y, x): for each channel, the sum over the taps that read
// the pixel, in tap order.
@compute @workgroup_size(64)
fn col2im(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = flat(gid, groups);
    if (i >= d.rows * d.in_h * d.in_w) {
        return;
    }
    let ix = i % d.in_w;
    let t = i / d.in_w;
    let iy = t % d.in_h;
    let n = t / d.in_h;
    let rn = taps();
    for (var c = 0u; c < d.in_c; c++) {
        dx[i * d.in_c + c] = 0.0;
    }
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
            let src_at = ((n * d.out_h + oy) * d.out_w + ox) * rn + (ky * d.kw + kx) * d.in_c;
            for (var c = 0u; c < d.in_c; c++) {
                dx[i * d.in_c + c] += dcol[src_at + c];
            }
        }
    }
}
