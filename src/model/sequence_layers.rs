//! The layers of sequence models, as builders with Keras 3's names and defaults:
//! [`Embedding`], [`PositionEmbedding`], [`MultiHeadAttention`] and [`Add`] (residual connections, in a
//! [`crate::Model`] graph).

use super::Layer;
use crate::layer::LayerKind;

/// Keras's `Embedding(input_dim, output_dim)`: ids in `[0, input_dim)` to learned rows of
/// `output_dim` values, initialized uniform in ±0.05. It must be the model's first layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Embedding {
    input_dim: usize,
    output_dim: usize,
}

impl Embedding {
    /// A table of `input_dim` rows of `output_dim` values.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            input_dim,
            output_dim,
        }
    }
}

impl From<Embedding> for Layer {
    fn from(e: Embedding) -> Self {
        Layer::of(LayerKind::Embedding {
            input_dim: e.input_dim,
            output_dim: e.output_dim,
        })
    }
}

/// Keras's `Add()`: the element-wise sum of two or more tensors of one shape, called on them
/// in a [`crate::Model`] graph with [`crate::SymbolicTensor::add`] or `Add.call_on(&[..])`
/// ([`crate::Call::call_on`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Add;

impl From<Add> for Layer {
    fn from(_: Add) -> Self {
        Layer::of(LayerKind::Add)
    }
}

/// Keras's `MultiHeadAttention(num_heads, key_dim)` called as self-attention (`mha(x, x)`),
/// on `[T, C]` inputs: `value_dim` = `key_dim`, biases, no dropout, and the call argument
/// `use_causal_mask` (false unless set). Kernels Glorot-uniform with Keras's fans, biases
/// zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MultiHeadAttention {
    num_heads: usize,
    key_dim: usize,
    value_dim: Option<usize>,
    use_bias: bool,
    use_causal_mask: bool,
}

impl MultiHeadAttention {
    /// `num_heads` heads of queries and keys `key_dim` wide.
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim: None,
            use_bias: true,
            use_causal_mask: false,
        }
    }

    /// Width of each head's values (default `key_dim`).
    pub fn value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = Some(value_dim);
        self
    }

    /// Whether the projections add biases.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Whether each position attends only to itself and earlier ones.
    pub fn use_causal_mask(mut self, use_causal_mask: bool) -> Self {
        self.use_causal_mask = use_causal_mask;
        self
    }
}

impl From<MultiHeadAttention> for Layer {
    fn from(m: MultiHeadAttention) -> Self {
        Layer::of(LayerKind::MultiHeadAttention {
            num_heads: m.num_heads,
            key_dim: m.key_dim,
            value_dim: m.value_dim.unwrap_or(m.key_dim),
            use_bias: m.use_bias,
            use_causal_mask: m.use_causal_mask,
        })
    }
}

/// keras_hub's `PositionEmbedding(sequence_length)`: a learned row per position (Glorot
/// uniform), output in the shape of its `[T, C]` input (`T ≤ sequence_length`), whose
/// values it ignores; add it to the token embeddings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionEmbedding {
    sequence_length: usize,
}

impl PositionEmbedding {
    /// A table for sequences of up to `sequence_length` positions.
    pub fn new(sequence_length: usize) -> Self {
        PositionEmbedding { sequence_length }
    }
}

impl From<PositionEmbedding> for Layer {
    fn from(p: PositionEmbedding) -> Self {
        Layer::of(LayerKind::PositionEmbedding {
            sequence_length: p.sequence_length,
        })
    }
}

/// Keras's `Softmax()` layer (axis −1): a softmax over the last axis, as attention weights or
/// a mixture anywhere in a model. (A classifier's output stays logits: cross-entropy applies
/// its softmax.)
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Softmax;

impl From<Softmax> for Layer {
    fn from(_: Softmax) -> Self {
        Layer::of(LayerKind::Softmax)
    }
}
