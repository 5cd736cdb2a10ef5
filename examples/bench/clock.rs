//! The instants of the training hooks, which the workloads time with.

use std::time::Instant;
use wgfit::{Callback, Context, Logs};

/// Instants of the hooks: epoch ends (after fit's epoch-end readback of the losses), what
/// follows them (the time the loop is blocked by a save), the start of training (after a
/// restore) and the first batch.
#[derive(Default)]
pub struct HookClock {
    pub epoch_end: Vec<Instant>,
    pub after: Vec<Instant>,
    /// When training began (after the backup's restore, which runs first).
    pub train_begin: Option<Instant>,
    pub first_batch_begin: Option<Instant>,
    pub first_batch: Option<Instant>,
}

impl Callback for HookClock {
    fn name(&self) -> &str {
        "bench_hook_clock"
    }
    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        _epoch: usize,
        _logs: &Logs,
    ) -> wgfit::Result<()> {
        self.epoch_end.push(Instant::now());
        Ok(())
    }
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, _epoch: usize) -> wgfit::Result<()> {
        self.after.push(Instant::now());
        Ok(())
    }
    fn on_train_end(&mut self, _ctx: &mut Context<'_>, _logs: &Logs) -> wgfit::Result<()> {
        self.after.push(Instant::now());
        Ok(())
    }
    fn on_train_begin(&mut self, _ctx: &mut Context<'_>) -> wgfit::Result<()> {
        self.train_begin = Some(Instant::now());
        Ok(())
    }
    fn on_train_batch_begin(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        self.first_batch_begin.get_or_insert_with(Instant::now);
        Ok(())
    }
    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        self.first_batch.get_or_insert_with(Instant::now);
        Ok(())
    }
}
