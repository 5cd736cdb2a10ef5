//! History chunk files (format version 5, docs/FORMAT.md "History chunks"): each sealed
//! chunk of a run's [`History`] is written once, as `history-<index>-<digest>.json`, naming
//! the chunk before it by file and SHA-256. A sidecar holds only the epochs after the newest
//! chunk and a reference to that chunk, so what a save writes does not grow with the run,
//! and the chain of digests lets a restore verify every older epoch from the sidecar alone.

use super::place::Place;
use crate::checksum;
use crate::error::{Error, Result};
use crate::state::{EpochLogs, HISTORY_CHUNK, History};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `format` field of a history chunk file.
pub const CHUNK_FORMAT: &str = "wgfit-history";
/// A chunk file larger than this is not read (64 epochs of logs are kilobytes).
pub(crate) const MAX_CHUNK_BYTES: u64 = 16 << 20;
/// Hex digits of the digest in a chunk's file name.
const NAME_DIGEST_DIGITS: usize = 16;

/// A sidecar's history: the newest epochs inline, the older ones in chunk files.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The epochs after the chunk files' (before version 5: every epoch).
    pub epochs: Vec<EpochLogs>,
    /// The newest chunk file, which names the one before it (version 5; absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<ChunkRef>,
}

impl HistoryRecord {
    /// Finished epochs recorded: the chunks' and the inline ones.
    pub fn len(&self) -> usize {
        self.chunks.as_ref().map_or(0, |c| c.count * HISTORY_CHUNK) + self.epochs.len()
    }

    /// True when no epoch finished.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A reference to a history chunk file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// `history-<index>-<first 16 hex digits of its SHA-256>.json`.
    pub file: String,
    /// The SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Chunks in the chain up to and including this one (its index + 1).
    pub count: usize,
}

/// A chunk file's contents.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkFile {
    format: String,
    /// The backup directory it was written in: what makes it provably wgfit's to remove.
    backup_id: String,
    /// 0 for the oldest chunk.
    index: usize,
    /// The chunk before it (none for index 0).
    previous: Option<ChunkRef>,
    /// [`HISTORY_CHUNK`] epochs.
    epochs: Vec<EpochLogs>,
}

/// A chunk file name must be `history-<digits>-<16 hex digits>.json`.
pub fn check_chunk_name(name: &str) -> std::result::Result<(), String> {
    let ok = name
        .strip_prefix("history-")
        .and_then(|rest| rest.strip_suffix(".json"))
        .and_then(|core| core.split_once('-'))
        .is_some_and(|(index, digest)| {
            (1..=20).contains(&index.len())
                && index.bytes().all(|b| b.is_ascii_digit())
                && digest.len() == NAME_DIGEST_DIGITS
                && digest
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the history chunk name {name:?} is not of the form history-<index>-<digest>.json"
        ))
    }
}

impl ChunkRef {
    /// A reference must name a chunk file by a valid name, with a SHA-256 it agrees with.
    pub(super) fn check(&self) -> std::result::Result<(), String> {
        check_chunk_name(&self.file)?;
        if self.count == 0 {
            return Err(format!("history chunk {}: a chain of 0 chunks", self.file));
        }
        let hex = self.sha256.len() == 64
            && self
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex || !self.file.contains(&self.sha256[..NAME_DIGEST_DIGITS]) {
            return Err(format!(
                "history chunk {}: its SHA-256 is not 64 hex digits its name agrees with",
                self.file
            ));
        }
        if !self
            .file
            .starts_with(&format!("history-{}-", self.count - 1))
        {
            return Err(format!(
                "history chunk {}: its name does not give its index {}",
                self.file,
                self.count - 1
            ));
        }
        Ok(())
    }
}

/// Encodes sealed chunk `index` (whose predecessor is `previous`) of a backup: the reference
/// a sidecar or the next chunk records, and the file's bytes.
pub(crate) fn encode(
    backup_id: &str,
    index: usize,
    previous: Option<&ChunkRef>,
    epochs: &[EpochLogs],
) -> Result<(ChunkRef, Vec<u8>)> {
    let file = ChunkFile {
        format: CHUNK_FORMAT.into(),
        backup_id: backup_id.into(),
        index,
        previous: previous.cloned(),
        epochs: epochs.to_vec(),
    };
    let mut bytes = serde_json::to_vec(&file).map_err(|e| Error::encoding("a history chunk", e))?;
    bytes.push(b'\n');
    let sha256 = checksum::hex(&bytes);
    let reference = ChunkRef {
        file: format!("history-{index}-{}.json", &sha256[..NAME_DIGEST_DIGITS]),
        sha256,
        count: index + 1,
    };
    Ok((reference, bytes))
}

/// The backup id a chunk file's bytes record, if they are a chunk file.
pub(crate) fn chunk_backup_id(bytes: &[u8]) -> Option<String> {
    let file: ChunkFile = serde_json::from_slice(bytes).ok()?;
    (file.format == CHUNK_FORMAT).then_some(file.backup_id)
}

/// The chunk a chunk file's bytes name as its predecessor (`Some(None)`: the first chunk;
/// `None`: not a chunk file).
pub(crate) fn chunk_previous(bytes: &[u8]) -> Option<Option<String>> {
    let file: ChunkFile = serde_json::from_slice(bytes).ok()?;
    (file.format == CHUNK_FORMAT).then_some(file.previous.map(|p| p.file))
}

/// Reads the whole history a sidecar records: every chunk of its chain, each checked
/// against the digest the one after it (or the sidecar) records, then the inline epochs.
/// Also returns the chain's references, oldest first.
pub(crate) fn read_history(
    place: &Place,
    record: &HistoryRecord,
) -> Result<(History, Vec<ChunkRef>)> {
    let mut chain = Vec::new();
    let mut chunks = Vec::new();
    let mut next = record.chunks.clone();
    while let Some(reference) = next {
        let path = place.join(&reference.file);
        reference
            .check()
            .map_err(|reason| Error::corrupt(&path, reason))?;
        let bytes = place
            .read(&reference.file, MAX_CHUNK_BYTES)?
            .ok_or_else(|| Error::corrupt(&path, "the history chunk is missing"))?;
        let digest = checksum::hex(&bytes);
        if digest != reference.sha256 {
            return Err(Error::corrupt(
                &path,
                format!(
                    "its SHA-256 is {digest}, the backup recorded {}",
                    reference.sha256
                ),
            ));
        }
        let file: ChunkFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(&path, format!("not a history chunk: {e}")))?;
        let expected_previous = reference.count - 1;
        if file.format != CHUNK_FORMAT
            || file.index + 1 != reference.count
            || file.epochs.len() != HISTORY_CHUNK
            || file.previous.as_ref().map_or(0, |p| p.count) != expected_previous
        {
            return Err(Error::corrupt(
                &path,
                format!(
                    "not chunk {} of {HISTORY_CHUNK} epochs after chunk {}'s reference",
                    reference.count - 1,
                    expected_previous
                ),
            ));
        }
        next = file.previous;
        chunks.push(Arc::<[EpochLogs]>::from(file.epochs));
        chain.push(reference);
    }
    chunks.reverse();
    chain.reverse();
    Ok((History::from_parts(chunks, record.epochs.clone()), chain))
}
