//! The parameter structs of the layer kernels (`src/gpu/layer_kernels.rs`), laid out as
//! their shaders' uniform blocks.

use bytemuck::{Pod, Zeroable};

/// Parameters of `conv2d.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct ConvDims {
    pub rows: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub in_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub filters: u32,
    pub kh: u32,
    pub kw: u32,
    pub sh: u32,
    pub sw: u32,
    pub dh: u32,
    pub dw: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub act: u32,
    pub use_bias: u32,
    /// Floats per row of the im2col matrix: the taps, the bias's column of ones, and zeros
    /// up to a multiple of 4 (so that the vec4 matmul kernels apply).
    pub col_stride: u32,
    /// Partial sums of the kernel gradient, and the floats between two of them.
    pub chunks: u32,
    pub chunk_stride: u32,
    /// The first output position a partial product of the kernel gradient sums
    /// (`conv2d_gemm.wgsl`, `conv2d_gemm_tiles.wgsl`).
    pub first: u32,
    /// Which product `conv2d_gemm_tiles.wgsl` computes: 0 forward, 1 kernel gradient, 2
    /// input gradient.
    pub product: u32,
    pub _pad: [u32; 2],
}

/// Output positions each partial product of the kernel gradient sums: far below the 32 768
/// a matmul may sum on llvmpipe, and a batch of 128 MNIST images (86 528 positions of the
/// first convolution) still makes 22 products.
pub(crate) const CONV_CHUNK: usize = 4096;

/// Parameters of `pool2d.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct PoolDims {
    pub rows: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub ph: u32,
    pub pw: u32,
    pub sh: u32,
    pub sw: u32,
    pub pad_top: u32,
    pub pad_left: u32,
}

/// Parameters of `dropout.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct DropoutDims {
    pub features: u32,
    /// An element is kept when its word `>> 8` is at least this: `round(rate · 2²⁴)`.
    pub threshold: u32,
    pub scale: f32,
    pub layer: u32,
    pub training: u32,
    pub rows: u32,
    pub _pad: [u32; 2],
}

/// Parameters of `batchnorm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct NormDims {
    pub rows: u32,
    pub positions: u32,
    pub channels: u32,
    pub chunk: u32,
    pub chunks: u32,
    pub epsilon: f32,
    pub momentum: f32,
    pub center: u32,
    pub scale: u32,
    /// Elements from `moving_mean` to `moving_variance` in the parameters.
    pub variance_at: u32,
    pub _pad: [u32; 2],
}

/// Parameters of `layernorm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct LayerNormDims {
    /// Rows times positions: the vectors normalized.
    pub samples: u32,
    pub channels: u32,
    pub chunk: u32,
    pub chunks: u32,
    pub epsilon: f32,
    pub center: u32,
    pub scale: u32,
    pub _pad: u32,
}

/// Parameters of `embedding.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct EmbeddingDims {
    /// Ids in the batch: rows times sequence length.
    pub positions: u32,
    /// Rows of the table (PositionEmbedding: its sequence length).
    pub input_dim: u32,
    pub output_dim: u32,
    /// Samples in the batch.
    pub rows: u32,
}

/// Parameters of `attention.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct AttentionDims {
    pub rows: u32,
    pub t: u32,
    pub heads: u32,
    pub key_dim: u32,
    pub value_dim: u32,
    pub causal: u32,
    /// `1 / √key_dim`, which multiplies the queries.
    pub scale: f32,
    pub _pad: u32,
}

/// Parameters of `softmax.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct SoftmaxDims {
    pub rows: u32,
    pub cols: u32,
    pub _pad: [u32; 2],
}

/// Parameters of `weight_decay.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct DecayDims {
    /// Parameters of the run / 4.
    pub n4: u32,
    pub weight_decay: f32,
    pub _pad: [u32; 2],
}

/// Parameters of `elementwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct ElementDims {
    pub n: u32,
    pub act: u32,
    pub _pad: [u32; 2],
}
