//! What `fit` prints on stderr, by Keras's `verbose`: 0 nothing, 1 a progress line per epoch
//! redrawn a few times a second, 2 one line per epoch.

use crate::state::Logs;
use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant};

/// How often a progress line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);

pub(crate) struct EpochProgress {
    verbose: u8,
    epoch: usize,
    epochs: usize,
    steps: usize,
    started: Instant,
    last_draw: Cell<Instant>,
}

impl EpochProgress {
    pub fn new(verbose: u8, epoch: usize, epochs: usize, steps: usize) -> Self {
        let now = Instant::now();
        EpochProgress {
            verbose,
            epoch,
            epochs,
            steps,
            started: now,
            last_draw: Cell::new(now),
        }
    }

    /// Counts a batch as queued; redraws the line at most every [`REDRAW`].
    pub fn batch_done(&self, done: usize) {
        if self.verbose != 1 || self.last_draw.get().elapsed() < REDRAW {
            return;
        }
        self.last_draw.set(Instant::now());
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\rEpoch {}/{}  batch {done}/{}  {rate:.0} batches/s",
            self.epoch + 1,
            self.epochs,
            self.steps
        );
        let _ = std::io::stderr().flush();
    }

    /// Prints the epoch's summary line.
    pub fn epoch_done(&self, logs: &Logs) {
        if self.verbose == 0 {
            return;
        }
        let metrics: Vec<String> = logs.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        let clear = if self.verbose == 1 { "\r\x1b[K" } else { "" };
        eprintln!(
            "{clear}Epoch {}/{}  {} batches  {:.2}s  {}",
            self.epoch + 1,
            self.epochs,
            self.steps,
            self.started.elapsed().as_secs_f64(),
            metrics.join("  ")
        );
    }
}
