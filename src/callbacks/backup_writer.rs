//! The thread that turns snapshots into committed backups, off the training loop.
//!
//! It holds at most one snapshot waiting: a newer snapshot that arrives while an older one
//! still waits replaces it (the newer state supersedes the older, and exact resume holds from
//! either), so saves never make training wait for the disk. Whatever way `fit` ends, it drains
//! first: the newest snapshot handed over is committed before `fit` returns.

use crate::checkpoint::BackupDir;
use crate::engine::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::state::Fingerprint;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// The writer as the callback sees it.
#[derive(Debug)]
pub(super) struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<WriterState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct WriterState {
    /// The snapshot waiting to be written.
    waiting: Option<Snapshot>,
    /// A snapshot is being written.
    busy: bool,
    /// No more snapshots will come.
    closed: bool,
    /// The first failure; after it nothing more is committed, so the last good state stays.
    error: Option<Error>,
    /// Snapshots replaced by a newer one before they were written.
    superseded: u64,
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("the backup writer thread")
}

impl Writer {
    pub fn start(
        dir: Arc<Mutex<BackupDir>>,
        fingerprint: Fingerprint,
        double: bool,
    ) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let own = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wgfit-backup-writer".into())
            .spawn(move || own.run(&dir, &fingerprint, double))
            .map_err(|e| Error::config("backup", format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands a snapshot over; one still waiting is superseded by it.
    pub fn send(&self, snapshot: Snapshot) -> Result<()> {
        let superseded = {
            let mut s = self.shared.state.lock().map_err(poisoned)?;
            let old = s.waiting.replace(snapshot);
            s.superseded += u64::from(old.is_some());
            old
        };
        // Dropped outside the lock: this returns its staging buffer to the pool.
        drop(superseded);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Snapshots superseded so far.
    pub fn superseded(&self) -> u64 {
        self.shared.state.lock().map_or(0, |s| s.superseded)
    }

    /// Returns the first save error, if one happened.
    pub fn check(&self) -> Result<()> {
        match self.shared.state.lock().map_err(poisoned)?.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until everything handed over is committed (or failed).
    pub fn drain(&self) -> Result<()> {
        let mut s = self.shared.state.lock().map_err(poisoned)?;
        while s.waiting.is_some() || s.busy {
            s = self.shared.changed.wait(s).map_err(poisoned)?;
        }
        match s.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Drains, then ends the thread.
    pub fn stop(&mut self) -> Result<()> {
        let result = self.drain();
        if let Ok(mut s) = self.shared.state.lock() {
            s.closed = true;
        }
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            t.join().map_err(poisoned)?;
        }
        result
    }
}

impl Shared {
    fn run(&self, dir: &Mutex<BackupDir>, fingerprint: &Fingerprint, double: bool) {
        loop {
            let snapshot = {
                let Ok(mut s) = self.state.lock() else { return };
                loop {
                    if let Some(snapshot) = s.waiting.take() {
                        s.busy = true;
                        break snapshot;
                    }
                    if s.closed {
                        return;
                    }
                    s = match self.changed.wait(s) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
            };
            let (failed_before, superseded) = self
                .state
                .lock()
                .map_or((true, 0), |s| (s.error.is_some(), s.superseded));
            let result = if failed_before {
                Ok(())
            } else {
                commit(dir, fingerprint, double, superseded, snapshot)
            };
            if let Ok(mut s) = self.state.lock() {
                s.busy = false;
                if let Err(e) = result {
                    s.error.get_or_insert(e);
                }
            }
            self.changed.notify_all();
        }
    }
}

/// Waits for a snapshot's copy and commits it.
fn commit(
    dir: &Mutex<BackupDir>,
    fingerprint: &Fingerprint,
    double: bool,
    superseded: u64,
    snapshot: Snapshot,
) -> Result<()> {
    let mut dir = dir.lock().map_err(poisoned)?;
    let id = dir.id().to_string();
    // The file streams from the mapped snapshot to the disk. A diverged state is refused
    // before anything is written: the backup keeps the last finite one.
    snapshot.write_file(&id, |weights, meta| {
        dir.commit(weights, meta, fingerprint, double, superseded)
    })
}
