//! What the model is made of, as both the model description (`model/`) and the engine
//! (`engine/`) see it: the activations and one specification per layer. A new layer kind is a
//! new [`LayerKind`] and its kernels.

mod kind;
mod shape;

pub use crate::activation::Activation;
pub use kind::LayerKind;
use serde::{Deserialize, Serialize};
use shape::out_shape;

/// How a convolution or pooling window treats the border (Keras's `padding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Padding {
    /// Only windows that lie wholly inside the input.
    Valid,
    /// `ceil(size / stride)` outputs; the input is padded with zeros (convolution) or the
    /// padding ignored (pooling), the odd pad at the bottom/right as TensorFlow does.
    Same,
}

impl Padding {
    /// Keras's name.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }

    /// Output size and leading pad of a window of `window` (dilated) elements moved by
    /// `stride` over `size` elements; `None` if no window fits.
    pub fn output(self, size: usize, window: usize, stride: usize) -> Option<(usize, usize)> {
        match self {
            Padding::Valid => (size >= window).then(|| ((size - window) / stride + 1, 0)),
            Padding::Same => {
                let out = size.div_ceil(stride);
                let total = ((out - 1) * stride + window).saturating_sub(size);
                (out > 0).then_some((out, total / 2))
            }
        }
    }
}

/// One layer of a model with its input and output shapes (per sample, without the batch
/// axis): what the engine lays out and records.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// What the layer computes.
    pub kind: LayerKind,
    /// Input shape, e.g. `[28, 28, 1]` or `[64]`.
    pub in_shape: Vec<usize>,
    /// Output shape.
    pub out_shape: Vec<usize>,
    /// Input elements per sample (the product of `in_shape`).
    pub inputs: usize,
    /// Output elements per sample.
    pub outputs: usize,
    /// Activation after the bias (Dense, Conv2D, Activation; linear elsewhere).
    pub activation: Activation,
    /// The tensors the layer reads: 0 is the model's input, `i + 1` the output of layer `i`.
    /// A stack reads the previous layer's output; a graph (the Functional API) any earlier
    /// tensors, and [`LayerKind::Add`] several. Set by the model ([`LayerSpec::new`] leaves
    /// it empty, which the model resolves to the previous layer).
    pub sources: Vec<usize>,
    /// The earlier layer whose parameters this one uses (a layer called twice in a graph,
    /// Keras's shared layer): it has none of its own, and its gradients add to that layer's.
    pub shares: Option<usize>,
}

impl LayerSpec {
    /// A layer of `kind` on inputs of `in_shape`, or why it cannot take them.
    pub fn new(
        kind: LayerKind,
        in_shape: &[usize],
        activation: Activation,
        units: usize,
    ) -> std::result::Result<Self, String> {
        if matches!(kind, LayerKind::Conv2D { .. }) && activation.differentiates_input() {
            return Err(format!(
                "a Conv2D activation of {} is not supported; use a linear Conv2D and an \
                 Activation layer after it",
                activation.name()
            ));
        }
        let out_shape = out_shape(&kind, in_shape, units)?;
        Ok(LayerSpec {
            inputs: in_shape.iter().product(),
            outputs: out_shape.iter().product(),
            kind,
            in_shape: in_shape.to_vec(),
            out_shape,
            activation,
            sources: Vec::new(),
            shares: None,
        })
    }

    /// The parameter tensors' name suffixes and shapes: Dense `weight [out, in]`, `bias
    /// [out]`; Conv2D `weight [kh, kw, C, filters]` and `bias [filters]` (with `use_bias`);
    /// none for the other kinds.
    pub fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        match &self.kind {
            LayerKind::Dense => {
                let last = *self.in_shape.last().unwrap_or(&0);
                let units = *self.out_shape.last().unwrap_or(&0);
                vec![("weight", vec![units, last]), ("bias", vec![units])]
            }
            LayerKind::Conv2D {
                filters,
                kernel,
                use_bias,
                ..
            } => {
                let c = self.in_shape[2];
                let mut t = vec![("weight", vec![kernel[0], kernel[1], c, *filters])];
                if *use_bias {
                    t.push(("bias", vec![*filters]));
                }
                t
            }
            LayerKind::BatchNormalization { center, scale, .. }
            | LayerKind::LayerNormalization { center, scale, .. } => {
                let c = *self.in_shape.last().unwrap_or(&0);
                let mut t = Vec::new();
                if *scale {
                    t.push(("gamma", vec![c]));
                }
                if *center {
                    t.push(("beta", vec![c]));
                }
                t
            }
            LayerKind::Embedding {
                input_dim,
                output_dim,
            } => vec![("embeddings", vec![*input_dim, *output_dim])],
            LayerKind::PositionEmbedding { sequence_length } => {
                let c = *self.in_shape.last().unwrap_or(&0);
                vec![("position_embeddings", vec![*sequence_length, c])]
            }
            LayerKind::MultiHeadAttention {
                num_heads,
                key_dim,
                value_dim,
                use_bias,
                ..
            } => {
                let c = *self.in_shape.last().unwrap_or(&0);
                let (h, k, v) = (*num_heads, *key_dim, *value_dim);
                let all = [
                    ("query_kernel", vec![c, h, k]),
                    ("query_bias", vec![h, k]),
                    ("key_kernel", vec![c, h, k]),
                    ("key_bias", vec![h, k]),
                    ("value_kernel", vec![c, h, v]),
                    ("value_bias", vec![h, v]),
                    ("output_kernel", vec![h, v, c]),
                    ("output_bias", vec![c]),
                ];
                all.into_iter()
                    .filter(|(name, _)| *use_bias || !name.ends_with("_bias"))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// The non-trainable state tensors (name suffix, shape), which the layer updates itself
    /// and the optimizer never touches: BatchNormalization's `moving_mean` and
    /// `moving_variance` `[channels]`; none for the other kinds.
    pub fn state_tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        match self.kind {
            LayerKind::BatchNormalization { .. } => {
                let c = *self.in_shape.last().unwrap_or(&0);
                vec![("moving_mean", vec![c]), ("moving_variance", vec![c])]
            }
            _ => Vec::new(),
        }
    }

    /// The layer as the fingerprint records it: `(inputs, outputs, description)`. A Dense
    /// layer on a flat input is described by its activation alone (as before other kinds
    /// existed); any other layer by its class, arguments and shapes, so that a backup of
    /// another model is named by the layer that differs.
    pub fn fingerprint(&self) -> (usize, usize, String) {
        let plain = self.kind == LayerKind::Dense && self.in_shape.len() == 1;
        let description = if plain && self.sources.is_empty() && self.shares.is_none() {
            self.activation.name().to_string()
        } else {
            self.describe()
        };
        (self.inputs, self.outputs, description)
    }

    /// One line: the class, its arguments and the shapes, e.g. `Conv2D(filters=32,
    /// kernel_size=3x3, strides=1x1, padding=valid, dilation_rate=1x1, use_bias=true,
    /// activation=relu) 28x28x1 -> 26x26x32`.
    pub fn describe(&self) -> String {
        let xy = |v: &[usize; 2]| format!("{}x{}", v[0], v[1]);
        let args = match &self.kind {
            LayerKind::Dense => format!(
                "units={}, activation={}",
                self.out_shape.last().unwrap_or(&0),
                self.activation.name()
            ),
            LayerKind::Conv2D {
                filters,
                kernel,
                strides,
                padding,
                dilation,
                use_bias,
            } => format!(
                "filters={filters}, kernel_size={}, strides={}, padding={}, dilation_rate={}, use_bias={use_bias}, activation={}",
                xy(kernel),
                xy(strides),
                padding.name(),
                xy(dilation),
                self.activation.name()
            ),
            LayerKind::MaxPooling2D {
                pool,
                strides,
                padding,
            }
            | LayerKind::AveragePooling2D {
                pool,
                strides,
                padding,
            } => format!(
                "pool_size={}, strides={}, padding={}",
                xy(pool),
                xy(strides),
                padding.name()
            ),
            LayerKind::Dropout { rate } => format!("rate={rate}"),
            LayerKind::BatchNormalization {
                momentum,
                epsilon,
                center,
                scale,
            } => format!("momentum={momentum}, epsilon={epsilon}, center={center}, scale={scale}"),
            LayerKind::LayerNormalization {
                epsilon,
                center,
                scale,
            } => format!("epsilon={epsilon}, center={center}, scale={scale}"),
            LayerKind::Activation => format!("activation={}", self.activation.name()),
            LayerKind::Embedding {
                input_dim,
                output_dim,
            } => format!("input_dim={input_dim}, output_dim={output_dim}"),
            LayerKind::PositionEmbedding { sequence_length } => {
                format!("sequence_length={sequence_length}")
            }
            LayerKind::MultiHeadAttention {
                num_heads,
                key_dim,
                value_dim,
                use_bias,
                use_causal_mask,
            } => format!(
                "num_heads={num_heads}, key_dim={key_dim}, value_dim={value_dim}, \
                 use_bias={use_bias}, use_causal_mask={use_causal_mask}"
            ),
            LayerKind::GlobalAveragePooling2D
            | LayerKind::Flatten
            | LayerKind::Reshape
            | LayerKind::Add
            | LayerKind::Softmax => String::new(),
        };
        let shape = |s: &[usize]| {
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        };
        let mut sources = if !self.sources.is_empty() {
            let list: Vec<String> = self.sources.iter().map(|s| s.to_string()).collect();
            format!(" from tensors {}", list.join("+"))
        } else {
            String::new()
        };
        if let Some(owner) = self.shares {
            sources.push_str(&format!(", the weights of layer {owner}"));
        }
        format!(
            "{}({args}) {} -> {}{sources}",
            self.kind.class_name(),
            shape(&self.in_shape),
            shape(&self.out_shape)
        )
    }
}

impl LayerSpec {
    /// A Reshape of `in_shape` to `target`, which must hold as many elements.
    pub fn reshape(in_shape: &[usize], target: &[usize]) -> std::result::Result<Self, String> {
        let (n, m) = (
            shape::extent(in_shape, "an input of")?,
            shape::extent(target, "a target shape of")?,
        );
        if n != m || target.is_empty() {
            return Err(format!(
                "Reshape to {target:?} ({m} elements) of an input {in_shape:?} ({n} elements)"
            ));
        }
        Ok(LayerSpec {
            kind: LayerKind::Reshape,
            in_shape: in_shape.to_vec(),
            out_shape: target.to_vec(),
            inputs: n,
            outputs: m,
            activation: Activation::Linear,
            sources: Vec::new(),
            shares: None,
        })
    }
}
