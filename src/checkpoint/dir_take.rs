//! Taking a backup directory (or object-store prefix) for one run: the marker that makes it
//! wgfit's, then the lock (local) or lease (object storage) that keeps other runs out.

use super::dir::{BackupDir, LOCK, MARKER, TMP_PREFIX};
use super::handle::DirHandle;
use super::place::{Hold, Place};
use super::remote::{LEASE, Lease, Location, Remote};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The contents of [`MARKER`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Marker {
    /// Always `wgfit-backup-dir`.
    format: String,
    /// 32 hex digits, random: what wgfit's own files in this directory carry.
    pub(super) id: String,
    /// Whether wgfit created the directory (it then removes it when it removes the backup).
    pub(super) created_dir: bool,
}

const MARKER_FORMAT: &str = "wgfit-backup-dir";

impl Marker {
    fn new(created_dir: bool) -> Marker {
        Marker {
            format: MARKER_FORMAT.into(),
            id: random_id(),
            created_dir,
        }
    }

    fn json(&self) -> Result<Vec<u8>> {
        let mut out =
            serde_json::to_vec_pretty(self).map_err(|e| Error::encoding("the marker", e))?;
        out.push(b'\n');
        Ok(out)
    }

    fn parse(bytes: &[u8]) -> Option<Marker> {
        let m: Marker = serde_json::from_slice(bytes).ok()?;
        let hex = m.id.len() == 32 && m.id.bytes().all(|b| b.is_ascii_hexdigit());
        (m.format == MARKER_FORMAT && hex).then_some(m)
    }
}

/// 128 random bits as hex, from the standard library's per-process random hash keys.
fn random_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let half = |salt: u64| RandomState::new().hash_one((salt, now, std::process::id()));
    format!("{:016x}{:016x}", half(1), half(2))
}

impl BackupDir {
    /// Takes `dir` for this process: creates it if missing, marks it as a wgfit backup if it
    /// is new or empty, refuses it if it is neither empty nor marked (changing nothing in
    /// it), and locks it. [`Error::BackupLocked`] when another run holds it. An object-store
    /// URL (`s3://bucket/prefix`, see [`Location`]) is taken the same way, with a lease.
    pub fn take(dir: &Path) -> Result<BackupDir> {
        match Location::parse(&dir.to_string_lossy())? {
            Location::Local(path) => BackupDir::take_local(&path),
            Location::Remote(url) => BackupDir::take_remote(&url),
        }
    }

    fn take_remote(url: &str) -> Result<BackupDir> {
        let remote = Arc::new(Remote::open(url)?);
        let place = Place::Remote(remote.clone());
        let names = place.names()?;
        let marked = names.iter().any(|n| n == MARKER);
        // A lease alone is what a removal interrupted after its marker went leaves.
        let empty = names.iter().all(|n| n == LEASE);
        if !marked && !empty {
            return Err(Error::NotABackupDir {
                dir: place.path().to_path_buf(),
                entries: names.len(),
                examples: names.into_iter().take(3).collect(),
            });
        }
        if !marked {
            // A conditional create: of two first runs racing, one marks.
            place.create_new(MARKER, &Marker::new(false).json()?)?;
        }
        let owner = random_id();
        let lease = Lease::take(remote.clone(), &owner)?;
        let marker = place
            .read(MARKER, 4096)?
            .as_deref()
            .and_then(Marker::parse)
            .ok_or_else(|| Error::corrupt(place.join(MARKER), "it is not a wgfit marker"))?;
        Ok(BackupDir::taken(
            place,
            marker,
            Hold::Lease(lease),
            Some(owner),
        ))
    }

    fn take_local(dir: &Path) -> Result<BackupDir> {
        let io = |e| Error::ckpt_io(dir, e);
        let (handle, created) = match DirHandle::create(dir).map_err(io)? {
            Some(handle) => (handle, true),
            None if dir.is_dir() => (DirHandle::open(dir).map_err(io)?, false),
            None => {
                return Err(Error::ckpt_io(
                    dir,
                    std::io::Error::other("it exists and is not a directory"),
                ));
            }
        };
        // Listed only when unmarked: a marked directory's listing grows with the run (its
        // history chunk files), and taking it must not.
        if !handle.exists(MARKER)? {
            let names = handle.names()?;
            // A lock file alone is what a removal interrupted after its marker went leaves.
            if !names.iter().all(|n| n == LOCK) {
                return Err(Error::NotABackupDir {
                    dir: dir.to_path_buf(),
                    entries: names.len(),
                    examples: names.into_iter().take(3).collect(),
                });
            }
            // Created with O_EXCL: of two first runs racing, one marks and both then lock.
            let marker = Marker::new(created);
            handle
                .create_new(MARKER, &marker.json()?)
                .map_err(|e| Error::ckpt_io(handle.join(MARKER), e))?;
            handle.sync()?;
        }
        let Some(lock) = handle.lock(LOCK)? else {
            return Err(Error::BackupLocked {
                dir: dir.to_path_buf(),
            });
        };
        let marker = match handle
            .read(MARKER, 4096)?
            .as_deref()
            .and_then(Marker::parse)
        {
            Some(marker) => marker,
            None => {
                // A first run killed while writing the marker: the name is wgfit's own, and
                // nothing was committed under it yet.
                let marker = Marker::new(false);
                let tmp = format!("{TMP_PREFIX}marker");
                let _ = handle.remove(&tmp);
                handle
                    .write_atomic(MARKER, &tmp, &[&marker.json()?], true)
                    .map_err(|e| Error::ckpt_io(handle.join(MARKER), e))?;
                handle.sync()?;
                marker
            }
        };
        Ok(BackupDir::taken(
            Place::Local(handle),
            marker,
            Hold::Lock(lock),
            None,
        ))
    }
}
