//! The on-disk format of backups: safetensors weights plus a JSON sidecar, committed
//! crash-safely; verified restore; a read-only inspection; and plain parameter files.

mod dir;
mod format;
mod inspect;

pub use dir::{BackupDir, LATEST, LOCK, Loaded, PREVIOUS, TMP_PREFIX, load_sidecar, sha256_hex};
pub use format::{FORMAT, Sidecar, VERSION, WeightsRef, check_file_name};
pub use inspect::{Inspection, SidecarReport, StateSummary, inspect};

use crate::error::{Error, Result};
use crate::state::Tensor;
use std::path::Path;

/// Writes tensors as a safetensors file (f32), e.g. a model's final parameters.
pub fn write_tensors(path: &Path, tensors: &[Tensor]) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for (t, b) in tensors.iter().zip(&bytes) {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
            .map_err(|e| Error::config("tensor", format!("`{}`: {e}", t.name)))?;
        views.push((t.name.clone(), view));
    }
    let data = safetensors::serialize(views, None)
        .map_err(|e| Error::config("tensors", e.to_string()))?;
    std::fs::write(path, data).map_err(|e| Error::ckpt_io(path, e))
}

/// Reads every tensor of a safetensors file of f32 tensors.
pub fn read_tensors(path: &Path) -> Result<Vec<Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
    format::read_tensors_from(&bytes, path)
}
