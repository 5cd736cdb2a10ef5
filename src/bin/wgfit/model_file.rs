//! `wgfit train --model model.json`: the model Keras's `model.to_json()` describes, and what
//! a data set that does not fit it is told.

use crate::{CliResult, Failure};
use std::path::Path;
use wgfit::{Error, Sequential};

/// The model of `--model`: Keras's `model.to_json()` of a Sequential model. A softmax output
/// layer is taken as the logits of cross-entropy (the same loss and gradients), so it needs
/// `--loss crossentropy`.
pub fn keras_model(path: &Path, loss: wgfit::Loss) -> CliResult<Sequential> {
    crate::arg_checks::check_input("--model", path)?;
    let usage = crate::arg_checks::usage;
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read --model {}: {e}", path.display())))?;
    let keras = wgfit::from_keras_json(&text)
        .map_err(|e| usage(format!("--model {}: {e}", path.display())))?;
    if keras.softmax_output && loss != wgfit::Loss::CrossEntropy {
        return Err(usage(format!(
            "--model {}: its last layer's softmax outputs class probabilities, which --loss {} does not take; use --loss crossentropy",
            path.display(),
            loss.name()
        )));
    }
    Ok(keras.model)
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
