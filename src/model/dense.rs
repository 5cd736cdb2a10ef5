//! The `Dense` layer: `y = act(x · Wᵀ + b)` with `W` of shape `[out, in]` (PyTorch's layout).

use crate::layer::{Activation, LayerKind, LayerSpec};

/// A fully connected layer with `units` outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    /// Number of outputs.
    pub units: usize,
    /// Activation after the bias.
    pub activation: Activation,
}

impl Dense {
    /// A linear layer with `units` outputs; add an activation with [`Dense::activation`].
    pub fn new(units: usize) -> Self {
        Dense {
            units,
            activation: Activation::Linear,
        }
    }

    /// Sets the activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// The layer with `inputs` input features, as the engine runs it.
    pub fn spec(&self, inputs: usize) -> LayerSpec {
        LayerSpec {
            kind: LayerKind::Dense,
            inputs,
            outputs: self.units,
            activation: self.activation,
        }
    }
}
