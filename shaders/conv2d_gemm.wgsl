// Conv2D's three products as implicit GEMMs on the kernels of matmul_subgroup.wgsl: the
// im2col matrix of conv2d.wgsl is never written; each load of A computes which input (or
// output-gradient) vec4 that element of the matrix is, or zero in the padding.
//
//   p = (n, oy, ox)  an output position;   r = (ky, kx, c) a kernel tap, c fastest
//   col[p, r] = x[n, oy·sh + ky·dh − pad_top, ox·sw + kx·dw − pad_left, c]   (0 outside)
//
//   conv_forward      y[p, f]  = act(Σ_r col[p, r] K[r, f] + b[f])                    (as nn)
//   conv_kernel_grad  part[r, f] = Σ_{p in the chunk} col[p, r] dz[p, f], and row R
//                     the sum of dz (the bias's gradient)                             (as tn)
//   conv_input_grad   dx[(n, y, x), c] = Σ_{ky, kx, f} dz[p(y, x, ky, kx), f] K[(ky, kx, c), f]
//                     over the taps whose output position exists                     (as nt)
//
// Each output is summed over k in increasing order by one invocation, as every matmul kernel
// sums, so results are deterministic. Used where the adapter has the subgroup kernels and
// in_c and filters are multiples of 4, so that four consecutive k are one vec4 of x or dz;
// src/engine/layers/conv2d.rs runs the im2col path of conv2d.wgsl everywhere else.
//
// This file comes after matmul_common.wgsl, matmul_subgroup.wgsl (A, B, C, the block helpers,
// LANES, ROWS) and conv2d_dims.wgsl, and is a template as matmul_subgroup.wgsl is.

@group(0) @binding(5) var<uniform> conv: ConvDims;

// Where an output position's window starts: its sample's first pixel, and the window's top
// left corner (negative in the padding).
struct Window {
    base: u32,
    iy: i32,
    ix: i32,
}

// An output position as (sample, row, column): counted up one at a time by `advance` where a
// kernel walks positions in order, without dividing.
struct Cursor {
    n: u32,
    oy: u32,
    ox: u32,
}

fn cursor_of(p: u32) -> Cursor {
    let t = p / conv.out_w;
    return Cursor(t / conv.out_h, t % conv.out_h, p % conv.out_w);
}

fn advance(c: Cursor) -> Cursor {
    var next = Cursor(c.n, c.oy, c.ox + 1u);
    if (next.ox == conv.out_w) {
        next.ox = 0u;
        next.oy += 1u;
        if (next.oy == conv.out_h) {
            next.oy = 0u;
            next.n += 1u;
        }
    }
    return next;
}

fn window_at(c: Cursor) -> Window {
    return Window(
        c.n * conv.in_h * conv.in_w,
        i32(c.oy * conv.sh) - i32(conv.pad_top),
        i32(c.ox * conv.sw) - i32(conv.pad_left),
    );
}

fn window_of(p: u32) -> Window {
    return window_at(cursor_of(p));
}

// Channels 4 c4 .. 4 c4 + 3 of the input pixel at offset (dy, dx) from the window, zeros in
// the padding (A is x, read as vec4s).
fn x4_at(w: Window, dy: i32, dx: i32, c4: u32) -> vec4<f32> {
    let source = x4_of(w, dy, dx);
    return select(vec4<f32>(0.0), a[source.at + c4], source.inside);
}

// Where the input pixel at offset (dy, dx) from the window starts, as vec4s of x, and whether
// it lies inside the input (else the loads read zeros).
struct Source {
    at: u32,
    inside: bool,
}

fn x4_of(w: Window, dy: i32, dx: i32) -> Source {
    let iy = w.iy + dy;
    let ix = w.ix + dx;
    let inside = iy >= 0 && ix >= 0 && iy < i32(conv.in_h) && ix < i32(conv.in_w);
    let pixel = w.base + u32(select(0, iy, inside)) * conv.in_w + u32(select(0, ix, inside));
    return Source(pixel * (conv.in_c / 4u), inside);
}

// A tap's offset from its window, and its vec4 of channels: tap row t4 of col's vec4 columns.
struct Tap {
    dy: i32,
    dx: i32,
    c4: u32,
}

fn tap_of(t4: u32) -> Tap {
    let c4n = conv.in_c / 4u;
    let tap = t4 / c4n;
    return Tap(i32((tap / conv.kw) * conv.dh), i32((tap % conv.kw) * conv.dw), t4 % c4n);
}

// ---- conv_forward: nn with A = col, read through x ---------------------------------------
// dims: m = positions, n = filters, k = taps, B = K [taps, filters] rows. k runs as taps
// (outer) and channel vec4s (inner), so that where a row's window reads is worked out once a
// tap: llvmpipe divides lane by lane, and a division per load made this kernel 20× slower.
@compute @workgroup_size(8)
fn conv_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let c0 = wid.x * LANES * 2u + lid.x;
    let r0 = wid.y * ROWS;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c0 + LANES, n4 - 1u);
    let c4n = conv.in_c / 4u;
    //@repeat g 0..8
    let w{g} = window_of(min(r0 + {g}u * LANES + lid.x, dims.m - 1u));
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    for (var tap = 0u; tap < conv.kh * conv.kw; tap++) {
        let dy = i32((tap / conv.kw) * conv.dh);
        let dx = i32((tap % conv.kw) * conv.dw);
        //@repeat g 0..8
        let at{g} = x4_of(w{g}, dy, dx);
        //@end
        for (var c4 = 0u; c4 < c4n; c4++) {
            //@repeat g 0..8
            let a{g} = select(vec4<f32>(0.0), a[at{g}.at + c4], at{g}.inside);
            //@end
            let y = b_rows4(4u * (tap * c4n + c4), brs, lc0, lc1);
            //@repeat j 0..64
            let x{j} = subgroupBroadcast(a{j/8}, {j%8}u);
            add_row4(&s{j}_0, &s{j}_1, x{j}, y);
            //@end
        }
    }

    //@repeat j 0..64
    put4(r0 + {j}u, 4u * c0, s{j}_0);
    put4(r0 + {j}u, 4u * (c0 + LANES), s{j}_1);
    //@end
    finish_block(r0, 4u * c0, 4u * (c0 + LANES));
}

// Row group m4 (rows 4 m4 .. 4 m4 + 3) of colᵀ at output position p: four channels of a tap,
// the bias's row of ones (1, 0, 0, 0) at m4 = taps / 4, zeros past it.
fn col_t4(w: Window, m4: u32, t: Tap) -> vec4<f32> {
    let taps4 = conv.kh * conv.kw * conv.in_c / 4u;
    if (m4 < taps4) {
        return x4_at(w, t.dy, t.dx, t.c4);
    }
    return select(vec4<f32>(0.0), vec4<f32>(1.0, 0.0, 0.0, 0.0), m4 == taps4);
}

// ---- conv_kernel_grad: tn with A = colᵀ over positions conv.first .. conv.first + k -------
// dims: m = col_stride (the taps, the bias's row, zeros), n = filters, k = the chunk's
// positions, B = dz of the chunk [k, filters] rows.
@compute @workgroup_size(8)
fn conv_kernel_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n4 = dims.n / 4u;
    let m4 = dims.m / 4u;
    let c0 = wid.x * LANES * 2u + lid.x;
    let r0 = wid.y * ROWS;
    let brs = dims.b_row_stride / 4u;
    let lc0 = min(c0, n4 - 1u);
    let lc1 = min(c0 + LANES, n4 - 1u);
    //@repeat h 0..2
    let ac{h} = min(r0 / 4u + {h}u * LANES + lid.x, m4 - 1u);
    let t{h} = tap_of(ac{h});
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    // Four positions per pass, as tn, then the rest one at a time; `position` walks them.
    var position = cursor_of(conv.first);
    let k4 = dims.k / 4u * 4u;
    for (var k = 0u; k < k4; k += 4u) {
        let w0 = window_at(position);
        position = advance(position);
        let w1 = window_at(position);
        position = advance(position);
        let w2 = window_at(position);
        position = advance(position);
        let w3 = window_at(position);
        position = advance(position);
        //@repeat h 0..2
        let a{h}_0 = col_t4(w0, ac{h}, t{h});
        let a{h}_1 = col_t4(w1, ac{h}, t{h});
        let a{h}_2 = col_t4(w2, ac{h}, t{h});
        let a{h}_3 = col_t4(w3, ac{h}, t{h});
        //@end
        let y = b_rows4(k, brs, lc0, lc1);
        //@repeat j 0..64
        let x{j} = vec4<f32>(
            subgroupBroadcast(a{j/32}_0[{j%4}], {j%32/4}u),
            subgroupBroadcast(a{j/32}_1[{j%4}], {j%32/4}u),
            subgroupBroadcast(a{j/32}_2[{j%4}], {j%32/4}u),
            subgroupBroadcast(a{j/32}_3[{j%4}], {j%32/4}u),
        );
        add_row4(&s{j}_0, &s{j}_1, x{j}, y);
        //@end
    }
    for (var k = k4; k < dims.k; k++) {
        let w = window_at(position);
        position = advance(position);
        //@repeat h 0..2
        let a{h} = col_t4(w, ac{h}, t{h});
        //@end
        let y0 = b[k * brs + lc0];
        let y1 = b[k * brs + lc1];
        //@repeat j 0..64
        let z{j} = subgroupBroadcast(a{j/32}[{j%4}], {j%32/4}u);
        s{j}_0 = fma(vec4<f32>(z{j}), y0, s{j}_0);
        s{j}_1 = fma(vec4<f32>(z{j}), y1, s{j}_1);
        //@end
    }

    //@repeat j 0..64
    put4(r0 + {j}u, 4u * c0, s{j}_0);
    put4(r0 + {j}u, 4u * (c0 + LANES), s{j}_1);
    //@end
}

// Where an input pixel's taps look in dz: its sample's first output position, and the pixel
// moved by the padding.
struct Pixel {
    base: u32,
    ty: i32,
    tx: i32,
}

fn pixel_of(i: u32) -> Pixel {
    let ix = i % conv.in_w;
    let t = i / conv.in_w;
    let iy = t % conv.in_h;
    let n = t / conv.in_h;
    return Pixel(
        n * conv.out_h * conv.out_w,
        i32(iy + conv.pad_top),
        i32(ix + conv.pad_left),
    );
}

// Where dz holds the output position that reads pixel `px` through the tap at offset
// (dy, dx), as vec4s of dz, and whether there is one (else the loads read zeros).
fn dz4_of(px: Pixel, dy: i32, dx: i32) -> Source {
    let ty = px.ty - dy;
    let tx = px.tx - dx;
    let oy = u32(max(ty, 0)) / conv.sh;
    let ox = u32(max(tx, 0)) / conv.sw;
    let hit = ty >= 0 && tx >= 0 && u32(ty) % conv.sh == 0u && u32(tx) % conv.sw == 0u
        && oy < conv.out_h && ox < conv.out_w;
    return Source((px.base + select(0u, oy * conv.out_w + ox, hit)) * (conv.filters / 4u), hit);
}

// ---- conv_input_grad: nt with A = dz gathered per tap, B = K read as [c, (tap, f)] ---------
// dims: m = input pixels, n = in_c, k = taps · filters (tap outer, filter inner, as the loops
// run, each row's source worked out once a tap); C = dx.
// Lane l computes channels col0 .. col0 + 7 (col0 = 8 (LANES wid.x + l)).
@compute @workgroup_size(8)
fn conv_input_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let col0 = (wid.x * LANES + lid.x) * 8u;
    let r0 = wid.y * ROWS;
    let f4n = conv.filters / 4u;
    //@repeat i 0..8
    let bc{i} = min(col0 + {i}u, dims.n - 1u) * f4n;
    //@end
    //@repeat g 0..8
    let p{g} = pixel_of(min(r0 + {g}u * LANES + lid.x, dims.m - 1u));
    //@end
    //@repeat j 0..64
    var s{j}_0 = vec4<f32>(0.0);
    var s{j}_1 = vec4<f32>(0.0);
    //@end

    for (var tap = 0u; tap < conv.kh * conv.kw; tap++) {
        let dy = i32((tap / conv.kw) * conv.dh);
        let dx = i32((tap % conv.kw) * conv.dw);
        //@repeat g 0..8
        let src{g} = dz4_of(p{g}, dy, dx);
        //@end
        // K[(tap, c), f .. f + 3] for this lane's eight channels c.
        let k_at = tap * conv.in_c * f4n;
        for (var f4 = 0u; f4 < f4n; f4++) {
            //@repeat g 0..8
            let a{g} = select(vec4<f32>(0.0), a[src{g}.at + f4], src{g}.inside);
            //@end
            //@repeat i 0..8
            let z{i} = b[k_at + f4 + bc{i}];
            //@end
            let y = b_cols8(z0, z1, z2, z3, z4, z5, z6, z7);
            //@repeat j 0..64
            let x{j} = subgroupBroadcast(a{j/8}, {j%8}u);
            add_row4(&s{j}_0, &s{j}_1, x{j}, y);
            //@end
        }
    }

    //@repeat j 0..64
    put4_scalar(r0 + {j}u, col0, s{j}_0);
    put4_scalar(r0 + {j}u, col0 + 4u, s{j}_1);
    //@end
}

// ---- conv_input_grad_narrow: conv_input_grad for at most 32 channels -----------------------
// conv_input_grad gives each lane 8 channels, so a layer of 32 channels or fewer leaves half a
// workgroup or more without columns. Here each lane computes 4 channels (col0 = 4 (LANES wid.x
// + l)) of 128 rows, as many fmas a load as there: no lane idles at 32 channels.
@compute @workgroup_size(8)
fn conv_input_grad_narrow(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let col0 = (wid.x * LANES + lid.x) * 4u;
    let r0 = wid.y * 2u * ROWS;
    let f4n = conv.filters / 4u;
    //@repeat i 0..4
    let bc{i} = min(col0 + {i}u, dims.n - 1u) * f4n;
    //@end
    //@repeat g 0..16
    let p{g} = pixel_of(min(r0 + {g}u * LANES + lid.x, dims.m - 1u));
    //@end
    //@repeat j 0..128
    var s{j} = vec4<f32>(0.0);
    //@end

    for (var tap = 0u; tap < conv.kh * conv.kw; tap++) {
        let dy = i32((tap / conv.kw) * conv.dh);
        let dx = i32((tap % conv.kw) * conv.dw);
        //@repeat g 0..16
        let src{g} = dz4_of(p{g}, dy, dx);
        //@end
        let k_at = tap * conv.in_c * f4n;
        for (var f4 = 0u; f4 < f4n; f4++) {
            //@repeat g 0..16
            let a{g} = select(vec4<f32>(0.0), a[src{g}.at + f4], src{g}.inside);
            //@end
            //@repeat i 0..4
            let z{i} = b[k_at + f4 + bc{i}];
            //@end
            // Row kk of the four: filter 4 f4 + kk of the lane's four channels.
            let y0 = vec4<f32>(z0.x, z1.x, z2.x, z3.x);
            let y1 = vec4<f32>(z0.y, z1.y, z2.y, z3.y);
            let y2 = vec4<f32>(z0.z, z1.z, z2.z, z3.z);
            let y3 = vec4<f32>(z0.w, z1.w, z2.w, z3.w);
            //@repeat j 0..128
            let x{j} = subgroupBroadcast(a{j/8}, {j%8}u);
            s{j} = fma(vec4<f32>(x{j}.x), y0, s{j});
            s{j} = fma(vec4<f32>(x{j}.y), y1, s{j});
            s{j} = fma(vec4<f32>(x{j}.z), y2, s{j});
            s{j} = fma(vec4<f32>(x{j}.w), y3, s{j});
            //@end
        }
    }

    //@repeat j 0..128
    put4_scalar(r0 + {j}u, col0, s{j});
    //@end
}
