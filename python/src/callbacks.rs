//! Keras's callbacks by name and config (`BackupAndRestore`, `EarlyStopping`,
//! `ModelCheckpoint`, `ReduceLROnPlateau`, `CSVLogger`, `TerminateOnNaN`), as the Python
//! classes of `wgfit.callbacks` hand them over, built as wgfit's.

use crate::{config_err, py_err};
use pyo3::PyResult;
use serde_json::Value;
use wgfit::callbacks::Mode;
use wgfit::{
    BackupAndRestore, Callback, CheckpointFreq, CsvLogger, EarlyStopping, ModelCheckpoint,
    ReduceLROnPlateau, SaveFreq, TerminateOnNaN,
};

/// The callbacks of one `fit`.
pub struct Built(Vec<Box<dyn Callback + Send>>);

impl Built {
    pub fn list(&mut self) -> Vec<&mut dyn Callback> {
        self.0
            .iter_mut()
            .map(|c| c.as_mut() as &mut dyn Callback)
            .collect()
    }
}

fn mode(c: &Value) -> PyResult<Mode> {
    match c["mode"].as_str().unwrap_or("auto") {
        "auto" => Ok(Mode::Auto),
        "min" => Ok(Mode::Min),
        "max" => Ok(Mode::Max),
        other => Err(config_err(format!("mode `{other}`: auto, min or max"))),
    }
}

/// Keras's `save_freq`: `"epoch"`, a number of batches, or `False` (BackupAndRestore only).
fn batches(c: &Value) -> PyResult<Option<usize>> {
    match &c["save_freq"] {
        Value::Null => Ok(None),
        Value::String(s) if s == "epoch" => Ok(None),
        Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => Ok(n.as_u64().map(|n| n as usize)),
        other => Err(config_err(format!(
            "save_freq {other}: \"epoch\" or a number of batches"
        ))),
    }
}

/// `(class name, JSON config)` pairs to callbacks.
pub fn build(configs: &[(String, String)]) -> PyResult<Built> {
    let mut out: Vec<Box<dyn Callback + Send>> = Vec::new();
    for (name, text) in configs {
        let c: Value =
            serde_json::from_str(text).map_err(|e| config_err(format!("{name}: {e}")))?;
        let monitor = c["monitor"].as_str().unwrap_or("val_loss").to_string();
        let f = |k: &str, d: f64| c[k].as_f64().unwrap_or(d);
        // A count: absent, or a whole number >= 0 (2.0 too, as Keras compares it).
        let n = |k: &str, d: u64| -> PyResult<usize> {
            match &c[k] {
                Value::Null => Ok(d as usize),
                v => v
                    .as_u64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                            .map(|f| f as u64)
                    })
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        config_err(format!("{name}: {k} {v}: give a whole number >= 0"))
                    }),
            }
        };
        let b = |k: &str, d: bool| c[k].as_bool().unwrap_or(d);
        let s = |k: &str| c[k].as_str().map(str::to_string);
        let callback: Box<dyn Callback + Send> = match name.as_str() {
            "BackupAndRestore" => {
                let dir =
                    s("backup_dir").ok_or_else(|| config_err("BackupAndRestore: no backup_dir"))?;
                let freq = match &c["save_freq"] {
                    Value::Bool(false) => SaveFreq::Never,
                    _ => batches(&c)?.map_or(SaveFreq::Epoch, SaveFreq::Batches),
                };
                Box::new(
                    BackupAndRestore::new(dir)
                        .map_err(py_err)?
                        .save_freq(freq)
                        .map_err(py_err)?
                        .double_checkpoint(b("double_checkpoint", false))
                        .delete_checkpoint(b("delete_checkpoint", true))
                        .save_before_preemption(true)
                        .map_err(py_err)?,
                )
            }
            "EarlyStopping" => {
                let mut e = EarlyStopping::new(monitor)
                    .patience(n("patience", 0)?)
                    .min_delta(f("min_delta", 0.0))
                    .mode(mode(&c)?)
                    .restore_best_weights(b("restore_best_weights", false))
                    .start_from_epoch(n("start_from_epoch", 0)?);
                if let Some(base) = c["baseline"].as_f64() {
                    e = e.baseline(base);
                }
                Box::new(e)
            }
            "ReduceLROnPlateau" => Box::new(
                ReduceLROnPlateau::new(monitor)
                    .factor(f("factor", 0.1))
                    .patience(n("patience", 10)?)
                    .mode(mode(&c)?)
                    .min_delta(f("min_delta", 1e-4))
                    .cooldown(n("cooldown", 0)?)
                    .min_lr(f("min_lr", 0.0)),
            ),
            "ModelCheckpoint" => {
                let path =
                    s("filepath").ok_or_else(|| config_err("ModelCheckpoint: no filepath"))?;
                let freq = batches(&c)?.map_or(CheckpointFreq::Epoch, CheckpointFreq::Batches);
                Box::new(
                    ModelCheckpoint::new(path)
                        .monitor(monitor)
                        .mode(mode(&c)?)
                        .save_best_only(b("save_best_only", false))
                        .save_freq(freq),
                )
            }
            "CSVLogger" => {
                let path = s("filename").ok_or_else(|| config_err("CSVLogger: no filename"))?;
                let sep = match s("separator") {
                    None => ',',
                    Some(t) => {
                        let mut chars = t.chars();
                        match (chars.next(), chars.next()) {
                            (Some(c), None) => c,
                            _ => {
                                return Err(config_err(format!(
                                    "CSVLogger: separator {t:?}: give one character"
                                )));
                            }
                        }
                    }
                };
                Box::new(
                    CsvLogger::new(path)
                        .separator(sep)
                        .append(b("append", false)),
                )
            }
            "TerminateOnNaN" => Box::new(TerminateOnNaN),
            other => {
                return Err(config_err(format!(
                    "callback `{other}`: wgfit has BackupAndRestore, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger and TerminateOnNaN"
                )));
            }
        };
        out.push(callback);
    }
    Ok(Built(out))
}
