//! `--history` and `--plot` of `wgfit train`: files rewritten from the run's history as it
//! trains, at the pace of [`RewritePace`].

use crate::train_args::HistoryFormat;
use crate::{CliResult, Failure};
use std::path::Path;
use wgfit::callbacks::{RewritePace, metric_order};
use wgfit::{Callback, FitOutcome, History, RunEvent};

/// A file rewritten (atomically) from the run's whole history after each epoch (at the pace
/// of [`RewritePace`], which skips rewrites while epochs are short against one), at the end
/// of training, and when `fit` stops otherwise with the file behind: `--history` and `--plot`.
/// A run stopped by an error, or by a signal the backup catches (a preemption), leaves every
/// finished epoch; one killed outright, or stopped by a signal with no backup to catch it,
/// leaves those of its last rewrite. A resumed run's file has each epoch exactly once. The
/// history's JSON form and the plot carry the run's events (starts, resumes, preemptions) too.
pub struct HistoryView {
    name: &'static str,
    write: Box<WriteFromHistory>,
    pace: RewritePace,
}

/// Writes a file from the run's history and events.
type WriteFromHistory = dyn Fn(&wgfit::Context<'_>) -> wgfit::Result<()>;

impl HistoryView {
    /// `--history PATH`.
    pub fn history(path: std::path::PathBuf, format: HistoryFormat) -> Self {
        HistoryView {
            name: "HistoryFile",
            pace: RewritePace::new(),
            write: Box::new(move |ctx| {
                write_history(&path, ctx.history(), ctx.events(), format).map_err(|f| {
                    wgfit::Error::Callback {
                        callback: "--history".into(),
                        reason: f.message,
                    }
                })
            }),
        }
    }

    /// `--plot PATH`.
    pub fn plot(path: std::path::PathBuf) -> Self {
        HistoryView {
            name: "PlotFile",
            pace: RewritePace::new(),
            write: Box::new(move |ctx| {
                if ctx.history().is_empty() {
                    return Ok(());
                }
                let curves = wgfit::plot::Curves::from_history(ctx.history(), ctx.events());
                wgfit::plot::write_svg(&path, &curves)
            }),
        }
    }
}

impl Callback for HistoryView {
    fn name(&self) -> &str {
        self.name
    }

    fn on_epoch_end(
        &mut self,
        ctx: &mut wgfit::Context<'_>,
        _epoch: usize,
        _logs: &wgfit::Logs,
    ) -> wgfit::Result<()> {
        self.pace.at_epoch_end(|| (self.write)(ctx))
    }

    fn on_train_end(
        &mut self,
        ctx: &mut wgfit::Context<'_>,
        _logs: &wgfit::Logs,
    ) -> wgfit::Result<()> {
        self.pace.at_train_end(|| (self.write)(ctx))
    }

    fn on_fit_exit(
        &mut self,
        ctx: &mut wgfit::Context<'_>,
        _outcome: FitOutcome,
    ) -> wgfit::Result<()> {
        self.pace.at_fit_exit(|| (self.write)(ctx))
    }
}

/// A log value in JSON: non-finite ones as the strings the backup's sidecar uses.
fn json_value(v: f64) -> serde_json::Value {
    match v {
        v if v.is_finite() => v.into(),
        v if v.is_nan() => "NaN".into(),
        v if v > 0.0 => "Infinity".into(),
        _ => "-Infinity".into(),
    }
}

fn write_history(
    path: &Path,
    history: &History,
    events: &[RunEvent],
    format: HistoryFormat,
) -> CliResult {
    let mut all: Vec<&String> = history.iter().flat_map(|e| e.logs.keys()).collect();
    all.sort();
    all.dedup();
    let names = metric_order(all);
    let text = match format {
        HistoryFormat::Csv => {
            let mut s = String::from("epoch");
            for n in &names {
                s.push(',');
                s.push_str(n);
            }
            s.push('\n');
            for e in history.iter() {
                s.push_str(&e.epoch.to_string());
                for n in &names {
                    s.push(',');
                    if let Some(v) = e.logs.get(*n) {
                        s.push_str(&v.to_string());
                    }
                }
                s.push('\n');
            }
            s
        }
        HistoryFormat::Json => {
            let rows: Vec<serde_json::Value> = history
                .iter()
                .map(|e| {
                    let mut row = serde_json::Map::new();
                    row.insert("epoch".into(), e.epoch.into());
                    for (k, v) in &e.logs {
                        row.insert(k.clone(), json_value(*v));
                    }
                    serde_json::Value::Object(row)
                })
                .collect();
            let doc = serde_json::json!({ "epochs": rows, "events": events });
            let mut s = serde_json::to_string_pretty(&doc)
                .map_err(|e| Failure::new(format!("cannot encode the history: {e}")))?;
            s.push('\n');
            s
        }
    };
    wgfit::checkpoint::write_atomically(path, text.as_bytes())
        .map(|_| ())
        .map_err(|e| Failure::new(format!("--history: {e}")))
}
