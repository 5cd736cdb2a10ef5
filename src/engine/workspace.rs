//! A data set on the GPU (or streamed to it, `stream.rs`) with the buffers of one batch and the
//! plans that use them.

use super::GpuParams;
use super::step::Plan;
use super::stream::{RING, Stream};
use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::{Batch, Gpu};
use crate::loss::Loss;

/// Where a data set lives while a model trains on it (or evaluates, or predicts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataOn {
    /// On the GPU when it fits the resident limit, else streamed from host memory.
    #[default]
    Auto,
    /// Uploaded once and kept on the GPU (an error if the adapter cannot hold it).
    Gpu,
    /// Kept in host memory; each batch is gathered and uploaded as training reaches it.
    Host,
}

/// The most bytes a data set's inputs (or targets) may have to stay on the GPU: the adapter's
/// largest storage binding, or less with `WGFIT_RESIDENT_LIMIT_BYTES` (to stream smaller data).
pub(crate) fn resident_limit(gpu: &Gpu) -> u64 {
    let limits = gpu.device.limits();
    let adapter = limits
        .max_buffer_size
        .min(limits.max_storage_buffer_binding_size);
    gpu.resident_limit_override()
        .map_or(adapter, |limit| limit.min(adapter))
}

/// Whether a data set placed `on` is streamed from host memory.
pub(crate) fn streams(gpu: &Gpu, data: &Dataset, on: DataOn) -> bool {
    match on {
        DataOn::Gpu => false,
        DataOn::Host => true,
        DataOn::Auto => {
            let targets = (data.len() * data.target_cols()) as u64;
            (data.x().len() as u64).max(targets) * 4 > resident_limit(gpu)
        }
    }
}

/// This rank's part of each batch in a distributed fit: positions
/// `[rank·share, (rank+1)·share)` of every global batch of `share · ranks` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    pub rank: usize,
    pub ranks: usize,
}

/// A data set on the GPU with the buffers of one batch and the plans that use them.
pub(crate) struct Workspace {
    /// Samples in the data set.
    pub samples: usize,
    /// Rows per batch (the last batch may have fewer); split, rows of this rank's share.
    pub batch_size: usize,
    /// This rank's share of each batch, in a distributed fit.
    split: Option<Split>,
    /// Batches per epoch.
    pub steps: usize,
    /// The order of samples this epoch (`perm[i]` is the sample at position `i`); streamed, the
    /// ring row of position `i`.
    perm: wgpu::Buffer,
    /// The host side of streamed input.
    stream: Option<Stream>,
    /// Per-step `(mean loss, correct)` of the current epoch.
    pub stats: wgpu::Buffer,
    /// Host-readable copy of `stats`, reused every epoch.
    pub stats_staging: wgpu::Buffer,
    /// The optimizer's per-step values of the epoch (one 256-byte entry per step).
    pub step_values: wgpu::Buffer,
    /// The optimizer's update, reading `step_values` at the step's offset.
    pub update: Vec<crate::gpu::Dispatch>,
    /// The [`GpuParams::slot_generation`] of the slot buffers `update` binds.
    update_generation: u64,
    /// Layer outputs of the batch; `acts[0]` is the gathered input.
    acts: Vec<wgpu::Buffer>,
    full: Plan,
    tail: Option<Plan>,
    // Kept alive for the bind groups.
    _buffers: Vec<wgpu::Buffer>,
}

impl Workspace {
    pub fn new(
        params: &GpuParams,
        data: &Dataset,
        batch_size: usize,
        loss: Loss,
        on: DataOn,
    ) -> Result<Self> {
        Self::new_split(params, data, batch_size, loss, on, None)
    }

    /// A workspace for this rank's shares of batches of `global_batch` rows (`split`), or for
    /// whole batches. The caller checked the split (`distributed::check_split`).
    pub fn new_split(
        params: &GpuParams,
        data: &Dataset,
        global_batch: usize,
        loss: Loss,
        on: DataOn,
        split: Option<Split>,
    ) -> Result<Self> {
        let gpu = &params.gpu;
        let samples = data.len();
        crate::fit::check_batches(samples, global_batch)?;
        let steps = samples.div_ceil(global_batch);
        let batch_size = global_batch / split.map_or(1, |s| s.ranks);
        let t_cols = data.target_cols();
        let (class_labels, positions) = match data.targets() {
            crate::data::Targets::Classes(_) => (true, 1),
            crate::data::Targets::Tokens { positions, .. } => (true, *positions),
            crate::data::Targets::Values { .. } => (false, 1),
        };
        let widths: Vec<(usize, usize, usize, usize)> = params
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.spec.kind == crate::layer::LayerKind::Dense)
            .map(|(i, l)| {
                let width = *l.spec.in_shape.last().unwrap_or(&1);
                let units = *l.spec.out_shape.last().unwrap_or(&1);
                (i, width, units, l.inputs / width.max(1))
            })
            .collect();
        super::loop_limit::check_model(gpu, &widths, batch_size.min(samples))?;

        let streamed = streams(gpu, data, on);
        if streamed && split.is_some() {
            return Err(crate::error::Error::config(
                "data placement",
                "a data set streamed from host memory cannot be split over MPI ranks yet; use data that fits the GPU (--data-on gpu)",
            ));
        }
        let (x, t, perm, stream) = if streamed {
            let stream = Stream::new(gpu, data, batch_size)?;
            let perm = gpu.upload("ring rows", &stream.ring_rows(samples))?;
            // The first batch is in place for a caller that runs it without an epoch's order
            // (`profile_step`).
            stream.stage(gpu, 0);
            (
                stream.x_ring.clone(),
                stream.t_ring.clone(),
                perm,
                Some(stream),
            )
        } else {
            let x = gpu.upload("data x", data.x())?;
            let t = gpu.upload("data targets", &data.targets_f32())?;
            let identity: Vec<u32> = (0..samples as u32).collect();
            let perm = gpu.upload("epoch order", &identity)?;
            (x, t, perm, None)
        };
        let rows = |step: usize| share_rows(samples, batch_size, step, split);
        let table = batch_table(gpu, batch_size, steps, rows, |step| {
            first_position(batch_size, step, split)
        });
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

        let specs: Vec<_> = params.layers.iter().map(|l| l.spec.clone()).collect();
        let graph = super::graph::buffers(gpu, &specs, batch_size, data.features())?;
        let mut scratch = Vec::new();
        for (i, l) in params.layers.iter().enumerate() {
            super::layers::check(gpu, i, &l.spec, batch_size)?;
            let mut buffers = Vec::new();
            for floats in super::layers::scratch_floats(gpu, &l.spec, batch_size) {
                buffers.push(gpu.storage("layer scratch", floats.max(1) as u64 * 4)?);
            }
            scratch.push(buffers);
        }
        let unused = gpu.storage("unused binding", 256)?;
        let shared = params.layers.iter().any(|l| l.spec.shares.is_some());
        let shared_grads = match shared {
            true => Some(gpu.storage_in_pieces("shared layers' gradients", params.len as u64 * 4)?),
            false => None,
        };
        let tb = gpu.storage("batch targets", (batch_size * t_cols) as u64 * 4)?;
        let row_stats = gpu.storage("row statistics", batch_size as u64 * 8)?;
        let token_stats = match positions {
            1 => None,
            p => Some(gpu.storage("token statistics", (batch_size * p) as u64 * 8)?),
        };

        let buffers = super::plan::PlanBuffers {
            x: &x,
            t: &t,
            perm: &perm,
            table: &table,
            stats: &stats,
            step_values: &step_values,
            graph: &graph,
            shared_grads: shared_grads.as_ref(),
            scratch: &scratch,
            unused: &unused,
            tb: &tb,
            row_stats: &row_stats,
            token_stats: token_stats.as_ref(),
            positions,
            features: data.features(),
            t_cols,
            class_labels,
            loss,
        };
        let full = buffers.plan(params, batch_size);
        let tail_rows = rows(steps.saturating_sub(1)) % batch_size;
        let tail = (tail_rows != 0 && steps > 1).then(|| buffers.plan(params, tail_rows));
        let tail = match (tail, samples < batch_size) {
            // A data set smaller than one batch: its only batch is the "tail".
            (_, true) => Some(buffers.plan(params, samples)),
            (t, false) => t,
        };
        Ok(Workspace {
            samples,
            batch_size,
            split,
            steps,
            perm,
            stream,
            stats,
            stats_staging,
            step_values,
            update,
            update_generation: params.slot_generation,
            acts: graph.acts.clone(),
            full,
            tail,
            _buffers: vec![x, t, table, tb, row_stats, unused]
                .into_iter()
                .chain(token_stats)
                .chain(shared_grads)
                .chain(graph.grads)
                .chain(graph.edges.into_iter().flatten().flatten())
                .chain(scratch.into_iter().flatten())
                .collect(),
        })
    }

    /// Sets the order of samples for the coming batches (lands before the next submission).
    pub fn set_order(&self, gpu: &Gpu, order: &[u32]) {
        if let Some(split) = self.split {
            // This rank's shares of the global batches, one after the other.
            let global = self.batch_size * split.ranks;
            let mine: Vec<u32> = (0..self.steps)
                .flat_map(|s| {
                    let first = s * global + split.rank * self.batch_size;
                    order[first..first + self.rows(s)].iter().copied()
                })
                .collect();
            return gpu.write(&self.perm, 0, bytemuck::cast_slice(&mine));
        }
        match &self.stream {
            Some(stream) => stream.set_order(order),
            None => gpu.write(&self.perm, 0, bytemuck::cast_slice(order)),
        }
    }

    /// Puts batch `step`'s rows where its plan reads them (streamed input; resident data is
    /// always in place). Call it before recording the step.
    pub fn stage(&self, gpu: &Gpu, step: usize) {
        if let Some(stream) = &self.stream {
            stream.stage(gpu, step);
        }
    }

    /// Makes the update again if the optimizer slot buffers it binds were replaced since (a
    /// distributed fit shards them and makes them whole again): the rest of the workspace,
    /// the data on the GPU included, stays.
    pub fn refresh_update(&mut self, params: &GpuParams) {
        if self.update_generation != params.slot_generation {
            self.update = params.update_dispatch(&self.step_values);
            self.update_generation = params.slot_generation;
        }
    }

    /// The most steps one submission may hold: streamed input has `RING` batch slots.
    pub fn steps_per_submission(&self) -> usize {
        if self.stream.is_some() {
            RING
        } else {
            usize::MAX
        }
    }

    /// The plan for batch `step`.
    pub fn plan(&self, step: usize) -> &Plan {
        let rows = self.rows(step);
        match &self.tail {
            Some(tail) if rows != self.batch_size || self.samples < self.batch_size => tail,
            _ => &self.full,
        }
    }

    /// Rows in batch `step` (split: in this rank's share of it).
    pub fn rows(&self, step: usize) -> usize {
        share_rows(self.samples, self.batch_size, step, self.split)
    }

    /// Rows in the whole batch `step` (split: over every rank).
    pub fn batch_rows(&self, step: usize) -> usize {
        let global = self.batch_size * self.split.map_or(1, |s| s.ranks);
        (self.samples - step * global).min(global)
    }

    /// The buffer holding the model's outputs for the last recorded batch.
    pub fn output(&self) -> &wgpu::Buffer {
        &self.acts[self.acts.len() - 1]
    }
}

/// Rows of batch `step` of `batch_size` rows, or with `split` of this rank's share of it.
fn share_rows(samples: usize, batch_size: usize, step: usize, split: Option<Split>) -> usize {
    samples
        .saturating_sub(first_position(batch_size, step, split))
        .min(batch_size)
}

/// The epoch position of the first row of batch `step` (split: of this rank's share of it).
fn first_position(batch_size: usize, step: usize, split: Option<Split>) -> usize {
    match split {
        Some(s) => (step * s.ranks + s.rank) * batch_size,
        None => step * batch_size,
    }
}

/// The epoch's batch table: entry `s` = (first position, rows, s), one per 256 bytes so that a
/// dynamic uniform offset selects it. (Split, positions are in this rank's order, where every
/// share but the last is full.)
fn batch_table(
    gpu: &Gpu,
    batch_size: usize,
    steps: usize,
    rows: impl Fn(usize) -> usize,
    first_position: impl Fn(usize) -> usize,
) -> wgpu::Buffer {
    let stride = Batch::STRIDE as usize;
    let mut bytes = vec![0u8; steps.max(1) * stride];
    for s in 0..steps {
        let entry = Batch {
            start: (s * batch_size) as u32,
            rows: rows(s) as u32,
            step: s as u32,
            first_position: first_position(s) as u32,
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
