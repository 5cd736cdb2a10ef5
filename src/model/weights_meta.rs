//! What a weights file records about its model besides the tensors: each layer's activation
//! and the loss. The tensor shapes give the widths but not these, and a model rebuilt with
//! the wrong activation computes wrong numbers without any error, so every weights file
//! wgfit writes for use (the CLI's `--output`, [`crate::ModelCheckpoint`],
//! [`crate::Sequential::save_weights`]) carries them under one metadata key (docs/FORMAT.md).

use crate::error::{Error, Result};
use crate::layer::Activation;
use crate::loss::Loss;
use crate::state::{Fingerprint, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The safetensors `__metadata__` key whose value is the JSON of a [`WeightsMeta`].
pub const WEIGHTS_META_KEY: &str = "wgfit";

/// The model a weights file belongs to, beyond its tensors' shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsMeta {
    /// Each layer's activation, first layer first.
    pub activations: Vec<Activation>,
    /// The loss the model was trained with (it decides how outputs are read: logits of classes
    /// or values).
    pub loss: Loss,
    /// The factor the training inputs were multiplied by before they reached the model
    /// (`wgfit train --scale`), which inputs must be scaled by alike; `None`: not recorded (the
    /// library does not scale inputs).
    pub input_scale: Option<f32>,
    /// The architecture, for models that are not a stack of Dense layers on flat inputs.
    pub model: Option<crate::model::ModelRecord>,
}

/// The JSON form. `activation` alone (the hidden layers', the last one linear) is what
/// `wgfit train` wrote before per-layer activations were recorded; it is still read.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activation: Option<String>,
    loss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_scale: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<crate::model::ModelRecord>,
}

impl WeightsMeta {
    /// The activations of `layers` dense layers as `wgfit train --activation` builds them:
    /// `hidden` on every layer but the last, which is linear.
    pub fn hidden_then_linear(hidden: Activation, layers: usize) -> Vec<Activation> {
        (0..layers)
            .map(|i| {
                if i + 1 == layers {
                    Activation::Linear
                } else {
                    hidden
                }
            })
            .collect()
    }

    /// The record of a run with this fingerprint (what [`crate::Context::fingerprint`] gives a
    /// callback).
    pub fn from_fingerprint(fingerprint: &Fingerprint) -> Result<Self> {
        let activations = match &fingerprint.model {
            Some(record) => record.layers.iter().map(|l| l.activation()).collect(),
            None => fingerprint
                .layers
                .iter()
                .map(|(_, _, a)| a.parse())
                .collect::<Result<_>>()?,
        };
        Ok(WeightsMeta {
            activations,
            loss: fingerprint.loss.parse()?,
            input_scale: None,
            model: fingerprint.model.clone(),
        })
    }

    /// The activation of every layer but the last, if they share one and the last layer is
    /// linear: the model `wgfit train --activation A` builds. `None` for any other model.
    pub fn hidden_activation(&self) -> Option<Activation> {
        let (last, hidden) = self.activations.split_last()?;
        if *last != Activation::Linear {
            return None;
        }
        match hidden.first() {
            None => Some(Activation::Linear),
            Some(&a) if hidden.iter().all(|&h| h == a) => Some(a),
            Some(_) => None,
        }
    }

    /// The safetensors header metadata that records `self` (one key, so a file's bytes are
    /// the same from run to run).
    pub fn to_metadata(&self) -> Result<HashMap<String, String>> {
        let stored = Stored {
            activations: Some(
                self.activations
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect(),
            ),
            activation: None,
            loss: self.loss.name().to_string(),
            input_scale: self.input_scale,
            model: self.model.clone(),
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| Error::encoding("the weights file's model record", e))?;
        Ok(HashMap::from([(WEIGHTS_META_KEY.to_string(), json)]))
    }

    /// Writes `tensors` as a safetensors file (atomically) that records `self`.
    pub fn write_with(&self, path: &Path, tensors: &[Tensor]) -> Result<()> {
        crate::checkpoint::write_tensors_with_metadata(path, tensors, Some(self.to_metadata()?))
    }

    /// The architecture a safetensors file records, if it records one (see
    /// [`WeightsMeta::model`]).
    pub fn architecture(bytes: &[u8], path: &Path) -> Result<Option<crate::model::ModelRecord>> {
        Ok(Self::stored(bytes, path)?.and_then(|s| s.model))
    }

    /// The layer count a safetensors file records (its architecture's, or its list of
    /// activations'): `None` when it records none, or only the older single `activation`.
    pub fn recorded_layers(bytes: &[u8], path: &Path) -> Result<Option<usize>> {
        Ok(Self::stored(bytes, path)?.and_then(|s| {
            s.model
                .map(|m| m.layers.len())
                .or(s.activations.map(|a| a.len()))
        }))
    }

    fn stored(bytes: &[u8], path: &Path) -> Result<Option<Stored>> {
        let bad = |reason: String| Error::corrupt(path, reason);
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let Some(json) = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(WEIGHTS_META_KEY))
        else {
            return Ok(None);
        };
        serde_json::from_str(json).map(Some).map_err(|e| {
            bad(format!(
                "its `{WEIGHTS_META_KEY}` metadata is not a model record: {e}"
            ))
        })
    }

    /// The record in the bytes of a safetensors file: `None` when it has none (a file not
    /// written by wgfit, or by a wgfit before checkpoints carried it). A record that is there
    /// but unreadable is an error, never a guess. `layers` is the file's layer count (for a
    /// file that records its architecture, the record's).
    pub fn from_file_bytes(bytes: &[u8], path: &Path, layers: usize) -> Result<Option<Self>> {
        let bad = |reason: String| Error::corrupt(path, reason);
        let Some(stored) = Self::stored(bytes, path)? else {
            return Ok(None);
        };
        let layers = stored.model.as_ref().map_or(layers, |m| m.layers.len());
        let activations = match (stored.activations, stored.activation) {
            (Some(names), _) => names
                .iter()
                .map(|a| a.parse())
                .collect::<Result<Vec<Activation>>>()?,
            (None, Some(hidden)) => WeightsMeta::hidden_then_linear(hidden.parse()?, layers),
            (None, None) => {
                return Err(bad(format!(
                    "its `{WEIGHTS_META_KEY}` metadata names no activation"
                )));
            }
        };
        if activations.len() != layers {
            return Err(bad(format!(
                "its `{WEIGHTS_META_KEY}` metadata names {} activations for {layers} layers",
                activations.len()
            )));
        }
        if let Some(scale) = stored.input_scale
            && !(scale.is_finite() && scale != 0.0)
        {
            return Err(bad(format!(
                "its `{WEIGHTS_META_KEY}` metadata records the input scale {scale}, which no \
                 input can be multiplied by (a finite, non-zero factor)"
            )));
        }
        Ok(Some(WeightsMeta {
            activations,
            loss: stored.loss.parse()?,
            input_scale: stored.input_scale,
            model: stored.model,
        }))
    }
}
