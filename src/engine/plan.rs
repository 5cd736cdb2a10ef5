//! Building a [`Plan`]: every launch of a training step with its buffers bound, and the
//! kernel each launch runs on (small batches fold the loss, its reduction and the last
//! layer's activation backward into one launch).

use super::layers::LayerLaunch;
use super::step::{ForwardLaunch, LayerBackward, Plan};
use crate::engine::GpuParams;
use crate::gpu::bindings::{
    GatherBindings, LossFusedBindings, LossGradBindings, LossReduceBindings, SampleMeansBindings,
};
use crate::gpu::{Batch, FUSED_LOSS_ROWS, GatherDims, LossDims, Slice, WIDE_LOSS_COLS};
use crate::layer::LayerKind;
use crate::loss::Loss;

/// The buffers a plan binds.
pub(super) struct PlanBuffers<'a> {
    pub x: &'a wgpu::Buffer,
    pub t: &'a wgpu::Buffer,
    pub perm: &'a wgpu::Buffer,
    pub table: &'a wgpu::Buffer,
    pub stats: &'a wgpu::Buffer,
    pub step_values: &'a wgpu::Buffer,
    /// The tensors and their gradients (`graph.rs`).
    pub graph: &'a super::graph::GraphBuffers,
    /// With shared layers: where their earlier calls write their parameters' gradients
    /// before adding them to the model's (laid out as the parameters).
    pub shared_grads: Option<&'a wgpu::Buffer>,
    /// Each layer's scratch buffers.
    pub scratch: &'a [Vec<wgpu::Buffer>],
    pub unused: &'a wgpu::Buffer,
    pub tb: &'a wgpu::Buffer,
    pub row_stats: &'a wgpu::Buffer,
    /// Sequence targets: each token's `(loss, correct)` (`rows · positions` of them).
    pub token_stats: Option<&'a wgpu::Buffer>,
    /// Class labels per sample: 1, or a sequence's length (each token a row of the loss).
    pub positions: usize,
    pub features: usize,
    pub t_cols: usize,
    pub class_labels: bool,
    pub loss: Loss,
}

impl PlanBuffers<'_> {
    pub fn plan(&self, params: &GpuParams, rows: usize) -> Plan {
        let gpu = &params.gpu;
        let k = &gpu.kernels;
        let dev = &gpu.device;
        let table = Slice {
            buffer: self.table,
            offset: 0,
            size: Some(std::mem::size_of::<Batch>() as u64),
        };

        let gather_dims = GatherDims {
            features: self.features as u32,
            t_cols: self.t_cols as u32,
            _pad: [0; 2],
        };
        let gather_uniform = gpu.uniform("gather", &gather_dims);
        let gather = k.gather_dispatch(
            dev,
            &gather_dims,
            rows,
            &GatherBindings {
                batch: table,
                dims: Slice::all(&gather_uniform),
                perm: Slice::all(self.perm),
                x: Slice::all(self.x),
                t: Slice::all(self.t),
                xb: Slice::all(&self.graph.acts[0]),
                tb: Slice::all(self.tb),
            },
        );

        let launches: Vec<LayerLaunch> = (0..params.layers.len())
            .map(|i| self.layer_launch(params, i, rows))
            .collect();
        let forward = launches
            .iter()
            .flat_map(|l| {
                let name = layer_name(l);
                l.forward()
                    .into_iter()
                    .map(move |(what, phase, launch)| ForwardLaunch {
                        name: format!("{name} {what}"),
                        phase,
                        launch,
                    })
            })
            .collect();
        let last = params.layers.len() - 1;
        // With a label per position, every token is a row of the loss.
        let (loss_rows, outputs) = (
            rows * self.positions,
            params.layers[last].outputs / self.positions,
        );
        let loss_dims = gpu.uniform(
            "loss",
            &LossDims {
                rows: loss_rows as u32,
                cols: outputs as u32,
                kind: self.loss.code(),
                class_labels: u32::from(self.class_labels),
                t_cols: (self.t_cols / self.positions) as u32,
                act: params.layers[last].activation.code(),
                positions: self.positions as u32,
                _pad: 0,
            },
        );
        // Not on a CPU adapter: llvmpipe ran the fused kernel up to 30 times slower than the
        // three launches for some batches (12 ms against 0.4 ms a step at 24 rows; figures:
        // bench/NOTES.md "The fused loss kernel on lavapipe"). The results are the same bits.
        // Nor for wide rows: they take `loss_grad_wide`, whose sums the fused kernel does not
        // repeat.
        let last_layer = &params.layers[last];
        let fused = rows <= FUSED_LOSS_ROWS
            && self.positions == 1
            && outputs <= WIDE_LOSS_COLS
            && !params.gpu.uses_cpu_kernels()
            && last_layer.spec.kind == LayerKind::Dense
            && !last_layer.activation.differentiates_input()
            && last_layer.spec.in_shape.len() == 1;
        let y = Slice::all(&self.graph.acts[last + 1]);
        let dy = Slice::all(&self.graph.grads[last]);
        let (loss, reduce) = if fused {
            let bindings = LossFusedBindings {
                dims: Slice::all(&loss_dims),
                y,
                t: Slice::all(self.tb),
                dy,
                batch: table,
                stats: Slice::all(self.stats),
                db: Slice::f32s(&params.grads, last_layer.bias().unwrap_or(0), outputs),
            };
            let launch = k
                .loss_fused
                .dispatch_per_batch(dev, &bindings.slices(), (1, 1));
            (vec![launch], None)
        } else {
            let bindings = LossGradBindings {
                dims: Slice::all(&loss_dims),
                y,
                t: Slice::all(self.tb),
                dy,
                row_stats: Slice::all(self.token_stats.unwrap_or(self.row_stats)),
            };
            let mut loss = vec![k.loss_grad_dispatch(dev, loss_rows, outputs, &bindings)];
            if let Some(tokens) = self.token_stats {
                let bindings = SampleMeansBindings {
                    dims: Slice::all(&loss_dims),
                    row_stats: Slice::all(self.row_stats),
                    token_stats: Slice::all(tokens),
                };
                let means = &k.loss_sample_means;
                loss.push(means.dispatch(dev, &bindings.slices(), crate::gpu::grid(rows, 64)));
            }
            let bindings = LossReduceBindings {
                batch: table,
                rows_in: Slice::all(self.row_stats),
                stats: Slice::all(self.stats),
            };
            let reduce = k
                .loss_reduce
                .dispatch_per_batch(dev, &bindings.slices(), (1, 1));
            (loss, Some(reduce))
        };

        let backward = launches
            .iter()
            .map(|l| {
                let sums = super::layers::gradient_sums(
                    l,
                    &self.graph.grads[l.index],
                    &self.graph.sums[l.index],
                );
                // A shared layer's earlier call adds what it wrote to the later calls'.
                let shared = if std::ptr::eq(l.grads, &params.grads) {
                    Vec::new()
                } else {
                    super::layers::shared_gradient_sums(l)
                };
                LayerBackward {
                    layer: layer_name(l),
                    launches: sums
                        .into_iter()
                        .chain(l.backward(fused && l.index == last))
                        .chain(shared)
                        .collect(),
                }
            })
            .collect();

        Plan {
            gather,
            forward,
            loss,
            reduce,
            backward,
        }
    }

    /// Layer `i`'s buffers for batches of `rows` rows.
    fn layer_launch<'b>(&'b self, params: &'b GpuParams, i: usize, rows: usize) -> LayerLaunch<'b> {
        let sources = super::graph::sources(&params.layers[i].spec, i);
        let inputs: Vec<&wgpu::Buffer> = sources.iter().map(|&s| &self.graph.acts[s]).collect();
        let d_inputs: Vec<Option<&wgpu::Buffer>> =
            self.graph.edges[i].iter().map(Option::as_ref).collect();
        // Of the calls of a shared layer, the last (the first the backward pass reaches)
        // writes the gradients; the others write the scratch and add it.
        let owner = params.layers[i].spec.shares.unwrap_or(i);
        let last_call = (i..params.layers.len())
            .filter(|&k| k == owner || params.layers[k].spec.shares == Some(owner))
            .max()
            .unwrap_or(i);
        let grads = match self.shared_grads {
            Some(scratch) if last_call != i => scratch,
            _ => &params.grads,
        };
        LayerLaunch {
            params,
            index: i,
            layer: &params.layers[i],
            rows,
            input: inputs[0],
            inputs,
            output: &self.graph.acts[i + 1],
            grads,
            d_output: &self.graph.grads[i],
            d_input: d_inputs[0],
            d_inputs,
            scratch: &self.scratch[i],
            unused: self.unused,
            table: self.table,
            step_values: self.step_values,
        }
    }
}

/// A layer's name in profiles: its class in lower case and its index, e.g. `conv2d0`.
fn layer_name(l: &LayerLaunch<'_>) -> String {
    format!(
        "{}{}",
        l.layer.spec.kind.class_name().to_lowercase(),
        l.index
    )
}
