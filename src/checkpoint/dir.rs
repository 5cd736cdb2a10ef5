//! A backup directory: its lock, crash-safe commits, verified loads and cleanup.
//!
//! Commit order (DESIGN.md): weights to a temporary name, fsync, rename; with
//! double_checkpoint the last committed sidecar to `previous.json` the same way; then the new
//! sidecar the same way, and an fsync of the directory. The rename of `latest.json` is the
//! commit: a crash at any instant leaves the last committed state readable.

use super::format::{self, Sidecar, WeightsRef};
use crate::error::{Error, Result};
use crate::state::{StateMeta, TrainState};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The commit point.
pub const LATEST: &str = "latest.json";
/// The state before the latest, with double_checkpoint.
pub const PREVIOUS: &str = "previous.json";
/// Held (flock) while a fit uses the directory.
pub const LOCK: &str = ".lock";
/// Prefix of files being written.
pub const TMP_PREFIX: &str = ".wgfit-tmp-";

/// A backup directory held by this process.
#[derive(Debug)]
pub struct BackupDir {
    dir: PathBuf,
    /// Open while the directory is ours; the OS releases the lock if the process dies.
    lock: Option<File>,
    /// The bytes of the last committed sidecar (becomes `previous.json` at the next commit).
    last_committed: Option<Vec<u8>>,
    /// Whether this directory was created by wgfit.
    pub created: bool,
    /// Whether opening it created the lock file (removed again by [`BackupDir::abandon`]).
    lock_created: bool,
}

/// A state read back from disk, with where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The sidecar it was read from (`latest.json` or `previous.json`).
    pub sidecar_path: PathBuf,
    /// Its sidecar.
    pub sidecar: Sidecar,
    /// Its sidecar's bytes.
    pub sidecar_bytes: Vec<u8>,
    /// The state.
    pub state: TrainState,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::ckpt_io(path, e)
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256_hex_of(&[bytes])
}

/// The SHA-256 of pieces laid end to end, as lowercase hex.
fn sha256_hex_of(pieces: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for piece in pieces {
        hasher.update(piece);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads at most `limit` bytes of a file; a longer file is an error, not an allocation.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    if len > limit {
        return Err(Error::corrupt(
            path,
            format!("it is {len} bytes, more than the {limit} a checkpoint file may have"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit).read_to_end(&mut bytes).map_err(io(path))?;
    Ok(bytes)
}

/// Verifies a sidecar and reads its state. Never modifies anything.
pub fn load_sidecar(dir: &Path, name: &str) -> Result<Loaded> {
    let path = dir.join(name);
    let bytes = read_bounded(&path, format::MAX_SIDECAR_BYTES)?;
    let sidecar = Sidecar::parse(&bytes, &path)?;
    let weights_path = dir.join(&sidecar.weights.file);
    let weights = read_weights(&weights_path, &sidecar.weights)?;
    // Hash and decode side by side; the checksum's verdict comes first. Decoding unverified
    // bytes is safe: the decoder treats its input as hostile (and is fuzzed as such).
    let (sha, state) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| sha256_hex(&weights));
        let state = format::state_of(&sidecar, &weights, &weights_path);
        (hashing.join(), state)
    });
    let sha = sha.map_err(|_| Error::config("restore", "the hashing thread panicked"))?;
    check_sha(&weights_path, &sha, &sidecar.weights)?;
    let state = state?;
    Ok(Loaded {
        sidecar_path: path,
        sidecar,
        sidecar_bytes: bytes,
        state,
    })
}

/// Reads a weights file and checks its length against the sidecar.
fn read_weights(path: &Path, expected: &WeightsRef) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.len() != expected.bytes {
        return Err(Error::corrupt(
            path,
            format!(
                "it is {} bytes, the sidecar recorded {}",
                meta.len(),
                expected.bytes
            ),
        ));
    }
    read_bounded(path, expected.bytes)
}

/// Checks a weights file's SHA-256 against the sidecar.
fn check_sha(path: &Path, sha: &str, expected: &WeightsRef) -> Result<()> {
    if sha != expected.sha256 {
        return Err(Error::corrupt(
            path,
            format!(
                "SHA-256 {sha} does not match the recorded {}",
                expected.sha256
            ),
        ));
    }
    Ok(())
}

/// Writes `pieces` end to end to `dir/name` atomically (see [`write_atomic_as`]).
fn write_atomic(dir: &Path, name: &str, pieces: &[&[u8]]) -> Result<()> {
    let target = dir.join(name);
    write_pieces_atomic(&target, pieces, TMP_PREFIX).map_err(|e| Error::ckpt_io(&target, e))
}

/// The error inside tempfile's "… at path <temporary file>" wrapper, as its kind (tempfile
/// keeps the OS error private; the kind says the same: read-only, no space, no permission).
fn without_temp_path(e: std::io::Error) -> std::io::Error {
    match e.kind() {
        std::io::ErrorKind::Other => e,
        kind if e.get_ref().is_some() => std::io::Error::from(kind),
        _ => e,
    }
}

/// Writes `bytes` to `target` atomically: a temporary file named `<prefix>…` beside it,
/// fsync, rename. The file gets the permissions `File::create` would give (the umask
/// applies), not the temporary file's 0600. On error the temporary file is removed.
pub(crate) fn write_atomic_as(target: &Path, bytes: &[u8], prefix: &str) -> std::io::Result<()> {
    write_pieces_atomic(target, &[bytes], prefix)
}

/// [`write_atomic_as`] for a file given as pieces laid end to end (a header and tensors
/// borrowed from a mapped buffer): small pieces are gathered in a buffer, large ones go
/// straight from where they lie to the kernel.
fn write_pieces_atomic(target: &Path, pieces: &[&[u8]], prefix: &str) -> std::io::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Errors name the target (the caller adds it), never the temporary path, which is gone
    // after a failure: hence the unwrapping here, and writes through the plain file.
    let mut tmp = builder.tempfile_in(dir).map_err(without_temp_path)?;
    let bytes: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let direct = bytes >= super::direct_write::MIN_BYTES
        && super::direct_write::write(tmp.path(), pieces).map_err(without_temp_path)?;
    if !direct {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        for piece in pieces {
            out.write_all(piece)?;
        }
        out.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(target).map_err(|e| e.error)?;
    Ok(())
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl BackupDir {
    /// Takes the directory for this process: creates it if missing and locks it.
    pub fn open(dir: &Path) -> Result<BackupDir> {
        // A directory holding nothing but what a killed first run left (a lock, a partial
        // write) counts as wgfit's own, so that a successful rerun removes it too.
        let created = !dir.exists() || only_uncommitted_leftovers(dir)?;
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        } else if !dir.is_dir() {
            return Err(Error::ckpt_io(
                dir,
                std::io::Error::other("it exists and is not a directory"),
            ));
        }
        let lock_path = dir.join(LOCK);
        let lock_created = !lock_path.exists();
        if lock_created {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io(&lock_path))?;
        }
        // Held through a read-only descriptor: flock needs no write access, and an open
        // writable file would keep the file system from being remounted read-only.
        let lock = File::open(&lock_path).map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::BackupLocked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::ckpt_io(&lock_path, e)),
        }
        Ok(BackupDir {
            dir: dir.to_path_buf(),
            lock: Some(lock),
            last_committed: None,
            created,
            lock_created,
        })
    }

    /// Releases the directory after a failed restore, leaving it exactly as it was found.
    pub fn abandon(mut self) {
        self.lock = None;
        if self.lock_created {
            let _ = fs::remove_file(self.dir.join(LOCK));
        }
        if self.created {
            let _ = fs::remove_dir(&self.dir);
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether a sidecar exists.
    pub fn has_sidecar(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    /// Loads `name` and remembers it as the last committed state.
    pub fn load(&mut self, name: &str) -> Result<Loaded> {
        let loaded = load_sidecar(&self.dir, name)?;
        self.last_committed = Some(loaded.sidecar_bytes.clone());
        self.created |= loaded.sidecar.created_backup_dir;
        Ok(loaded)
    }

    /// Names referenced by the committed sidecars (unreadable ones reference nothing).
    fn referenced(&self) -> Vec<String> {
        [LATEST, PREVIOUS]
            .iter()
            .filter_map(|s| read_bounded(&self.dir.join(s), format::MAX_SIDECAR_BYTES).ok())
            .filter_map(|b| serde_json::from_slice::<Sidecar>(&b).ok())
            .map(|s| s.weights.file)
            .collect()
    }

    /// Commits a state: `weights` are its safetensors file as pieces laid end to end (see
    /// `EncodedFile`), `meta` its host-side part. After this returns,
    /// `latest.json` describes it.
    pub fn commit(
        &mut self,
        weights: &[&[u8]],
        meta: &StateMeta,
        fingerprint: &crate::state::Fingerprint,
        double_checkpoint: bool,
    ) -> Result<()> {
        let p = meta.position;
        let referenced = self.referenced();
        // Never overwrite a file a committed sidecar points to: a crash would leave it torn.
        let file = std::iter::once(format!("ckpt-{}.safetensors", p.global_step))
            .chain((1..).map(|k| format!("ckpt-{}-{k}.safetensors", p.global_step)))
            .find(|name| !referenced.contains(name))
            .unwrap_or_default();
        // Hashing and writing each take a pass over the bytes; they run side by side.
        let (written, sha256) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| sha256_hex_of(weights));
            (write_atomic(&self.dir, &file, weights), hashing.join())
        });
        written?;
        let sha256 = sha256.map_err(|_| Error::config("backup", "the hashing thread panicked"))?;

        let sidecar = Sidecar {
            format: format::FORMAT.into(),
            version: format::VERSION,
            epoch: p.epoch,
            step: p.step,
            global_step: p.global_step,
            weights: WeightsRef {
                file,
                bytes: weights.iter().map(|p| p.len() as u64).sum(),
                sha256,
            },
            fingerprint: fingerprint.clone(),
            seed: meta.seed,
            optimizer_steps: meta.optimizer_steps,
            learning_rate: meta.learning_rate,
            history: meta.history.clone(),
            callbacks: meta.callbacks.clone(),
            created_backup_dir: self.created,
            saved_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let json = sidecar.to_json();
        if double_checkpoint && let Some(last) = &self.last_committed {
            write_atomic(&self.dir, PREVIOUS, &[last])?;
        }
        write_atomic(&self.dir, LATEST, &[&json])?;
        fsync_dir(&self.dir)?;
        self.last_committed = Some(json);
        if !double_checkpoint {
            remove_if_exists(&self.dir.join(PREVIOUS))?;
        }
        self.remove_strays()
    }

    /// Removes temporary files and weights files no committed sidecar references.
    pub fn remove_strays(&self) -> Result<()> {
        let referenced = self.referenced();
        for entry in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with(TMP_PREFIX) || format::check_file_name(&name).is_ok();
            if ours && !referenced.contains(&name) {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Removes every file wgfit writes here, and the directory if wgfit created it and
    /// nothing else is left in it.
    pub fn remove_all(&mut self) -> Result<()> {
        for name in [LATEST, PREVIOUS] {
            remove_if_exists(&self.dir.join(name))?;
        }
        self.remove_strays()?;
        remove_if_exists(&self.dir.join(LOCK))?;
        self.lock = None;
        self.last_committed = None;
        if self.created {
            // Fails harmlessly if the user put other files here.
            let _ = fs::remove_dir(&self.dir);
        }
        Ok(())
    }

    /// Forgets every committed state (after a mismatch the user asked to discard).
    pub fn discard(&mut self) -> Result<()> {
        for name in [LATEST, PREVIOUS] {
            remove_if_exists(&self.dir.join(name))?;
        }
        self.last_committed = None;
        self.remove_strays()
    }
}

/// Whether `dir` holds only a lock file and uncommitted writes of wgfit (or nothing).
fn only_uncommitted_leftovers(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        return Ok(false);
    }
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name();
        let name = name.to_string_lossy();
        let leftover =
            name == LOCK || name.starts_with(TMP_PREFIX) || format::check_file_name(&name).is_ok();
        if !leftover {
            return Ok(false);
        }
    }
    Ok(true)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::ckpt_io(path, e)),
    }
}
