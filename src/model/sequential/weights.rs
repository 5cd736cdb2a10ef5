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
    /// or a [`crate::ModelCheckpoint`] writes them). A file that records other activations or
    /// another loss than this model's is refused ([`Error::ModelRecordMismatch`]): its weights
    /// would compute something else here. A file without a record is taken as it is; the
    /// model says what it is.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
        let tensors = crate::checkpoint::read_tensors(path)?;
        if let Some(recorded) = WeightsMeta::from_file_bytes(&bytes, path, self.layers.len())? {
            let ours = self.weights_meta()?;
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
