//! `ReduceLROnPlateau`: Keras 3's callback of that name, whose counters survive a resume (the
//! learning rate itself is part of every saved state).

use super::monitor::{Monitor, StateReader, number};
use super::{Callback, Context, Mode};
use crate::error::{Error, Result};
use crate::state::Logs;
use serde_json::{Value, json};

const NAME: &str = "ReduceLROnPlateau";

/// Multiplies the learning rate by `factor` when a monitored metric has not improved for
/// `patience` epochs, as Keras 3's `ReduceLROnPlateau` (`monitor`, `factor`, `patience`,
/// `mode`, `min_delta`, `cooldown`, `min_lr`, with Keras's defaults). A metric the run does
/// not log fails `fit` as [`crate::EarlyStopping`]'s does, and so does a learning rate that
/// follows the optimizer's schedule (before training).
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    wait: usize,
    cooldown_counter: usize,
    best: Option<f64>,
    reductions: Vec<(usize, f32)>,
}

impl ReduceLROnPlateau {
    /// Monitors `monitor` with Keras's defaults: factor 0.1, patience 10, min_delta 1e-4,
    /// cooldown 0, min_lr 0.
    pub fn new(monitor: impl Into<String>) -> Self {
        let mut monitor = Monitor::new(monitor);
        monitor.min_delta = 1e-4;
        ReduceLROnPlateau {
            monitor,
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
            best: None,
            reductions: Vec::new(),
        }
    }

    /// The new rate is the old times `factor` (below 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before a reduction.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether lower or higher is better (`Auto`: higher when the name contains `acc`, as
    /// Keras's rule for this callback).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// The least change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta;
        self
    }

    /// Epochs after a reduction during which no improvement is waited for.
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The rate never goes below this.
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// The reductions made by the last `fit`: `(epoch, new rate)` (after a resume, only those
    /// of the resumed part).
    pub fn reductions(&self) -> &[(usize, f32)] {
        &self.reductions
    }

    fn lower_is_better(&self) -> bool {
        match self.monitor.mode {
            Mode::Min => true,
            Mode::Max => false,
            Mode::Auto => !self.monitor.name.contains("acc"),
        }
    }
}

impl Callback for ReduceLROnPlateau {
    fn name(&self) -> &str {
        NAME
    }

    fn settings(&self) -> Option<String> {
        Some(format!(
            "{}, factor {}, patience {}, cooldown {}, min_lr {}",
            self.monitor.words(),
            self.factor,
            self.patience,
            self.cooldown,
            self.min_lr
        ))
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.monitor.check_validates(ctx, NAME)?;
        // Found here, not at the first reduction many epochs in.
        if ctx.learning_rate_follows_schedule() {
            return Err(Error::Callback {
                callback: NAME.into(),
                reason: "the learning rate follows the optimizer's schedule, which sets it at \
                         every step; compile without the schedule to reduce it on plateaus"
                    .into(),
            });
        }
        if !(self.factor < 1.0 && self.factor > 0.0) {
            return Err(Error::config(
                "ReduceLROnPlateau factor",
                format!("{} must be above 0 and below 1", self.factor),
            ));
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            return Err(Error::config(
                "ReduceLROnPlateau min_lr",
                format!("{} must be 0 or more", self.min_lr),
            ));
        }
        self.wait = 0;
        self.cooldown_counter = 0;
        self.best = None;
        self.reductions.clear();
        Ok(())
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        let Some(current) = self.monitor.current(logs, ctx.validates(), NAME)? else {
            return Ok(());
        };
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        // Keras starts from an infinitely bad best, so a NaN never improves.
        let lower = self.lower_is_better();
        let reference = Some(self.best.unwrap_or(if lower {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }));
        if self.monitor.improves(current, reference, lower) {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = f64::from(ctx.learning_rate());
                if old > f64::from(self.min_lr as f32) {
                    let new = (old * self.factor).max(self.min_lr) as f32;
                    ctx.set_learning_rate(new)?;
                    self.reductions.push((epoch, new));
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }

    fn state(&self) -> Option<Value> {
        Some(json!({
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "best": number(self.best),
        }))
    }

    fn load_state(&mut self, state: Value) -> Result<()> {
        let r = StateReader {
            callback: NAME,
            state: &state,
        };
        self.wait = r.count("wait")?;
        self.cooldown_counter = r.count("cooldown_counter")?;
        self.best = r.number("best")?;
        Ok(())
    }
}
