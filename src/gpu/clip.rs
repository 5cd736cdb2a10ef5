//! Host side of `shaders/clip.wgsl`: the launches that clip a model's gradients before the
//! optimizer's update.

use super::bindings::ClipBindings;
use super::{Dispatch, Gpu, Slice};
use crate::error::Result;
use crate::optim::Clipping;

/// The uniform of `clip.wgsl`, laid out as the shader declares it.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ClipUniform {
    kind: u32,
    tensors: u32,
    len: u32,
    c: f32,
    all_tensors: u32,
    _pad: [u32; 3],
}

/// The launches that clip the gradients in `grads` (tensors `(first, len)` of `tensors`, the
/// buffer bound in the pieces `(first, len)` of `pieces`, each holding whole tensors) as
/// `clipping` asks, and the buffers they bind. None without clipping. Every piece's norms
/// come before any piece's scaling, which may need them all.
pub(crate) fn clip_launches(
    gpu: &Gpu,
    clipping: Clipping,
    tensors: &[[u32; 2]],
    grads: &wgpu::Buffer,
    pieces: &[(usize, usize)],
) -> Result<(Vec<Dispatch>, Vec<wgpu::Buffer>)> {
    let Some((kind, c)) = clipping.kernel_params() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let sums = gpu.storage("clip norms", tensors.len() as u64 * 4)?;
    let k = &gpu.kernels;
    let (mut norms, mut scales, mut buffers) = (Vec::new(), Vec::new(), Vec::new());
    for &(first, len) in pieces {
        let inside: Vec<[u32; 4]> = tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| (t[0] as usize) >= first && (t[0] as usize) < first + len)
            .map(|(i, t)| [t[0] - first as u32, t[1], i as u32, 0])
            .collect();
        let uniform = gpu.uniform(
            "clip",
            &ClipUniform {
                kind,
                tensors: inside.len() as u32,
                len: len as u32,
                c,
                all_tensors: tensors.len() as u32,
                _pad: [0; 3],
            },
        );
        let table = gpu.upload("clip tensors", &inside)?;
        let bindings = ClipBindings {
            dims: Slice::all(&uniform),
            g: Slice {
                buffer: grads,
                offset: first as u64 * 4,
                size: Some(len as u64 * 4),
            },
            tensors: Slice::all(&table),
            sums: Slice::all(&sums),
        };
        // clipvalue needs no norms.
        if kind != 3 && !inside.is_empty() {
            let groups = (inside.len() as u32, 1);
            norms.push(
                k.clip_norms
                    .dispatch(&gpu.device, &bindings.slices(), groups),
            );
        }
        let grid = super::grid(len, 256);
        scales.push(k.clip_scale.dispatch(&gpu.device, &bindings.slices(), grid));
        buffers.extend([uniform, table]);
    }
    buffers.push(sums);
    norms.extend(scales);
    Ok((norms, buffers))
}
