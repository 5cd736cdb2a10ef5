//! The `Dense` layer: `y = act(x · Wᵀ + b)` with `W` of shape `[out, in]` (PyTorch's layout).

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Element-wise activation applied after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// Identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
}

impl Activation {
    /// The kernels' code for this activation (`shaders/matmul.wgsl`, `shaders/activation.wgsl`).
    pub(crate) fn code(self) -> u32 {
        match self {
            Activation::Linear => 0,
            Activation::Relu => 1,
            Activation::Tanh => 2,
            Activation::Sigmoid => 3,
        }
    }

    /// The name the CLI and checkpoints use.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "linear" => Ok(Activation::Linear),
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            "sigmoid" => Ok(Activation::Sigmoid),
            other => Err(crate::Error::config(
                "activation",
                format!("unknown activation `{other}`; use relu, tanh, sigmoid or linear"),
            )),
        }
    }
}

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

/// Glorot-uniform weights `U(-a, a)`, `a = sqrt(6 / (in + out))`, drawn from ChaCha8 with the
/// model seed and the layer index as the stream, so each layer's draw is independent of the
/// others' sizes.
pub(crate) fn glorot_uniform(seed: u64, layer: usize, inputs: usize, outputs: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(layer as u64);
    let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
    (0..inputs * outputs)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * unit - 1.0) * limit
        })
        .collect()
}
