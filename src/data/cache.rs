//! What one pass over a large data file establishes (its content hash, and that every input
//! is finite), kept beside the file in `<file>.wgfit-cache` so that the next load of the same
//! files (a resume) does not read them all again. A cache that cannot be read or written is
//! ignored: it only saves time.
//!
//! The entry is keyed on every file whose bytes enter the hash (the `x` and the `y` file of an
//! `.npy` pair), each by what a user cannot set back, as git's index does: device, inode and
//! change time (ctime), with size and modification time. `rsync -t`, `cp -p` or `tar` restore
//! an edited file's mtime, but the edit still moves its ctime. A stamp is only recorded once
//! every file's last change is [`SETTLED`] in the past: a change within the same tick of the
//! filesystem's clock as the load would leave the ctime as it was. Where the platform does
//! not give ctime and inode (not Unix), nothing is cached.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long ago a file's last change must be before its stamp is trusted: more than the
/// coarsest timestamp granularity of a common filesystem (FAT's 2 s).
pub(crate) const SETTLED: Duration = Duration::from_secs(2);

/// Identifies a version of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileStamp {
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
    changed_ns: i128,
}

/// Identifies a version of the files a data set is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    files: Vec<FileStamp>,
    /// Whether every file's last change was [`SETTLED`] ago when the stamp was taken.
    settled: bool,
}

impl Stamp {
    /// The stamp of `files` (opened handles, so that what is stamped is what is read), or
    /// `None` where the platform cannot tell a changed file (then nothing is cached).
    pub fn of(files: &[&std::fs::File]) -> std::io::Result<Option<Stamp>> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let mut stamps = Vec::with_capacity(files.len());
        for file in files {
            match file_stamp(file)? {
                Some(s) => stamps.push(s),
                None => return Ok(None),
            }
        }
        let settled = stamps
            .iter()
            .all(|s| s.changed_ns + SETTLED.as_nanos() as i128 <= now);
        Ok(Some(Stamp {
            files: stamps,
            settled,
        }))
    }
}

#[cfg(unix)]
fn file_stamp(file: &std::fs::File) -> std::io::Result<Option<FileStamp>> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Ok(Some(FileStamp {
        device: meta.dev(),
        inode: meta.ino(),
        size: meta.size(),
        modified_ns: ns(meta.mtime(), meta.mtime_nsec()),
        changed_ns: ns(meta.ctime(), meta.ctime_nsec()),
    }))
}

#[cfg(not(unix))]
fn file_stamp(_file: &std::fs::File) -> std::io::Result<Option<FileStamp>> {
    Ok(None)
}

#[derive(Serialize, Deserialize)]
struct Entry {
    /// What the hash covers (`Dataset::content_hash`'s domain tag).
    format: String,
    /// One per file the hash covers, in the order the loader stamps them.
    files: Vec<FileStamp>,
    /// The content hash, hex; recorded only after every input was found finite.
    content_sha256: String,
}

const FORMAT: &str = "wgfit.dataset.v1";

fn cache_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".wgfit-cache");
    path.with_file_name(name)
}

/// The content hash recorded for this version of the files, if any.
pub(crate) fn read(path: &Path, stamp: Option<&Stamp>) -> Option<[u8; 32]> {
    let stamp = stamp?;
    let bytes = std::fs::read(cache_path(path)).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    if entry.format != FORMAT || entry.files != stamp.files || entry.content_sha256.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, out) in hash.iter_mut().enumerate() {
        *out = u8::from_str_radix(entry.content_sha256.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// Records the content hash of files whose inputs were all found finite, if their stamp can
/// be trusted to change with them.
pub(crate) fn write(path: &Path, stamp: Option<&Stamp>, hash: [u8; 32]) {
    let Some(stamp) = stamp.filter(|s| s.settled) else {
        return;
    };
    let entry = Entry {
        format: FORMAT.into(),
        files: stamp.files.clone(),
        content_sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&entry) {
        // A read-only directory or a full disk costs a re-read next time, nothing more.
        let _ = crate::checkpoint::write_atomically(&cache_path(path), &bytes);
    }
}
