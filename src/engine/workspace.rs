//! A data set on the GPU with the buffers of one batch and the plans that use them.

use super::GpuParams;
use super::step::Plan;
use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::{Batch, Gpu};
use crate::loss::Loss;

/// A data set on the GPU with the buffers of one batch and the plans that use them.
pub(crate) struct Workspace {
    /// Samples in the data set.
    pub samples: usize,
    /// Rows per batch (the last batch may have fewer).
    pub batch_size: usize,
    /// Batches per epoch.
    pub steps: usize,
    /// The order of samples this epoch (`perm[i]` is the sample at position `i`).
    perm: wgpu::Buffer,
    /// Per-step `(mean loss, correct)` of the current epoch.
    pub stats: wgpu::Buffer,
    /// Host-readable copy of `stats`, reused every epoch.
    pub stats_staging: wgpu::Buffer,
    /// The optimizer's per-step values of the epoch (one 256-byte entry per step).
    pub step_values: wgpu::Buffer,
    /// The optimizer's update, reading `step_values` at the step's offset.
    pub update: crate::gpu::Dispatch,
    /// Layer outputs of the batch; `acts[0]` is the gathered input.
    acts: Vec<wgpu::Buffer>,
    full: Plan,
    tail: Option<Plan>,
    // Kept alive for the bind groups.
    _buffers: Vec<wgpu::Buffer>,
}

impl Workspace {
    pub fn new(params: &GpuParams, data: &Dataset, batch_size: usize, loss: Loss) -> Result<Self> {
        let gpu = &params.gpu;
        let samples = data.len();
        let steps = samples.div_ceil(batch_size);
        let t_cols = data.target_cols();
        let class_labels = matches!(data.targets(), crate::data::Targets::Classes(_));

        let x = gpu.upload("data x", data.x())?;
        let t = gpu.upload("data targets", &data.targets_f32())?;
        let identity: Vec<u32> = (0..samples as u32).collect();
        let perm = gpu.upload("epoch order", &identity)?;
        let table = batch_table(gpu, samples, batch_size, steps);
        let stats = gpu.storage("batch statistics", steps as u64 * 8)?;
        let stats_staging = gpu.staging("batch statistics readback", steps as u64 * 8)?;
        let step_values = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("optimizer step values"),
            size: (steps.max(1) as u64) * Batch::STRIDE,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        params.write_step_values(&step_values, 0, 0, steps);
        let update = params.update_dispatch(&step_values);

        let mut acts = vec![gpu.storage("batch x", (batch_size * data.features()) as u64 * 4)?];
        let mut grads = Vec::new();
        for l in &params.layers {
            acts.push(gpu.storage("activations", (batch_size * l.outputs) as u64 * 4)?);
            grads.push(gpu.storage("activation gradients", (batch_size * l.outputs) as u64 * 4)?);
        }
        let tb = gpu.storage("batch targets", (batch_size * t_cols) as u64 * 4)?;
        let row_stats = gpu.storage("row statistics", batch_size as u64 * 8)?;

        let buffers = super::plan::PlanBuffers {
            x: &x,
            t: &t,
            perm: &perm,
            table: &table,
            stats: &stats,
            acts: &acts,
            grads: &grads,
            tb: &tb,
            row_stats: &row_stats,
            features: data.features(),
            t_cols,
            class_labels,
            loss,
        };
        let full = buffers.plan(params, batch_size);
        let tail_rows = samples % batch_size;
        let tail = (tail_rows != 0 && steps > 1).then(|| buffers.plan(params, tail_rows));
        let tail = match (tail, samples < batch_size) {
            // A data set smaller than one batch: its only batch is the "tail".
            (_, true) => Some(buffers.plan(params, samples)),
            (t, false) => t,
        };
        Ok(Workspace {
            samples,
            batch_size,
            steps,
            perm,
            stats,
            stats_staging,
            step_values,
            update,
            acts,
            full,
            tail,
            _buffers: vec![x, t, table, tb, row_stats]
                .into_iter()
                .chain(grads)
                .collect(),
        })
    }

    /// Sets the order of samples for the coming batches (lands before the next submission).
    pub fn set_order(&self, gpu: &Gpu, order: &[u32]) {
        gpu.write(&self.perm, 0, bytemuck::cast_slice(order));
    }

    /// The plan for batch `step`.
    pub fn plan(&self, step: usize) -> &Plan {
        let rows = self.rows(step);
        match &self.tail {
            Some(tail) if rows != self.batch_size || self.samples < self.batch_size => tail,
            _ => &self.full,
        }
    }

    /// Rows in batch `step`.
    pub fn rows(&self, step: usize) -> usize {
        (self.samples - step * self.batch_size).min(self.batch_size)
    }

    /// The buffer holding the model's outputs for the last recorded batch.
    pub fn output(&self) -> &wgpu::Buffer {
        &self.acts[self.acts.len() - 1]
    }
}

/// The epoch's batch table: entry `s` = (first position, rows, s), one per 256 bytes so that a
/// dynamic uniform offset selects it.
fn batch_table(gpu: &Gpu, samples: usize, batch_size: usize, steps: usize) -> wgpu::Buffer {
    let stride = Batch::STRIDE as usize;
    let mut bytes = vec![0u8; steps.max(1) * stride];
    for s in 0..steps {
        let entry = Batch {
            start: (s * batch_size) as u32,
            rows: (samples - s * batch_size).min(batch_size) as u32,
            step: s as u32,
            _pad: 0,
        };
        bytes[s * stride..s * stride + 16].copy_from_slice(bytemuck::bytes_of(&entry));
    }
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("batch table"),
        size: bytes.len() as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.write(&buffer, 0, &bytes);
    buffer
}
