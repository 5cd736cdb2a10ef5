// Conv2D's dimensions (ConvDims in src/gpu/layer_dims.rs), shared by conv2d.wgsl,
// conv2d_gemm.wgsl and conv2d_gemm_tiles.wgsl, which the host puts after this file.
struct ConvDims {
    rows: u32, in_h: u32, in_w: u32, in_c: u32,
    out_h: u32, out_w: u32, filters: u32, kh: u32,
    kw: u32, sh: u32, sw: u32, dh: u32,
    dw: u32, pad_top: u32, pad_left: u32, act: u32,
    use_bias: u32, col_stride: u32, chunks: u32, chunk_stride: u32,
    // The first output position a kernel-gradient product sums, and which product
    // conv2d_gemm_tiles.wgsl computes.
    first: u32, product: u32, _pad1: u32, _pad2: u32,
}
