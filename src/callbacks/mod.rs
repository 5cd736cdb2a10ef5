//! Callbacks: the Keras hooks, and the [`Context`] through which a callback sees and changes
//! the training state.

mod backup;
mod backup_restore;
mod backup_writer;
mod context;
mod csv_logger;
mod early_stopping;
mod lambda;
mod lr_scheduler;
mod model_checkpoint;
mod monitor;
mod preempt;
mod progress;
mod python_format;
mod reduce_lr;
mod rewrite_pace;
pub(crate) mod rounds;
mod terminate_on_nan;

pub use backup::{BackupAndRestore, SaveFreq};
pub use context::Context;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use lambda::LambdaCallback;
pub use lr_scheduler::LearningRateScheduler;
pub use model_checkpoint::{CheckpointFreq, ModelCheckpoint};
pub use monitor::Mode;
pub(crate) use preempt::{PreemptGuard, caught_signal};
pub use progress::{Progress, ProgressSink, format_logs, format_value, metric_order};
pub use python_format::check_file_pattern;
#[doc(hidden)]
pub use python_format::format_file_name;
pub use reduce_lr::ReduceLROnPlateau;
pub use rewrite_pace::{REWRITE_SPACING, RewritePace};
pub use terminate_on_nan::TerminateOnNaN;

use crate::engine::snapshot::Snapshot;
use crate::error::Result;
use crate::state::{Logs, Tensor};
use std::sync::Arc;

/// How a `fit` call ended, as told to [`Callback::on_fit_exit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitOutcome {
    /// All epochs ran, or a callback asked to stop.
    Completed,
    /// An error (from a callback, the GPU, a save) ended the run.
    Failed,
    /// A preemption signal ended the run after its state was saved.
    Preempted,
}

/// A hook into `fit`, as Keras's `Callback`. Every method has a default that does nothing.
///
/// Batch hooks run on the host as batches are queued for the GPU; a callback that needs GPU
/// results (the batch loss, the parameters) asks the [`Context`], which then waits for them.
/// An error returned by any hook ends `fit` with that error.
pub trait Callback {
    /// A name for messages and for the callback's saved state.
    fn name(&self) -> &str {
        "callback"
    }

    /// Called once before training starts (after any earlier hook of other callbacks).
    fn on_train_begin(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        Ok(())
    }

    /// Called once after the last epoch of a run that ended without error.
    fn on_train_end(&mut self, _ctx: &mut Context<'_>, _logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Called at the start of each epoch (also of an epoch resumed in the middle).
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, _epoch: usize) -> Result<()> {
        Ok(())
    }

    /// Called at the end of each epoch with its logs (`loss`, `accuracy`, `val_…`).
    fn on_epoch_end(&mut self, _ctx: &mut Context<'_>, _epoch: usize, _logs: &Logs) -> Result<()> {
        Ok(())
    }

    /// Called before batch `batch` (0-based within the epoch) is queued.
    fn on_train_batch_begin(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> Result<()> {
        Ok(())
    }

    /// Called after batch `batch` is queued; [`Context::batch_logs`] reads its loss.
    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> Result<()> {
        Ok(())
    }

    /// Receives the snapshot this callback asked for with [`Context::request_snapshot`], taken
    /// after every callback's hook for the same moment has run.
    fn on_snapshot(&mut self, _ctx: &mut Context<'_>, _snapshot: Snapshot) -> Result<()> {
        Ok(())
    }

    /// Called last, however `fit` ends (also after an error): release resources, wait for
    /// background work.
    fn on_fit_exit(&mut self, _ctx: &mut Context<'_>, _outcome: FitOutcome) -> Result<()> {
        Ok(())
    }

    /// What every rank of a distributed fit must run alike for this callback: the settings
    /// that change what is trained or when it stops (a monitor and its patience, a schedule),
    /// compared across ranks before training. `None` (the default) for a callback that only
    /// observes, or writes what rank 0 alone writes.
    fn settings(&self) -> Option<String> {
        None
    }

    /// The callback's state to save with a checkpoint (best value, patience counter, ...).
    fn state(&self) -> Option<serde_json::Value> {
        None
    }

    /// Restores a state returned by [`Callback::state`] when a run resumes.
    fn load_state(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// Tensors of the callback's state (e.g. best weights), saved with a checkpoint in its
    /// weights file rather than in JSON. Each is named `callbacks.<name>.<parameter name>`
    /// and shaped as that parameter. Shared, so that a save every batch copies nothing.
    fn state_tensors(&self) -> Option<Arc<[Tensor]>> {
        None
    }

    /// Restores the tensors [`Callback::state_tensors`] returned, when a run resumes (before
    /// [`Callback::load_state`]). Called only when the restored state holds some.
    fn load_state_tensors(&mut self, _tensors: Vec<Tensor>) -> Result<()> {
        Ok(())
    }
}
