//! Where a backup's files live: a local directory (through its handle) or a prefix in an
//! object store. The commit logic (`dir.rs`) and the restore (`restore.rs`) see one set of
//! operations; what differs is how each is made atomic and durable (docs/FORMAT.md).

use super::format;
use super::handle::{DirHandle, Held};
use super::remote::{Lease, LeaseWatch, PutOutcome, Remote};
use crate::error::{Error, Result};
use object_store::PutMode;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files up to this size are read without looking at how much of them is on disk.
const SPARSE_CHECK_FROM: u64 = 1 << 20;

/// A backup's directory or object-store prefix.
#[derive(Debug)]
pub(crate) enum Place {
    /// A local directory.
    Local(DirHandle),
    /// An object-store prefix.
    Remote(Arc<Remote>),
}

/// A weights file opened by [`Place::open_weights`].
pub(crate) enum Weights {
    /// A local file of the expected length, to be read.
    File(std::fs::File),
    /// An object's bytes.
    Bytes(Vec<u8>),
}

/// The exclusive hold of a run on a backup: a lock file, or a lease object.
#[derive(Debug)]
pub(crate) enum Hold {
    Lock(#[allow(dead_code)] Held),
    Lease(Lease),
}

impl Hold {
    /// Called before anything is written into the backup: on object storage, renews the
    /// lease (a conditional PUT), so that a run whose lease was taken over (paused, or cut
    /// off from the store, for longer than it lasts) writes nothing more. A lock needs no
    /// check: the OS holds it for the process.
    pub fn confirm(&self) -> Result<()> {
        match self {
            Hold::Lease(lease) => lease.renew(),
            Hold::Lock(_) => Ok(()),
        }
    }

    /// On object storage, what tells the training loop that the lease was lost.
    pub fn watch(&self) -> Option<LeaseWatch> {
        match self {
            Hold::Lease(lease) => Some(lease.watch()),
            Hold::Lock(_) => None,
        }
    }
}

impl Place {
    /// Opens an existing directory, or reaches an object-store prefix, to read it.
    pub fn open(location: &Path) -> Result<Place> {
        match super::remote::Location::parse(&location.to_string_lossy())? {
            super::remote::Location::Local(path) => DirHandle::open(&path)
                .map(Place::Local)
                .map_err(|e| Error::ckpt_io(&path, e)),
            super::remote::Location::Remote(url) => {
                Ok(Place::Remote(Arc::new(Remote::open(&url)?)))
            }
        }
    }

    /// The directory or URL, for messages.
    pub fn path(&self) -> &Path {
        match self {
            Place::Local(dir) => dir.path(),
            Place::Remote(remote) => Path::new(remote.url()),
        }
    }

    /// `path/name`, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        match self {
            Place::Local(dir) => dir.join(name),
            Place::Remote(remote) => remote.join(name),
        }
    }

    /// The names in it, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        match self {
            Place::Local(dir) => dir.names(),
            Place::Remote(remote) => remote.names(),
        }
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        match self {
            Place::Local(dir) => dir.exists(name),
            Place::Remote(remote) => Ok(remote.head(name)?.is_some()),
        }
    }

    /// Reads `name` whole (a regular file, locally), refusing one longer than `limit` before
    /// anything is allocated. `Ok(None)` when it does not exist. A read of `latest.json` from
    /// an object store also remembers its version: the next commit is conditional on it.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        match self {
            Place::Local(dir) => dir.read(name, limit),
            Place::Remote(remote) => {
                let read = remote.read(name, limit)?;
                if name == super::LATEST {
                    remote.saw_sidecar(name, read.as_ref().map(|(_, v)| v.clone()));
                }
                Ok(read.map(|(bytes, _)| bytes))
            }
        }
    }

    /// Opens the weights file `name`, which its sidecar says is `expected` bytes long: a
    /// missing file, another length, or (locally) a sparse file is a corrupt checkpoint. A
    /// local file is opened for the caller to read; an object is read whole.
    pub fn open_weights(&self, name: &str, expected: u64) -> Result<Weights> {
        let path = self.join(name);
        let wrong_length = |len: u64| {
            Error::corrupt(
                &path,
                format!("it is {len} bytes, the sidecar recorded {expected}"),
            )
        };
        match self {
            Place::Local(dir) => {
                let file = dir
                    .open_regular(name)?
                    .ok_or_else(|| Error::corrupt(&path, "it is missing"))?;
                let meta = file.metadata().map_err(|e| Error::ckpt_io(&path, e))?;
                let len = meta.len();
                if len != expected {
                    return Err(wrong_length(len));
                }
                // wgfit writes every byte of its files; a file with most of its length in
                // holes claims a size that is not on disk (compressing file systems stay well
                // above an eighth).
                let allocated = meta.blocks().saturating_mul(512);
                if len > SPARSE_CHECK_FROM && allocated.saturating_mul(8) < len {
                    return Err(Error::corrupt(
                        &path,
                        format!(
                            "it is sparse: {allocated} of its {len} bytes are on disk, and wgfit never writes such files"
                        ),
                    ));
                }
                Ok(Weights::File(file))
            }
            Place::Remote(remote) => {
                let len = match remote.head(name)? {
                    Some((len, _)) => len,
                    None => return Err(Error::corrupt(&path, "it is missing")),
                };
                if len != expected {
                    return Err(wrong_length(len));
                }
                match remote.read(name, expected)? {
                    Some((bytes, _)) => Ok(Weights::Bytes(bytes)),
                    None => Err(Error::corrupt(&path, "it vanished while being read")),
                }
            }
        }
    }

    /// The backup id a weights file's header records (locally, only a regular file's).
    pub fn weights_backup_id(&self, name: &str) -> Option<String> {
        match self {
            Place::Local(dir) => {
                let file = dir.open_regular(name).ok()??;
                format::weights_backup_id(|start, len| {
                    let mut f = &file;
                    f.seek(SeekFrom::Start(start)).ok()?;
                    let mut bytes = vec![0; len as usize];
                    f.read_exact(&mut bytes).ok()?;
                    Some(bytes)
                })
            }
            Place::Remote(remote) => format::weights_backup_id(|start, len| {
                remote
                    .read_range(name, start, start + len)
                    .ok()?
                    .filter(|b| b.len() as u64 == len)
            }),
        }
    }

    /// Writes `name` atomically, replacing it (`replace`) or only where nothing of that name
    /// exists. Locally through the temporary file `tmp`, fsynced and renamed; on an object
    /// store as one PUT (a multipart upload for large files). Returns whether `O_DIRECT`
    /// carried the bytes.
    pub fn write(&self, name: &str, tmp: &str, pieces: &[&[u8]], replace: bool) -> Result<bool> {
        match self {
            Place::Local(dir) => {
                if dir.exists(tmp)? {
                    dir.remove(tmp)?;
                }
                dir.write_atomic(name, tmp, pieces, replace)
                    .map_err(|e| Error::ckpt_io(dir.join(name), e))
            }
            Place::Remote(remote) => {
                // The run's own names under its lease (a weights file's chosen after checking
                // it is free, a history chunk's its content): the PUT need not be conditional,
                // which lets a large one go up in parts. Sidecars go through `write_sidecar`
                // and `commit_pointer`.
                let _ = replace;
                remote.put_new(name, pieces).map(|_| false)
            }
        }
    }

    /// Writes the sidecar `name` (`previous.json`), replacing it: locally as `write` does; on
    /// an object store, after renewing the lease, a PUT conditional on the version this run
    /// last wrote, so that a stale copy of an earlier write fails when it lands
    /// (`Remote::put_sidecar`).
    pub fn write_sidecar(&self, hold: &Hold, name: &str, tmp: &str, bytes: &[u8]) -> Result<()> {
        self.replace_sidecar(hold, name, tmp, bytes, false)
    }

    /// Commits `bytes` as the pointer `name` (`latest.json`): locally a replacing write; on
    /// an object store a PUT conditional on the version this run last saw, after renewing
    /// the lease, so that a run whose lease was taken over cannot commit.
    pub fn commit_pointer(&self, hold: &Hold, name: &str, tmp: &str, bytes: &[u8]) -> Result<()> {
        self.replace_sidecar(hold, name, tmp, bytes, true)
    }

    /// `write_sidecar` and `commit_pointer`: on an object store, the lease renewed, then the
    /// conditional PUT; a `commit` takes another writer's version as a lost lease, anything
    /// else is written over it once the lease is renewed again.
    fn replace_sidecar(
        &self,
        hold: &Hold,
        name: &str,
        tmp: &str,
        bytes: &[u8],
        commit: bool,
    ) -> Result<()> {
        match (self, hold) {
            (Place::Remote(remote), Hold::Lease(lease)) => {
                lease.renew()?;
                let renew = || lease.renew();
                let over_another: Option<&dyn Fn() -> Result<()>> =
                    if commit { None } else { Some(&renew) };
                remote.put_sidecar(name, bytes, over_another)
            }
            _ => self.write(name, tmp, &[bytes], true).map(|_| ()),
        }
    }

    /// Creates `name` with `bytes` if it does not exist (`Ok(false)` if it does), durably.
    pub fn create_new(&self, name: &str, bytes: &[u8]) -> Result<bool> {
        match self {
            Place::Local(dir) => dir
                .create_new(name, bytes)
                .map_err(|e| Error::ckpt_io(dir.join(name), e)),
            Place::Remote(remote) => match remote.put(name, &[bytes], PutMode::Create) {
                PutOutcome::Exists => Ok(false),
                other => other.written(remote, name).map(|_| true),
            },
        }
    }

    /// Removes `name` if it is there.
    pub fn remove(&self, name: &str) -> Result<()> {
        match self {
            Place::Local(dir) => dir.remove(name).map(|_| ()),
            Place::Remote(remote) => {
                if is_sidecar(name) {
                    // The next write creates it anew.
                    remote.saw_sidecar(name, None);
                }
                remote.remove(name)
            }
        }
    }

    /// Makes creations, renames and removals durable (an object store's are at once).
    pub fn sync(&self) -> Result<()> {
        match self {
            Place::Local(dir) => dir.sync(),
            Place::Remote(_) => Ok(()),
        }
    }

    /// Whether another run holds it now (a lock held, or a lease unexpired).
    pub fn is_held(&self, lock: &str) -> Result<bool> {
        match self {
            Place::Local(dir) => dir.is_locked(lock),
            Place::Remote(remote) => super::remote::is_leased(remote),
        }
    }
}

/// Whether `name` is a sidecar, whose writes on an object store are conditional on the
/// version this run last saw.
fn is_sidecar(name: &str) -> bool {
    name == super::LATEST || name == super::PREVIOUS
}
