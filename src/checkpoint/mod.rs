//! The on-disk format of backups (docs/FORMAT.md): safetensors weights plus a JSON sidecar,
//! committed crash-safely in a directory wgfit marks as its own; one decision of what a run
//! does with it; a read-only inspection; and plain parameter files.

mod dir;
mod dir_take;
mod direct_write;
mod format;
mod handle;
mod history_chunks;
mod inspect;
mod output_file;
mod place;
mod read_ahead;
mod record;
mod remote;
mod restore;
mod stream_read;
mod weights_ref;

#[cfg(test)]
mod crash_states;

use crate::error::{Error, Result};
use crate::state::Tensor;
pub(crate) use dir::WeightsCheck;
pub use dir::{BackupDir, LATEST, MARKER, PREVIOUS};
#[doc(hidden)]
pub use format::read_tensors_from;
pub(crate) use format::{EncodedFile, RawTensor};
pub use format::{FORMAT, Sidecar, VERSION, WeightsRef, check_file_name};
pub(crate) use handle::DirHandle;
pub use history_chunks::{CHUNK_FORMAT, ChunkRef, HistoryRecord, check_chunk_name};
pub use inspect::{FileReport, Inspection, Outlook, SidecarReport, StateSummary, inspect};
pub use output_file::{Written, output_file, write_atomically};
pub(crate) use read_ahead::ReadAhead;
pub(crate) use remote::LeaseWatch;
pub use remote::Location;
pub(crate) use restore::decide;
pub use restore::{Decision, Loaded, load_sidecar};
use std::collections::HashMap;
use std::path::Path;

/// The bytes of `latest.json` in a backup directory or at an object-store URL, if there is
/// one; a link or special file in its place is refused, not followed.
pub fn read_latest_sidecar(dir: &Path) -> Result<Option<Vec<u8>>> {
    place::Place::open(dir)?.read(LATEST, format::MAX_SIDECAR_BYTES)
}

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
    write_atomically(path, &data).map(|_| ())
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
                .map_err(|e| Error::encoding(format!("tensor `{}`", t.name), e))?;
        views.push((t.name.clone(), view));
    }
    safetensors::serialize(views, metadata).map_err(|e| Error::encoding("tensors", e))
}

/// Reads every tensor of a safetensors file of f32 tensors.
pub fn read_tensors(path: &Path) -> Result<Vec<Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
    format::read_tensors_from(&bytes, path)
}

/// Reads every tensor of the bytes of a safetensors file of f32 tensors (`path` names it in
/// errors).
pub(crate) fn tensors_of_bytes(bytes: &[u8], path: &Path) -> Result<Vec<Tensor>> {
    format::read_tensors_from(bytes, path)
}
