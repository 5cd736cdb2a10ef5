//! What `wgfit train` shows while it runs, by Keras's `verbose`: 0 nothing, 1 a progress bar per
//! epoch (on a terminal; a line per epoch otherwise), 2 one line per epoch. On stdout.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use wgfit::{Callback, Context, Logs, Result};

/// How often the bar shows a fresh batch loss. Reading it waits for the GPU, so not every batch.
const LOSS_EVERY: Duration = Duration::from_millis(300);

pub struct Progress {
    verbose: u8,
    terminal: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
    steps: usize,
    epoch_started: Instant,
    first_step: usize,
    last_loss_read: Instant,
    loss: Option<f64>,
}

impl Progress {
    pub fn new(verbose: u8) -> Self {
        Progress {
            verbose,
            terminal: std::io::stdout().is_terminal(),
            bar: None,
            epochs: 0,
            steps: 0,
            epoch_started: Instant::now(),
            first_step: 0,
            last_loss_read: Instant::now(),
            loss: None,
        }
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
        if p.global_step > 0 || p.epoch > 0 {
            eprintln!(
                "wgfit: resuming from the backup: epoch {}/{}, batch {}/{} ({} batches done)",
                (p.epoch + 1).min(self.epochs),
                self.epochs,
                p.step,
                self.steps,
                p.global_step
            );
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, ctx: &mut Context<'_>, epoch: usize) -> Result<()> {
        self.epoch_started = Instant::now();
        self.first_step = ctx.position().step;
        self.last_loss_read = Instant::now();
        self.loss = None;
        if self.verbose == 1 && self.terminal {
            let bar = ProgressBar::with_draw_target(
                Some(self.steps as u64),
                ProgressDrawTarget::stdout(),
            );
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

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, epoch: usize, logs: &Logs) -> Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.verbose == 0 {
            return Ok(());
        }
        let secs = self.epoch_started.elapsed().as_secs_f64();
        let done = ctx.steps_per_epoch().saturating_sub(self.first_step);
        println!(
            "Epoch {}/{}  {} batches  {secs:.2}s ({:.0} batches/s)  {}",
            epoch + 1,
            self.epochs,
            self.steps,
            done as f64 / secs.max(1e-9),
            crate::format_logs(logs)
        );
        Ok(())
    }
}
