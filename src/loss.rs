//! Losses. Their kernels are in `shaders/loss.wgsl`; the training step fuses each loss with
//! its gradient.

use serde::{Deserialize, Serialize};

/// The loss a model is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// Mean squared error over batch and outputs (Keras `mse`). Class labels become one-hot
    /// targets; a single float target column broadcasts to every output.
    MeanSquaredError,
    /// Softmax cross-entropy on the model's raw outputs (logits) with integer class labels
    /// (Keras `SparseCategoricalCrossentropy(from_logits=True)`), mean over the batch.
    /// Reports `accuracy` too.
    CrossEntropy,
}

impl Loss {
    /// The kernel's code for this loss.
    pub(crate) fn code(self) -> u32 {
        match self {
            Loss::MeanSquaredError => 0,
            Loss::CrossEntropy => 1,
        }
    }

    /// A short name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mse",
            Loss::CrossEntropy => "crossentropy",
        }
    }

    /// Whether `accuracy` is reported with this loss.
    pub fn reports_accuracy(self) -> bool {
        self == Loss::CrossEntropy
    }
}

impl std::str::FromStr for Loss {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "mse" | "mean_squared_error" => Ok(Loss::MeanSquaredError),
            "crossentropy" | "cross_entropy" | "sparse_categorical_crossentropy" => {
                Ok(Loss::CrossEntropy)
            }
            other => Err(crate::Error::config(
                "loss",
                format!("unknown loss `{other}`; use `mse` or `crossentropy`"),
            )),
        }
    }
}

/// The CLI's `--loss` values ([`Loss::name`]), in the order its help lists them.
impl clap::ValueEnum for Loss {
    fn value_variants<'a>() -> &'a [Self] {
        &[Loss::CrossEntropy, Loss::MeanSquaredError]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}
