//! `wgfit train --model model.json` (or `model.keras`): the model Keras's `model.to_json()`
//! describes (with the weights a `.keras` file holds), and what a data set that does not fit
//! it is told.

use crate::{CliResult, Failure};
use std::path::Path;
use wgfit::{Error, Sequential};

/// The model of `--model`, with its Keras config and, from a `.keras` file, its weights.
pub struct ModelFile {
    pub model: Sequential,
    /// The config as Keras wrote it (for a `.keras` output).
    pub config: String,
    /// A `.keras` file's weights, to start from once the model is compiled.
    pub weights: Option<wgfit::KerasWeights>,
}

/// The model of `--model`: Keras's `model.to_json()` of a Sequential or Functional model, or
/// a `.keras` file (its config and weights). A softmax output layer is taken as the logits
/// of cross-entropy (the same loss and gradients), so it needs `--loss crossentropy`.
pub fn keras_model(path: &Path, loss: wgfit::Loss) -> CliResult<ModelFile> {
    crate::arg_checks::check_input("--model", path)?;
    let usage = crate::arg_checks::usage;
    let (keras, config, weights) = match crate::model_formats::ModelFormat::of_path(path) {
        Some(crate::model_formats::ModelFormat::Keras) => {
            let file = wgfit::read_keras_file(path).map_err(|e| usage(format!("--model: {e}")))?;
            (file.keras, file.config, Some(file.weights))
        }
        _ => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("cannot read --model {}: {e}", path.display())))?;
            let keras = wgfit::from_keras_json(&text)
                .map_err(|e| usage(format!("--model {}: {e}", path.display())))?;
            (keras, text, None)
        }
    };
    if keras.softmax_output && loss != wgfit::Loss::CrossEntropy {
        return Err(usage(format!(
            "--model {}: its last layer's softmax outputs class probabilities, which --loss {} does not take; use --loss crossentropy",
            path.display(),
            loss.name()
        )));
    }
    Ok(ModelFile {
        model: keras.model,
        config,
        weights,
    })
}

/// A data set that does not fit a `--model` model, said in the model's terms.
pub fn model_file_mismatch(e: Error, model: &Sequential, data_name: &str) -> Failure {
    match e {
        e @ (Error::LabelOutOfRange { .. } | Error::Shape { .. }) => Failure::new(format!(
            "{e}; {data_name} does not fit the --model model (input {:?}, {} outputs)",
            model.input_shape(),
            model.outputs()
        )),
        other => other.into(),
    }
}
