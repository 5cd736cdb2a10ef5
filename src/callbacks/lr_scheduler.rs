//! `LearningRateScheduler`: Keras 3's callback of that name, with a Rust closure.

use super::{Callback, Context};
use crate::error::Result;

/// Sets the learning rate at the start of every epoch to `schedule(epoch, current rate)`, as
/// Keras 3's `LearningRateScheduler`. Needs no saved state: the rate is part of every backup,
/// and an epoch resumed in its middle keeps the rate its start set.
pub struct LearningRateScheduler<'f> {
    schedule: Box<dyn FnMut(usize, f64) -> f64 + 'f>,
}

impl<'f> LearningRateScheduler<'f> {
    /// `schedule(epoch, rate)` returns the rate for `epoch` (0-based) from the current one.
    pub fn new(schedule: impl FnMut(usize, f64) -> f64 + 'f) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
        }
    }
}

impl Callback for LearningRateScheduler<'_> {
    fn name(&self) -> &str {
        "LearningRateScheduler"
    }

    // A function cannot be compared: its presence can.
    fn settings(&self) -> Option<String> {
        Some("a schedule".into())
    }

    fn on_epoch_begin(&mut self, ctx: &mut Context<'_>, epoch: usize) -> Result<()> {
        if ctx.position().step > 0 {
            // Resumed in the middle of the epoch: its start already set the rate.
            return Ok(());
        }
        let rate = (self.schedule)(epoch, f64::from(ctx.learning_rate()));
        ctx.set_learning_rate(rate as f32)
    }
}
