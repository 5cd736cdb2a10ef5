//! The on-disk format of backups: safetensors weights plus a JSON sidecar, committed
//! crash-safely; verified restore; a read-only inspection; and plain parameter files.

mod dir;
mod direct_write;
mod format;
mod inspect;

pub use dir::{BackupDir, LATEST, LOCK, Loaded, PREVIOUS, TMP_PREFIX, load_sidecar, sha256_hex};
pub(crate) use format::{EncodedFile, RawTensor};
pub use format::{FORMAT, Sidecar, VERSION, WeightsRef, check_file_name};
pub use inspect::{Inspection, SidecarReport, StateSummary, inspect};

use crate::error::{Error, Result};
use crate::state::Tensor;
use std::collections::HashMap;
use std::path::Path;

/// Writes tensors as a safetensors file (f32), e.g. a model's final parameters, atomically.
pub fn write_tensors(path: &Path, tensors: &[Tensor]) -> Result<()> {
    write_tensors_with_metadata(path, tensors, None)
}

/// Writes tensors as a safetensors file (f32) whose header carries `metadata`, atomically.
pub fn write_tensors_with_metadata(
    path: &Path,
    tensors: &[Tensor],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let data = encode_tensors(tensors, metadata)?;
    write_atomically(path, &data)
}

/// Writes a file atomically: a temporary file beside it, fsync, rename. A crash leaves either
/// the old file or the new one, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    dir::write_atomic_as(path, bytes, ".wgfit-out-").map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Encodes tensors as the bytes of a safetensors file (f32) with optional header metadata.
///
pub fn encode_tensors(
    tensors: &[Tensor],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for (t, b) in tensors.iter().zip(&bytes) {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map_err(|e| Error::config("tensor", format!("`{}`: {e}", t.name)))?;
        views.push((t.name.clone(), view));
    }
    safetensors::serialize(views, metadata).map_err(|e| Error::config("tensors", e.to_string()))
}

/// Reads every tensor of a safetensors file of f32 tensors.
pub fn read_tensors(path: &Path) -> Result<Vec<Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
    format::read_tensors_from(&bytes, path)
}
