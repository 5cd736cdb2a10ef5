//! The parameter structs of the kernels in `shaders/`, laid out as the shaders declare them
//! (uniform buffers), with the helpers that fill them and size their launch grids.

use bytemuck::{Pod, Zeroable};

/// Parameters of `matmul.wgsl` (see the shader for the meaning of the strides).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct MatmulDims {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a_row_stride: u32,
    pub a_col_stride: u32,
    pub b_row_stride: u32,
    pub b_col_stride: u32,
    pub epilogue: u32,
}

impl MatmulDims {
    /// Epilogue bits: add the bias, then apply activation `act` (its shader code).
    pub fn epilogue(bias: bool, act: u32) -> u32 {
        u32::from(bias) | (act << 8)
    }
}

/// Parameters of `activation.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct ActDims {
    pub rows: u32,
    pub cols: u32,
    pub act: u32,
    pub _pad: u32,
}

/// The largest batch `loss.wgsl`'s `loss_grad_reduce` takes (its `FUSED_ROWS`).
pub(crate) const FUSED_LOSS_ROWS: usize = 64;

/// The widest row `loss.wgsl`'s `loss_grad` takes; wider rows run on `loss_grad_wide`, one
/// workgroup per row. One invocation per row loops about four times per column, and llvmpipe
/// (lavapipe) silently ends the loops of an invocation after 65 535 iterations in all, so
/// `loss_grad` must stay well below 16 000 columns; on GPUs the wide kernel is also the
/// faster one for such rows.
pub(crate) const WIDE_LOSS_COLS: usize = 4096;

/// The widest row `loss_grad_wide` computes exactly on llvmpipe: its 256 lanes loop three
/// times over every 256th column, 49 152 iterations each at this width (see `loss.wgsl`).
pub const MAX_LOSS_COLS: usize = 256 * 16_384;

/// Parameters of `loss.wgsl`'s `loss_grad`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct LossDims {
    pub rows: u32,
    pub cols: u32,
    pub kind: u32,
    pub class_labels: u32,
    pub t_cols: u32,
    /// The last layer's activation code (read by `loss_grad_reduce` only).
    pub act: u32,
    /// Rows (tokens) per sample, read by `sample_means` only.
    pub positions: u32,
    pub _pad: u32,
}

/// One entry of an epoch's batch table, read by `gather` and `reduce` through a dynamic offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
pub(crate) struct Batch {
    pub start: u32,
    pub rows: u32,
    pub step: u32,
    /// The epoch position of the batch's first row (split: of this rank's first row), which
    /// keys dropout's masks whatever the rank count.
    pub first_position: u32,
}

impl Batch {
    /// Bytes between entries: the strictest `min_uniform_buffer_offset_alignment` wgpu allows.
    pub const STRIDE: u64 = 256;
}

/// Parameters of `gather.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct GatherDims {
    pub features: u32,
    pub t_cols: u32,
    pub _pad: [u32; 2],
}

impl GatherDims {
    /// The launch grid for batches of up to `rows` rows: one workgroup per row, as many as
    /// one dimension allows (the kernel loops over the rest).
    pub fn grid(rows: usize) -> (u32, u32) {
        (rows.clamp(1, 65_535) as u32, 1)
    }
}
