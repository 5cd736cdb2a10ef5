//! The record of a model's architecture that a weights file and a backup's fingerprint carry
//! when the model is more than a stack of Dense layers on flat inputs (whose tensor shapes and
//! activations say everything): its input shape and every layer with its arguments, so that
//! `wgfit evaluate` and `predict` rebuild exactly the model that was trained.

use super::{Layer, Sequential};
use serde::{Deserialize, Serialize};

/// A model's input shape and layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The shape of one sample.
    pub input_shape: Vec<usize>,
    /// The layers, first first.
    pub layers: Vec<Layer>,
}

impl ModelRecord {
    /// The model (not compiled).
    pub fn model(&self) -> Sequential {
        self.layers
            .iter()
            .fold(Sequential::with_input_shape(&self.input_shape), |m, l| {
                m.add(l.clone())
            })
    }
}
