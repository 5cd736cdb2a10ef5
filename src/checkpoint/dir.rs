//! A backup directory (or object-store prefix) held by one run (taken in `dir_take.rs`:
//! marker, and lock or lease): crash-safe commits, and removing only what wgfit provably
//! wrote.
//!
//! Commit order (docs/FORMAT.md, "Commit protocol"): the weights to a temporary name, fsync,
//! rename, fsync of the directory; the new sidecar is parsed back; with double_checkpoint
//! the last committed sidecar to `previous.json` the same way; the new sidecar to
//! `latest.json` the same way; an fsync of the directory. The rename of `latest.json` is the
//! commit. Only then are files no committed sidecar references removed. On object storage
//! each write is one PUT, the sidecars' conditional (the commit's on the version of
//! `latest.json` this run last saw; `place.rs`).

use super::dir_take::Marker;
use super::format::{self, Sidecar, WeightsRef};
use super::handle::DirHandle;
use super::history_chunks::{self, HistoryChunks, HistoryRecord};
use super::place::{Hold, Place};
use super::remote::LeaseWatch;
use super::restore::Loaded;
use crate::checksum;
use crate::error::{Error, Result};
use crate::state::{Fingerprint, StateMeta};
use std::collections::HashSet;
use std::path::Path;

/// The commit point.
pub const LATEST: &str = "latest.json";
/// The state before the latest, with double_checkpoint.
pub const PREVIOUS: &str = "previous.json";
/// The marker that makes a directory a wgfit backup directory.
pub const MARKER: &str = ".wgfit-backup";
/// Held (flock) while a run uses the directory.
pub(crate) const LOCK: &str = ".lock";
/// Prefix of files being written (followed by the directory's id).
pub(crate) const TMP_PREFIX: &str = ".wgfit-tmp-";
/// The lease object of a backup on object storage.
pub(crate) use super::remote::LEASE;

/// A check of a state's bytes, run as they are hashed (see [`BackupDir::commit`]).
pub(crate) type WeightsCheck<'a> = checksum::BlockCheck<'a, Error>;

/// A backup directory taken by this process: marked as wgfit's, locked (or leased, on an
/// object store) until dropped.
#[derive(Debug)]
pub struct BackupDir {
    place: Place,
    marker: Marker,
    /// The lock (the OS releases it if the process dies) or lease (it expires).
    hold: Hold,
    /// The bytes of the last committed sidecar (becomes `previous.json` at the next commit).
    last_committed: Option<Vec<u8>>,
    /// Superseded save points counted by the state this run resumed from.
    superseded_before: u64,
    /// On object storage, until this run has fenced off the commits of earlier writers still
    /// on their way (before its first write or removal; a run that only reads, or refuses,
    /// changes nothing): the token it fences with, its lease owner id.
    fence_token: Option<String>,
    /// On object storage with no `latest.json` when this run fenced: an earlier writer's first
    /// commit may still land, naming its weights, so none is swept until this run's own first
    /// commit has made that impossible.
    sweep_deferred: bool,
    /// The history chunk files of this run's history, and the chain links seen.
    chunks: HistoryChunks,
    /// When this process's newest commit became durable.
    committed_at: Option<std::time::Instant>,
}

impl BackupDir {
    /// A directory just taken (`dir_take.rs`): nothing committed by this run yet.
    pub(super) fn taken(
        place: Place,
        marker: Marker,
        hold: Hold,
        fence_token: Option<String>,
    ) -> BackupDir {
        BackupDir {
            place,
            marker,
            hold,
            last_committed: None,
            superseded_before: 0,
            fence_token,
            sweep_deferred: false,
            committed_at: None,
            chunks: HistoryChunks::default(),
        }
    }

    /// The directory (or the object-store URL).
    pub fn path(&self) -> &Path {
        self.place.path()
    }

    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// The id wgfit's files in this directory carry.
    pub fn id(&self) -> &str {
        &self.marker.id
    }

    /// Superseded save points counted by the state this run resumed from.
    pub fn superseded_before(&self) -> u64 {
        self.superseded_before
    }

    /// Remembers a restored state as the last committed one (taking its history chunk
    /// references).
    pub(crate) fn adopt(&mut self, loaded: &mut Loaded) {
        self.last_committed = Some(loaded.sidecar_bytes.clone());
        self.superseded_before = loaded.sidecar.superseded_saves;
        let chain = std::mem::take(&mut loaded.history_chunks);
        self.chunks.adopt(loaded.state.meta.history.sealed(), chain);
    }

    /// Weights and history chunk files the committed sidecars reference; `None` when a
    /// sidecar, or a chunk file one references, exists that cannot be read or parsed (then
    /// what it references is unknown, and nothing may go).
    fn referenced(&mut self) -> Option<HashSet<String>> {
        let mut names = HashSet::new();
        for sidecar in [LATEST, PREVIOUS] {
            match self.place.read(sidecar, format::MAX_SIDECAR_BYTES) {
                Ok(None) => {}
                Ok(Some(bytes)) => {
                    let sidecar = serde_json::from_slice::<Sidecar>(&bytes).ok()?;
                    names.insert(sidecar.weights.file);
                    let head = sidecar.history.chunks.map(|c| c.file);
                    self.chunks.chain(&self.place, head, &mut names)?;
                }
                Err(_) => return None,
            }
        }
        Some(names)
    }

    fn tmp_name(&self, name: &str) -> String {
        format!("{TMP_PREFIX}{}-{name}", self.marker.id)
    }

    /// Writes `name` atomically where no file of that name exists (a weights file).
    fn write_new(&self, name: &str, pieces: &[&[u8]]) -> Result<bool> {
        self.place.write(name, &self.tmp_name(name), pieces, false)
    }

    /// Fences off earlier writers' delayed commits, once, before this run first writes or
    /// removes anything (docs/FORMAT.md, "Fencing").
    fn fence(&mut self) -> Result<()> {
        if let (Some(token), Place::Remote(remote)) = (&self.fence_token, &self.place) {
            self.sweep_deferred = !remote.fence_pointer(LATEST, token)?;
            self.fence_token = None;
        }
        Ok(())
    }

    /// On object storage, what tells the training loop that this run's lease was lost.
    pub(crate) fn lease_watch(&self) -> Option<LeaseWatch> {
        self.hold.watch()
    }

    /// Commits a state: `weights` are its safetensors file as pieces laid end to end (see
    /// `EncodedFile`), `meta` its host-side part, `superseded` the save points this process
    /// skipped so far. After this returns, `latest.json` describes it.
    pub fn commit(
        &mut self,
        weights: &[&[u8]],
        meta: &StateMeta,
        fingerprint: &Fingerprint,
        double_checkpoint: bool,
        superseded: u64,
    ) -> Result<()> {
        let (double, check) = (double_checkpoint, &|_: u64, _: &[u8]| Ok(()));
        self.commit_checked(weights, check, meta, fingerprint, double, superseded)
    }

    /// [`BackupDir::commit`], with `check` run on every byte of the weights (at its offset)
    /// in the pass that hashes them: its error (a diverged state) ends the commit before
    /// anything names the file, which is then removed.
    pub(crate) fn commit_checked(
        &mut self,
        weights: &[&[u8]],
        check: &WeightsCheck<'_>,
        meta: &StateMeta,
        fingerprint: &Fingerprint,
        double_checkpoint: bool,
        superseded: u64,
    ) -> Result<()> {
        let p = meta.position;
        // What a restore checks of a sidecar's history (restore.rs), at the cost of one look.
        if let Some(last) = meta.history.iter().next_back()
            && last.epoch.checked_add(1) != Some(p.epoch)
        {
            return Err(Error::UnrestorableSidecar {
                global_step: p.global_step,
                reason: format!(
                    "its history ends at epoch {}, but its position is epoch {}",
                    last.epoch, p.epoch
                ),
            });
        }
        let (bytes, most) = (
            weights.iter().map(|w| w.len() as u64).sum::<u64>(),
            fingerprint.max_state_bytes(),
        );
        if bytes > most {
            // A restore would refuse it as damaged: fail the save, not the resume.
            return Err(Error::internal(format!(
                "a state of {bytes} bytes, more than the {most} a restore accepts for this model"
            )));
        }
        self.hold.confirm()?;
        self.fence()?;
        // A name nothing has: never a file a sidecar points to (a crash would leave it torn),
        // nor one wgfit did not write.
        let mut file = String::new();
        for name in std::iter::once(format!("ckpt-{}.safetensors", p.global_step))
            .chain((1..).map(|k| format!("ckpt-{}-{k}.safetensors", p.global_step)))
        {
            if !self.place.exists(&name)? {
                file = name;
                break;
            }
        }
        // Hashing (its parts on every core, with the check) and writing each take a pass over
        // the bytes; they run side by side.
        let (place, dir_id) = (&self.place, &self.marker.id);
        let history_head = self.chunks.write(&meta.history, dir_id, |name, bytes| {
            place.write(
                name,
                &format!("{TMP_PREFIX}{dir_id}-{name}"),
                &[bytes],
                true,
            )
        })?;
        let (written, parts) = std::thread::scope(|scope| {
            let hashing =
                scope.spawn(|| checksum::parts_hex_checked(weights, checksum::PART_BYTES, check));
            (self.write_new(&file, weights), hashing.join())
        });
        let parts = parts.map_err(|_| Error::internal("the checksum thread panicked"))?;
        if written.is_err() || parts.is_err() {
            // Nothing names the file: take it away (a sweep would, at the next commit).
            let _ = self.place.remove(&file);
        }
        written?;
        let parts = parts?;
        // The weights' name must be durable before a sidecar can point to it.
        self.place.sync()?;

        let sidecar = Sidecar {
            format: format::FORMAT.into(),
            version: format::VERSION,
            backup_id: self.marker.id.clone(),
            epoch: p.epoch,
            step: p.step,
            global_step: p.global_step,
            weights: WeightsRef::with_parts(file.clone(), bytes, checksum::PART_BYTES, parts),
            fingerprint: fingerprint.clone(),
            seed: meta.seed,
            optimizer_steps: meta.optimizer_steps,
            learning_rate: meta.learning_rate,
            history: HistoryRecord {
                epochs: meta.history.tail().to_vec(),
                chunks: history_head,
            },
            callbacks: meta.callbacks.clone(),
            events: meta.events.clone(),
            stop_training: meta.stop_training,
            superseded_saves: self.superseded_before + superseded,
            saved_at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let json = sidecar.to_json()?;
        if json.len() as u64 > format::MAX_SIDECAR_BYTES {
            // Nothing names the weights file: take it away now, not at the next sweep.
            let _ = self.place.remove(&file);
            return Err(Error::UnrestorableSidecar {
                global_step: p.global_step,
                reason: format!(
                    "it is {} bytes, more than the {} MiB a restore reads (the callbacks' \
                     states take {} of them)",
                    json.len(),
                    format::MAX_SIDECAR_BYTES >> 20,
                    serde_json::to_vec(&meta.callbacks).map_or(0, |v| v.len())
                ),
            });
        }
        // What is committed must restore: parsed back by the code restore uses.
        // (Compared as JSON: a NaN in the logs is not equal to itself.)
        match Sidecar::parse(&json, &self.place.join(LATEST)) {
            Ok(back) if back.to_json()? == json => {}
            Ok(_) => {
                return Err(Error::UnrestorableSidecar {
                    global_step: p.global_step,
                    reason: "it reads back different from what was written".into(),
                });
            }
            Err(e) => {
                return Err(Error::UnrestorableSidecar {
                    global_step: p.global_step,
                    reason: e.to_string(),
                });
            }
        }
        if double_checkpoint && let Some(last) = &self.last_committed {
            // The weights' upload may have outlasted the lease: `write_sidecar` renews it.
            self.place
                .write_sidecar(&self.hold, PREVIOUS, &self.tmp_name(PREVIOUS), last)?;
        }
        self.place
            .commit_pointer(&self.hold, LATEST, &self.tmp_name(LATEST), &json)?;
        self.place.sync()?;
        self.committed_at = Some(std::time::Instant::now());
        self.last_committed = Some(json);
        self.sweep_deferred = false;
        if !double_checkpoint {
            self.place.remove(PREVIOUS)?;
        }
        self.remove_strays()
    }

    /// When this process's newest commit became durable (its `latest.json` renamed into
    /// place and the directory synced), before the files it superseded were removed.
    pub fn committed_at(&self) -> Option<std::time::Instant> {
        self.committed_at
    }

    /// Removes wgfit's unfinished writes and the weights files of this directory that no
    /// committed sidecar references. A file is wgfit's only if it carries this directory's
    /// id (in its temporary name, or in its safetensors header): anything else is left alone.
    /// While a sidecar exists that cannot be read, no weights file is removed.
    pub fn remove_strays(&mut self) -> Result<()> {
        self.fence()?;
        if self.sweep_deferred {
            return Ok(());
        }
        let referenced = self.referenced();
        let own_tmp = format!("{TMP_PREFIX}{}-", self.marker.id);
        for name in self.place.names()? {
            let unreferenced = referenced.as_ref().is_some_and(|r| !r.contains(&name));
            let stray = if name.starts_with(&own_tmp) {
                true
            } else if format::check_file_name(&name).is_ok() && unreferenced {
                // Not a regular file, or not readable: not provably ours.
                self.place.weights_backup_id(&name).as_deref() == Some(self.id())
            } else if history_chunks::check_chunk_name(&name).is_ok() && unreferenced {
                history_chunks::backup_id_of(&self.place, &name).as_deref() == Some(self.id())
            } else {
                false
            };
            if stray {
                self.place.remove(&name)?;
            }
        }
        Ok(())
    }

    /// Forgets every committed state (a backup of another run the user asked to discard).
    pub fn discard(&mut self) -> Result<()> {
        self.fence()?;
        self.place.remove(PREVIOUS)?;
        self.place.remove(LATEST)?;
        self.place.sync()?;
        self.last_committed = None;
        self.superseded_before = 0;
        self.remove_strays()
    }

    /// Removes the backup: the sidecars (`previous.json` first, so that a crash part-way
    /// leaves the final state, never an older one), wgfit's weights and unfinished writes,
    /// the lock and the marker, and the directory itself if wgfit created it and nothing else
    /// is in it. The lock is held until the end. Anything that is not wgfit's stays.
    pub fn remove(mut self) -> Result<()> {
        // Only while still the backup's writer: after a takeover it is another run's.
        self.hold.confirm()?;
        self.fence()?;
        self.place.remove(PREVIOUS)?;
        // previous.json must be gone for good before latest.json goes.
        self.place.sync()?;
        self.place.remove(LATEST)?;
        self.place.sync()?;
        self.last_committed = None;
        // Everything of wgfit's goes, whatever an earlier writer may still send.
        self.sweep_deferred = false;
        self.remove_strays()?;
        self.place.sync()?;
        // The marker goes once nothing else of wgfit's is left (a crash after this leaves at
        // most the lock file or lease, which `take` accepts as empty), and before the lock
        // file, so a run that takes the lock after it sees no marker of a directory being
        // removed.
        self.place.remove(MARKER)?;
        self.place.sync()?;
        let BackupDir {
            place,
            marker,
            hold,
            ..
        } = self;
        match (place, hold) {
            (_, Hold::Lease(lease)) => lease.remove(),
            (Place::Local(handle), _) => remove_lock_and_dir(&handle, marker.created_dir),
            (Place::Remote(_), Hold::Lock(_)) => {
                panic!("a backup on object storage held by a lock file")
            }
        }
    }
}

/// The last of [`BackupDir::remove`] for a directory: the lock file, and the directory if
/// wgfit created it and nothing else is in it.
fn remove_lock_and_dir(handle: &DirHandle, created_dir: bool) -> Result<()> {
    // A process that opened the lock file before this sees the name gone and retries
    // (DirHandle::lock).
    handle.remove(LOCK)?;
    if created_dir && handle.names()?.is_empty() {
        match std::fs::remove_dir(handle.path()) {
            Ok(()) => {}
            // Something appeared meanwhile: it stays, and so does the directory.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::ckpt_io(handle.path(), e)),
        }
    }
    Ok(())
}
