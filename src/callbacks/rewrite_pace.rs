//! The pace of files rewritten whole from the run's history ([`CsvLogger`](super::CsvLogger),
//! `wgfit train --history` and `--plot`). Such a rewrite grows with the run, so rewriting
//! after every epoch makes a long run of short epochs quadratic (bench/NOTES.md, "Files
//! rewritten from the history"). Paced, a rewrite is skipped while the last one is recent
//! against what rewrites take: each file takes a bounded share of the run's time, however
//! long the run, and an epoch longer than [`REWRITE_SPACING`] rewrites is written at its end.

use crate::error::Result;
use std::time::{Duration, Instant};

/// A rewrite is due once the time since the last one ended is this many times what a rewrite
/// takes, so each file's rewrites take about 1/(1 + 49) = 2 % of a run's time (a little more
/// as the history grows between two), and a file of 10 000 short epochs lags by about a
/// second (the figures: bench/NOTES.md, "Files rewritten from the history").
pub const REWRITE_SPACING: u32 = 49;

/// Rewrites whose cost is remembered: their median is taken as what a rewrite takes, so that
/// one stalled by a slow fsync does not hold the next back 49 times as long, nor one that was
/// quick by chance bring the next forward.
const COSTS_KEPT: usize = 3;

/// When a file rewritten from the whole history is due: at the first epoch's end, then at an
/// epoch's end when the last rewrite ended [`REWRITE_SPACING`] times a rewrite's cost (the
/// median of the last three) ago; always at the end of training; and however `fit` ends,
/// when the file lags the history.
#[derive(Debug, Clone, Default)]
pub struct RewritePace {
    /// When the last rewrite ended.
    last_end: Option<Instant>,
    /// What the last rewrites took, newest last.
    costs: Vec<Duration>,
    /// Whether an epoch ended since the last rewrite: the file lags the history.
    pending: bool,
}

impl RewritePace {
    /// A pace with no rewrite yet: the first is due.
    pub fn new() -> Self {
        Self::default()
    }

    /// At an epoch's end: rewrites the file with `write` when due. Either way the file lags
    /// the history until a rewrite succeeds.
    pub fn at_epoch_end(&mut self, write: impl FnOnce() -> Result<()>) -> Result<()> {
        if self.epoch_end_due() {
            self.timed(write)?;
        }
        Ok(())
    }

    /// At the end of training: rewrites the file, due or not, so that a resumed run with no
    /// epoch left to train still leaves the run's whole history.
    pub fn at_train_end(&mut self, write: impl FnOnce() -> Result<()>) -> Result<()> {
        self.timed(write)
    }

    /// However `fit` ends: rewrites the file when it lags the history, so that a run stopped
    /// by a preemption or an error still leaves every finished epoch. The lag is forgotten
    /// either way, so that the next `fit` does not rewrite for this one.
    pub fn at_fit_exit(&mut self, write: impl FnOnce() -> Result<()>) -> Result<()> {
        if std::mem::take(&mut self.pending) {
            self.timed(write)?;
        }
        Ok(())
    }

    /// Runs a rewrite and remembers what it took.
    fn timed(&mut self, write: impl FnOnce() -> Result<()>) -> Result<()> {
        let began = Instant::now();
        write()?;
        self.wrote(began, Instant::now());
        Ok(())
    }

    /// Whether a rewrite asked for at `now` is due.
    fn is_due(&self, now: Instant) -> bool {
        let mut costs = self.costs.clone();
        costs.sort();
        let cost = costs.get(costs.len() / 2).copied().unwrap_or_default();
        self.last_end.is_none_or(|ended| {
            now.saturating_duration_since(ended) >= cost.saturating_mul(REWRITE_SPACING)
        })
    }

    /// Records a rewrite that began at `began` and ended at `ended`: the file holds the
    /// history.
    fn wrote(&mut self, began: Instant, ended: Instant) {
        if self.costs.len() == COSTS_KEPT {
            self.costs.remove(0);
        }
        self.costs.push(ended.saturating_duration_since(began));
        self.last_end = Some(ended);
        self.pending = false;
    }

    /// At an epoch's end: the file now lags the history; whether its rewrite is due.
    fn epoch_end_due(&mut self) -> bool {
        self.pending = true;
        self.is_due(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rewrite_is_due_then_one_spaced_by_the_median_recent_cost() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let spacing = u64::from(REWRITE_SPACING);
        let mut pace = RewritePace::new();
        assert!(pace.is_due(t0));
        pace.wrote(t0, t0 + ms(2));
        let ended = t0 + ms(2);
        assert!(!pace.is_due(ended));
        assert!(!pace.is_due(ended + ms(2 * spacing - 1)));
        assert!(pace.is_due(ended + ms(2 * spacing)));
        // Two rewrites of 4 ms, then one stalled (a slow fsync): the median, 4 ms, counts.
        let mut at = ended + ms(2 * spacing);
        for took in [4, 4, 1000] {
            pace.wrote(at, at + ms(took));
            at += ms(took);
        }
        assert!(!pace.is_due(at + ms(4 * spacing - 1)));
        assert!(pace.is_due(at + ms(4 * spacing)));
        // One quick by chance does not bring the next forward either.
        pace.wrote(at, at + ms(1));
        at += ms(1);
        assert!(!pace.is_due(at + ms(4 * spacing - 1)));
    }

    #[test]
    fn an_epoch_leaves_the_file_lagging_until_a_rewrite_or_the_exit() {
        let mut pace = RewritePace::new();
        let mut writes = 0;
        let mut count = || {
            writes += 1;
            Ok(())
        };
        pace.at_fit_exit(&mut count).unwrap();
        pace.at_train_end(&mut count).unwrap();
        assert_eq!(writes, 1, "no epoch ended: only the end of training wrote");
        // A fresh pace: its first rewrite is due whatever the clock says.
        let mut pace = RewritePace::new();
        let failed = pace.at_epoch_end(|| {
            Err(crate::Error::Callback {
                callback: "test".into(),
                reason: "disk full".into(),
            })
        });
        assert!(failed.is_err());
        assert!(pace.pending, "a failed rewrite leaves the file lagging");
        // A rewrite that took an hour: the next epoch's is skipped, and the file lags.
        let t0 = Instant::now();
        pace.wrote(t0, t0 + Duration::from_secs(3600));
        assert!(!pace.pending);
        let mut writes = 0;
        let mut count = || {
            writes += 1;
            Ok(())
        };
        pace.at_epoch_end(&mut count).unwrap();
        assert!(pace.pending);
        pace.at_fit_exit(&mut count).unwrap();
        pace.at_fit_exit(&mut count).unwrap();
        assert_eq!(
            writes, 1,
            "skipped at the epoch's end, written once at the exit"
        );
    }
}
