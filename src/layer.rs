//! What the model is made of, as both the model description (`model/`) and the engine
//! (`engine/`) see it: the activations and one specification per layer. A new layer kind is a
//! new [`LayerKind`] and its kernels.

pub use crate::activation::Activation;
use serde::{Deserialize, Serialize};

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

/// The kinds of layers the engine runs, with their arguments (Keras 3's, `channels_last`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LayerKind {
    /// Fully connected on the last axis: `y = act(x · Wᵀ + b)`, `W` of shape `[outputs,
    /// inputs]`.
    Dense,
    /// 2-D convolution of an `[H, W, C]` input: `y = act(conv(x, K) + b)`, `K` of shape
    /// `[kh, kw, C, filters]` (Keras's layout).
    Conv2D {
        /// Output channels.
        filters: usize,
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// Border handling.
        padding: Padding,
        /// `[dh, dw]`.
        dilation: [usize; 2],
        /// Whether a bias is added.
        use_bias: bool,
    },
    /// The largest value of each window, per channel.
    MaxPooling2D {
        /// `[ph, pw]`.
        pool: [usize; 2],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// Border handling (`same` ignores the padding).
        padding: Padding,
    },
    /// The mean of each window, per channel (`same`: of the window's elements inside the
    /// input, as Keras).
    AveragePooling2D {
        /// `[ph, pw]`.
        pool: [usize; 2],
        /// `[sh, sw]`.
        strides: [usize; 2],
        /// Border handling.
        padding: Padding,
    },
    /// The mean over height and width, per channel: `[H, W, C]` to `[C]`.
    GlobalAveragePooling2D,
    /// `[H, W, C]` to `[H·W·C]`: the data does not move (rows are stored `channels_last`).
    Flatten,
    /// Any shape of as many elements: the data does not move.
    Reshape,
    /// In training, each element is kept with probability `1 - rate` and scaled by
    /// `1 / (1 - rate)`; the identity in evaluation and prediction. The mask is a function of
    /// (seed, epoch, position in the epoch's order, layer, element) (Philox4x32-10,
    /// `shaders/dropout.wgsl`), so a resumed run draws the masks an uninterrupted one draws.
    Dropout {
        /// The fraction dropped, in `[0, 1)`.
        rate: f32,
    },
    /// An element-wise activation on its own.
    Activation,
    /// Normalizes each channel (the last axis): in training by the batch's mean and
    /// (biased) variance over every other axis, updating the moving statistics
    /// (`moving = moving · momentum + batch · (1 − momentum)`); in evaluation and prediction
    /// by the moving statistics. Then `gamma ·` (with `scale`) `+ beta` (with `center`).
    BatchNormalization {
        /// Weight of the old moving statistics (Keras: 0.99).
        momentum: f32,
        /// Added to the variance (Keras: 0.001).
        epsilon: f32,
        /// Whether `beta` is added.
        center: bool,
        /// Whether `gamma` multiplies.
        scale: bool,
    },
    /// Normalizes each sample at each position over the last axis, by its own mean and
    /// (biased) variance, in training and evaluation alike; then `gamma ·` (with `scale`)
    /// `+ beta` (with `center`), per channel.
    LayerNormalization {
        /// Added to the variance (Keras: 0.001).
        epsilon: f32,
        /// Whether `beta` is added.
        center: bool,
        /// Whether `gamma` multiplies.
        scale: bool,
    },
    /// The element-wise sum of its inputs, all of one shape (a residual connection).
    Add,
    /// Keras's `Softmax()` layer: a softmax over the last axis (anywhere in a model; a
    /// classifier's last softmax is the loss's).
    Softmax,
    /// keras_hub's `PositionEmbedding(sequence_length)`: a learned `[sequence_length, C]`
    /// table whose first `T` rows are the output for an input of `[T, C]`, whatever the
    /// input's values (so no gradient flows to the input); added to the token embeddings by
    /// an [`LayerKind::Add`].
    PositionEmbedding {
        /// Rows of the table: the longest sequence.
        sequence_length: usize,
    },
    /// Self-attention on `[T, C]` as Keras's `MultiHeadAttention(num_heads, key_dim,
    /// value_dim)` called on `(x, x)`: query, key and value projections, scaled dot-product
    /// attention per head (softmax over the key positions, only those up to the query's with
    /// the causal mask), and the output projection back to `C`.
    MultiHeadAttention {
        /// Heads.
        num_heads: usize,
        /// Width of each head's queries and keys.
        key_dim: usize,
        /// Width of each head's values.
        value_dim: usize,
        /// Whether the projections add biases.
        use_bias: bool,
        /// Whether each position attends only to itself and earlier ones (Keras's call
        /// argument `use_causal_mask`).
        use_causal_mask: bool,
    },
    /// Integer ids in `[0, input_dim)` (stored as exact floats) to rows of a learned table:
    /// `[T]` to `[T, output_dim]`. Its gradient is a sum per table row over the batch's
    /// positions in order, so it is deterministic.
    Embedding {
        /// Size of the vocabulary.
        input_dim: usize,
        /// Width of each row.
        output_dim: usize,
    },
}

impl LayerKind {
    /// Keras's class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            LayerKind::Dense => "Dense",
            LayerKind::Conv2D { .. } => "Conv2D",
            LayerKind::MaxPooling2D { .. } => "MaxPooling2D",
            LayerKind::AveragePooling2D { .. } => "AveragePooling2D",
            LayerKind::GlobalAveragePooling2D => "GlobalAveragePooling2D",
            LayerKind::Flatten => "Flatten",
            LayerKind::Reshape => "Reshape",
            LayerKind::Dropout { .. } => "Dropout",
            LayerKind::Activation => "Activation",
            LayerKind::BatchNormalization { .. } => "BatchNormalization",
            LayerKind::LayerNormalization { .. } => "LayerNormalization",
            LayerKind::Add => "Add",
            LayerKind::Softmax => "Softmax",
            LayerKind::MultiHeadAttention { .. } => "MultiHeadAttention",
            LayerKind::PositionEmbedding { .. } => "PositionEmbedding",
            LayerKind::Embedding { .. } => "Embedding",
        }
    }

    /// Whether the layer takes several inputs.
    pub fn takes_several_inputs(&self) -> bool {
        matches!(self, LayerKind::Add)
    }

    /// Whether the layer's input must be integer ids (so no gradient flows to it).
    pub fn takes_ids(&self) -> bool {
        matches!(self, LayerKind::Embedding { .. })
    }

    /// Whether no gradient flows to the layer's input: it takes ids, or only its shape.
    pub fn stops_gradient(&self) -> bool {
        self.takes_ids() || matches!(self, LayerKind::PositionEmbedding { .. })
    }

    /// Whether the layer's output is its input's memory unchanged (no launch at all).
    pub(crate) fn moves_nothing(&self) -> bool {
        matches!(self, LayerKind::Flatten | LayerKind::Reshape)
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

/// The output shape of `kind` on `in_shape` (`units`: Dense's width, or Reshape's element
/// count check), or why the input does not fit.
fn out_shape(
    kind: &LayerKind,
    in_shape: &[usize],
    units: usize,
) -> std::result::Result<Vec<usize>, String> {
    let image = |what: &str| match in_shape {
        &[h, w, c] if h > 0 && w > 0 && c > 0 => Ok((h, w, c)),
        _ => Err(format!(
            "{what} takes an [height, width, channels] input, not {in_shape:?}"
        )),
    };
    let window = |size: usize, k: usize, d: usize, s: usize, p: Padding, axis: &str| {
        if k == 0 || s == 0 || d == 0 {
            return Err(format!("a {axis} window, stride or dilation of 0"));
        }
        p.output(size, (k - 1) * d + 1, s)
            .map(|(o, _)| o)
            .ok_or_else(|| {
                format!(
                    "its {axis} window of {} does not fit the input's {size} with padding valid",
                    (k - 1) * d + 1
                )
            })
    };
    match kind {
        LayerKind::Dense => match in_shape.split_last() {
            Some((_, lead)) if units > 0 => Ok(lead.iter().copied().chain([units]).collect()),
            _ => Err("a Dense layer needs an input and at least one unit".into()),
        },
        LayerKind::Conv2D {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            ..
        } => {
            let (h, w, _) = image("Conv2D")?;
            if *filters == 0 {
                return Err("Conv2D has 0 filters".into());
            }
            Ok(vec![
                window(h, kernel[0], dilation[0], strides[0], *padding, "height")?,
                window(w, kernel[1], dilation[1], strides[1], *padding, "width")?,
                *filters,
            ])
        }
        LayerKind::MaxPooling2D {
            pool,
            strides,
            padding,
        }
        | LayerKind::AveragePooling2D {
            pool,
            strides,
            padding,
        } => {
            let (h, w, c) = image(kind.class_name())?;
            Ok(vec![
                window(h, pool[0], 1, strides[0], *padding, "height")?,
                window(w, pool[1], 1, strides[1], *padding, "width")?,
                c,
            ])
        }
        LayerKind::GlobalAveragePooling2D => {
            image("GlobalAveragePooling2D").map(|(_, _, c)| vec![c])
        }
        LayerKind::Flatten => Ok(vec![in_shape.iter().product()]),
        LayerKind::Reshape => Err("Reshape needs its target shape (LayerSpec::reshape)".into()),
        LayerKind::Dropout { rate } => {
            if !(0.0..1.0).contains(rate) {
                return Err(format!("a Dropout rate of {rate}; it must be in [0, 1)"));
            }
            Ok(in_shape.to_vec())
        }
        LayerKind::Activation | LayerKind::Add | LayerKind::Softmax => Ok(in_shape.to_vec()),
        LayerKind::Embedding {
            input_dim,
            output_dim,
        } => {
            if *input_dim == 0 || *output_dim == 0 {
                return Err(format!(
                    "input_dim {input_dim} and output_dim {output_dim} must be positive"
                ));
            }
            match in_shape {
                [t] if *t > 0 => Ok(vec![*t, *output_dim]),
                _ => Err(format!(
                    "Embedding takes a [sequence length] input of ids, not {in_shape:?}"
                )),
            }
        }
        LayerKind::PositionEmbedding { sequence_length } => match in_shape {
            [t, c] if *t > 0 && *c > 0 && t <= sequence_length => Ok(in_shape.to_vec()),
            _ => Err(format!(
                "PositionEmbedding of sequence_length {sequence_length} takes a [T, features] \
                 input with T at most {sequence_length}, not {in_shape:?}"
            )),
        },
        LayerKind::MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim,
            ..
        } => {
            if *num_heads == 0 || *key_dim == 0 || *value_dim == 0 {
                return Err(format!(
                    "num_heads {num_heads}, key_dim {key_dim} and value_dim {value_dim} must \
                     be positive"
                ));
            }
            match in_shape {
                [t, c] if *t > 0 && *c > 0 => Ok(in_shape.to_vec()),
                _ => Err(format!(
                    "MultiHeadAttention takes a [sequence length, features] input, not \
                     {in_shape:?}"
                )),
            }
        }
        LayerKind::BatchNormalization {
            momentum, epsilon, ..
        } => {
            if !((0.0..=1.0).contains(momentum) && epsilon.is_finite() && *epsilon > 0.0) {
                return Err(format!(
                    "momentum {momentum} (in [0, 1]) or epsilon {epsilon} (positive) out of range"
                ));
            }
            match in_shape.last() {
                Some(&c) if c > 0 => Ok(in_shape.to_vec()),
                _ => Err("BatchNormalization needs an input with channels".into()),
            }
        }
        LayerKind::LayerNormalization { epsilon, .. } => {
            if !(epsilon.is_finite() && *epsilon > 0.0) {
                return Err(format!("epsilon {epsilon} out of range (positive)"));
            }
            match in_shape.last() {
                Some(&c) if c > 0 => Ok(in_shape.to_vec()),
                _ => Err("LayerNormalization needs an input with a last axis".into()),
            }
        }
    }
}

impl LayerSpec {
    /// A Reshape of `in_shape` to `target`, which must hold as many elements.
    pub fn reshape(in_shape: &[usize], target: &[usize]) -> std::result::Result<Self, String> {
        let (n, m) = (
            in_shape.iter().product::<usize>(),
            target.iter().product::<usize>(),
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
