//! `EarlyStopping`: Keras 3's callback of that name (without `restore_best_weights`), whose
//! state survives a resume, so a resumed run stops at the epoch an uninterrupted one does.

use super::{Callback, Context};
use crate::error::{Error, Result};
use crate::state::Logs;
use serde_json::{Value, json};

/// Whether the monitored value should go down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `min` for losses, `max` for accuracies (from the monitored name, as Keras).
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// Stops training when a monitored metric has stopped improving, as Keras 3's `EarlyStopping`
/// (`monitor`, `min_delta`, `patience`, `mode`, `baseline`, `start_from_epoch`). Its counters are
/// part of every backup, so a resumed run stops at the same epoch as an uninterrupted one.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: String,
    min_delta: f64,
    patience: usize,
    mode: Mode,
    baseline: Option<f64>,
    start_from_epoch: usize,
    wait: usize,
    best: Option<f64>,
    best_epoch: usize,
    stopped_epoch: usize,
}

impl EarlyStopping {
    /// Monitors `monitor` (e.g. `val_loss`) with Keras's defaults: patience 0, no min_delta.
    pub fn new(monitor: impl Into<String>) -> Self {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            baseline: None,
            start_from_epoch: 0,
            wait: 0,
            best: None,
            best_epoch: 0,
            stopped_epoch: 0,
        }
    }

    /// Epochs without improvement before stopping.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The least change that counts as an improvement (its sign is ignored, as in Keras).
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A value the metric must beat for the patience to start over.
    pub fn baseline(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
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

    /// The best value seen and its epoch.
    pub fn best(&self) -> Option<(f64, usize)> {
        self.best.map(|b| (b, self.best_epoch))
    }

    /// Whether lower is better for the monitored metric.
    fn lower_is_better(&self) -> Result<bool> {
        match self.mode {
            Mode::Min => Ok(true),
            Mode::Max => Ok(false),
            Mode::Auto => match self.monitor.strip_prefix("val_").unwrap_or(&self.monitor) {
                "loss" => Ok(true),
                "accuracy" => Ok(false),
                other => Err(Error::Callback {
                    callback: "EarlyStopping".into(),
                    reason: format!(
                        "cannot tell whether `{other}` should go down or up; give mode Min or Max"
                    ),
                }),
            },
        }
    }

    /// Keras's `_is_improvement`.
    fn improves(&self, value: f64, reference: Option<f64>, lower: bool) -> bool {
        match reference {
            None => true,
            Some(r) if lower => value + self.min_delta < r,
            Some(r) => value - self.min_delta > r,
        }
    }
}

/// A number in the callback's JSON state: non-finite ones as the log encoding's strings.
fn number(v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(v) if v.is_finite() => json!(v),
        Some(v) if v.is_nan() => json!("NaN"),
        Some(v) if v > 0.0 => json!("Infinity"),
        Some(_) => json!("-Infinity"),
    }
}

fn parse_number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) if s == "NaN" => Some(f64::NAN),
        Value::String(s) if s == "Infinity" => Some(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Some(f64::NEG_INFINITY),
        other => other.as_f64(),
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &str {
        "EarlyStopping"
    }

    fn on_train_begin(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best = None;
        self.best_epoch = 0;
        Ok(())
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        let lower = self.lower_is_better()?;
        let Some(&current) = logs.get(&self.monitor) else {
            return Ok(());
        };
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        self.wait += 1;
        if self.improves(current, self.best, lower) {
            self.best = Some(current);
            self.best_epoch = epoch;
            // The patience starts over only past both the baseline and the previous best.
            if self.baseline.is_none() || self.improves(current, self.baseline, lower) {
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

    fn state(&self) -> Option<Value> {
        Some(json!({
            "wait": self.wait,
            "best": number(self.best),
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }))
    }

    fn load_state(&mut self, state: Value) -> Result<()> {
        let bad = || Error::Callback {
            callback: "EarlyStopping".into(),
            reason: format!("the backup holds an unreadable state: {state}"),
        };
        let count = |key: &str| -> Result<usize> {
            state[key].as_u64().map(|v| v as usize).ok_or_else(bad)
        };
        self.wait = count("wait")?;
        self.best_epoch = count("best_epoch")?;
        self.stopped_epoch = count("stopped_epoch")?;
        self.best = match &state["best"] {
            Value::Null => None,
            v => Some(parse_number(v).ok_or_else(bad)?),
        };
        Ok(())
    }
}
