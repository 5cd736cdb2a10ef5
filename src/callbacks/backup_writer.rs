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

/// The writer as the callback sees it: items (snapshots) go in, and a thread commits the
/// newest waiting one at a time.
#[derive(Debug)]
pub(super) struct Writer<T = Snapshot> {
    shared: Arc<Shared<T>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<WriterState<T>>,
    changed: Condvar,
}

#[derive(Debug)]
struct WriterState<T> {
    /// The snapshot waiting to be written.
    waiting: Option<T>,
    /// A snapshot is being written.
    busy: bool,
    /// The work the thread does before the first snapshot is still running.
    preparing: bool,
    /// No more snapshots will come.
    closed: bool,
    /// The first failure; after it nothing more is committed, so the last good state stays.
    error: Option<Error>,
    /// Snapshots replaced by a newer one before they were written.
    superseded: u64,
    /// Snapshots committed.
    committed: u64,
    /// The first snapshot is never superseded before the writer takes it: once a save point
    /// has passed, a state of this run is committed or being committed (a run that diverges
    /// right after keeps it, since a non-finite state is refused), and with double_checkpoint,
    /// once two have passed, two are (the first as `previous.json`'s). It costs the training
    /// loop at most one wait, for the writer thread to wake.
    keep_first: bool,
}

/// The writer thread's nice value (and its hashing threads', which inherit it): where the
/// training loop keeps every core busy (a CPU adapter such as lavapipe), the writer runs in
/// the time it leaves, instead of taking a core from it (figures: `bench/NOTES.md`, "A
/// writer that yields"). With cores to spare it changes nothing.
const DEFAULT_NICE: u64 = 19;

/// Lowers the calling thread's scheduling priority to `nice` (Linux: per thread). Failing to
/// is harmless: the writer then runs at the process's priority.
fn lower_priority(nice: u64) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority has no memory effects; `who` 0 is the calling thread on Linux.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice as i32) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

fn poisoned<T>(_: T) -> Error {
    Error::internal("the backup writer thread panicked")
}

impl Writer<Snapshot> {
    /// A writer committing snapshots to `dir`, which first removes the strays of earlier
    /// runs from it (`BackupDir::remove_strays`): off the training loop's path, since the
    /// directory's listing grows with the run's history chunk files. A failure there is
    /// reported as a failed save would be, and nothing is committed after it.
    pub fn start(
        dir: Arc<Mutex<BackupDir>>,
        fingerprint: Fingerprint,
        double: bool,
    ) -> Result<Self> {
        let sweep = dir.clone();
        Writer::with(
            true,
            move || sweep.lock().map_err(poisoned)?.remove_strays(),
            move |snapshot, superseded| commit(&dir, &fingerprint, double, superseded, snapshot),
        )
    }
}

impl<T: Send + 'static> Writer<T> {
    /// A writer whose thread runs `prepare`, then commits each item with `commit(item,
    /// superseded so far)`.
    fn with(
        keep_first: bool,
        prepare: impl FnOnce() -> Result<()> + Send + 'static,
        mut commit: impl FnMut(T, u64) -> Result<()> + Send + 'static,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(WriterState {
                waiting: None,
                busy: false,
                preparing: true,
                closed: false,
                error: None,
                superseded: 0,
                committed: 0,
                keep_first,
            }),
            changed: Condvar::new(),
        });
        let own = shared.clone();
        let nice = crate::env_knobs::WRITER_NICE
            .read()?
            .unwrap_or(DEFAULT_NICE);
        let thread = std::thread::Builder::new()
            .name("wgfit-backup-writer".into())
            .spawn(move || {
                lower_priority(nice);
                own.prepare(prepare);
                own.run(&mut commit)
            })
            .map_err(|e| Error::config("backup", format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands a snapshot over; one still waiting is superseded by it, unless it is the first
    /// and must be kept: then this waits for the writer to take it.
    pub fn send(&self, snapshot: T) -> Result<()> {
        let superseded = {
            let mut s = self.shared.state.lock().map_err(poisoned)?;
            while s.keep_first
                && s.committed == 0
                && !s.busy
                && s.waiting.is_some()
                && s.error.is_none()
            {
                self.shared.changed.notify_all();
                s = self.shared.changed.wait(s).map_err(poisoned)?;
            }
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

    /// Snapshots committed so far.
    pub fn committed(&self) -> u64 {
        self.shared.state.lock().map_or(0, |s| s.committed)
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
        while s.waiting.is_some() || s.busy || s.preparing {
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

impl<T> Shared<T> {
    fn prepare(&self, prepare: impl FnOnce() -> Result<()>) {
        let result = prepare();
        if let Ok(mut s) = self.state.lock() {
            s.preparing = false;
            if let Err(e) = result {
                s.error.get_or_insert(e);
            }
        }
        self.changed.notify_all();
    }

    fn run(&self, commit: &mut impl FnMut(T, u64) -> Result<()>) {
        loop {
            let snapshot = {
                let Ok(mut s) = self.state.lock() else { return };
                loop {
                    if let Some(snapshot) = s.waiting.take() {
                        s.busy = true;
                        // A sender may wait for the first snapshot to be taken.
                        self.changed.notify_all();
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
                commit(snapshot, superseded)
            };
            if let Ok(mut s) = self.state.lock() {
                s.busy = false;
                match result {
                    Ok(()) if !failed_before => s.committed += 1,
                    Ok(()) => {}
                    Err(e) => {
                        s.error.get_or_insert(e);
                    }
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
    // before anything names it: the backup keeps the last finite one.
    snapshot.write_file(&id, |weights, check, meta| {
        dir.commit_checked(weights, check, meta, fingerprint, double, superseded)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// The writer busy with item 1 while 2 and 3 arrive: 3 supersedes 2, which is counted,
    /// and every item is committed or counted.
    #[test]
    fn a_waiting_item_is_superseded_by_a_newer_one_and_counted() {
        let (started, on_start) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let committed = Arc::new(Mutex::new(Vec::new()));
        let log = committed.clone();
        let mut writer = Writer::with(
            false,
            || Ok(()),
            move |item: u32, superseded| {
                started.send(item).unwrap();
                released.recv().unwrap();
                log.lock().unwrap().push((item, superseded));
                Ok(())
            },
        )
        .unwrap();
        writer.send(1).unwrap();
        assert_eq!(on_start.recv().unwrap(), 1, "the writer is busy with 1");
        writer.send(2).unwrap();
        writer.send(3).unwrap();
        release.send(()).unwrap();
        assert_eq!(on_start.recv().unwrap(), 3, "3 took 2's place");
        release.send(()).unwrap();
        writer.stop().unwrap();
        assert_eq!(*committed.lock().unwrap(), [(1, 0), (3, 1)]);
        assert_eq!((writer.committed(), writer.superseded()), (2, 1));
    }

    /// A failure of the work before the first item (the sweep of strays) is reported as a
    /// failed commit would be, by a `stop` called while that work still runs too, and
    /// nothing is committed after it.
    #[test]
    fn a_failed_preparation_is_reported_and_commits_nothing() {
        for items in [0, 1] {
            let committed = Arc::new(Mutex::new(Vec::new()));
            let log = committed.clone();
            let mut writer = Writer::with(
                true,
                || {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    Err(Error::internal("the sweep failed"))
                },
                move |item: u32, _| {
                    log.lock().unwrap().push(item);
                    Ok(())
                },
            )
            .unwrap();
            for item in 0..items {
                writer.send(item).unwrap();
            }
            let e = writer.stop().expect_err("the failure is reported");
            assert!(e.to_string().contains("the sweep failed"), "{e}");
            assert!(committed.lock().unwrap().is_empty(), "{items} items");
        }
    }

    /// With `keep_first` (as backups use it), the first item is not superseded even when the second arrives
    /// before the writer took it (here: placed as if sent, the writer not yet woken).
    #[test]
    fn the_first_item_is_kept_for_a_double_checkpoint() {
        let committed = Arc::new(Mutex::new(Vec::new()));
        let log = committed.clone();
        let mut writer = Writer::with(
            true,
            || Ok(()),
            move |item: u32, superseded| {
                log.lock().unwrap().push((item, superseded));
                Ok(())
            },
        )
        .unwrap();
        writer.shared.state.lock().unwrap().waiting = Some(1);
        writer.send(2).unwrap();
        writer.stop().unwrap();
        assert_eq!(*committed.lock().unwrap(), [(1, 0), (2, 0)]);
    }
}
