//! [`Progress`]: what a run shows while it trains, by Keras's `verbose`. `fit` installs it for
//! [`crate::FitOptions::verbose`]; the `wgfit` CLI passes it as a callback.

use super::{Callback, Context};
use crate::error::Result;
use crate::state::Logs;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the bar shows a fresh batch loss. Reading it waits for the GPU, so not every batch.
const LOSS_EVERY: Duration = Duration::from_millis(300);

/// How often a [`ProgressSink`]'s bar is redrawn: each redraw may cost the sink a lock (the
/// Python package's takes the GIL), so a few times a second, as Keras's bar.
const SINK_BAR_EVERY: Duration = Duration::from_millis(100);

/// Where a [`Progress`] writes instead of stderr or stdout: a stream of text that redraws a
/// line on a carriage return, as a terminal, a Jupyter notebook's output or Python's
/// `sys.stdout` do.
pub trait ProgressSink: Send + std::fmt::Debug {
    /// Writes `text` (lines end with `\n`; a bar redraws itself after a `\r`).
    fn write(&mut self, text: &str);
}

/// The bar a [`ProgressSink`] shows: `Epoch 2/3 [=====>..........] 12/57 loss 0.1234  139 batches/s`.
fn text_bar(prefix: &str, done: usize, steps: usize, message: &str) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH)
        .checked_div(steps)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let arrow = if filled < WIDTH { ">" } else { "" };
    let rest = WIDTH - filled - arrow.len();
    format!(
        "Epoch {prefix} [{}{arrow}{}] {done}/{steps} {message}",
        "=".repeat(filled),
        ".".repeat(rest)
    )
}

/// Shows training progress, as Keras's `verbose` (the callback `fit` installs for
/// [`crate::FitOptions::verbose`]):
///
/// - 0: nothing;
/// - 1: a progress bar per epoch with the batch loss and rate when the stream is a terminal,
///   otherwise (a pipe, a log file) the epoch's line only;
/// - 2: one line per epoch.
///
/// The epoch's line reads `Epoch 3/30  57 batches  0.41s (139 batches/s)  loss 0.1234
/// accuracy 0.9650`, the logs in [`metric_order`]. Bar and lines go to stderr, or to stdout
/// with [`Progress::on_stdout`], or to a [`ProgressSink`] with [`Progress::to_sink`].
///
/// At every level, a run that starts from a restored state (e.g. by [`super::BackupAndRestore`],
/// which must then come before this callback) says so on stderr: `wgfit: resuming from the
/// backup: epoch 4/30, batch 12/57 (183 batches done)`.
#[derive(Debug)]
pub struct Progress {
    verbose: u8,
    stdout: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
    steps: usize,
    /// The epoch under way (0-based).
    epoch: usize,
    epoch_started: Instant,
    first_step: usize,
    /// Batches of the epoch done by its last batch end (fewer than `steps` when a callback
    /// stopped the run within the epoch).
    end_step: usize,
    last_loss_read: Instant,
    loss: Option<f64>,
    sink: Option<SinkState>,
}

/// A [`ProgressSink`] and its bar.
#[derive(Debug)]
struct SinkState {
    sink: Box<dyn ProgressSink>,
    /// Whether verbose 1 draws a bar on it.
    bar: bool,
    /// The bar is on screen, this many characters long.
    drawn: Option<usize>,
    last_drawn: Instant,
}

impl Progress {
    /// Progress at Keras's `verbose` level (0, 1 or 2; above 2 is 2), on stderr.
    pub fn new(verbose: u8) -> Self {
        Progress {
            verbose,
            stdout: false,
            bar: None,
            epochs: 0,
            steps: 0,
            epoch: 0,
            epoch_started: Instant::now(),
            first_step: 0,
            end_step: 0,
            last_loss_read: Instant::now(),
            loss: None,
            sink: None,
        }
    }

    /// Writes the bar and the epoch lines to `sink` instead of stderr or stdout; with `bar`
    /// (the sink redraws a line on `\r`: a terminal, a notebook), verbose 1 draws the bar
    /// there, else it writes the epoch's line only. The resume notice stays on stderr.
    pub fn to_sink(mut self, sink: Box<dyn ProgressSink>, bar: bool) -> Self {
        self.sink = Some(SinkState {
            sink,
            bar,
            drawn: None,
            last_drawn: Instant::now(),
        });
        self
    }

    /// Draws the bar and writes the epoch lines on stdout (`true`) instead of stderr. The
    /// resume notice stays on stderr.
    pub fn on_stdout(mut self, stdout: bool) -> Self {
        self.stdout = stdout;
        self
    }

    /// Whether the chosen stream is a terminal (a bar can be drawn on it).
    fn terminal(&self) -> bool {
        if self.stdout {
            std::io::stdout().is_terminal()
        } else {
            std::io::stderr().is_terminal()
        }
    }

    /// Writes a line on the chosen stream; a closed stream is not the run's failure.
    fn line(&mut self, text: &str) {
        if let Some(s) = &mut self.sink {
            // Over the bar, padded to hide what of it the line does not cover.
            let line = match s.drawn.take() {
                Some(width) => format!("\r{text:<width$}\n"),
                None => format!("{text}\n"),
            };
            s.sink.write(&line);
            return;
        }
        let _ = if self.stdout {
            writeln!(std::io::stdout().lock(), "{text}")
        } else {
            writeln!(std::io::stderr().lock(), "{text}")
        };
    }

    /// Redraws the sink's bar at `done` batches, if it was not drawn in the last
    /// [`SINK_BAR_EVERY`] (and always at the epoch's last batch).
    fn draw_sink_bar(&mut self, ctx: &mut Context<'_>, done: usize) -> Result<()> {
        let due = self
            .sink
            .as_ref()
            .is_some_and(|s| s.last_drawn.elapsed() >= SINK_BAR_EVERY || done == self.steps);
        if !due {
            return Ok(());
        }
        if self.last_loss_read.elapsed() >= LOSS_EVERY {
            self.last_loss_read = Instant::now();
            self.loss = ctx.batch_logs()?.get("loss").copied();
        }
        let text = text_bar(
            &format!("{}/{}", self.epoch + 1, self.epochs),
            done,
            self.steps,
            &self.message(done),
        );
        if let Some(s) = &mut self.sink {
            let width = s.drawn.unwrap_or(0);
            s.sink.write(&format!("\r{text:<width$}"));
            s.drawn = Some(text.len().max(width));
            s.last_drawn = Instant::now();
        }
        Ok(())
    }

    fn message(&self, done: usize) -> String {
        let secs = self.epoch_started.elapsed().as_secs_f64().max(1e-9);
        let rate = done.saturating_sub(self.first_step) as f64 / secs;
        match self.loss {
            Some(l) => format!("loss {l:.4}  {rate:.0} batches/s"),
            None => format!("{rate:.0} batches/s"),
        }
    }
}

impl Callback for Progress {
    fn name(&self) -> &str {
        "progress"
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> Result<()> {
        self.epochs = ctx.epochs();
        self.steps = ctx.steps_per_epoch();
        let p = ctx.position();
        // A fresh run starts at global step 0, whatever its initial epoch. A state past the
        // last epoch is refused by `fit` right after: it resumes nothing.
        let beyond = p.epoch > self.epochs || (p.epoch == self.epochs && p.step > 0);
        if p.global_step > 0 && p.epoch == self.epochs && !beyond {
            eprintln!(
                "wgfit: the backup holds all {}: nothing left to train",
                count(self.epochs, "epoch", "epochs")
            );
        } else if p.global_step > 0 && !beyond {
            eprintln!(
                "wgfit: resuming from the backup: epoch {}/{}, batch {}/{} ({} done)",
                p.epoch + 1,
                self.epochs,
                p.step,
                self.steps,
                count(p.global_step as usize, "batch", "batches")
            );
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, ctx: &mut Context<'_>, epoch: usize) -> Result<()> {
        self.epoch = epoch;
        self.epoch_started = Instant::now();
        self.first_step = ctx.position().step;
        self.end_step = self.first_step;
        self.last_loss_read = Instant::now();
        self.loss = None;
        if let Some(s) = &mut self.sink {
            s.last_drawn = Instant::now();
        } else if self.verbose == 1 && self.terminal() {
            let target = if self.stdout {
                ProgressDrawTarget::stdout()
            } else {
                ProgressDrawTarget::stderr()
            };
            let bar = ProgressBar::with_draw_target(Some(self.steps as u64), target);
            if let Ok(style) = ProgressStyle::with_template(
                "Epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("{}/{}", epoch + 1, self.epochs));
            bar.set_position(self.first_step as u64);
            self.bar = Some(bar);
        }
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> Result<()> {
        self.end_step = batch + 1;
        let sink_bar = self.verbose == 1 && self.sink.as_ref().is_some_and(|s| s.bar);
        if sink_bar {
            return self.draw_sink_bar(ctx, batch + 1);
        }
        if self.bar.is_none() {
            return Ok(());
        }
        // The loss and the rate are only known once the GPU caught up with the queued batches,
        // so both are refreshed together, a few times a second.
        let message = if self.last_loss_read.elapsed() >= LOSS_EVERY {
            self.last_loss_read = Instant::now();
            self.loss = ctx.batch_logs()?.get("loss").copied();
            Some(self.message(batch + 1))
        } else {
            None
        };
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64 + 1);
            if let Some(m) = message {
                bar.set_message(m);
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.verbose == 0 {
            return Ok(());
        }
        let secs = self.epoch_started.elapsed().as_secs_f64();
        let done = self.end_step.saturating_sub(self.first_step);
        // The batches this line's time and rate cover: not the whole epoch after a mid-epoch
        // resume, or when a callback stopped the run within it.
        let batches = match (self.first_step, self.end_step) {
            (0, end) if end == self.steps => count(end, "batch", "batches"),
            (first, end) => format!("batches {}-{end} of {}", first + 1, self.steps),
        };
        self.line(&format!(
            "Epoch {}/{}  {batches}  {secs:.2}s ({:.0} batches/s)  {}",
            epoch + 1,
            self.epochs,
            done as f64 / secs.max(1e-9),
            format_logs(logs)
        ));
        Ok(())
    }
}

/// `n` and the noun in the right number: "1 batch", "57 batches".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Metric names in Keras's order: `loss` first, then the other metrics by name, then their
/// `val_` twins in the same order; each name once.
pub fn metric_order<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    let mut v: Vec<&String> = names.into_iter().collect();
    v.sort_by_key(|n| {
        let val = n.starts_with("val_");
        let base = n.trim_start_matches("val_");
        (val, base != "loss", base.to_string())
    });
    v.dedup();
    v
}

/// A log value as Keras's progress bar writes it: 4 decimals, or scientific notation with 4
/// below 1e-3 in magnitude, so that a learning rate of 1e-5 reads `1.0000e-5`, not `0.0000`.
pub fn format_value(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    }
}

/// Logs as `name value` pairs in [`metric_order`], as [`format_value`] writes them, two spaces
/// apart: `loss 0.1234  accuracy 0.9650  val_loss 0.2000  val_accuracy 0.9400`.
pub fn format_logs(logs: &Logs) -> String {
    metric_order(logs.keys())
        .into_iter()
        .map(|k| format!("{k} {}", format_value(logs[k])))
        .collect::<Vec<_>>()
        .join("  ")
}
