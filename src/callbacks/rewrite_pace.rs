//! The pace of files rewritten whole from the run's history ([`CsvLogger`](super::CsvLogger),
//! `wgfit train --history` and `--plot`). Such a rewrite grows with the run, so rewriting
//! after every epoch makes a long run of short epochs quadratic (bench/NOTES.md, "Files
//! rewritten from the history"). Paced, a rewrite is skipped while the last one is recent
//! against what it took: the files never take more than a bounded share of the run's time,
//! however long the run, and an epoch that takes longer than a rewrite is written at its end.

use std::time::{Duration, Instant};

/// A rewrite is due once the time since the last one ended is this many times what the last
/// one took, so rewrites take at most 1/(1 + 49) = 2 % of a run's time, and a file of 10 000
/// epochs still lags by about a second only (the figures: bench/NOTES.md, "Files rewritten
/// from the history").
pub const REWRITE_SPACING: u32 = 49;

/// When a file rewritten from the whole history is due: at the first epoch's end, then at an
/// epoch's end when the last rewrite is [`REWRITE_SPACING`] times its cost ago; always at the
/// end of training; and, if one was skipped since the last, however `fit` ends.
#[derive(Debug, Clone, Default)]
pub struct RewritePace {
    /// When the last rewrite ended, and what it took.
    last: Option<(Instant, Duration)>,
    /// Whether an epoch's rewrite was skipped since the last one.
    pending: bool,
}

impl RewritePace {
    /// A pace with no rewrite yet: the first is due.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a rewrite asked for at `now` is due.
    pub fn is_due(&self, now: Instant) -> bool {
        self.last.is_none_or(|(ended, took)| {
            now.saturating_duration_since(ended) >= took.saturating_mul(REWRITE_SPACING)
        })
    }

    /// Whether a rewrite was skipped since the last one, so that the file lags the run.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Records a rewrite that began at `began` and ended at `ended`.
    pub fn wrote(&mut self, began: Instant, ended: Instant) {
        self.last = Some((ended, ended.saturating_duration_since(began)));
        self.pending = false;
    }

    /// At an epoch's end: whether its rewrite is due; one that is not is noted pending.
    pub fn epoch_end_due(&mut self) -> bool {
        let due = self.is_due(Instant::now());
        self.pending |= !due;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rewrite_is_due_then_one_spaced_by_its_cost() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pace = RewritePace::new();
        assert!(pace.is_due(t0));
        pace.wrote(t0, t0 + ms(2));
        let ended = t0 + ms(2);
        assert!(!pace.is_due(ended));
        assert!(!pace.is_due(ended + ms(2 * REWRITE_SPACING as u64 - 1)));
        assert!(pace.is_due(ended + ms(2 * REWRITE_SPACING as u64)));
        // A free rewrite leaves the next one due at once.
        pace.wrote(ended, ended);
        assert!(pace.is_due(ended));
    }

    #[test]
    fn a_skipped_rewrite_stays_pending_until_a_rewrite() {
        let mut pace = RewritePace::new();
        assert!(pace.epoch_end_due());
        assert!(!pace.is_pending());
        // A rewrite that took an hour: the next epoch's is skipped and pending.
        let now = Instant::now();
        pace.wrote(now - Duration::from_secs(3600), now);
        assert!(!pace.epoch_end_due());
        assert!(pace.is_pending());
        pace.wrote(now, now);
        assert!(!pace.is_pending());
        assert!(pace.epoch_end_due());
    }
}
