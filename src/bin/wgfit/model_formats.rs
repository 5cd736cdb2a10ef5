//! The files a trained model can be written as (`wgfit train --output`, `wgfit export -o`):
//! wgfit's safetensors, Keras's `.weights.h5` and `.keras`, ONNX, and safetensors with
//! PyTorch's `nn.Sequential` names (docs/INTEROP.md). The format comes from the extension
//! unless `--format` names it.

use crate::{CliResult, Failure};
use std::path::Path;
use wgfit::Sequential;

/// A model file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelFormat {
    /// wgfit's safetensors (`.safetensors`), which evaluate, predict and --init read.
    Safetensors,
    /// Keras 3's `model.save_weights` file (`.weights.h5`).
    KerasWeights,
    /// Keras 3's whole model (`.keras`: config and weights).
    Keras,
    /// ONNX (`.onnx`, opset 17).
    Onnx,
    /// Safetensors with PyTorch's `nn.Sequential` state_dict names and layouts
    /// (`.pt.safetensors`).
    Torch,
}

impl ModelFormat {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::KerasWeights => "keras-weights",
            ModelFormat::Keras => "keras",
            ModelFormat::Onnx => "onnx",
            ModelFormat::Torch => "torch",
        }
    }

    /// The format `path`'s name says, if it says one.
    pub fn of_path(path: &Path) -> Option<ModelFormat> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let by_suffix = [
            (".weights.h5", ModelFormat::KerasWeights),
            (".keras", ModelFormat::Keras),
            (".onnx", ModelFormat::Onnx),
            (".pt.safetensors", ModelFormat::Torch),
            (".safetensors", ModelFormat::Safetensors),
        ];
        by_suffix
            .into_iter()
            .find(|(suffix, _)| name.ends_with(suffix))
            .map(|(_, f)| f)
    }

    /// `--format` if given, else the extension's; a usage error naming the extensions when
    /// neither says.
    pub fn choose(flag: &str, path: &Path, given: Option<ModelFormat>) -> CliResult<ModelFormat> {
        given.or_else(|| Self::of_path(path)).ok_or_else(|| Failure {
            message: format!(
                "{flag} {}: name no format by its extension (.safetensors, .weights.h5, .keras, .onnx, .pt.safetensors); give --format",
                path.display()
            ),
            code: 2,
        })
    }
}

/// Writes `model` to `path` (given as `flag`) as `format`; `keras_config` is the `.keras` archive's config
/// (the user's own model file's, else wgfit writes the model's).
pub fn write_model(
    flag: &str,
    model: &Sequential,
    path: &Path,
    format: ModelFormat,
    input_scale: f32,
    keras_config: Option<&str>,
) -> CliResult {
    let written = match format {
        ModelFormat::Safetensors => {
            let meta = wgfit::WeightsMeta {
                input_scale: Some(input_scale),
                ..model.weights_meta()?
            };
            meta.write_with(path, &model.parameters()?)
        }
        ModelFormat::KerasWeights => model.save_keras_weights(path),
        ModelFormat::Keras => model.save_keras(path, keras_config),
        ModelFormat::Onnx => model.save_onnx(path),
        ModelFormat::Torch => model.save_torch_weights(path),
    };
    written.map_err(|e| Failure::new(format!("{flag} {}: {e}", path.display())))
}

/// The tensors of `--init`: wgfit's safetensors, Keras's `.weights.h5`, or the weights of a
/// `.keras` file, for `model`.
pub fn read_init(model: &Sequential, path: &Path) -> CliResult<Vec<wgfit::Tensor>> {
    let tensors = match ModelFormat::of_path(path) {
        Some(ModelFormat::KerasWeights) => model.read_keras_weights(path)?,
        Some(ModelFormat::Keras) => wgfit::read_keras_file(path)?.weights.tensors_for(model)?,
        _ => wgfit::checkpoint::read_tensors(path)?,
    };
    Ok(tensors)
}
