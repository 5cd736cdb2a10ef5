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
}

/// The launches that clip the gradients in `grads` (`len` floats holding the tensors
/// `(first, len)` of `tensors`) as `clipping` asks, and the buffers they bind. None without
/// clipping.
pub(crate) fn clip_launches(
    gpu: &Gpu,
    clipping: Clipping,
    tensors: &[[u32; 2]],
    grads: &wgpu::Buffer,
    len: usize,
) -> Result<(Vec<Dispatch>, Vec<wgpu::Buffer>)> {
    let Some((kind, c)) = clipping.kernel_params() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let uniform = gpu.uniform(
        "clip",
        &ClipUniform {
            kind,
            tensors: tensors.len() as u32,
            len: len as u32,
            c,
        },
    );
    let table = gpu.upload("clip tensors", tensors)?;
    let sums = gpu.storage("clip norms", tensors.len() as u64 * 4)?;
    let bindings = ClipBindings {
        dims: Slice::all(&uniform),
        g: Slice::all(grads),
        tensors: Slice::all(&table),
        sums: Slice::all(&sums),
    };
    let k = &gpu.kernels;
    let mut launches = Vec::new();
    // clipvalue needs no norms.
    if kind != 3 {
        let groups = (tensors.len() as u32, 1);
        launches.push(
            k.clip_norms
                .dispatch(&gpu.device, &bindings.slices(), groups),
        );
    }
    let grid = super::grid(len, 256);
    launches.push(k.clip_scale.dispatch(&gpu.device, &bindings.slices(), grid));
    Ok((launches, vec![uniform, table, sums]))
}
