// Conv2D's three products as implicit GEMMs on 16×16 tiles through workgroup memory, as
// matmul.wgsl's `small`, for GPUs: each element of A is worked out where the im2col matrix of
// conv2d.wgsl would hold it (see there for p, r and col), and no matrix is written.
//
//   conv.product 0  forward          C [P, F] = col · K, with matmul_common's epilogue
//                1  kernel gradient  C [col_stride, F] = colᵀ · dz over the positions
//                                    conv.first .. conv.first + k (row R: the sum of dz)
//                2  input gradient   C [pixels, in_c] = Σ over k = (tap, f) of dz at the
//                                    position that reads the pixel through the tap · K
//
// One invocation sums one output over k in increasing order, so results are deterministic.
// This file comes after matmul_common.wgsl (dims, bias, C, store) and conv2d_dims.wgsl.

@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<uniform> conv: ConvDims;

const TILE: u32 = 16u;

var<workgroup> a_tile: array<f32, 256>; // [k][row]
var<workgroup> b_tile: array<f32, 256>; // [k][col]

// col[p, r]: the input under tap r of output position p (0 in the padding), the bias's 1 at
// r = taps, 0 past it. A is x.
fn col_at(p: u32, r: u32) -> f32 {
    let taps = conv.kh * conv.kw * conv.in_c;
    if (r >= taps) {
        return select(0.0, 1.0, r == taps);
    }
    let c = r % conv.in_c;
    let tap = r / conv.in_c;
    let ox = p % conv.out_w;
    let t = p / conv.out_w;
    let oy = t % conv.out_h;
    let n = t / conv.out_h;
    let iy = i32(oy * conv.sh + (tap / conv.kw) * conv.dh) - i32(conv.pad_top);
    let ix = i32(ox * conv.sw + (tap % conv.kw) * conv.dw) - i32(conv.pad_left);
    if (iy < 0 || ix < 0 || iy >= i32(conv.in_h) || ix >= i32(conv.in_w)) {
        return 0.0;
    }
    return a[((n * conv.in_h + u32(iy)) * conv.in_w + u32(ix)) * conv.in_c + c];
}

// dz at the output position that reads input pixel i through tap k / filters, filter
// k % filters; 0 where no position does. A is dz.
fn dz_at(i: u32, k: u32) -> f32 {
    let f = k % conv.filters;
    let tap = k / conv.filters;
    let ix = i % conv.in_w;
    let t = i / conv.in_w;
    let iy = t % conv.in_h;
    let n = t / conv.in_h;
    let ty = i32(iy + conv.pad_top) - i32((tap / conv.kw) * conv.dh);
    let tx = i32(ix + conv.pad_left) - i32((tap % conv.kw) * conv.dw);
    if (ty < 0 || tx < 0 || u32(ty) % conv.sh != 0u || u32(tx) % conv.sw != 0u) {
        return 0.0;
    }
    let oy = u32(ty) / conv.sh;
    let ox = u32(tx) / conv.sw;
    if (oy >= conv.out_h || ox >= conv.out_w) {
        return 0.0;
    }
    return a[((n * conv.out_h + oy) * conv.out_w + ox) * conv.filters + f];
}

fn a_at(row: u32, k: u32) -> f32 {
    switch conv.product {
        case 0u: {
            return col_at(row, k);
        }
        case 1u: {
            return col_at(conv.first + k, row);
        }
        default: {
            return dz_at(row, k);
        }
    }
}

// B: K [taps, filters] rows (forward), the chunk's dz [k, filters] rows (kernel gradient), or
// K read as [(tap, f), c] (input gradient).
fn b_at(k: u32, col: u32) -> f32 {
    if (conv.product < 2u) {
        return b[k * dims.n + col];
    }
    let tap = k / conv.filters;
    return b[(tap * conv.in_c + col) * conv.filters + k % conv.filters];
}

@compute @workgroup_size(16, 16)
fn conv_tiles(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    var acc = 0.0;
    for (var k0 = 0u; k0 < dims.k; k0 += TILE) {
        var av = 0.0;
        if (row0 + lid.y < dims.m && k0 + lid.x < dims.k) {
            av = a_at(row0 + lid.y, k0 + lid.x);
        }
        a_tile[lid.x * TILE + lid.y] = av;
        var bv = 0.0;
        if (k0 + lid.y < dims.k && col0 + lid.x < dims.n) {
            bv = b_at(k0 + lid.y, col0 + lid.x);
        }
        b_tile[lid.y * TILE + lid.x] = bv;
        workgroupBarrier();
        for (var kk = 0u; kk < TILE; kk++) {
            acc = fma(a_tile[kk * TILE + lid.y], b_tile[kk * TILE + lid.x], acc);
        }
        workgroupBarrier();
    }
    store(row0 + lid.y, col0 + lid.x, acc);
}
