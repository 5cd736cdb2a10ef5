//! Keras 3's `.keras` archive both ways: a zip of stored entries `metadata.json`,
//! `config.json` (the model's config) and `model.weights.h5` (its weights), as
//! `keras/src/saving/saving_lib.py` writes it, so that `keras.saving.load_model` loads what
//! [`Sequential::save_keras`] writes, and [`read_keras_file`] reads what Keras saved.

use crate::error::{Error, Result};
use crate::model::{KerasModel, Sequential, from_keras_json};
use crate::state::Tensor;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

const FORMAT: &str = "Keras model";
const CONFIG: &str = "config.json";
const METADATA: &str = "metadata.json";
const WEIGHTS: &str = "model.weights.h5";

impl Sequential {
    /// Writes the whole model as Keras 3's `.keras` archive (atomically): its config
    /// (`config`, e.g. the user's own `model.to_json()`, else [`Sequential::to_keras_json`]),
    /// its weights as [`Sequential::save_keras_weights`] writes them, and a `metadata.json`
    /// that names what produced it (wgfit's version and the SHA-256 of the parameters).
    pub fn save_keras(&self, path: impl AsRef<Path>, config: Option<&str>) -> Result<()> {
        let path = path.as_ref();
        let config = match config {
            Some(c) => c.to_string(),
            None => self.to_keras_json()?,
        };
        let metadata = serde_json::json!({
            // Keras reads this to decide how to load the archive: it is a Keras 3 one.
            "keras_version": "3.0.0",
            "date_saved": "",
            "producer": super::producer(),
            "parameters_sha256": super::parameters_sha256(&self.parameters()?),
        });
        let entries = [
            (METADATA, metadata.to_string().into_bytes()),
            (CONFIG, config.into_bytes()),
            (WEIGHTS, self.keras_weights_bytes()?),
        ];
        let zip_error = |e: zip::result::ZipError| Error::encoding("a .keras archive", e);
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            zip.start_file(name, stored).map_err(zip_error)?;
            zip.write_all(&bytes)
                .map_err(|e| Error::encoding("a .keras archive", e))?;
        }
        let bytes = zip.finish().map_err(zip_error)?.into_inner();
        crate::checkpoint::write_atomically(path, &bytes)?;
        Ok(())
    }
}

/// The weights of a `.keras` archive, to be read into its model once compiled.
#[derive(Debug)]
pub struct KerasWeights {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl KerasWeights {
    /// The tensors for `model` (the archive's model), with wgfit's names, checked as
    /// [`Sequential::read_keras_weights`] checks them.
    pub fn tensors_for(&self, model: &Sequential) -> Result<Vec<Tensor>> {
        let inner = self.path.join(WEIGHTS);
        model.keras_weights_from_bytes(&self.bytes, &inner)
    }
}

/// What a `.keras` archive holds.
#[derive(Debug)]
pub struct KerasFile {
    /// The model its `config.json` describes, as [`from_keras_json`] reads it.
    pub keras: KerasModel,
    /// The text of its `config.json`.
    pub config: String,
    /// Its weights.
    pub weights: KerasWeights,
}

/// Reads a `.keras` archive (Keras's `model.save("m.keras")` or [`Sequential::save_keras`]).
pub fn read_keras_file(path: impl AsRef<Path>) -> Result<KerasFile> {
    let path = path.as_ref();
    let bad = |reason: String| Error::ForeignModelFile {
        path: path.to_path_buf(),
        format: FORMAT,
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let mut entry = |name: &str| -> Result<Vec<u8>> {
        let mut file = zip
            .by_name(name)
            .map_err(|e| bad(format!("no {name} in it: {e}")))?;
        let mut out = Vec::new();
        file.read_to_end(&mut out)
            .map_err(|e| bad(format!("cannot read its {name}: {e}")))?;
        Ok(out)
    };
    let config =
        String::from_utf8(entry(CONFIG)?).map_err(|_| bad(format!("its {CONFIG} is not UTF-8")))?;
    let weights = entry(WEIGHTS)?;
    let keras = from_keras_json(&config).map_err(|e| bad(format!("its {CONFIG}: {e}")))?;
    Ok(KerasFile {
        keras,
        config,
        weights: KerasWeights {
            path: path.to_path_buf(),
            bytes: weights,
        },
    })
}
