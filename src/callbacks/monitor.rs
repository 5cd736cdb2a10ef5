//! What the callbacks that watch a metric share (`EarlyStopping`, `ModelCheckpoint`,
//! `ReduceLROnPlateau`): the metric, the direction it should go, Keras's test for an
//! improvement, and the JSON form of their saved numbers.

use crate::callbacks::Context;
use crate::error::{Error, Result};
use crate::state::{Logs, Tensor};
use serde_json::{Value, json};

/// Whether the monitored value should go down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// From the monitored name, as Keras: `min` for losses, `max` for accuracies.
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// A monitored metric with its mode and least improvement.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub name: String,
    pub mode: Mode,
    pub min_delta: f64,
}

impl Monitor {
    pub fn new(name: impl Into<String>) -> Self {
        Monitor {
            name: name.into(),
            mode: Mode::Auto,
            min_delta: 0.0,
        }
    }

    /// "monitor val_loss (Auto, min_delta 0)", for the ranks' agreement.
    pub fn words(&self) -> String {
        format!(
            "monitor {} ({:?}, min_delta {})",
            self.name, self.mode, self.min_delta
        )
    }

    /// Whether lower is better, by Keras's `MonitorCallback` rule: `loss` and `val_loss` go
    /// down, `accuracy` and `val_accuracy` up; another name needs an explicit mode.
    pub fn lower_is_better(&self, callback: &str) -> Result<bool> {
        match self.mode {
            Mode::Min => Ok(true),
            Mode::Max => Ok(false),
            Mode::Auto => match self.name.strip_prefix("val_").unwrap_or(&self.name) {
                "loss" => Ok(true),
                "accuracy" => Ok(false),
                other => Err(Error::Callback {
                    callback: callback.into(),
                    reason: format!(
                        "cannot tell whether `{other}` should go down or up; give mode Min or Max"
                    ),
                }),
            },
        }
    }

    /// The monitored value in an epoch's `logs`; `None` at an epoch that did not validate (a
    /// `val_` name, `validates` true, and no `val_` value in the logs). A name the run does
    /// not log is an error naming what it logs: Keras warns, and the callback then does
    /// nothing for the whole run.
    pub fn current(&self, logs: &Logs, validates: bool, callback: &str) -> Result<Option<f64>> {
        if let Some(&v) = logs.get(&self.name) {
            return Ok(Some(v));
        }
        let validated = logs.keys().any(|k| k.starts_with("val_"));
        let is_val = self.name.starts_with("val_");
        // An epoch that trained no batch (stopped at its start) logs no loss either.
        if (is_val && validates && !validated) || !logs.contains_key("loss") {
            return Ok(None);
        }
        let logged: Vec<&str> = logs.keys().map(String::as_str).collect();
        let hint = match is_val && !validates {
            true => "; it needs validation data (validation_data or validation_split)",
            false => "",
        };
        Err(Error::Callback {
            callback: callback.into(),
            reason: format!(
                "monitors `{}`, which this run does not log (it logs {}){hint}",
                self.name,
                logged.join(", ")
            ),
        })
    }

    /// At the start of training: a `val_` name needs validation data, and an epoch of the
    /// run that validates (found here, not after the first epoch, or never).
    pub fn check_validates(&self, ctx: &Context<'_>, callback: &str) -> Result<()> {
        if !self.name.starts_with("val_") {
            return Ok(());
        }
        let reason = if !ctx.validates() {
            "needs validation data (validation_data or validation_split)".to_string()
        } else if !ctx.some_epoch_validates() {
            format!(
                "is never logged: validation_freq {} is above the run's {} epochs, so no \
                 epoch validates; use a validation_freq of {} or less",
                ctx.validation_freq(),
                ctx.epochs(),
                ctx.epochs()
            )
        } else {
            return Ok(());
        };
        Err(Error::Callback {
            callback: callback.into(),
            reason: format!("monitors `{}`, which {reason}", self.name),
        })
    }

    /// Keras's `_is_improvement`: `value` beats `reference` by more than `min_delta` (any
    /// value beats no reference; NaN beats nothing).
    pub fn improves(&self, value: f64, reference: Option<f64>, lower: bool) -> bool {
        match reference {
            None => !value.is_nan(),
            Some(r) if lower => value + self.min_delta < r,
            Some(r) => value - self.min_delta > r,
        }
    }
}

/// A number in a callback's JSON state: non-finite ones as the log encoding's strings
/// (docs/FORMAT.md), so that every value survives a save.
pub(crate) fn number(v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(v) if v.is_finite() => json!(v),
        Some(v) if v.is_nan() => json!("NaN"),
        Some(v) if v > 0.0 => json!("Infinity"),
        Some(_) => json!("-Infinity"),
    }
}

/// Reads a value written by [`number`]: `Ok(None)` for null, `Err(())` for anything else.
pub(crate) fn parse_number(v: &Value) -> std::result::Result<Option<f64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s == "NaN" => Ok(Some(f64::NAN)),
        Value::String(s) if s == "Infinity" => Ok(Some(f64::INFINITY)),
        Value::String(s) if s == "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
        other => other.as_f64().map(Some).ok_or(()),
    }
}

/// Reads a callback's saved JSON state field by field; every failure names the callback and
/// shows the state.
pub(crate) struct StateReader<'a> {
    pub callback: &'a str,
    pub state: &'a Value,
}

impl StateReader<'_> {
    fn bad(&self, key: &str) -> Error {
        Error::Callback {
            callback: self.callback.into(),
            reason: format!(
                "the backup holds an unreadable state (field `{key}`): {}",
                self.state
            ),
        }
    }

    /// A count.
    pub fn count(&self, key: &str) -> Result<usize> {
        self.state[key]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| self.bad(key))
    }

    /// A number written by [`number`].
    pub fn number(&self, key: &str) -> Result<Option<f64>> {
        parse_number(&self.state[key]).map_err(|()| self.bad(key))
    }
}

/// Parameters renamed as a callback's tensors, `callbacks.<callback>.<parameter name>`.
pub(crate) fn as_callback_tensors(callback: &str, params: Vec<Tensor>) -> Vec<Tensor> {
    params
        .into_iter()
        .map(|t| Tensor {
            name: format!("{}{callback}.{}", crate::state::CALLBACK_TENSORS, t.name),
            ..t
        })
        .collect()
}

/// The parameters a callback's tensors hold, under their parameter names.
pub(crate) fn from_callback_tensors(tensors: Vec<Tensor>) -> Vec<Tensor> {
    tensors
        .into_iter()
        .map(|t| match crate::state::split_callback_tensor(&t.name) {
            Some((_, param)) => Tensor {
                name: param.to_string(),
                ..t
            },
            None => t,
        })
        .collect()
}
