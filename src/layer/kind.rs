//! The kinds of layers the engine runs, with Keras's arguments.

use super::Padding;
use serde::{Deserialize, Serialize};

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
