//! The two files of a committed state: the safetensors weights file and the JSON sidecar.
//! Both parsers treat their input as hostile: bounded sizes, checked names, no panics.

use super::history_chunks::HistoryRecord;
use crate::error::{Error, Result};
use crate::state::{
    BATCH_STATS, CALLBACK_TENSORS, Fingerprint, History, Position, RunEvent, StateMeta, Tensor,
    TrainState,
};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The `format` field of every sidecar.
pub const FORMAT: &str = "wgfit-backup";
/// The sidecar format version this build writes (docs/FORMAT.md, "Versions").
pub const VERSION: u32 = 6;
/// The oldest version this build reads: version 5 is version 6 without the rank count and the
/// accumulation in the fingerprint (resumed only as the same global batch, as it was); version
/// 4 is version 5 with the whole history in
/// the sidecar; version 3 is version 4 with one SHA-256 over the whole weights file instead
/// of one per part; version 2 is version 3 without events, stop requests and callback
/// tensors, which read as none.
pub const OLDEST_READ_VERSION: u32 = 2;
pub use super::weights_ref::WeightsRef;
/// A sidecar larger than this is not read (histories of millions of epochs excepted).
pub const MAX_SIDECAR_BYTES: u64 = 64 << 20;
/// The `__metadata__` key of a weights file that names the directory it was written in.
pub const BACKUP_ID_KEY: &str = "backup_id";
/// A weights file header larger than this is not read when looking for its backup id.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// The backup id a weights file's header records, if it is a safetensors file that records
/// one. Reads the header only, through `read(start, len)` (`None`: fewer bytes than asked).
pub(crate) fn weights_backup_id(read: impl Fn(u64, u64) -> Option<Vec<u8>>) -> Option<String> {
    let len = u64::from_le_bytes(read(0, 8)?.try_into().ok()?);
    if len > MAX_HEADER_BYTES {
        return None;
    }
    let header = read(8, len)?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(
        header
            .get("__metadata__")?
            .get(BACKUP_ID_KEY)?
            .as_str()?
            .to_string(),
    )
}

/// `latest.json` / `previous.json`: the commit record of one saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Always `wgfit-backup`.
    pub format: String,
    /// Format version, 6 (2 to 5 are read too).
    pub version: u32,
    /// The id of the backup directory's marker: the directory this state was written in.
    pub backup_id: String,
    /// The epoch in progress or next to start, 0-based.
    pub epoch: usize,
    /// Batches of that epoch done.
    pub step: usize,
    /// Batches done in the whole run.
    pub global_step: u64,
    /// The weights file this state lives in.
    pub weights: WeightsRef,
    /// What must match for a resume.
    pub fingerprint: Fingerprint,
    /// Seed of the data order.
    pub seed: u64,
    /// Optimizer updates applied.
    pub optimizer_steps: u64,
    /// Learning rate at the save.
    pub learning_rate: f32,
    /// Finished epochs: the newest inline, the older in history chunk files (version 5).
    pub history: HistoryRecord,
    /// States of stateful callbacks by name.
    pub callbacks: BTreeMap<String, serde_json::Value>,
    /// Save points of this run that were superseded by a newer one before they reached the
    /// disk (the writer keeps only the newest waiting snapshot), up to this commit.
    pub superseded_saves: u64,
    /// Wall-clock time of the save, milliseconds since the Unix epoch.
    pub saved_at_unix_ms: u64,
    /// The run's events up to this save (at most `MAX_EVENTS`); absent in sidecars written
    /// before events were recorded.
    #[serde(default)]
    pub events: Vec<RunEvent>,
    /// A callback asked to stop training before this save (absent: false).
    #[serde(default)]
    pub stop_training: bool,
}

/// A sidecar parse error, with the field it concerns when there is one.
fn sidecar_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let field = e.path().to_string();
    if field.is_empty() || field == "." {
        format!("not a valid sidecar: {}", e.inner())
    } else {
        format!("not a valid sidecar: field `{field}`: {}", e.inner())
    }
}

impl Sidecar {
    /// The host-side state recorded here, with its whole `history` (read from the chunk
    /// files the sidecar names).
    pub fn meta(&self, history: History) -> StateMeta {
        StateMeta {
            position: Position {
                epoch: self.epoch,
                step: self.step,
                global_step: self.global_step,
            },
            seed: self.seed,
            optimizer_steps: self.optimizer_steps,
            learning_rate: self.learning_rate,
            history,
            callbacks: self.callbacks.clone(),
            events: self.events.clone(),
            stop_training: self.stop_training,
        }
    }

    /// Parses and checks a sidecar's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Sidecar> {
        // The path to the offending field ("weights.sha256: invalid type …") tells a reader
        // what is wrong far better than a line and column.
        let mut json = serde_json::Deserializer::from_slice(bytes);
        let sidecar: Sidecar = serde_path_to_error::deserialize(&mut json)
            .map_err(|e| Error::corrupt(path, sidecar_error(&e)))?;
        json.end()
            .map_err(|e| Error::corrupt(path, format!("not a valid sidecar: {e}")))?;
        if sidecar.format != FORMAT {
            return Err(Error::corrupt(
                path,
                format!("format is {:?}, expected {FORMAT:?}", sidecar.format),
            ));
        }
        if !(OLDEST_READ_VERSION..=VERSION).contains(&sidecar.version) {
            return Err(Error::corrupt(
                path,
                format!(
                    "format version {} is not supported by this wgfit (it reads versions {OLDEST_READ_VERSION} to {VERSION})",
                    sidecar.version
                ),
            ));
        }
        check_file_name(&sidecar.weights.file).map_err(|reason| Error::corrupt(path, reason))?;
        if sidecar.seed != sidecar.fingerprint.seed {
            return Err(Error::corrupt(
                path,
                format!(
                    "its seed {} differs from its fingerprint's {}",
                    sidecar.seed, sidecar.fingerprint.seed
                ),
            ));
        }
        if sidecar.backup_id.len() != 32
            || !sidecar.backup_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::corrupt(path, "the backup id is not 32 hex digits"));
        }
        if let Some(chunks) = &sidecar.history.chunks {
            if sidecar.version < 5 {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "a version {} sidecar names history chunks (version 5 introduced them)",
                        sidecar.version
                    ),
                ));
            }
            chunks
                .check()
                .map_err(|reason| Error::corrupt(path, reason))?;
        }
        sidecar
            .weights
            .check_digests(sidecar.version)
            .map_err(|reason| Error::corrupt(path, reason))?;
        check_rank_count(&sidecar.fingerprint, sidecar.version)
            .map_err(|reason| Error::corrupt(path, reason))?;
        if !(sidecar.learning_rate.is_finite() && sidecar.learning_rate > 0.0) {
            return Err(Error::corrupt(
                path,
                "the learning rate is not a positive number",
            ));
        }
        Ok(sidecar)
    }

    /// The sidecar as pretty JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out =
            serde_json::to_vec_pretty(self).map_err(|e| Error::encoding("a sidecar", e))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// A weights file name must be `ckpt-<digits>[-<digits>].safetensors`: nothing that could
/// leave the backup directory (`/`, `..`, absolute paths) or name a file wgfit did not write.
pub fn check_file_name(name: &str) -> std::result::Result<(), String> {
    let ok = name
        .strip_prefix("ckpt-")
        .and_then(|rest| rest.strip_suffix(".safetensors"))
        .is_some_and(|core| {
            !core.is_empty()
                && core.len() <= 41
                && core.split('-').count() <= 2
                && core
                    .split('-')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the weights file name {name:?} is not of the form ckpt-<step>.safetensors"
        ))
    }
}

/// One tensor to encode, borrowing its values.
pub(crate) struct RawTensor<'a> {
    /// Its name in the file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values, `shape.iter().product()` of them.
    pub data: &'a [f32],
}

// Tensors are written straight from host memory as safetensors' little-endian f32.
#[cfg(target_endian = "big")]
compile_error!("wgfit writes f32 tensors from host memory and needs a little-endian target");

/// A state's safetensors file as pieces to write one after another: the header (length,
/// JSON with epoch, step and global step in `__metadata__`, padding), then each tensor's
/// values borrowed where they lie. Nothing is copied, so a save needs no host memory beyond
/// the header, and the file streams from the mapped staging buffer to the disk.
pub(crate) struct EncodedFile<'a> {
    header: Vec<u8>,
    /// Each tensor's bytes, in file order.
    tensors: Vec<&'a [u8]>,
}

impl<'a> EncodedFile<'a> {
    /// The header and the tensors of `tensors`, laid out in the order given.
    pub fn new(
        tensors: &[RawTensor<'a>],
        position: Position,
        optimizer_steps: u64,
        backup_id: &str,
    ) -> Result<Self> {
        let fail = |e: safetensors::SafeTensorError| Error::encoding("a checkpoint", e);
        let mut infos = Vec::with_capacity(tensors.len());
        let mut offset = 0;
        for t in tensors {
            let bytes = std::mem::size_of_val(t.data);
            let info = safetensors::tensor::TensorInfo {
                dtype: Dtype::F32,
                shape: t.shape.clone(),
                data_offsets: (offset, offset + bytes),
            };
            infos.push((t.name.clone(), info));
            offset += bytes;
        }
        let metadata: HashMap<String, String> = [
            ("format".to_string(), FORMAT.to_string()),
            ("epoch".to_string(), position.epoch.to_string()),
            ("step".to_string(), position.step.to_string()),
            ("global_step".to_string(), position.global_step.to_string()),
            ("optimizer_steps".to_string(), optimizer_steps.to_string()),
            (BACKUP_ID_KEY.to_string(), backup_id.to_string()),
        ]
        .into();
        // The crate's own header type checks shapes against lengths and serialises the JSON.
        let metadata = safetensors::tensor::Metadata::new(Some(metadata), infos).map_err(fail)?;
        let mut json =
            serde_json::to_vec(&metadata).map_err(|e| Error::encoding("a checkpoint", e))?;
        // safetensors pads the header with spaces to a multiple of 8 bytes.
        json.resize(json.len().next_multiple_of(8), b' ');
        let mut header = (json.len() as u64).to_le_bytes().to_vec();
        header.extend(json);
        let tensors = tensors
            .iter()
            .map(|t| bytemuck::cast_slice(t.data))
            .collect();
        Ok(EncodedFile { header, tensors })
    }

    /// Every piece of the file in order, the header first.
    pub fn pieces(&self) -> Vec<&[u8]> {
        std::iter::once(self.header.as_slice())
            .chain(self.tensors.iter().copied())
            .collect()
    }
}

/// The tensors of a weights file, split into parameters, slots and batch statistics, with
/// dtype, names and values checked. `path` names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Decoded> {
    classify(read_tensors_from(bytes, path)?, path, true)
}

/// The `__metadata__` of a weights file's header (empty if it has none or cannot be read).
pub(super) fn header_metadata(bytes: &[u8]) -> HashMap<String, String> {
    safetensors::SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .unwrap_or_default()
}

/// Whether a tensor of a weights file must hold finite values (the model's parameters and
/// the callbacks' copies of them).
pub(super) fn must_be_finite(name: &str) -> bool {
    name.starts_with("model.") || name.starts_with(CALLBACK_TENSORS)
}

/// The tensors of a weights file (in name order) split by kind, their names and, when
/// `check_finite`, the values of those that must be finite checked (false only where that
/// was done as they were read).
pub(super) fn classify(tensors: Vec<Tensor>, path: &Path, check_finite: bool) -> Result<Decoded> {
    let mut params = Vec::new();
    let mut slots = Vec::new();
    let mut callback_tensors = Vec::new();
    let mut stats = None;
    for t in tensors {
        if t.name == BATCH_STATS {
            stats = Some(t);
        } else if must_be_finite(&t.name) {
            let bad = match check_finite {
                true => t.data.iter().find(|v| !v.is_finite()),
                false => None,
            };
            if let Some(bad) = bad {
                return Err(Error::corrupt(
                    path,
                    format!("tensor `{}` holds {bad}", t.name),
                ));
            }
            if t.name.starts_with(CALLBACK_TENSORS) {
                callback_tensors.push(t);
            } else {
                params.push(t);
            }
        } else if t.name.starts_with("optimizer.") {
            slots.push(t);
        } else {
            return Err(Error::corrupt(
                path,
                format!("unexpected tensor `{}`", t.name),
            ));
        }
    }
    let stats =
        stats.ok_or_else(|| Error::corrupt(path, format!("tensor `{BATCH_STATS}` is missing")))?;
    Ok(Decoded {
        params,
        slots,
        stats,
        callback_tensors,
    })
}

/// The tensors of a weights file, by kind.
pub struct Decoded {
    /// `model.…`
    pub params: Vec<Tensor>,
    /// `optimizer.…`
    pub slots: Vec<Tensor>,
    /// The batch statistics.
    pub stats: Tensor,
    /// `callbacks.…`
    pub callback_tensors: Vec<Tensor>,
}

/// Every tensor of a safetensors file as f32 host tensors (F32 only), in name order.
pub fn read_tensors_from(bytes: &[u8], path: &Path) -> Result<Vec<Tensor>> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::corrupt(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for name in names {
        let view = st
            .tensor(&name)
            .map_err(|e| Error::corrupt(path, format!("tensor `{name}`: {e}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(Error::corrupt(
                path,
                format!("tensor `{name}` has dtype {:?}, expected F32", view.dtype()),
            ));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(Tensor {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    Ok(out)
}

/// The fingerprint's rank count and accumulation (version 6): both present, at least 1, a
/// run a distributed fit can have (ranks × accumulation within `u32`, the batch shared
/// equally).
fn check_rank_count(
    f: &crate::state::Fingerprint,
    version: u32,
) -> std::result::Result<(), String> {
    let (ranks, accumulation) =
        match (f.ranks, f.accumulation) {
            (None, None) if version < 6 => return Ok(()),
            (Some(r), Some(a)) => (r, a),
            _ => return Err(
                "its fingerprint lacks the rank count or the accumulation (version 6 records both)"
                    .into(),
            ),
        };
    if ranks == 0 || accumulation == 0 {
        return Err(format!(
            "its fingerprint records {ranks} rank(s) accumulating {accumulation}; both are at least 1"
        ));
    }
    if (ranks as u64).saturating_mul(u64::from(accumulation)) > u64::from(u32::MAX) {
        return Err(format!(
            "its fingerprint records {ranks} ranks accumulating {accumulation}, more micro-batches per update than a run can have"
        ));
    }
    if !f.batch_size.is_multiple_of(ranks) || f.batch_size == 0 {
        return Err(format!(
            "its fingerprint's batch of {} rows does not split over its {ranks} ranks",
            f.batch_size
        ));
    }
    Ok(())
}

/// Builds the full state from a verified sidecar, its whole history and its decoded weights
/// file.
pub fn state_of(
    sidecar: &Sidecar,
    history: History,
    weights: &[u8],
    path: &Path,
) -> Result<TrainState> {
    Ok(state_of_decoded(sidecar, history, decode(weights, path)?))
}

/// Builds the full state from a verified sidecar, its whole history and its weights file's
/// tensors.
pub(super) fn state_of_decoded(sidecar: &Sidecar, history: History, d: Decoded) -> TrainState {
    TrainState {
        params: d.params,
        slots: d.slots,
        meta: sidecar.meta(history),
        batch_stats: d.stats,
        callback_tensors: d.callback_tensors,
    }
}
