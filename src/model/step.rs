//! One training step on the GPU, and the buffers it runs in.
//!
//! A [`Workspace`] holds a data set uploaded once, the activations of one batch, and a
//! [`Plan`]: every kernel launch of a step with its buffers bound. [`record_train_step`] is the
//! whole step, top to bottom.

use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::{
    ActDims, Batch, Dispatch, FUSED_LOSS_ROWS, GatherDims, Gpu, LossDims, MatmulDims, Slice, grid,
};
use crate::loss::Loss;
use crate::model::GpuParams;
use crate::model::params::LayerLayout;

/// Every launch of one step for batches of `rows` rows.
pub(crate) struct Plan {
    gather: Dispatch,
    forward: Vec<Dispatch>,
    /// The loss and its gradient; with small batches also the batch statistics.
    loss: Dispatch,
    /// The batch statistics, unless `loss` computes them (batches of at most
    /// [`FUSED_LOSS_ROWS`] rows).
    reduce: Option<Dispatch>,
    backward: Vec<LayerBackward>,
}

/// The backward launches of one layer.
struct LayerBackward {
    /// `dZ = dA ⊙ act'(A)`, `db = Σ_rows dZ`.
    activation: Dispatch,
    /// `dW = dZᵀ · A_prev`.
    weight: Dispatch,
    /// `dA_prev = dZ · W` (absent for the first layer: nothing needs the input's gradient).
    input: Option<Dispatch>,
}

/// Records one training step for batch `step` of the epoch: gather the batch, forward,
/// loss and its gradient, backward, optimizer update. No host work, no readback.
pub(crate) fn record_train_step(
    pass: &mut wgpu::ComputePass<'_>,
    plan: &Plan,
    sgd: &Dispatch,
    step: u32,
) {
    // x_b, t_b ← rows perm[start .. start + rows] of the data set
    plan.gather.record(pass, step);
    // A_i = act_i(A_{i-1} · W_iᵀ + b_i)
    for layer in &plan.forward {
        layer.record(pass, step);
    }
    // dA_L = ∂loss/∂A_L; per-row losses
    plan.loss.record(pass, step);
    // stats[step] = (mean loss, correct) of this batch (small batches: done by the loss launch)
    if let Some(reduce) = &plan.reduce {
        reduce.record(pass, step);
    }
    for layer in plan.backward.iter().rev() {
        // dZ_i = dA_i ⊙ act_i'(A_i);  grad b_i = Σ_rows dZ_i
        layer.activation.record(pass, step);
        // grad W_i = dZ_iᵀ · A_{i-1}
        layer.weight.record(pass, step);
        // dA_{i-1} = dZ_i · W_i
        if let Some(input) = &layer.input {
            input.record(pass, step);
        }
    }
    // W ← W - lr · grad W (and momentum, weight decay), all parameters at once
    sgd.record(pass, step);
}

impl Plan {
    /// Every launch of a training step, named, in the order [`record_train_step`] records them.
    pub(crate) fn named_launches<'a>(&'a self, sgd: &'a Dispatch) -> Vec<(String, &'a Dispatch)> {
        let mut out = vec![("gather".to_string(), &self.gather)];
        for (i, f) in self.forward.iter().enumerate() {
            out.push((format!("dense{i} forward"), f));
        }
        match &self.reduce {
            Some(reduce) => {
                out.push(("loss".into(), &self.loss));
                out.push(("loss reduce".into(), reduce));
            }
            None => out.push(("loss and reduce".into(), &self.loss)),
        }
        for (i, b) in self.backward.iter().enumerate().rev() {
            out.push((format!("dense{i} activation backward"), &b.activation));
            out.push((format!("dense{i} weight gradient"), &b.weight));
            if let Some(input) = &b.input {
                out.push((format!("dense{i} input gradient"), input));
            }
        }
        out.push(("sgd update".into(), sgd));
        out
    }
}

/// Records the forward pass and the loss of batch `step`, for `evaluate` and `predict`.
pub(crate) fn record_eval_step(pass: &mut wgpu::ComputePass<'_>, plan: &Plan, step: u32) {
    plan.gather.record(pass, step);
    for layer in &plan.forward {
        layer.record(pass, step);
    }
    plan.loss.record(pass, step);
    if let Some(reduce) = &plan.reduce {
        reduce.record(pass, step);
    }
}

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

        let mut acts = vec![gpu.storage("batch x", (batch_size * data.features()) as u64 * 4)?];
        let mut grads = Vec::new();
        for l in &params.layers {
            acts.push(gpu.storage("activations", (batch_size * l.outputs) as u64 * 4)?);
            grads.push(gpu.storage("activation gradients", (batch_size * l.outputs) as u64 * 4)?);
        }
        let tb = gpu.storage("batch targets", (batch_size * t_cols) as u64 * 4)?;
        let row_stats = gpu.storage("row statistics", batch_size as u64 * 8)?;

        let buffers = PlanBuffers {
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

/// The buffers a plan binds.
struct PlanBuffers<'a> {
    x: &'a wgpu::Buffer,
    t: &'a wgpu::Buffer,
    perm: &'a wgpu::Buffer,
    table: &'a wgpu::Buffer,
    stats: &'a wgpu::Buffer,
    acts: &'a [wgpu::Buffer],
    grads: &'a [wgpu::Buffer],
    tb: &'a wgpu::Buffer,
    row_stats: &'a wgpu::Buffer,
    features: usize,
    t_cols: usize,
    class_labels: bool,
    loss: Loss,
}

impl PlanBuffers<'_> {
    fn plan(&self, params: &GpuParams, rows: usize) -> Plan {
        let gpu = &params.gpu;
        let k = &gpu.kernels;
        let dev = &gpu.device;
        let table = Slice {
            buffer: self.table,
            offset: 0,
            size: Some(std::mem::size_of::<Batch>() as u64),
        };

        let gather_dims = gpu.uniform(
            "gather",
            &GatherDims {
                features: self.features as u32,
                t_cols: self.t_cols as u32,
                _pad: [0; 2],
            },
        );
        let gather = k.gather.dispatch_per_batch(
            dev,
            &[
                table,
                Slice::all(&gather_dims),
                Slice::all(self.perm),
                Slice::all(self.x),
                Slice::all(self.t),
                Slice::all(&self.acts[0]),
                Slice::all(self.tb),
            ],
            grid(rows * self.features.max(self.t_cols), 256),
        );

        let forward = params
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let dims = MatmulDims {
                    m: rows as u32,
                    n: l.outputs as u32,
                    k: l.inputs as u32,
                    a_row_stride: l.inputs as u32,
                    a_col_stride: 1,
                    b_row_stride: 1,
                    b_col_stride: l.inputs as u32,
                    epilogue: MatmulDims::epilogue(true, l.activation.code()),
                };
                matmul(
                    params,
                    dims,
                    Slice::all(&self.acts[i]),
                    weight(params, l),
                    bias(params, l),
                    Slice::all(&self.acts[i + 1]),
                )
            })
            .collect();

        let last = params.layers.len() - 1;
        let outputs = params.layers[last].outputs;
        let loss_dims = gpu.uniform(
            "loss",
            &LossDims {
                rows: rows as u32,
                cols: outputs as u32,
                kind: self.loss.code(),
                class_labels: u32::from(self.class_labels),
                t_cols: self.t_cols as u32,
                _pad: [0; 3],
            },
        );
        let y = Slice::all(&self.acts[last + 1]);
        let dy = Slice::all(&self.grads[last]);
        let (loss, reduce) = if rows <= FUSED_LOSS_ROWS {
            let fused = k.loss_fused.dispatch_per_batch(
                dev,
                &[
                    Slice::all(&loss_dims),
                    y,
                    Slice::all(self.tb),
                    dy,
                    table,
                    Slice::all(self.stats),
                ],
                (1, 1),
            );
            (fused, None)
        } else {
            let loss = k.loss_grad.dispatch(
                dev,
                &[
                    Slice::all(&loss_dims),
                    y,
                    Slice::all(self.tb),
                    dy,
                    Slice::all(self.row_stats),
                ],
                grid(rows, 64),
            );
            let reduce = k.loss_reduce.dispatch_per_batch(
                dev,
                &[table, Slice::all(self.row_stats), Slice::all(self.stats)],
                (1, 1),
            );
            (loss, Some(reduce))
        };

        let backward = params
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer_backward(params, i, l, rows))
            .collect();

        Plan {
            gather,
            forward,
            loss,
            reduce,
            backward,
        }
    }

    fn layer_backward(
        &self,
        params: &GpuParams,
        i: usize,
        l: &LayerLayout,
        rows: usize,
    ) -> LayerBackward {
        let gpu = &params.gpu;
        let act_dims = gpu.uniform(
            "activation backward",
            &ActDims {
                rows: rows as u32,
                cols: l.outputs as u32,
                act: l.activation.code(),
                _pad: 0,
            },
        );
        let activation = gpu.kernels.act_backward.dispatch(
            &gpu.device,
            &[
                Slice::all(&act_dims),
                Slice::all(&self.acts[i + 1]),
                Slice::all(&self.grads[i]),
                Slice::f32s(&params.grads, l.bias, l.outputs),
            ],
            grid(l.outputs, 64),
        );
        // grad W [out, in] = dZᵀ [out, rows] · A_prev [rows, in]
        let weight_grad = matmul(
            params,
            MatmulDims {
                m: l.outputs as u32,
                n: l.inputs as u32,
                k: rows as u32,
                a_row_stride: 1,
                a_col_stride: l.outputs as u32,
                b_row_stride: l.inputs as u32,
                b_col_stride: 1,
                epilogue: 0,
            },
            Slice::all(&self.grads[i]),
            Slice::all(&self.acts[i]),
            Slice::all(&self.acts[i]),
            Slice::f32s(&params.grads, l.weight, l.inputs * l.outputs),
        );
        // dA_prev [rows, in] = dZ [rows, out] · W [out, in]
        let input = (i > 0).then(|| {
            matmul(
                params,
                MatmulDims {
                    m: rows as u32,
                    n: l.inputs as u32,
                    k: l.outputs as u32,
                    a_row_stride: l.outputs as u32,
                    a_col_stride: 1,
                    b_row_stride: l.inputs as u32,
                    b_col_stride: 1,
                    epilogue: 0,
                },
                Slice::all(&self.grads[i]),
                weight(params, l),
                weight(params, l),
                Slice::all(&self.grads[i - 1]),
            )
        });
        LayerBackward {
            activation,
            weight: weight_grad,
            input,
        }
    }
}

fn weight<'a>(params: &'a GpuParams, l: &LayerLayout) -> Slice<'a> {
    Slice::f32s(&params.params, l.weight, l.inputs * l.outputs)
}

fn bias<'a>(params: &'a GpuParams, l: &LayerLayout) -> Slice<'a> {
    Slice::f32s(&params.params, l.bias, l.outputs)
}

fn matmul(
    params: &GpuParams,
    dims: MatmulDims,
    a: Slice<'_>,
    b: Slice<'_>,
    bias: Slice<'_>,
    c: Slice<'_>,
) -> Dispatch {
    params.gpu.matmul(dims, a, b, bias, c)
}
