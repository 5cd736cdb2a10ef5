//! `BackupAndRestore`: Keras 3's callback of that name, made exact and crash-safe.
//!
//! At each save point the callback asks the loop for a [`Snapshot`] (a GPU-side copy queued
//! behind the batch) and hands it to a writer thread, which maps it and streams it to disk as
//! safetensors, hashing as it goes, and commits while training goes on. At the start of `fit` it restores the last
//! committed state; at a successful end it removes what it wrote (unless told to keep it).

use super::backup_writer::Writer;
use super::preempt::PreemptGuard;
use super::{Callback, Context, FitOutcome};
use crate::checkpoint::{BackupDir, LATEST, Loaded, PREVIOUS};
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::state::{Logs, Position};
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
}

/// What exists while a `fit` uses the callback.
#[derive(Debug)]
struct Run {
    dir: Arc<Mutex<BackupDir>>,
    writer: Writer,
    preempt: Option<PreemptGuard>,
    preempting: Option<i32>,
    last_saved: Option<Position>,
}

impl std::fmt::Debug for PreemptGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreemptGuard")
    }
}

impl BackupAndRestore {
    /// A callback backing up to `backup_dir` at every epoch end, keeping no previous state,
    /// deleting its files after a successful run, not catching signals.
    pub fn new(backup_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = backup_dir.as_ref().to_path_buf();
        if dir.as_os_str().is_empty() {
            return Err(Error::config(
                "backup_dir",
                "it is empty; pass the directory to keep backups in, e.g. \"backups/run1\"",
            ));
        }
        Ok(BackupAndRestore {
            dir,
            save_freq: SaveFreq::Epoch,
            double_checkpoint: false,
            delete_checkpoint: true,
            save_before_preemption: false,
            discard_mismatched: false,
            run: None,
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
            SaveFreq::Never if !self.save_before_preemption => Err(Error::config(
                "save_freq",
                "SaveFreq::Never saves only on preemption: call save_before_preemption(true) before save_freq(SaveFreq::Never), or use SaveFreq::Epoch",
            )),
            _ => Ok(()),
        }
    }

    fn run(&mut self) -> Result<&mut Run> {
        self.run
            .as_mut()
            .ok_or_else(|| Error::config("BackupAndRestore", "used outside fit"))
    }

    /// Restores the last committed state into `ctx`, falling back to `previous.json` with
    /// double_checkpoint. Leaves the directory untouched when it fails.
    fn restore(&self, dir: &mut BackupDir, ctx: &mut Context<'_>) -> Result<()> {
        let fallback = self.double_checkpoint && dir.has_sidecar(PREVIOUS);
        if !dir.has_sidecar(LATEST) && !fallback {
            return dir.remove_strays();
        }
        let latest = if dir.has_sidecar(LATEST) {
            self.try_restore(dir, ctx, LATEST)
        } else {
            Err(Error::corrupt(dir.path().join(LATEST), "it is missing"))
        };
        match latest {
            Ok(()) => {}
            Err(e @ Error::FingerprintMismatch { .. }) => return Err(e),
            Err(e) if fallback => {
                if let Err(second) = self.try_restore(dir, ctx, PREVIOUS) {
                    return Err(both_unusable(e, second));
                }
                eprintln!(
                    "wgfit: {e}\nwgfit: restored the previous checkpoint ({}) instead",
                    dir.path().join(PREVIOUS).display()
                );
            }
            Err(e) => return Err(e),
        }
        dir.remove_strays()
    }

    fn try_restore(&self, dir: &mut BackupDir, ctx: &mut Context<'_>, name: &str) -> Result<()> {
        let Loaded {
            sidecar,
            sidecar_path,
            state,
            ..
        } = dir.load(name)?;
        let differences = sidecar.fingerprint.differences(ctx.fingerprint());
        if !differences.is_empty() {
            if self.discard_mismatched {
                eprintln!(
                    "wgfit: discarding the backup in {} of a different run ({})",
                    dir.path().display(),
                    differences.join("; ")
                );
                return dir.discard();
            }
            return Err(Error::FingerprintMismatch {
                dir: dir.path().to_path_buf(),
                differences,
            });
        }
        // A state that matches the fingerprint but not the model is damaged or crafted.
        ctx.set_state(state)
            .map_err(|e| Error::corrupt(&sidecar_path, e.to_string()))
    }
}

fn both_unusable(latest: Error, previous: Error) -> Error {
    match latest {
        Error::CorruptCheckpoint { path, reason } => Error::CorruptCheckpoint {
            path,
            reason: format!("{reason}; the fallback is unusable too: {previous}"),
        },
        other => other,
    }
}

impl Callback for BackupAndRestore {
    fn name(&self) -> &str {
        "BackupAndRestore"
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.validate()?;
        let mut dir = BackupDir::open(&self.dir)?;
        if let Err(e) = self.restore(&mut dir, ctx) {
            dir.abandon();
            return Err(e);
        }
        let preempt = if self.save_before_preemption {
            Some(PreemptGuard::new()?)
        } else {
            None
        };
        let dir = Arc::new(Mutex::new(dir));
        let writer = Writer::start(
            dir.clone(),
            ctx.fingerprint().clone(),
            self.double_checkpoint,
        )?;
        self.run = Some(Run {
            dir,
            writer,
            preempt,
            preempting: None,
            last_saved: None,
        });
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, _batch: usize) -> Result<()> {
        let save_freq = self.save_freq;
        let run = self.run()?;
        run.writer.check()?;
        if let Some(signal) = run.preempt.as_ref().and_then(|p| p.signal()) {
            run.preempting = Some(signal);
            ctx.request_snapshot();
            return Ok(());
        }
        if let SaveFreq::Batches(n) = save_freq
            && ctx.position().global_step.is_multiple_of(n as u64)
        {
            ctx.request_snapshot();
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, _epoch: usize, _logs: &Logs) -> Result<()> {
        let save_freq = self.save_freq;
        self.run()?.writer.check()?;
        if save_freq == SaveFreq::Epoch {
            ctx.request_snapshot();
        }
        Ok(())
    }

    fn on_snapshot(&mut self, _ctx: &mut Context<'_>, snapshot: Snapshot) -> Result<()> {
        let run = self.run()?;
        let position = snapshot.meta().position;
        run.writer.send(snapshot)?;
        run.last_saved = Some(position);
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

    fn on_train_end(&mut self, ctx: &mut Context<'_>, _logs: &Logs) -> Result<()> {
        let delete = self.delete_checkpoint;
        let run = self.run()?;
        if delete {
            run.writer.drain()?;
            let mut dir = run
                .dir
                .lock()
                .map_err(|_| Error::config("backup", "the writer thread panicked"))?;
            return dir.remove_all();
        }
        // Keep the final state, not only the last save point.
        if run.last_saved != Some(ctx.position()) {
            ctx.request_snapshot();
        }
        Ok(())
    }

    fn on_fit_exit(&mut self, _ctx: &mut Context<'_>, _outcome: FitOutcome) -> Result<()> {
        match self.run.take() {
            // Dropping the run releases the lock and the signal handlers, after the writer
            // committed or failed everything it was given.
            Some(mut run) => run.writer.stop(),
            None => Ok(()),
        }
    }
}
