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

/// A layer's weights and biases.
type LayerInit = (Vec<f32>, Vec<f32>);

/// Initial `(weights, biases)` of every layer: [`glorot_uniform`] weights and zero biases.
/// Layers are drawn in parallel (each from its own stream, so the values do not depend on it).
pub(crate) fn glorot_layers(seed: u64, shapes: &[(usize, usize, Activation)]) -> Vec<LayerInit> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<LayerInit> = vec![Default::default(); shapes.len()];
    std::thread::scope(|scope| {
        // Thread t draws layers t, t + threads, ...
        let mut slots: Vec<Vec<(usize, &mut LayerInit)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (i, slot) in out.iter_mut().enumerate() {
            slots[i % threads].push((i, slot));
        }
        for mine in slots {
            scope.spawn(move || {
                for (i, slot) in mine {
                    let (inputs, outputs, _) = shapes[i];
                    *slot = (glorot_uniform(seed, i, inputs, outputs), vec![0.0; outputs]);
                }
            });
        }
    });
    out
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
