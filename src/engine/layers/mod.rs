//! Each layer kind's launches: what its forward pass and its backward pass record, one file
//! per kind (`dense.rs`, `conv2d.rs`, `pool2d.rs`, `dropout.rs`, `activation.rs`,
//! `batchnorm.rs`, `layernorm.rs`; Flatten
//! and Reshape move no data and record nothing). The plan (`plan.rs`) strings them together.

mod activation;
mod add;
mod attention;
mod batchnorm;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod layernorm;
mod pool2d;
mod softmax;

use super::GpuParams;
use super::params::LayerLayout;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch, Gpu, Slice};
use crate::layer::{LayerKind, LayerSpec};

/// When a forward launch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// In training and in evaluation.
    Always,
    /// Only in training steps (dropout's masks).
    Training,
    /// Only in evaluation and prediction.
    Evaluation,
}

/// One layer's buffers in a plan for batches of `rows` rows.
pub(super) struct LayerLaunch<'a> {
    pub params: &'a GpuParams,
    /// The layer's index in the model (dropout's mask coordinate).
    pub index: usize,
    pub layer: &'a LayerLayout,
    pub rows: usize,
    pub input: &'a wgpu::Buffer,
    /// Every input, `input` first (several for Add).
    pub inputs: Vec<&'a wgpu::Buffer>,
    pub output: &'a wgpu::Buffer,
    /// Where the layer writes its parameters' gradients, laid out as the parameters: the
    /// model's gradients, or for a shared layer's earlier calls a scratch that is then added
    /// to them (`plan.rs`).
    pub grads: &'a wgpu::Buffer,
    /// The gradient of the loss by the output (on entry to the backward pass).
    pub d_output: &'a wgpu::Buffer,
    /// Where the gradient by the input goes, if an earlier layer needs it.
    pub d_input: Option<&'a wgpu::Buffer>,
    /// The same for every input, `d_input` first (several for Add).
    pub d_inputs: Vec<Option<&'a wgpu::Buffer>>,
    /// The layer's own scratch buffers (see [`scratch_floats`]).
    pub scratch: &'a [wgpu::Buffer],
    /// A small buffer bound where a kernel wants a binding the layer does not have.
    pub unused: &'a wgpu::Buffer,
    pub table: &'a wgpu::Buffer,
    pub step_values: &'a wgpu::Buffer,
}

impl LayerLaunch<'_> {
    /// The forward launches, each with a name for profiles (`forward` where there is one).
    pub fn forward(&self) -> Vec<(&'static str, Phase, Dispatch)> {
        let one = |phase, launch| vec![("forward", phase, launch)];
        let always = |launches: Vec<Dispatch>| {
            launches
                .into_iter()
                .map(|launch| ("forward", Phase::Always, launch))
                .collect()
        };
        let named = |launches: Vec<(Phase, Dispatch)>| {
            launches
                .into_iter()
                .map(|(phase, launch)| ("forward", phase, launch))
                .collect()
        };
        match &self.layer.spec.kind {
            LayerKind::Dense => always(dense::forward(self)),
            LayerKind::Conv2D { .. } => conv2d::forward(self),
            LayerKind::MaxPooling2D { .. }
            | LayerKind::AveragePooling2D { .. }
            | LayerKind::GlobalAveragePooling2D => one(Phase::Always, pool2d::forward(self)),
            LayerKind::Dropout { .. } => named(dropout::forward(self)),
            LayerKind::Activation => one(Phase::Always, activation::forward(self)),
            LayerKind::BatchNormalization { .. } => named(batchnorm::forward(self)),
            LayerKind::LayerNormalization { .. } => named(layernorm::forward(self)),
            LayerKind::Add => always(add::forward(self)),
            LayerKind::Softmax => one(Phase::Always, softmax::forward(self)),
            LayerKind::MultiHeadAttention { .. } => always(attention::forward(self)),
            LayerKind::Embedding { .. } | LayerKind::PositionEmbedding { .. } => {
                one(Phase::Always, embedding::forward(self))
            }
            LayerKind::Flatten | LayerKind::Reshape => Vec::new(),
        }
    }

    /// The backward launches, named, in order. `activation_in_loss`: the loss launch already
    /// took the activation's derivative and the bias gradient (Dense last layers of small
    /// batches).
    pub fn backward(&self, activation_in_loss: bool) -> Vec<(&'static str, Dispatch)> {
        match &self.layer.spec.kind {
            LayerKind::Dense => dense::backward(self, activation_in_loss),
            LayerKind::Conv2D { .. } => conv2d::backward(self),
            LayerKind::MaxPooling2D { .. }
            | LayerKind::AveragePooling2D { .. }
            | LayerKind::GlobalAveragePooling2D => pool2d::backward(self),
            LayerKind::Dropout { .. } => dropout::backward(self),
            LayerKind::Activation => activation::backward(self),
            LayerKind::BatchNormalization { .. } => batchnorm::backward(self),
            LayerKind::LayerNormalization { .. } => layernorm::backward(self),
            LayerKind::Embedding { .. } | LayerKind::PositionEmbedding { .. } => {
                embedding::backward(self)
            }
            LayerKind::MultiHeadAttention { .. } => attention::backward(self),
            LayerKind::Add => add::backward(self),
            LayerKind::Softmax => softmax::backward(self),
            LayerKind::Flatten | LayerKind::Reshape => Vec::new(),
        }
    }

    fn gpu(&self) -> &Gpu {
        &self.params.gpu
    }

    /// The parameter tensor `suffix` of this layer in `buffer` (parameters or gradients).
    fn tensor<'b>(&self, buffer: &'b wgpu::Buffer, suffix: &str) -> Option<Slice<'b>> {
        self.layer
            .tensor(suffix)
            .map(|(first, len)| Slice::f32s(buffer, first, len))
    }
}

/// The launches that sum the gradient edges of a tensor read by several layers into `dst`
/// (the gradient by `l`'s output), in order: see `graph.rs`.
pub(super) fn gradient_sums(
    l: &LayerLaunch<'_>,
    dst: &wgpu::Buffer,
    edges: &[wgpu::Buffer],
) -> Vec<(&'static str, Dispatch)> {
    add::sum_into(
        l,
        dst,
        &edges.iter().collect::<Vec<_>>(),
        l.rows * l.layer.outputs,
    )
    .into_iter()
    .map(|launch| ("gradient sum", launch))
    .collect()
}

/// For a shared layer's call that wrote its gradients to a scratch (`l.grads`), the launches
/// that add them to the model's gradients, tensor by tensor.
pub(super) fn shared_gradient_sums(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    l.layer
        .tensors
        .iter()
        .map(|(_, shape, first)| {
            let n = shape.iter().product::<usize>();
            let dst = Slice::f32s(&l.params.grads, *first, n);
            let src = Slice::f32s(l.grads, *first, n);
            (
                "shared gradient sum",
                add::accumulate_ranges(l, dst, src, n),
            )
        })
        .collect()
}

/// Floats of each scratch buffer a layer's launches need for batches of `rows` rows.
pub(super) fn scratch_floats(gpu: &Gpu, spec: &LayerSpec, rows: usize) -> Vec<usize> {
    match spec.kind {
        LayerKind::Conv2D { .. } => conv2d::scratch_floats(gpu, spec, rows),
        LayerKind::BatchNormalization { .. } => batchnorm::scratch_floats(spec, rows),
        LayerKind::LayerNormalization { .. } => layernorm::scratch_floats(spec, rows),
        LayerKind::Dense => dense::scratch_floats(spec, rows),
        LayerKind::MultiHeadAttention { .. } => attention::scratch_floats(spec, rows),
        // Each window's argmax (u32s).
        LayerKind::MaxPooling2D { .. } => vec![rows * spec.outputs],
        _ => Vec::new(),
    }
}

/// Refuses a layer whose launches for batches of `rows` rows would exceed what one launch
/// grid or one invocation's loops may do, naming the layer and the size.
pub(super) fn check(gpu: &Gpu, index: usize, spec: &LayerSpec, rows: usize) -> Result<()> {
    let too_big = |what: String| {
        Err(Error::config(
            "model",
            format!(
                "layer {index} ({}): {what} on {}; use smaller batches",
                spec.kind.class_name(),
                gpu.adapter()
            ),
        ))
    };
    let positions = rows * spec.inputs / spec.in_shape.last().copied().unwrap_or(1).max(1);
    let loops = |what: String, size: usize| {
        super::loop_limit::check(
            gpu,
            || format!("layer {index} ({}): {what}", spec.kind.class_name()),
            size,
        )
    };
    match spec.kind {
        LayerKind::MultiHeadAttention { .. } => {
            loops("its rows (batch × positions)".into(), positions)?;
            loops(
                "one attention invocation's loops (T · (key_dim + value_dim + 3))".into(),
                attention::invocation_loops(spec),
            )?;
        }
        LayerKind::Embedding { .. } => loops("its ids per batch".into(), rows * spec.inputs)?,
        LayerKind::Softmax => loops(
            "one invocation's loops over a row (3 × its width)".into(),
            softmax::invocation_loops(*spec.in_shape.last().unwrap_or(&1)),
        )?,
        _ => {}
    }
    if let LayerKind::Conv2D { .. } = spec.kind {
        let bytes = conv2d::largest_scratch_bytes(gpu, spec, rows);
        let most = gpu.parameter_piece_limit();
        if bytes > most {
            return too_big(format!(
                "its scratch (im2col matrix or kernel-gradient partial sums) of {bytes} bytes \
                 exceeds one binding ({most} bytes)"
            ));
        }
        if let Some(what) = conv2d::check_grid(gpu, spec, rows) {
            return too_big(what);
        }
    }
    Ok(())
}
