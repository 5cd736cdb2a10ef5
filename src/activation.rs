//! The element-wise activations: what the kernels apply after a bias, their names, and the
//! codes the WGSL switches on.

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
    /// Keras's `gelu` (`approximate=False`): `x · (1 + erf(x / √2)) / 2`.
    Gelu,
    /// Keras's `gelu(x, approximate=True)`: `x · (1 + tanh(√(2/π) · (x + 0.044715 x³))) / 2`.
    GeluApproximate,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 6] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::GeluApproximate,
    ];

    /// Whether the derivative is taken from the activation's input rather than its output:
    /// GELU is not invertible, so a layer with it keeps the pre-activation for its backward
    /// pass (`shaders/activation_fns.wgsl`'s `derivative` takes what this says).
    pub(crate) fn differentiates_input(self) -> bool {
        matches!(self, Activation::Gelu | Activation::GeluApproximate)
    }

    /// The kernels' code for this activation: the WGSL constant `ACT_<NAME>` has this value
    /// (see [`Activation::wgsl_codes`]).
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// The WGSL declarations of the codes, `const ACT_RELU: u32 = 1u;` and so on, which
    /// `shaders/activation_fns.wgsl` switches on: the kernels and Rust agree by construction.
    pub(crate) fn wgsl_codes() -> String {
        Activation::ALL
            .iter()
            .map(|a| {
                let name = a.name().to_uppercase();
                format!("const ACT_{name}: u32 = {}u;\n", a.code())
            })
            .collect()
    }

    /// The name the CLI and checkpoints use.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Gelu => "gelu",
            Activation::GeluApproximate => "gelu_approximate",
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
            "gelu" => Ok(Activation::Gelu),
            "gelu_approximate" => Ok(Activation::GeluApproximate),
            other => Err(crate::Error::config(
                "activation",
                format!(
                    "unknown activation `{other}`; use relu, tanh, sigmoid, gelu, gelu_approximate or linear"
                ),
            )),
        }
    }
}

/// The CLI's `--activation` values, in the order its help lists them.
impl clap::ValueEnum for Activation {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Gelu,
            Activation::GeluApproximate,
            Activation::Linear,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}
