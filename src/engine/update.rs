//! The optimizer's side of a step on the GPU: the update launch with its per-step values,
//! gradient clipping and gradient accumulation, for a model's [`GpuParams`].

use super::params::{GpuParams, LayerLayout};
use crate::error::Result;
use crate::gpu::{Gpu, Slice};
use crate::optim::Optimizer;

/// The launches of gradient accumulation.
pub(crate) struct Accumulate {
    /// `acc += g` (a micro-batch that does not update), one launch per chunk.
    pub add: Vec<crate::gpu::Dispatch>,
    /// `g = (g + acc) / N; acc = 0` (before the update), one launch per chunk.
    pub average: Vec<crate::gpu::Dispatch>,
    /// N.
    pub steps: u32,
}

/// The uniform of `accumulate.wgsl`, laid out as the shader declares it.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AccumulateUniform {
    n4: u32,
    steps: f32,
    _pad: [u32; 2],
}

pub(super) fn accumulate_launches(
    gpu: &Gpu,
    grads: &wgpu::Buffer,
    acc: &wgpu::Buffer,
    chunks: &[(usize, usize)],
    steps: u32,
) -> (Accumulate, Vec<wgpu::Buffer>) {
    let (mut add, mut average, mut uniforms) = (Vec::new(), Vec::new(), Vec::new());
    for &(first, len) in chunks {
        let uniform = gpu.uniform(
            "gradient accumulation",
            &AccumulateUniform {
                n4: (len / 4) as u32,
                steps: steps as f32,
                _pad: [0; 2],
            },
        );
        let bindings = crate::gpu::bindings::AccumulateBindings {
            dims: Slice::all(&uniform),
            g: piece(grads, first, len),
            acc: piece(acc, first, len),
        };
        let (k, grid) = (&gpu.kernels, crate::optim::update_grid(len));
        add.push(
            k.accumulate_add
                .dispatch(&gpu.device, &bindings.slices(), grid),
        );
        average.push(
            k.accumulate_average
                .dispatch(&gpu.device, &bindings.slices(), grid),
        );
        uniforms.push(uniform);
    }
    (
        Accumulate {
            add,
            average,
            steps,
        },
        uniforms,
    )
}

/// Elements `first..first + len` of a flat f32 buffer, as a binding.
pub(super) fn piece(buffer: &wgpu::Buffer, first: usize, len: usize) -> Slice<'_> {
    Slice {
        buffer,
        offset: first as u64 * 4,
        size: Some(len as u64 * 4),
    }
}

/// The launches that clip the gradients within `pieces` as `optimizer` asks (none without
/// clipping).
pub(super) fn clip_launches(
    gpu: &Gpu,
    optimizer: &dyn Optimizer,
    layers: &[LayerLayout],
    grads: &wgpu::Buffer,
    pieces: &[(usize, usize)],
) -> Result<Option<crate::gpu::ClipLaunches>> {
    let tensors: Vec<[u32; 2]> = super::params::owners(layers)
        .flat_map(|(_, l)| {
            l.tensors
                .iter()
                .map(|(_, shape, first)| [*first as u32, shape.iter().product::<usize>() as u32])
        })
        .collect();
    crate::gpu::clip_launches(gpu, optimizer.clipping(), &tensors, grads, pieces)
}

impl GpuParams {
    /// The clipping of the gradients within `pieces` (whole tensors' norms from every block
    /// sum, which the caller completes first); none without clipping.
    pub fn clip_launches(
        &self,
        pieces: &[(usize, usize)],
    ) -> Result<Option<crate::gpu::ClipLaunches>> {
        let optimizer = self.optimizer.as_ref();
        clip_launches(&self.gpu, optimizer, &self.layers, &self.grads, pieces)
    }

    /// The optimizer's update of every parameter, reading the per-step values of the step
    /// at the launch's offset in `steps` (one 256-byte entry per step: `Workspace::step_values`).
    pub fn update_dispatch(&self, steps: &wgpu::Buffer) -> Vec<crate::gpu::Dispatch> {
        let mut launches = self.decay_dispatch(steps);
        launches.extend(self.update_only_dispatch(steps));
        launches
    }

    /// With a weight decay that exempts some parameters: `w -= w · weight_decay · lr` on each
    /// run of consecutive parameters that take it (split where the flat buffers are bound in
    /// pieces), before the update.
    fn decay_dispatch(&self, steps: &wgpu::Buffer) -> Vec<crate::gpu::Dispatch> {
        let Some((weight_decay, excluded)) = self.optimizer.selective_weight_decay() else {
            return Vec::new();
        };
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let layout = self.param_layout();
        for (k, (name, _, first)) in layout.iter().enumerate() {
            if *first >= self.trainable_len || excluded.iter().any(|e| name.contains(e.as_str())) {
                continue;
            }
            // To the next tensor: the padding is zeros, which the decay leaves zeros.
            let end = layout.get(k + 1).map_or(self.trainable_len, |t| t.2);
            let end = end.min(self.trainable_len);
            match runs.last_mut() {
                Some((start, len)) if *start + *len == *first => *len = end - *start,
                _ => runs.push((*first, end - first)),
            }
        }
        let gpu = &self.gpu;
        let kernel = gpu.kernels.layer(
            &gpu.device,
            crate::gpu::layer_kernels::LayerKernel::WeightDecay,
        );
        let mut out = Vec::new();
        for (chunk_first, chunk_len) in self.update_pieces() {
            for &(first, len) in &runs {
                let start = first.max(chunk_first);
                let end = (first + len).min(chunk_first + chunk_len);
                if start >= end {
                    continue;
                }
                let dims = crate::gpu::layer_kernels::DecayDims {
                    n4: ((end - start) / 4) as u32,
                    weight_decay,
                    _pad: [0; 2],
                };
                let uniform = gpu.uniform("weight decay", &dims);
                let bindings = [
                    Slice::all(&uniform),
                    piece(&self.params, start, end - start),
                    Slice {
                        buffer: steps,
                        offset: 0,
                        size: Some(16),
                    },
                ];
                out.push(kernel.dispatch_per_batch(
                    &gpu.device,
                    &bindings,
                    crate::optim::update_grid(end - start),
                ));
            }
        }
        out
    }

    /// The optimizer's update launches, one per piece of [`GpuParams::update_pieces`].
    fn update_only_dispatch(&self, steps: &wgpu::Buffer) -> Vec<crate::gpu::Dispatch> {
        let kernel = self
            .gpu
            .kernels
            .update(&self.gpu.device, self.optimizer.as_ref());
        self.update_pieces()
            .into_iter()
            .zip(&self.update_uniforms)
            .map(|((first, len), uniform)| {
                let bindings = crate::gpu::bindings::UpdateBindings {
                    uniform: Slice::all(uniform),
                    params: piece(&self.params, first, len),
                    grads: piece(&self.grads, first, len),
                    // A slot the optimizer does not keep is a 16-byte placeholder.
                    slots: self
                        .slots
                        .iter()
                        .map(|s| match s.kept {
                            // A sharded slot's buffer starts at its shard.
                            true => piece(&s.buffer, first - s.range.0, len),
                            false => Slice::all(&s.buffer),
                        })
                        .collect(),
                    step: Slice {
                        buffer: steps,
                        offset: 0,
                        size: Some(16),
                    },
                };
                kernel.dispatch_per_batch(
                    &self.gpu.device,
                    &bindings.slices(),
                    crate::optim::update_grid(len),
                )
            })
            .collect()
    }

    /// The learning rate of the update on micro-batch `micro` (1-based): the schedule's at the
    /// micro-batches done before it, as Keras evaluates it, or the optimizer's rate.
    pub fn learning_rate_at(&self, micro: u64) -> f32 {
        match self.optimizer.schedule() {
            // A distributed step is `schedule_ranks` micro-batches of the one-rank run.
            Some(schedule) => schedule.at((micro * self.schedule_ranks).saturating_sub(1)),
            None => self.optimizer.learning_rate(),
        }
    }

    /// Writes the per-step values of steps `first..` of an epoch whose first update makes
    /// iteration `epoch_iteration + 1` into `steps`.
    pub fn write_step_values(
        &self,
        steps: &wgpu::Buffer,
        epoch_iteration: u64,
        first: usize,
        count: usize,
    ) {
        let stride = crate::gpu::Batch::STRIDE as usize;
        if first >= count {
            return;
        }
        let accumulation = u64::from(self.optimizer.accumulation_steps());
        let mut bytes = vec![0u8; (count - first) * stride];
        for (k, step) in (first..count).enumerate() {
            // As Keras: the micro-batch count before this one gives the scheduled rate, the
            // number of updates so far the update's own count.
            let micro = epoch_iteration + step as u64 + 1;
            let lr = self.learning_rate_at(micro);
            let values = self.optimizer.step_values(micro / accumulation, lr);
            bytes[k * stride..k * stride + 16].copy_from_slice(bytemuck::bytes_of(&values));
            // Dropout's mask coordinates (`shaders/dropout.wgsl`): the epoch and the seed.
            let masks = [self.masks.1, self.masks.0];
            bytes[k * stride + 16..k * stride + 32].copy_from_slice(bytemuck::cast_slice(&masks));
        }
        self.gpu.write(steps, (first * stride) as u64, &bytes);
    }
}
