//! Host side of `shaders/clip.wgsl`: the launches that clip a model's gradients before the
//! optimizer's update.

use super::bindings::ClipBindings;
use super::{Dispatch, Gpu, Slice};
use crate::error::Result;
use crate::optim::Clipping;

/// Elements summed per block of the squared norms (`BLOCK` in `clip.wgsl`): the alignment of
/// tensors and of the shards of a distributed run.
pub(crate) const CLIP_BLOCK: usize = 64;

/// The uniform of `clip.wgsl`, laid out as the shader declares it.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ClipUniform {
    kind: u32,
    tensors: u32,
    len: u32,
    c: f32,
    all_tensors: u32,
    first_block: u32,
    _pad: [u32; 2],
}

/// The launches that clip the gradients of some pieces of the flat gradient buffer.
pub(crate) struct ClipLaunches {
    /// The squares of each 64-element block of the pieces, into `block_sums` (none for
    /// `clipvalue`).
    pub blocks: Vec<Dispatch>,
    /// Every tensor's squared norm from all of `block_sums` (which must then hold every
    /// block, the pieces' own or gathered from the ranks that own the others), and the
    /// scaling of the pieces.
    pub scale: Vec<Dispatch>,
    /// One sum per 64 elements of the flat gradients.
    pub block_sums: wgpu::Buffer,
    // Kept alive for the launches' bind groups.
    _buffers: Vec<wgpu::Buffer>,
}

impl ClipLaunches {
    /// Every launch, in the order they run on one rank, and the buffers they bind.
    pub fn into_parts(self) -> (Vec<Dispatch>, Vec<wgpu::Buffer>) {
        let mut launches = self.blocks;
        launches.extend(self.scale);
        let mut buffers = self._buffers;
        buffers.push(self.block_sums);
        (launches, buffers)
    }
}

/// The launches that clip the gradients in `grads` (tensors `(first, len)` of `tensors`, each
/// starting at a multiple of 64) within `pieces` (`(first, len)`, each starting at a multiple
/// of 64 and inside one binding) as `clipping` asks. None without clipping.
pub(crate) fn clip_launches(
    gpu: &Gpu,
    clipping: Clipping,
    tensors: &[[u32; 2]],
    grads: &wgpu::Buffer,
    pieces: &[(usize, usize)],
) -> Result<Option<ClipLaunches>> {
    let Some((kind, c)) = clipping.kernel_params() else {
        return Ok(None);
    };
    let end = tensors.iter().map(|t| (t[0] + t[1]) as usize).max();
    let all_blocks = end.unwrap_or(0).div_ceil(CLIP_BLOCK).max(1);
    let sums = gpu.storage("clip norms", tensors.len().max(1) as u64 * 4)?;
    let block_sums = gpu.storage("clip block sums", all_blocks as u64 * 4)?;
    let k = &gpu.kernels;
    let uniform = |count: usize, len: usize, first_block: usize| {
        let u = ClipUniform {
            kind,
            tensors: count as u32,
            len: len as u32,
            c,
            all_tensors: tensors.len() as u32,
            first_block: first_block as u32,
            _pad: [0; 2],
        };
        gpu.uniform("clip", &u)
    };
    let (mut blocks, mut scale, mut buffers) = (Vec::new(), Vec::new(), Vec::new());
    // Each tensor's blocks: (first block, blocks, index), for `norms`.
    if kind != 3 && !tensors.is_empty() {
        let spans: Vec<[u32; 4]> = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let count = (t[1] as usize).div_ceil(CLIP_BLOCK) as u32;
                [t[0] / CLIP_BLOCK as u32, count, i as u32, 0]
            })
            .collect();
        let u = uniform(0, 0, 0);
        let table = gpu.upload("clip tensor blocks", &spans)?;
        let bindings = ClipBindings {
            dims: Slice::all(&u),
            // Unread by `norms`, but bound: its first block.
            g: Slice {
                buffer: grads,
                offset: 0,
                size: Some(grads.size().min(CLIP_BLOCK as u64 * 4)),
            },
            tensors: Slice::all(&table),
            sums: Slice::all(&sums),
            block_sums: Slice::all(&block_sums),
        };
        let groups = (spans.len() as u32, 1);
        scale.push(
            k.clip_norms
                .dispatch(&gpu.device, &bindings.slices(), groups),
        );
        buffers.extend([u, table]);
    }
    for &(first, len) in pieces.iter().filter(|p| p.1 > 0) {
        debug_assert_eq!(first % CLIP_BLOCK, 0, "a clipped piece off the block grid");
        // The parts of tensors inside the piece: (first in the piece, length, index).
        let inside: Vec<[u32; 4]> = tensors
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let (start, end) = (
                    (t[0] as usize).max(first),
                    ((t[0] + t[1]) as usize).min(first + len),
                );
                (start < end).then(|| [(start - first) as u32, (end - start) as u32, i as u32, 0])
            })
            .collect();
        if inside.is_empty() {
            continue;
        }
        let u = uniform(inside.len(), len, first / CLIP_BLOCK);
        let table = gpu.upload("clip tensors", &inside)?;
        let bindings = ClipBindings {
            dims: Slice::all(&u),
            g: Slice {
                buffer: grads,
                offset: first as u64 * 4,
                size: Some(len as u64 * 4),
            },
            tensors: Slice::all(&table),
            sums: Slice::all(&sums),
            block_sums: Slice::all(&block_sums),
        };
        // clipvalue needs no norms.
        if kind != 3 {
            let grid = super::grid(len.div_ceil(CLIP_BLOCK), 256);
            blocks.push(
                k.clip_blocks
                    .dispatch(&gpu.device, &bindings.slices(), grid),
            );
        }
        let grid = super::grid(len, 256);
        scale.push(k.clip_scale.dispatch(&gpu.device, &bindings.slices(), grid));
        buffers.extend([u, table]);
    }
    buffers.push(sums);
    Ok(Some(ClipLaunches {
        blocks,
        scale,
        block_sums,
        _buffers: buffers,
    }))
}
