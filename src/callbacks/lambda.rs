//! `LambdaCallback`: a callback made of closures, as Keras's.

use super::{Callback, Context};
use crate::error::Result;
use crate::state::Logs;

type Hook<'f> = Option<Box<dyn FnMut(&mut Context<'_>) -> Result<()> + 'f>>;
type IndexHook<'f> = Option<Box<dyn FnMut(&mut Context<'_>, usize) -> Result<()> + 'f>>;
type LogsHook<'f> = Option<Box<dyn FnMut(&mut Context<'_>, &Logs) -> Result<()> + 'f>>;
type EpochEndHook<'f> = Option<Box<dyn FnMut(&mut Context<'_>, usize, &Logs) -> Result<()> + 'f>>;

/// A callback built from closures, as Keras 3's `LambdaCallback` (`on_epoch_begin`,
/// `on_epoch_end`, `on_train_begin`, `on_train_end`, `on_train_batch_begin`,
/// `on_train_batch_end`). Each closure gets the [`Context`] too. Stateless: a closure that
/// keeps state of its own does not have it restored on resume.
#[derive(Default)]
pub struct LambdaCallback<'f> {
    train_begin: Hook<'f>,
    train_end: LogsHook<'f>,
    epoch_begin: IndexHook<'f>,
    epoch_end: EpochEndHook<'f>,
    batch_begin: IndexHook<'f>,
    batch_end: IndexHook<'f>,
}

impl<'f> LambdaCallback<'f> {
    /// A callback that does nothing until hooks are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` at the start of training.
    pub fn on_train_begin(mut self, f: impl FnMut(&mut Context<'_>) -> Result<()> + 'f) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }

    /// Runs `f` with the last epoch's logs at the end of training.
    pub fn on_train_end(
        mut self,
        f: impl FnMut(&mut Context<'_>, &Logs) -> Result<()> + 'f,
    ) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }

    /// Runs `f` with the epoch number at the start of every epoch.
    pub fn on_epoch_begin(
        mut self,
        f: impl FnMut(&mut Context<'_>, usize) -> Result<()> + 'f,
    ) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }

    /// Runs `f` with the epoch number and its logs at the end of every epoch.
    pub fn on_epoch_end(
        mut self,
        f: impl FnMut(&mut Context<'_>, usize, &Logs) -> Result<()> + 'f,
    ) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }

    /// Runs `f` with the batch number before every batch.
    pub fn on_train_batch_begin(
        mut self,
        f: impl FnMut(&mut Context<'_>, usize) -> Result<()> + 'f,
    ) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }

    /// Runs `f` with the batch number after every batch.
    pub fn on_train_batch_end(
        mut self,
        f: impl FnMut(&mut Context<'_>, usize) -> Result<()> + 'f,
    ) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback<'_> {
    fn name(&self) -> &str {
        "LambdaCallback"
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.train_begin.as_mut().map_or(Ok(()), |f| f(ctx))
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>, logs: &Logs) -> Result<()> {
        self.train_end.as_mut().map_or(Ok(()), |f| f(ctx, logs))
    }

    fn on_epoch_begin(&mut self, ctx: &mut Context<'_>, epoch: usize) -> Result<()> {
        self.epoch_begin.as_mut().map_or(Ok(()), |f| f(ctx, epoch))
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        self.epoch_end
            .as_mut()
            .map_or(Ok(()), |f| f(ctx, epoch, logs))
    }

    fn on_train_batch_begin(&mut self, ctx: &mut Context<'_>, batch: usize) -> Result<()> {
        self.batch_begin.as_mut().map_or(Ok(()), |f| f(ctx, batch))
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> Result<()> {
        self.batch_end.as_mut().map_or(Ok(()), |f| f(ctx, batch))
    }
}
