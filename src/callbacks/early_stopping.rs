//! `EarlyStopping`: Keras 3's callback of that name, whose state survives a resume (its
//! counters in JSON, its best weights as tensors of the backup's weights file), so a resumed
//! run stops at the epoch an uninterrupted one does and ends with the same weights.

use super::monitor::{
    Mode, Monitor, StateReader, as_callback_tensors, from_callback_tensors, number,
};
use super::{Callback, Context};
use crate::error::Result;
use crate::state::{Logs, Tensor};
use serde_json::{Value, json};
use std::sync::Arc;

/// Stops training when a monitored metric has stopped improving, as Keras 3's `EarlyStopping`
/// (`monitor`, `min_delta`, `patience`, `mode`, `baseline`, `restore_best_weights`,
/// `start_from_epoch`). Its counters and best weights are part of every backup. Where Keras
/// warns of a monitored metric the logs lack and then never acts, `fit` fails, naming it: a
/// `val_` metric without validation data before training, another at the first epoch end
/// (epochs that skip validation are skipped).
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    wait: usize,
    best: Option<f64>,
    best_epoch: usize,
    stopped_epoch: usize,
    best_weights: Option<Arc<[Tensor]>>,
    restored_epoch: Option<usize>,
}

const NAME: &str = "EarlyStopping";

impl EarlyStopping {
    /// Monitors `monitor` (e.g. `val_loss`) with Keras's defaults: patience 0, no min_delta.
    pub fn new(monitor: impl Into<String>) -> Self {
        EarlyStopping {
            monitor: Monitor::new(monitor),
            patience: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            best: None,
            best_epoch: 0,
            stopped_epoch: 0,
            best_weights: None,
            restored_epoch: None,
        }
    }

    /// Epochs without improvement before stopping.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The least change that counts as an improvement (its sign is ignored, as in Keras).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta.abs();
        self
    }

    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// A value the metric must beat for the patience to start over.
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// At the end of training, put back the weights of the best epoch (as Keras: also when
    /// training was not stopped early).
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The first epoch (0-based) whose value counts.
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// The epoch (0-based) training was stopped at, if it was.
    pub fn stopped_epoch(&self) -> Option<usize> {
        (self.stopped_epoch > 0).then_some(self.stopped_epoch)
    }

    /// The best value seen and its epoch (0-based).
    pub fn best(&self) -> Option<(f64, usize)> {
        self.best.map(|b| (b, self.best_epoch))
    }

    /// The epoch (0-based) whose weights `restore_best_weights` put back at the end of the
    /// last `fit`, if it did: the model then holds that epoch's weights, not the last one's.
    pub fn restored_epoch(&self) -> Option<usize> {
        self.restored_epoch
    }

    fn keep_weights(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        let params = ctx.read_params()?;
        self.best_weights = Some(as_callback_tensors(NAME, params).into());
        Ok(())
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        NAME
    }

    fn settings(&self) -> Option<String> {
        Some(format!(
            "{}, patience {}, baseline {:?}, restore_best_weights {}, start_from_epoch {}",
            self.monitor.words(),
            self.patience,
            self.baseline,
            self.restore_best_weights,
            self.start_from_epoch
        ))
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.monitor.check_validates(ctx, NAME)?;
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best = None;
        self.best_epoch = 0;
        self.best_weights = None;
        self.restored_epoch = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        let lower = self.monitor.lower_is_better(NAME)?;
        let Some(current) = self.monitor.current(logs, ctx.validates(), NAME)? else {
            return Ok(());
        };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            // Never set: the current weights are the best so far.
            self.keep_weights(ctx)?;
            self.best_epoch = epoch;
        }
        self.wait += 1;
        if self.monitor.improves(current, self.best, lower) {
            self.best = Some(current);
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.keep_weights(ctx)?;
            }
            // The patience starts over only past both the baseline and the previous best.
            if self.baseline.is_none() || self.monitor.improves(current, self.baseline, lower) {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>, _logs: &Logs) -> Result<()> {
        if self.restore_best_weights
            && let Some(best) = &self.best_weights
        {
            ctx.set_params(&from_callback_tensors(best.to_vec()))?;
            self.restored_epoch = Some(self.best_epoch);
        }
        Ok(())
    }

    fn state(&self) -> Option<Value> {
        Some(json!({
            "wait": self.wait,
            "best": number(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }))
    }

    fn load_state(&mut self, state: Value) -> Result<()> {
        let r = StateReader {
            callback: NAME,
            state: &state,
        };
        self.wait = r.count("wait")?;
        self.best_epoch = r.count("best_epoch")?;
        self.stopped_epoch = r.count("stopped_epoch")?;
        self.best = r.number("best")?;
        Ok(())
    }

    fn state_tensors(&self) -> Option<Arc<[Tensor]>> {
        self.best_weights.clone()
    }

    fn load_state_tensors(&mut self, tensors: Vec<Tensor>) -> Result<()> {
        self.best_weights = Some(tensors.into());
        Ok(())
    }
}
