//! A model in other tools' formats: Keras 3's `.weights.h5` and `.keras`, ONNX, and PyTorch's
//! `nn.Sequential` names (docs/INTEROP.md). Each writer works from the model's layers and
//! parameters; each reader checks a file against the model before it changes anything.

mod keras_archive;
mod keras_config;
mod keras_layout;
mod keras_weights;
mod onnx;
mod onnx_attention;
mod onnx_graph;
mod torch_names;

pub use keras_archive::{KerasFile, KerasWeights, read_keras_file};
pub use onnx::ONNX_OPSET;

use crate::state::Tensor;

/// What produced an exported file, for the formats with room for it: `wgfit <version>`.
pub(crate) fn producer() -> String {
    format!("wgfit {}", env!("CARGO_PKG_VERSION"))
}

/// The SHA-256 of the parameters (names and little-endian values, in order), which ties an
/// exported file to the weights it was made from (the digest a data-parallel run's ranks
/// compare).
pub(crate) fn parameters_sha256(params: &[Tensor]) -> String {
    crate::distributed::parameters_digest(params)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
