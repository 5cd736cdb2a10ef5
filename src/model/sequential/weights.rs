//! `Sequential`'s parameters in and out: as tensors, and as weights files.

use super::Sequential;
use crate::error::{Error, Result};
use crate::model::WeightsMeta;
use crate::state::Tensor;
use std::path::Path;

impl Sequential {
    /// All parameters as named host tensors: `model.layers.<i>.weight` `[out, in]` and
    /// `model.layers.<i>.bias` `[out]`.
    pub fn parameters(&self) -> Result<Vec<Tensor>> {
        self.compiled()?.params.read_params()
    }

    /// Replaces all parameters; each name of [`Sequential::parameters`] must be given once
    /// with its shape.
    pub fn set_parameters(&mut self, tensors: &[Tensor]) -> Result<()> {
        self.compiled()?.params.write_params(tensors, "")
    }

    /// What a weights file of this model records besides the tensors: each layer's activation
    /// and the loss.
    pub fn weights_meta(&self) -> Result<WeightsMeta> {
        Ok(WeightsMeta {
            model: self.record()?,
            activations: self.layers.iter().map(|l| l.activation()).collect(),
            loss: self.loss()?,
            input_scale: None,
        })
    }

    /// Writes the parameters as a safetensors file (atomically), the form `wgfit train
    /// --output` writes: the tensors of [`Sequential::parameters`] and a record of each
    /// layer's activation and the loss, so that `wgfit evaluate` and `wgfit predict` rebuild
    /// the same model from it.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.weights_meta()?
            .write_with(path.as_ref(), &self.parameters()?)
    }

    /// Replaces all parameters with those of a weights file (as [`Sequential::save_weights`]
    /// or a [`crate::ModelCheckpoint`] writes them). A file that records another architecture
    /// (layers, their arguments, the input shape), other activations or another loss than
    /// this model's is refused ([`Error::ModelRecordMismatch`]): its weights would compute
    /// something else here, even where every tensor's shape fits (a convolution's strides).
    /// A file without a record is taken as it is; the model says what it is. A file written
    /// by `wgfit train --scale S` records `S` ([`WeightsMeta::input_scale`]): this model's
    /// inputs must be scaled by it alike, as the library does not scale inputs.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        // One read for the record and the tensors, so that both come from one file even if
        // it is replaced meanwhile (a ModelCheckpoint writing it).
        let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
        let tensors = crate::checkpoint::tensors_of_bytes(&bytes, path)?;
        let ours = self.weights_meta()?;
        let file_layers = WeightsMeta::recorded_layers(&bytes, path)?.unwrap_or(self.layers.len());
        if let Some(recorded) = WeightsMeta::from_file_bytes(&bytes, path, file_layers)? {
            if recorded.model != ours.model || file_layers != self.layers.len() {
                let lines = |m: &Option<crate::model::ModelRecord>, layers: usize| match m {
                    Some(m) => architecture_lines(m),
                    None => vec![format!("a stack of {layers} Dense layers")],
                };
                let (then, now) = (
                    lines(&recorded.model, recorded.activations.len()),
                    lines(&ours.model, self.layers.len()),
                );
                // The first line that differs, so that a long model names its difference.
                let at = then.iter().zip(&now).take_while(|(a, b)| a == b).count();
                let line = |l: &[String]| l.get(at).cloned().unwrap_or_else(|| "nothing".into());
                return Err(Error::ModelRecordMismatch {
                    path: path.to_path_buf(),
                    what: "architecture".into(),
                    recorded: line(&then),
                    given: line(&now),
                });
            }
            let names = |a: &[crate::layer::Activation]| {
                a.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            };
            if recorded.activations != ours.activations {
                return Err(Error::ModelRecordMismatch {
                    path: path.to_path_buf(),
                    what: "activations".into(),
                    recorded: names(&recorded.activations),
                    given: names(&ours.activations),
                });
            }
            if recorded.loss != ours.loss {
                return Err(Error::ModelRecordMismatch {
                    path: path.to_path_buf(),
                    what: "loss".into(),
                    recorded: recorded.loss.name().into(),
                    given: ours.loss.name().into(),
                });
            }
        }
        self.set_parameters(&tensors)
    }

    /// The optimizer's slots as named tensors (`optimizer.<param>.<slot>`, e.g. `momentum`;
    /// empty for an optimizer that keeps none).
    pub fn optimizer_slots(&self) -> Result<Vec<Tensor>> {
        self.compiled()?.params.read_slots()
    }
}

/// A recorded model as lines: its input shape, then each layer as Keras would print it.
fn architecture_lines(record: &crate::model::ModelRecord) -> Vec<String> {
    let mut lines = vec![format!("input shape {:?}", record.input_shape)];
    match record.model().specs() {
        Ok(specs) => lines.extend(
            specs
                .iter()
                .enumerate()
                .map(|(i, s)| format!("layer {i} {}", s.describe())),
        ),
        // A record that does not build names its layers by kind alone.
        Err(_) => lines.extend(
            record
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| format!("layer {i} {}", l.kind().class_name())),
        ),
    }
    lines
}
