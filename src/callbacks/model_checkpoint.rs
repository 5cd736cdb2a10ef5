//! `ModelCheckpoint`: Keras 3's callback of that name, saving the model's weights as
//! safetensors files (atomically), with its best value and batch counters restored on resume
//! (keras#17012: after a resume, `save_best_only` no longer overwrites the best model with a
//! worse one).

use super::monitor::{Monitor, StateReader, number};
use super::python_format::{Value as Field, format_fields};
use super::{Callback, Context, Mode};
use crate::error::{Error, Result};
use crate::state::Logs;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

const NAME: &str = "ModelCheckpoint";

/// When [`ModelCheckpoint`] saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFreq {
    /// At the end of every epoch (Keras's `"epoch"`).
    Epoch,
    /// After every `n` batches, counted across epochs as Keras does.
    Batches(usize),
}

/// Saves the model's weights as a safetensors file (`model.layers.<i>.weight`/`bias` and the
/// record of each layer's activation and the loss: the `--output` form), as Keras 3's `ModelCheckpoint` with `save_weights_only=True`
/// (`filepath`, `monitor`, `mode`, `save_best_only`, `save_freq`, `initial_value_threshold`).
/// The file name is `filepath` formatted as Python's `str.format` with `epoch` (1-based), for
/// batch saves `batch` (1-based), and the logs: `w-{epoch:02d}-{val_loss:.3f}.safetensors`.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: Monitor,
    save_best_only: bool,
    save_freq: CheckpointFreq,
    initial_value_threshold: Option<f64>,
    input_scale: Option<f32>,
    best: Option<f64>,
    batches_since_saving: usize,
    last_batch_seen: usize,
    current_epoch: usize,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves to `filepath` (a pattern) after every epoch, monitoring `val_loss` as Keras.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: Monitor::new("val_loss"),
            save_best_only: false,
            save_freq: CheckpointFreq::Epoch,
            initial_value_threshold: None,
            input_scale: None,
            best: None,
            batches_since_saving: 0,
            last_batch_seen: 0,
            current_epoch: 0,
            saved: Vec::new(),
        }
    }

    /// The metric `save_best_only` compares.
    pub fn monitor(mut self, monitor: impl Into<String>) -> Self {
        self.monitor.name = monitor.into();
        self
    }

    /// Whether lower or higher is better.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Save only when the monitored value improves on the best so far. Unlike Keras (which
    /// warns, then saves every time), a monitored value the run does not log is refused,
    /// before training where it can be told then (a `val_` value without validation data, with
    /// a `validation_freq` above the run's epochs, or with saves every n batches), and an epoch
    /// that did not validate saves nothing.
    pub fn save_best_only(mut self, on: bool) -> Self {
        self.save_best_only = on;
        self
    }

    /// Save every epoch or every n batches.
    pub fn save_freq(mut self, freq: CheckpointFreq) -> Self {
        self.save_freq = freq;
        self
    }

    /// The value the first save must beat (with `save_best_only`).
    pub fn initial_value_threshold(mut self, value: f64) -> Self {
        self.initial_value_threshold = Some(value);
        self
    }

    /// Records in every file that the training inputs were multiplied by `scale` before they
    /// reached the model (as `wgfit train --scale` does), so that `wgfit evaluate` and
    /// `predict` scale theirs alike.
    pub fn input_scale(mut self, scale: f32) -> Self {
        self.input_scale = Some(scale);
        self
    }

    /// The files the last `fit` wrote, in order (a file written twice appears twice).
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    /// Fails before training, not at the first save, on a file name pattern that cannot be
    /// formatted or names a value no log of this run will have.
    fn check_pattern(&self, ctx: &Context<'_>) -> Result<()> {
        let batch = matches!(self.save_freq, CheckpointFreq::Batches(_));
        let logs = self.logged(ctx);
        let mut values: BTreeMap<String, Field> = logs
            .iter()
            .map(|k| (k.clone(), Field::Float(0.5)))
            .collect();
        values.insert("epoch".into(), Field::Int(1));
        if batch {
            values.insert("batch".into(), Field::Int(1));
        }
        format_fields(&self.filepath, &values)
            .map(|_| ())
            .map_err(|reason| Error::Callback {
                callback: NAME.into(),
                reason: format!("cannot format the file name `{}`: {reason}", self.filepath),
            })
    }

    /// The names the logs of this run's save points have.
    fn logged(&self, ctx: &Context<'_>) -> Vec<String> {
        // Batch saves see the epoch's running means only (as Keras's batch logs).
        let batch = matches!(self.save_freq, CheckpointFreq::Batches(_));
        let mut logs = vec!["loss".to_string()];
        if ctx.fingerprint().loss == crate::Loss::CrossEntropy.name() {
            logs.push("accuracy".into());
        }
        if !batch {
            logs.push("learning_rate".into());
            if ctx.validates() {
                let val: Vec<String> = logs.iter().map(|k| format!("val_{k}")).collect();
                logs.extend(val);
            }
        }
        logs
    }

    /// Before training: `save_best_only` compares a value the save points' logs will have (a
    /// `val_` value needs validation data, and batch saves see training means only).
    fn check_monitor(&self, ctx: &Context<'_>) -> Result<()> {
        self.monitor.lower_is_better(NAME)?;
        let logged = self.logged(ctx);
        if matches!(self.save_freq, CheckpointFreq::Batches(_))
            && !logged.contains(&self.monitor.name)
        {
            return Err(Error::Callback {
                callback: NAME.into(),
                reason: format!(
                    "monitors `{}` with saves every n batches, whose logs are the epoch's \
                     training means so far ({}); monitor one of them, or save every epoch",
                    self.monitor.name,
                    logged.join(", ")
                ),
            });
        }
        self.monitor.check_validates(ctx, NAME)
    }

    /// Keras's `_should_save_on_batch`: counts batches across epoch boundaries.
    fn due_on_batch(&mut self, batch: usize) -> bool {
        let CheckpointFreq::Batches(n) = self.save_freq else {
            return false;
        };
        let added = if batch <= self.last_batch_seen {
            batch + 1
        } else {
            batch - self.last_batch_seen
        };
        self.batches_since_saving += added;
        self.last_batch_seen = batch;
        if self.batches_since_saving >= n {
            self.batches_since_saving = 0;
            return true;
        }
        false
    }

    /// Saves the weights if due by `save_best_only`.
    fn save(
        &mut self,
        ctx: &mut Context<'_>,
        epoch: usize,
        batch: Option<usize>,
        logs: &Logs,
    ) -> Result<()> {
        let mut fields: BTreeMap<String, Field> = logs
            .iter()
            .map(|(k, v)| (k.clone(), Field::Float(*v)))
            .collect();
        fields.insert("epoch".into(), Field::Int(epoch as u64 + 1));
        if let Some(b) = batch {
            fields.insert("batch".into(), Field::Int(b as u64 + 1));
        }
        let path = format_fields(&self.filepath, &fields).map_err(|reason| Error::Callback {
            callback: NAME.into(),
            reason: format!("cannot format the file name `{}`: {reason}", self.filepath),
        })?;
        if self.save_best_only {
            let lower = self.monitor.lower_is_better(NAME)?;
            // Keras warns and saves when the value is missing, and the "best" file then holds
            // whatever came last: a name the run does not log is refused, and an epoch that
            // did not validate (validation_freq) is no candidate.
            let validates = ctx.validates() && batch.is_none();
            let Some(current) = self.monitor.current(logs, validates, NAME)? else {
                return Ok(());
            };
            let best = self.best.unwrap_or(if lower {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            });
            if !self.monitor.improves(current, Some(best), lower) {
                return Ok(());
            }
            self.best = Some(current);
        }
        let path = PathBuf::from(path);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::ckpt_io(parent, e))?;
        }
        if path.is_dir() {
            return Err(Error::Callback {
                callback: NAME.into(),
                reason: format!("{} is a directory; give a file path", path.display()),
            });
        }
        let params = ctx.read_params()?;
        // With the record of the model, so `wgfit evaluate` and `predict` rebuild it exactly.
        let meta = crate::model::WeightsMeta {
            input_scale: self.input_scale,
            ..crate::model::WeightsMeta::from_fingerprint(ctx.fingerprint())?
        };
        meta.write_with(&path, &params)?;
        self.saved.push(path);
        Ok(())
    }
}

impl Callback for ModelCheckpoint {
    fn name(&self) -> &str {
        NAME
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.check_pattern(ctx)?;
        if self.save_freq == CheckpointFreq::Batches(0) {
            return Err(Error::config(
                "ModelCheckpoint save_freq",
                "0 batches; use 1 or more, or Epoch",
            ));
        }
        if self.save_best_only {
            self.check_monitor(ctx)?;
        }
        self.best = self.initial_value_threshold;
        self.batches_since_saving = 0;
        self.last_batch_seen = 0;
        self.saved.clear();
        Ok(())
    }

    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> Result<()> {
        if self.due_on_batch(batch) {
            // Keras's batch logs: the means over the epoch so far.
            let logs = ctx.epoch_logs_so_far()?;
            self.save(ctx, self.current_epoch, Some(batch), &logs)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        if self.save_freq == CheckpointFreq::Epoch {
            self.save(ctx, epoch, None, logs)?;
        }
        Ok(())
    }

    fn state(&self) -> Option<Value> {
        Some(json!({
            "best": number(self.best),
            "batches_since_saving": self.batches_since_saving,
            "last_batch_seen": self.last_batch_seen,
        }))
    }

    fn load_state(&mut self, state: Value) -> Result<()> {
        let r = StateReader {
            callback: NAME,
            state: &state,
        };
        self.best = r.number("best")?;
        self.batches_since_saving = r.count("batches_since_saving")?;
        self.last_batch_seen = r.count("last_batch_seen")?;
        Ok(())
    }
}
