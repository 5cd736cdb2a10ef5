//! The `Dense` layer: `y = act(x · Wᵀ + b)` on the last axis, `W` of shape `[out, in]`
//! (PyTorch's layout).

use crate::layer::Activation;

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
}
