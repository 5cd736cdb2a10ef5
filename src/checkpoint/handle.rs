//! One backup directory, opened once. Every file is reached relative to its handle, never
//! through a symbolic link, and only regular files are read or replaced: nothing here can
//! reach outside the directory or wait on a FIFO (docs/FORMAT.md, "Ownership").

use super::direct_write;
use super::record::{self, Op};
use crate::error::{Error, Result};
use rustix::fs::{self as rfs, AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// An open directory and the path it was opened by (for messages only).
#[derive(Debug)]
pub(crate) struct DirHandle {
    fd: OwnedFd,
    path: PathBuf,
}

/// A held lock: the lock file stays locked while this lives.
#[derive(Debug)]
pub(crate) struct Held {
    fd: OwnedFd,
}

impl Drop for Held {
    /// Unlocks before closing. A flock belongs to the open file description, which a child
    /// process forked by any thread of this process shares until it execs (or for good, if it
    /// never does): closing our descriptor alone would leave the directory locked after the
    /// run ended, and a caller that inspects it at once would find it "in use by another run".
    fn drop(&mut self) {
        let _ = rfs::flock(&self.fd, FlockOperation::Unlock);
    }
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "an unknown kind of file",
    }
}

impl DirHandle {
    /// Opens an existing directory (the path the user named may pass through links; what is
    /// inside it is never followed).
    pub fn open(path: &Path) -> std::io::Result<DirHandle> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rfs::open(path, flags, Mode::empty())?;
        Ok(DirHandle {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Creates the directory (and missing parents) and opens it. `Ok(None)` when it exists.
    pub fn create(path: &Path) -> std::io::Result<Option<DirHandle>> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        match rfs::mkdir(path, Mode::from_raw_mode(0o777)) {
            Ok(()) => {
                // The new entry must be durable before anything committed inside it is.
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                DirHandle::open(parent)?.sync_io()?;
                DirHandle::open(path).map(Some)
            }
            Err(Errno::EXIST) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn io(&self, name: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        let path = self.join(name);
        move |e| Error::ckpt_io(path, e)
    }

    /// The names in the directory, sorted (`.` and `..` left out).
    pub fn names(&self) -> Result<Vec<String>> {
        let fail = |e: Errno| Error::ckpt_io(&self.path, e.into());
        let mut names = Vec::new();
        for entry in rfs::Dir::read_from(&self.fd).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Whether `name` exists, of whatever kind (a dangling link counts).
    pub fn exists(&self, name: &str) -> Result<bool> {
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::ckpt_io(self.join(name), e.into())),
        }
    }

    /// Opens `name` for reading if it is a regular file; `Ok(None)` when it does not exist.
    /// A link, FIFO, device or directory is refused without being followed or waited on.
    pub fn open_regular(&self, name: &str) -> Result<Option<File>> {
        // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(self.not_regular(name, FileType::Symlink)),
            Err(e) => return Err(Error::ckpt_io(self.join(name), e.into())),
        };
        let stat = rfs::fstat(&fd).map_err(|e| Error::ckpt_io(self.join(name), e.into()))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Ok(Some(File::from(fd))),
            other => Err(self.not_regular(name, other)),
        }
    }

    fn not_regular(&self, name: &str, kind: FileType) -> Error {
        Error::NotRegularFile {
            path: self.join(name),
            kind: describe(kind).into(),
        }
    }

    /// Reads the regular file `name` whole, refusing one longer than `limit` bytes before
    /// anything is allocated. `Ok(None)` when it does not exist.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(file) = self.open_regular(name)? else {
            return Ok(None);
        };
        let len = file.metadata().map_err(self.io(name))?.len();
        if len > limit {
            return Err(Error::corrupt(
                self.join(name),
                format!("it is {len} bytes, more than the {limit} it may have"),
            ));
        }
        self.read_len(name, file, len).map(Some)
    }

    /// Reads exactly `len` bytes of `file` (its length, checked by the caller), allocating
    /// through `try_reserve` so that memory the machine lacks is an error, not an abort.
    pub fn read_len(&self, name: &str, file: File, len: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let size = usize::try_from(len).unwrap_or(usize::MAX);
        bytes.try_reserve_exact(size).map_err(|_| {
            Error::corrupt(
                self.join(name),
                format!("it is {len} bytes, more than this machine can hold in memory"),
            )
        })?;
        file.take(len)
            .read_to_end(&mut bytes)
            .map_err(self.io(name))?;
        if bytes.len() as u64 != len {
            return Err(Error::corrupt(
                self.join(name),
                format!("it shrank to {} bytes while being read", bytes.len()),
            ));
        }
        Ok(bytes)
    }

    /// Writes `pieces` end to end as `name`, atomically: a new file `tmp` (created, never
    /// opened through a link), its bytes (past the page cache when large; see
    /// `direct_write`), fsync, rename over `name`. Returns whether `O_DIRECT` carried the
    /// bytes. On error the temporary file is removed and `name` is untouched. The caller
    /// fsyncs the directory when the rename must be durable.
    pub fn write_atomic(
        &self,
        name: &str,
        tmp: &str,
        pieces: &[&[u8]],
        replace: bool,
    ) -> std::io::Result<bool> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // 0666 less the umask: what File::create gives.
        let fd = rfs::openat(&self.fd, tmp, flags, Mode::from_raw_mode(0o666))?;
        let mut file = File::from(fd);
        let ino = record::ino(&file);
        record::push(|| Op::Create {
            name: tmp.into(),
            ino,
        });
        let written = self.fill_and_rename(&mut file, ino, name, tmp, pieces, replace);
        if written.is_err() {
            let _ = rfs::unlinkat(&self.fd, tmp, AtFlags::empty());
        }
        written
    }

    fn fill_and_rename(
        &self,
        file: &mut File,
        ino: u64,
        name: &str,
        tmp: &str,
        pieces: &[&[u8]],
        replace: bool,
    ) -> std::io::Result<bool> {
        let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        let direct = total >= direct_write::MIN_BYTES && direct_write::write(file, pieces)?;
        if !direct {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut *file);
            for piece in pieces {
                out.write_all(piece)?;
            }
            out.flush()?;
        }
        record::push(|| Op::Write {
            ino,
            bytes: pieces.concat(),
        });
        file.sync_all()?;
        record::push(|| Op::SyncFile { ino });
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        rfs::renameat_with(&self.fd, tmp, &self.fd, name, flags)?;
        record::push(|| Op::Rename {
            from: tmp.into(),
            to: name.into(),
        });
        Ok(direct)
    }

    /// Creates `name` with `bytes` if it does not exist (`Ok(false)` if it does), fsynced.
    pub fn create_new(&self, name: &str, bytes: &[u8]) -> std::io::Result<bool> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o666)) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(true)
    }

    /// Removes `name` (never a directory); `Ok(false)` when it was not there.
    pub fn remove(&self, name: &str) -> Result<bool> {
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => {
                record::push(|| Op::Unlink { name: name.into() });
                Ok(true)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::ckpt_io(self.join(name), e.into())),
        }
    }

    fn sync_io(&self) -> std::io::Result<()> {
        Ok(rfs::fsync(&self.fd)?)
    }

    /// Makes the directory's entries (creations, renames, removals) durable.
    pub fn sync(&self) -> Result<()> {
        rfs::fsync(&self.fd).map_err(|e| Error::ckpt_io(&self.path, e.into()))?;
        record::push(|| Op::SyncDir);
        Ok(())
    }

    /// Whether another process holds the lock on `name` (which is only read, never created).
    pub fn is_locked(&self, name: &str) -> Result<bool> {
        let Some(file) = self.open_regular(name)? else {
            return Ok(false);
        };
        match rfs::flock(&file, FlockOperation::NonBlockingLockShared) {
            // Unlocked at once, not at close: see `Held`'s drop.
            Ok(()) => {
                let _ = rfs::flock(&file, FlockOperation::Unlock);
                Ok(false)
            }
            Err(Errno::WOULDBLOCK) => Ok(true),
            Err(e) => Err(Error::ckpt_io(self.join(name), e.into())),
        }
    }

    /// Takes the exclusive lock on the regular file `name` (created if missing), without
    /// waiting. `Ok(None)` when another process holds it.
    ///
    /// A lock holder may unlink the file before it lets go (when it removes the backup), so
    /// a lock is only ours once the name still leads to the inode we locked; else we retry
    /// with whatever the name leads to now.
    pub fn lock(&self, name: &str) -> Result<Option<Held>> {
        for _ in 0..16 {
            let flags = OFlags::RDONLY
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC;
            let fd = match rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o666)) {
                Ok(fd) => fd,
                Err(Errno::LOOP) => return Err(self.not_regular(name, FileType::Symlink)),
                Err(e) => return Err(Error::ckpt_io(self.join(name), e.into())),
            };
            let io = |e: Errno| Error::ckpt_io(self.join(name), e.into());
            let ours = rfs::fstat(&fd).map_err(io)?;
            let kind = FileType::from_raw_mode(ours.st_mode);
            if kind != FileType::RegularFile {
                return Err(self.not_regular(name, kind));
            }
            match rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => return Ok(None),
                Err(e) => return Err(io(e)),
            }
            match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(now) if now.st_ino == ours.st_ino && now.st_dev == ours.st_dev => {
                    return Ok(Some(Held { fd }));
                }
                Ok(_) | Err(Errno::NOENT) => continue,
                Err(e) => return Err(io(e)),
            }
        }
        Err(Error::ckpt_io(
            self.join(name),
            std::io::Error::other("the lock file keeps being replaced by another process"),
        ))
    }
}
