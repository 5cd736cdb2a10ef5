//! `BackupAndRestore`: Keras 3's callback of that name, made exact and crash-safe.
//!
//! At each save point the callback asks the loop for a [`Snapshot`] (a GPU-side copy queued
//! behind the batch) and hands it to a writer thread, which maps it and streams it to disk as
//! safetensors, hashing as it goes, and commits while training goes on. At the start of `fit` it restores the last
//! committed state; at a successful end it removes what it wrote (unless told to keep it).

use super::backup_restore;
use super::backup_writer::Writer;
use super::preempt::PreemptGuard;
use super::{Callback, Context, FitOutcome};
use crate::checkpoint::{BackupDir, ReadAhead};
use crate::engine::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::state::{EventKind, Logs, Position};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// When the callback saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFreq {
    /// At the end of every epoch.
    Epoch,
    /// Every `n` batches, counted over the whole run (the count carries across epoch ends).
    Batches(usize),
    /// Only when preempted (needs `save_before_preemption(true)`).
    Never,
    /// At the first batch end after this much time since the last save (or the start). What
    /// is saved is as exact as ever; only when saves happen depends on the clock.
    Every(std::time::Duration),
}

/// Backs the training state up to a directory and restores it when `fit` starts again.
/// See the README's "Backups" section for the directory format and the guarantees.
#[derive(Debug)]
pub struct BackupAndRestore {
    dir: PathBuf,
    save_freq: SaveFreq,
    double_checkpoint: bool,
    delete_checkpoint: bool,
    save_before_preemption: bool,
    discard_mismatched: bool,
    run: Option<Run>,
    /// The directory, still locked, after a `fit` that kept its backup.
    held: Option<BackupDir>,
    /// Save points superseded before they reached the disk, over the whole run.
    superseded: u64,
    /// States committed by the last `fit`.
    committed: u64,
    /// Whether the last `fit` stopped because a save, a commit or the lease failed once
    /// training had begun.
    failed_in_training: bool,
    /// The newest committed state, being read ahead of `fit` (`read_ahead`).
    read_ahead: Option<ReadAhead>,
}

/// What exists while a `fit` uses the callback.
#[derive(Debug)]
struct Run {
    dir: Arc<Mutex<BackupDir>>,
    writer: Writer,
    /// On object storage: whether the lease is still this run's.
    lease: Option<crate::checkpoint::LeaseWatch>,
    preempt: Option<PreemptGuard>,
    preempting: Option<i32>,
    last_saved: Option<Position>,
    /// When the last snapshot was handed to the writer (or the run started).
    last_saved_at: std::time::Instant,
}

impl std::fmt::Debug for PreemptGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreemptGuard")
    }
}

impl BackupAndRestore {
    /// A callback backing up to `backup_dir` at every epoch end, keeping no previous state,
    /// deleting its files after a successful run, not catching signals. `backup_dir` is a
    /// directory, or an object-store URL (`s3://bucket/prefix`, `gs://`, `az://`, `file://`;
    /// see [`crate::checkpoint::Location`]) reached with the environment's credentials.
    pub fn new(backup_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = backup_dir.as_ref().to_path_buf();
        if dir.as_os_str().is_empty() {
            return Err(Error::config(
                "backup_dir",
                "it is empty; pass the directory to keep backups in, e.g. \"backups/run1\"",
            ));
        }
        crate::checkpoint::Location::parse(&dir.to_string_lossy())?;
        Ok(BackupAndRestore {
            dir,
            save_freq: SaveFreq::Epoch,
            double_checkpoint: false,
            delete_checkpoint: true,
            save_before_preemption: false,
            discard_mismatched: false,
            run: None,
            held: None,
            superseded: 0,
            committed: 0,
            failed_in_training: false,
            read_ahead: None,
        })
    }

    /// When to save. `Batches(0)` is an error, and `Never` needs `save_before_preemption(true)`
    /// set first.
    pub fn save_freq(mut self, save_freq: SaveFreq) -> Result<Self> {
        self.save_freq = save_freq;
        self.validate()?;
        Ok(self)
    }

    /// Keep the state before the latest as a fallback if the latest turns out unreadable.
    pub fn double_checkpoint(mut self, on: bool) -> Self {
        self.double_checkpoint = on;
        self
    }

    /// Remove the backup after a successful `fit` (default true). Errors and preemptions
    /// never delete.
    pub fn delete_checkpoint(mut self, on: bool) -> Self {
        self.delete_checkpoint = on;
        self
    }

    /// On SIGTERM or SIGINT, stop at the next batch end, save, and return
    /// [`Error::Preempted`].
    pub fn save_before_preemption(mut self, on: bool) -> Result<Self> {
        self.save_before_preemption = on;
        self.validate()?;
        Ok(self)
    }

    /// Discard a backup of a different run (model, data, options) instead of refusing it.
    pub fn discard_mismatched(mut self, on: bool) -> Self {
        self.discard_mismatched = on;
        self
    }

    /// Starts reading and verifying the newest committed state now, on its own thread, so
    /// that the restore at the start of the next `fit` finds it read: called before the GPU
    /// context opens and the model is built, the read runs beside them. `fit` still takes
    /// the directory and decides as always, and uses what was read only when `latest.json`
    /// is unchanged since, restores without a fallback, and is this run's; otherwise it
    /// reads again. Holds the state in host memory until then.
    pub fn read_ahead(mut self) -> Self {
        self.read_ahead = ReadAhead::start(&self.dir);
        self
    }

    /// Whether a read started by [`read_ahead`](Self::read_ahead) has ended (true when none
    /// is running).
    pub fn read_ahead_done(&self) -> bool {
        self.read_ahead.as_ref().is_none_or(ReadAhead::is_done)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn validate(&self) -> Result<()> {
        match self.save_freq {
            SaveFreq::Batches(0) => Err(Error::config(
                "save_freq",
                "Batches(0) never saves; use Batches(n) with n >= 1, SaveFreq::Epoch, or SaveFreq::Never with save_before_preemption(true)",
            )),
            SaveFreq::Every(d) if d.is_zero() => Err(Error::config(
                "save_freq",
                "Every(0) would save at every batch; use Batches(1) for that, or a positive duration",
            )),
            SaveFreq::Never if !self.save_before_preemption => Err(Error::config(
                "save_freq",
                "SaveFreq::Never saves only on preemption: call save_before_preemption(true) before save_freq(SaveFreq::Never), or use SaveFreq::Epoch",
            )),
            _ => Ok(()),
        }
    }

    /// Ends a run's writer once it committed or failed all it was given, and takes the
    /// directory back from it.
    fn finish(&mut self, mut run: Run) -> Result<BackupDir> {
        let stopped = run.writer.stop();
        self.superseded += run.writer.superseded();
        self.committed = run.writer.committed();
        stopped?;
        let Run { dir, .. } = run;
        let dir = Arc::try_unwrap(dir)
            .map_err(|_| Error::internal("the backup writer still held the directory"))?;
        dir.into_inner()
            .map_err(|_| Error::internal("the backup writer thread panicked"))
    }

    fn run(&mut self) -> Result<&mut Run> {
        self.run
            .as_mut()
            .ok_or_else(|| Error::config("BackupAndRestore", "used outside fit"))
    }

    /// Removes the backup this callback kept (after a `fit` with `delete_checkpoint(false)`,
    /// once the caller has what it needs), under the lock `fit` held throughout: no other run
    /// can slip in between. Removes only wgfit's own files, and the directory if wgfit created
    /// it and nothing else is in it.
    pub fn remove_backup(&mut self) -> Result<()> {
        if let Some(read) = self.read_ahead.take() {
            read.wait();
        }
        let dir = match self.held.take() {
            Some(dir) => dir,
            None => BackupDir::take(&self.dir)?,
        };
        dir.remove()
    }

    /// Save points of the run superseded by a newer one before they reached the disk (the
    /// writer keeps only the newest waiting snapshot so that training never waits for it).
    pub fn superseded_saves(&self) -> u64 {
        self.superseded
    }

    /// Whether the last `fit` ended with this callback's error after training had begun: a
    /// save, a commit or the lease failed (the store went away, the disk filled up, another
    /// run took the backup over). The model then holds what was trained up to that point, which
    /// the caller can still keep (`wgfit train` writes it to its output); the backup holds its
    /// last commit.
    pub fn failed_in_training(&self) -> bool {
        self.failed_in_training
    }

    /// Records a failure of the backup once training has begun (not a preemption, which
    /// saved).
    fn noted<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && !matches!(e, Error::Preempted { .. })
        {
            self.failed_in_training = true;
        }
        result
    }

    /// When the newest state this callback committed became durable (`latest.json` in place
    /// and synced), before the files it superseded were removed. `None` before any commit.
    pub fn last_commit_at(&self) -> Option<std::time::Instant> {
        match (&self.held, &self.run) {
            (Some(dir), _) => dir.committed_at(),
            (None, Some(run)) => run.dir.lock().ok()?.committed_at(),
            (None, None) => None,
        }
    }

    /// States the last `fit` committed. Every save point of a fit is either committed or
    /// superseded (`superseded_saves`), none is dropped unreported.
    pub fn committed_saves(&self) -> u64 {
        self.committed
    }
}

impl Callback for BackupAndRestore {
    fn name(&self) -> &str {
        "BackupAndRestore"
    }

    // Every rank takes the state rank 0 restores: all must have the callback.
    fn settings(&self) -> Option<String> {
        Some("restores rank 0's backup".into())
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.failed_in_training = false;
        self.validate()?;
        // MPI ranks above 0 take the state rank 0 restored and write nothing (docs/MPI.md).
        if !crate::distributed::is_writer() {
            self.read_ahead = None;
            return crate::distributed::receive_state(ctx);
        }
        let mut dir = match self.held.take() {
            Some(dir) => dir,
            None => BackupDir::take(&self.dir)?,
        };
        // On failure the directory is dropped: unlocked, as it was found (but for the marker
        // of a directory that was empty).
        let read = self.read_ahead.take();
        let double = self.double_checkpoint;
        backup_restore::restore(&mut dir, ctx, read, double, self.discard_mismatched)?;
        crate::distributed::send_state(ctx)?;
        self.superseded = dir.superseded_before();
        let preempt = if self.save_before_preemption {
            Some(PreemptGuard::new()?)
        } else {
            None
        };
        let lease = dir.lease_watch();
        let dir = Arc::new(Mutex::new(dir));
        let writer = Writer::start(
            dir.clone(),
            ctx.fingerprint().clone(),
            self.double_checkpoint,
        )?;
        self.run = Some(Run {
            dir,
            writer,
            lease,
            preempt,
            preempting: None,
            last_saved: None,
            last_saved_at: std::time::Instant::now(),
        });
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, _batch: usize) -> Result<()> {
        let result = self.batch_end(ctx);
        self.noted(result)
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, _epoch: usize, _logs: &Logs) -> Result<()> {
        let result = self.epoch_end(ctx);
        self.noted(result)
    }

    fn on_snapshot(&mut self, _ctx: &mut Context<'_>, snapshot: Snapshot) -> Result<()> {
        let result = self.snapshot(snapshot);
        self.noted(result)
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>, _logs: &Logs) -> Result<()> {
        let result = self.train_end(ctx);
        self.noted(result)
    }

    fn on_fit_exit(&mut self, _ctx: &mut Context<'_>, outcome: FitOutcome) -> Result<()> {
        let result = self.fit_exit(outcome);
        self.noted(result)
    }
}

/// The callback's work after the start of training; its failures are noted
/// ([`BackupAndRestore::failed_in_training`]).
impl BackupAndRestore {
    fn batch_end(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        if !crate::distributed::is_writer() {
            return Ok(());
        }
        let save_freq = self.save_freq;
        let run = self.run()?;
        run.writer.check()?;
        // A run that lost its lease (not renewed in time) stops before another run writes.
        if let Some(lease) = &run.lease {
            lease.check()?;
        }
        // Under MPI the signal all ranks agreed on at this batch, so that all stop at it.
        let signal = run.preempt.as_ref().and_then(|p| p.signal());
        if let Some(signal) = crate::distributed::preempt_signal(signal) {
            run.preempting = Some(signal);
            ctx.record_event(EventKind::Preempted);
            ctx.request_snapshot();
            return Ok(());
        }
        let due = match save_freq {
            SaveFreq::Batches(n) => ctx.position().global_step.is_multiple_of(n as u64),
            SaveFreq::Every(d) => run.last_saved_at.elapsed() >= d,
            SaveFreq::Epoch | SaveFreq::Never => false,
        };
        if due {
            ctx.request_deferred_snapshot();
        }
        Ok(())
    }

    fn epoch_end(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        if !crate::distributed::is_writer() {
            return Ok(());
        }
        let save_freq = self.save_freq;
        self.run()?.writer.check()?;
        if save_freq == SaveFreq::Epoch {
            ctx.request_deferred_snapshot();
        }
        Ok(())
    }

    fn snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let run = self.run()?;
        let position = snapshot.meta().position;
        run.writer.send(snapshot)?;
        run.last_saved = Some(position);
        run.last_saved_at = std::time::Instant::now();
        if let Some(signal) = run.preempting {
            run.writer.drain()?;
            return Err(Error::Preempted {
                signal,
                epoch: position.epoch,
                step: position.step,
            });
        }
        Ok(())
    }

    fn train_end(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        if !crate::distributed::is_writer() {
            return Ok(());
        }
        if self.delete_checkpoint {
            let run = self
                .run
                .take()
                .ok_or_else(|| Error::internal("BackupAndRestore was ended outside fit"))?;
            return self.finish(run)?.remove();
        }
        let run = self.run()?;
        // Keep the final state, not only the last save point.
        if run.last_saved != Some(ctx.position()) {
            ctx.request_snapshot();
        }
        Ok(())
    }

    fn fit_exit(&mut self, outcome: FitOutcome) -> Result<()> {
        let Some(run) = self.run.take() else {
            return Ok(());
        };
        let dir = self.finish(run)?;
        // After a completed fit that kept its backup the caller may still remove it
        // (`remove_backup`): the directory stays locked until then or until the callback is
        // dropped. After a failure or a preemption nothing is removed, and the lock goes.
        if outcome == FitOutcome::Completed {
            self.held = Some(dir);
        }
        Ok(())
    }
}
