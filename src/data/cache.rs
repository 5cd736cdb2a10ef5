//! What one pass over a large data file establishes (its content hash, and that every input
//! is finite), kept beside the file in `<file>.wgfit-cache` so that the next load of the same
//! file (a resume) does not read it all again. Keyed by the file's size and modification time:
//! a changed file is read again. A cache that cannot be read or written is ignored: it only
//! saves time.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Identifies a version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    size: u64,
    modified_ns: u128,
}

impl Stamp {
    pub fn of(file: &std::fs::File) -> std::io::Result<Stamp> {
        let meta = file.metadata()?;
        let modified_ns = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Stamp {
            size: meta.len(),
            modified_ns,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    /// What the hash covers (`Dataset::content_hash`'s domain tag).
    format: String,
    stamp: Stamp,
    /// The content hash, hex; recorded only after every input was found finite.
    content_sha256: String,
}

const FORMAT: &str = "wgfit.dataset.v1";

fn cache_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".wgfit-cache");
    path.with_file_name(name)
}

/// The content hash recorded for this version of the file, if any.
pub(crate) fn read(path: &Path, stamp: &Stamp) -> Option<[u8; 32]> {
    let bytes = std::fs::read(cache_path(path)).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    if entry.format != FORMAT || entry.stamp != *stamp || entry.content_sha256.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, out) in hash.iter_mut().enumerate() {
        *out = u8::from_str_radix(entry.content_sha256.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// Records the content hash of a file whose inputs were all found finite.
pub(crate) fn write(path: &Path, stamp: &Stamp, hash: [u8; 32]) {
    let entry = Entry {
        format: FORMAT.into(),
        stamp: stamp.clone(),
        content_sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&entry) {
        // A read-only directory or a full disk costs a re-read next time, nothing more.
        let _ = crate::checkpoint::write_atomically(&cache_path(path), &bytes);
    }
}
