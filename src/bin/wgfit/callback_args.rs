//! The callback flags of `wgfit train` (early stopping, checkpoints, learning-rate plateaus,
//! CSV log, plot) and the callbacks they build.

use crate::CliResult;
use clap::Args;
use std::path::PathBuf;
use wgfit::{
    Callback, CsvLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
};

#[derive(Args, Debug)]
pub struct CallbackArgs {
    /// The metric --early-stopping, --save-best-only and --reduce-lr-on-plateau watch
    /// [default: val_loss with validation data, else loss]
    #[arg(long, value_name = "METRIC", help_heading = "Callbacks")]
    pub monitor: Option<String>,
    /// Stop when the monitored metric has not improved for this many epochs (Keras's
    /// EarlyStopping; its state is saved with every backup)
    #[arg(long, value_name = "PATIENCE", help_heading = "Callbacks")]
    pub early_stopping: Option<usize>,
    /// The least change that counts as an improvement for --early-stopping
    #[arg(
        long,
        value_name = "D",
        default_value_t = 0.0,
        requires = "early_stopping",
        help_heading = "Callbacks"
    )]
    pub min_delta: f64,
    /// With --early-stopping: end with the weights of the best epoch
    #[arg(long, requires = "early_stopping", help_heading = "Callbacks")]
    pub restore_best_weights: bool,
    /// Save the weights after every epoch to this file name pattern, e.g.
    /// 'ckpt/w-{epoch:02d}-{val_loss:.3f}.safetensors' (Python format fields: epoch is
    /// 1-based, and any metric)
    #[arg(long, value_name = "PATTERN", help_heading = "Callbacks")]
    pub checkpoint: Option<String>,
    /// With --checkpoint: save only when the monitored metric improves
    #[arg(long, requires = "checkpoint", help_heading = "Callbacks")]
    pub save_best_only: bool,
    /// Multiply the learning rate by FACTOR (below 1) when the monitored metric has not
    /// improved for --plateau-patience epochs (Keras's ReduceLROnPlateau)
    #[arg(long, value_name = "FACTOR", help_heading = "Callbacks")]
    pub reduce_lr_on_plateau: Option<f64>,
    /// Epochs without improvement before --reduce-lr-on-plateau acts
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        requires = "reduce_lr_on_plateau",
        help_heading = "Callbacks"
    )]
    pub plateau_patience: usize,
    /// The learning rate --reduce-lr-on-plateau never goes below
    #[arg(
        long,
        value_name = "LR",
        default_value_t = 0.0,
        requires = "reduce_lr_on_plateau",
        help_heading = "Callbacks"
    )]
    pub min_lr: f64,
    /// Stop with an error at the first batch whose loss is NaN or infinite (waits for the GPU
    /// after every batch)
    #[arg(long, help_heading = "Callbacks")]
    pub terminate_on_nan: bool,
    /// Write every epoch's metrics to this CSV file as Keras's CSVLogger does
    #[arg(long, value_name = "FILE", help_heading = "Callbacks")]
    pub csv_log: Option<PathBuf>,
    /// With --csv-log: keep what the file holds and add this run's rows
    #[arg(long, requires = "csv_log", help_heading = "Callbacks")]
    pub csv_append: bool,
    /// Draw the training curves to this SVG file as the run goes (as `wgfit plot`; paced as
    /// --history)
    #[arg(long, value_name = "FILE", help_heading = "Callbacks")]
    pub plot: Option<PathBuf>,
}

/// The callbacks the flags asked for.
#[derive(Default)]
pub struct Callbacks {
    pub early_stopping: Option<EarlyStopping>,
    pub checkpoint: Option<ModelCheckpoint>,
    pub plateau: Option<ReduceLROnPlateau>,
    pub terminate_on_nan: Option<TerminateOnNaN>,
    pub csv_log: Option<CsvLogger>,
    pub plot: Option<crate::history_file::HistoryView>,
    pub monitor: String,
}

impl CallbackArgs {
    /// The files the flags write (checked by `preflight` before training).
    pub fn outputs(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut out = Vec::new();
        if let Some(p) = &self.csv_log {
            out.push(("--csv-log", p));
        }
        if let Some(p) = &self.plot {
            out.push(("--plot", p));
        }
        out
    }

    /// Builds the callbacks; `validates` says whether there is validation data (the values
    /// were checked by `preflight`).
    pub fn build(&self, validates: bool) -> CliResult<Callbacks> {
        let monitor = self
            .monitor
            .clone()
            .unwrap_or_else(|| if validates { "val_loss" } else { "loss" }.to_string());
        Ok(Callbacks {
            early_stopping: self.early_stopping.map(|patience| {
                EarlyStopping::new(&monitor)
                    .patience(patience)
                    .min_delta(self.min_delta)
                    .restore_best_weights(self.restore_best_weights)
            }),
            checkpoint: self.checkpoint.as_ref().map(|pattern| {
                ModelCheckpoint::new(pattern.clone())
                    .monitor(&monitor)
                    .save_best_only(self.save_best_only)
            }),
            plateau: self.reduce_lr_on_plateau.map(|factor| {
                ReduceLROnPlateau::new(&monitor)
                    .factor(factor)
                    .patience(self.plateau_patience)
                    .min_lr(self.min_lr)
            }),
            terminate_on_nan: self.terminate_on_nan.then_some(TerminateOnNaN),
            csv_log: self
                .csv_log
                .as_ref()
                .map(|p| CsvLogger::new(p).append(self.csv_append)),
            plot: self
                .plot
                .clone()
                .map(crate::history_file::HistoryView::plot),
            monitor,
        })
    }
}

impl Callbacks {
    /// Every callback built, in the order they run (after the backup and the progress).
    pub fn list(&mut self) -> Vec<&mut dyn Callback> {
        let mut out: Vec<&mut dyn Callback> = Vec::new();
        if let Some(c) = self.terminate_on_nan.as_mut() {
            out.push(c);
        }
        if let Some(c) = self.plateau.as_mut() {
            out.push(c);
        }
        if let Some(c) = self.checkpoint.as_mut() {
            out.push(c);
        }
        if let Some(c) = self.early_stopping.as_mut() {
            out.push(c);
        }
        if let Some(c) = self.csv_log.as_mut() {
            out.push(c);
        }
        if let Some(c) = self.plot.as_mut() {
            out.push(c);
        }
        out
    }

    /// A line saying why and where training stopped early, if it did.
    pub fn stop_report(&self) -> Option<String> {
        let es = self.early_stopping.as_ref()?;
        let stopped = es.stopped_epoch()?;
        let best = es
            .best()
            .map(|(v, e)| format!("; best {v:.4} at epoch {}", e + 1))
            .unwrap_or_default();
        Some(format!(
            "stopped early at epoch {}: {} did not improve{best}",
            stopped + 1,
            self.monitor
        ))
    }
}
