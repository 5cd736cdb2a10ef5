//! Building a [`Plan`]: every launch of a training step with its buffers bound, and the
//! kernel each launch runs on (small batches fold the loss, its reduction and the last
//! layer's activation backward into one launch).

use super::params::LayerLayout;
use super::step::{LayerBackward, Plan};
use crate::engine::GpuParams;
use crate::gpu::bindings::{
    ActBackwardBindings, GatherBindings, LossFusedBindings, LossGradBindings, LossReduceBindings,
};
use crate::gpu::{
    ActDims, Batch, FUSED_LOSS_ROWS, GatherDims, LossDims, MatmulDims, Slice, WIDE_LOSS_COLS,
};
use crate::loss::Loss;

/// The buffers a plan binds.
pub(super) struct PlanBuffers<'a> {
    pub x: &'a wgpu::Buffer,
    pub t: &'a wgpu::Buffer,
    pub perm: &'a wgpu::Buffer,
    pub table: &'a wgpu::Buffer,
    pub stats: &'a wgpu::Buffer,
    pub acts: &'a [wgpu::Buffer],
    pub grads: &'a [wgpu::Buffer],
    pub tb: &'a wgpu::Buffer,
    pub row_stats: &'a wgpu::Buffer,
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
                xb: Slice::all(&self.acts[0]),
                tb: Slice::all(self.tb),
            },
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
                params.gpu.matmul(
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
                act: params.layers[last].activation.code(),
                _pad: [0; 2],
            },
        );
        // Not on a CPU adapter: llvmpipe ran the fused kernel up to 30 times slower than the
        // three launches for some batches (12 ms against 0.4 ms a step at 24 rows; figures:
        // bench/NOTES.md "The fused loss kernel on lavapipe"). The results are the same bits.
        // Nor for wide rows: they take `loss_grad_wide`, whose sums the fused kernel does not
        // repeat.
        let fused = rows <= FUSED_LOSS_ROWS && outputs <= WIDE_LOSS_COLS && !params.gpu.is_cpu();
        let y = Slice::all(&self.acts[last + 1]);
        let dy = Slice::all(&self.grads[last]);
        let (loss, reduce) = if fused {
            let bindings = LossFusedBindings {
                dims: Slice::all(&loss_dims),
                y,
                t: Slice::all(self.tb),
                dy,
                batch: table,
                stats: Slice::all(self.stats),
                db: Slice::f32s(&params.grads, params.layers[last].bias, outputs),
            };
            let launch = k
                .loss_fused
                .dispatch_per_batch(dev, &bindings.slices(), (1, 1));
            (launch, None)
        } else {
            let bindings = LossGradBindings {
                dims: Slice::all(&loss_dims),
                y,
                t: Slice::all(self.tb),
                dy,
                row_stats: Slice::all(self.row_stats),
            };
            let loss = k.loss_grad_dispatch(dev, rows, outputs, &bindings);
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

        let backward = params
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| self.layer_backward(params, i, l, rows, fused && i == last))
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
        activation_in_loss: bool,
    ) -> LayerBackward {
        let gpu = &params.gpu;
        let act_dims = ActDims {
            rows: rows as u32,
            cols: l.outputs as u32,
            act: l.activation.code(),
            _pad: 0,
        };
        let act_uniform = gpu.uniform("activation backward", &act_dims);
        let activation = (!activation_in_loss).then(|| {
            gpu.kernels.act_backward_dispatch(
                &gpu.device,
                gpu.is_cpu(),
                &act_dims,
                &ActBackwardBindings {
                    dims: Slice::all(&act_uniform),
                    a: Slice::all(&self.acts[i + 1]),
                    d: Slice::all(&self.grads[i]),
                    db: Slice::f32s(&params.grads, l.bias, l.outputs),
                },
            )
        });
        // grad W [out, in] = dZᵀ [out, rows] · A_prev [rows, in]
        let weight_grad = params.gpu.matmul(
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
            params.gpu.matmul(
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
