//! `TerminateOnNaN`: ends training at the first batch whose loss is NaN or infinite.

use super::{Callback, Context};
use crate::error::{Error, Result};

/// Ends training at the first batch whose loss is not finite, as Keras 3's `TerminateOnNaN`
/// with `raise_error=True`: `fit` returns [`Error::Diverged`] naming the batch, and a backup
/// keeps its last finite state. (wgfit never ends a run normally with a non-finite loss:
/// Keras's graceful stop would run `on_train_end`, which deletes the backup.) Reads each
/// batch's loss, so the GPU is waited for after every batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminateOnNaN;

impl Callback for TerminateOnNaN {
    fn name(&self) -> &str {
        "TerminateOnNaN"
    }

    fn settings(&self) -> Option<String> {
        Some("on".into())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> Result<()> {
        let logs = ctx.batch_logs()?;
        match logs.get("loss") {
            Some(&loss) if !loss.is_finite() => {
                ctx.stop_training();
                Err(Error::Diverged {
                    what: format!("the loss of batch {}", batch + 1),
                    epoch: ctx.position().epoch,
                    global_step: ctx.position().global_step,
                    value: loss as f32,
                })
            }
            _ => Ok(()),
        }
    }
}
