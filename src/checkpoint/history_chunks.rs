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
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The `format` field of a history chunk file.
pub const CHUNK_FORMAT: &str = "wgfit-history";
/// A chunk file larger than this is not read (64 epochs of logs are kilobytes).
const MAX_CHUNK_BYTES: u64 = 16 << 20;
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

/// The chunk file `name` in `place`, if it can be read and is one.
fn chunk_file(place: &Place, name: &str) -> Option<ChunkFile> {
    let bytes = place.read(name, MAX_CHUNK_BYTES).ok()??;
    let file: ChunkFile = serde_json::from_slice(&bytes).ok()?;
    (file.format == CHUNK_FORMAT).then_some(file)
}

/// The backup id the chunk file `name` records, if it is one (what makes it wgfit's).
pub(crate) fn backup_id_of(place: &Place, name: &str) -> Option<String> {
    chunk_file(place, name).map(|f| f.backup_id)
}

/// What a backup directory knows of its history chunk files: those that hold the sealed
/// chunks of this run's history, and each chunk file's predecessor.
#[derive(Debug, Default)]
pub(crate) struct HistoryChunks {
    /// The chunk files of this run's sealed chunks, in order: each is written once (a chunk
    /// is immutable, so the same `Arc` is the same file).
    written: Vec<(Arc<[EpochLogs]>, ChunkRef)>,
    /// Each chunk file seen → the chunk it names as its predecessor, so that finding the
    /// chunks the sidecars reference reads only chunk files not seen before.
    links: HashMap<String, Option<String>>,
    /// Whether the links of `written` are in `links`.
    links_noted: bool,
}

impl HistoryChunks {
    /// Remembers the chunk files (`chain`, oldest first) a restored history's `sealed`
    /// chunks were read from. Their links are noted at the first `chain` (on the writer
    /// thread), so that a restore does not grow with the history.
    pub fn adopt(&mut self, sealed: &[Arc<[EpochLogs]>], chain: Vec<ChunkRef>) {
        self.written = sealed.iter().cloned().zip(chain).collect();
        self.links_noted = false;
    }

    /// Notes the links between the chunk files of `written`.
    fn note_links(&mut self) {
        if self.links_noted {
            return;
        }
        self.links_noted = true;
        for (i, (_, chunk)) in self.written.iter().enumerate() {
            let previous = i.checked_sub(1).map(|p| self.written[p].1.file.clone());
            self.links.insert(chunk.file.clone(), previous);
        }
    }

    /// Writes, through `write(name, bytes)`, the sealed chunks of `history` that are not
    /// on disk yet (normally none, or the one sealed since the last commit) as chunk files
    /// of the backup `backup_id`; returns the newest chunk's reference.
    pub fn write(
        &mut self,
        history: &History,
        backup_id: &str,
        mut write: impl FnMut(&str, &[u8]) -> Result<bool>,
    ) -> Result<Option<ChunkRef>> {
        let sealed = history.sealed();
        let same = self
            .written
            .iter()
            .zip(sealed)
            .take_while(|((written, _), chunk)| Arc::ptr_eq(written, chunk))
            .count();
        self.written.truncate(same);
        for (index, chunk) in sealed.iter().enumerate().skip(same) {
            let previous = self.written.last().map(|(_, r)| r.clone());
            let (reference, bytes) = encode(backup_id, index, previous.as_ref(), chunk)?;
            write(&reference.file, &bytes)?;
            self.links
                .insert(reference.file.clone(), previous.map(|p| p.file));
            self.written.push((chunk.clone(), reference));
        }
        Ok(self.written.last().map(|(_, r)| r.clone()))
    }

    /// Adds to `names` the chunk files of the chain whose newest is `head`, reading only the
    /// chunk files not seen before; `None` when one cannot be read.
    pub fn chain(
        &mut self,
        place: &Place,
        head: Option<String>,
        names: &mut HashSet<String>,
    ) -> Option<()> {
        self.note_links();
        let mut next = head;
        while let Some(chunk) = next {
            if !names.insert(chunk.clone()) {
                break;
            }
            next = match self.links.get(&chunk) {
                Some(previous) => previous.clone(),
                None => {
                    let previous = chunk_file(place, &chunk)?.previous.map(|p| p.file);
                    self.links.insert(chunk, previous.clone());
                    previous
                }
            };
        }
        Some(())
    }
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
