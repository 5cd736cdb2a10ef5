//! The submission that carries a snapshot's GPU copy. A snapshot submitted on its own knows
//! it at once. A deferred one (a backup's save point) is recorded into the training loop's
//! commands and rides in its next submission, so that a save every batch does not cut the
//! loop's groups of batches into one submission each (figures: bench/NOTES.md, "Snapshots in
//! the loop's submissions"). Whoever reads a deferred snapshot asks the loop to submit soon
//! and waits for it; the loop submits whatever it holds before it waits on a reader.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A snapshot's submission, known now or later.
#[derive(Debug)]
pub(crate) struct Submission {
    state: Mutex<State>,
    ready: Condvar,
    /// A reader waits for it: the loop submits at its next batch instead of its next group.
    wanted: AtomicBool,
}

#[derive(Debug)]
enum State {
    Pending,
    Submitted(wgpu::SubmissionIndex),
    /// The loop's commands were dropped unsubmitted (the run ended abnormally).
    Abandoned,
}

impl Submission {
    /// A submission already made.
    pub fn submitted(index: wgpu::SubmissionIndex) -> Arc<Self> {
        Submission::with(State::Submitted(index))
    }

    /// A submission the training loop will make.
    pub fn pending() -> Arc<Self> {
        Submission::with(State::Pending)
    }

    fn with(state: State) -> Arc<Self> {
        Arc::new(Submission {
            state: Mutex::new(state),
            ready: Condvar::new(),
            wanted: AtomicBool::new(false),
        })
    }

    /// The loop submitted the commands holding the copy.
    pub fn resolve(&self, index: wgpu::SubmissionIndex) {
        self.set(State::Submitted(index));
    }

    /// The loop dropped the commands holding the copy without submitting them.
    pub fn abandon(&self) {
        self.set(State::Abandoned);
    }

    fn set(&self, state: State) {
        if let Ok(mut s) = self.state.lock()
            && matches!(*s, State::Pending)
        {
            *s = state;
        }
        self.ready.notify_all();
    }

    /// Whether a reader waits for this submission.
    pub fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// The submission's index, once the loop made it. Not to be called on the training
    /// loop's thread for a pending submission (the loop would wait for itself); no timeout,
    /// since a loop busy in a long callback hook is not a failure: every way the loop ends
    /// submits or abandons what it holds.
    pub fn wait(&self) -> Result<wgpu::SubmissionIndex> {
        let lost = |_| Error::internal("a thread panicked holding a snapshot's submission");
        let mut s = self.state.lock().map_err(lost)?;
        loop {
            match &*s {
                State::Submitted(index) => return Ok(index.clone()),
                State::Abandoned => {
                    return Err(Error::internal(
                        "the training loop ended without submitting a snapshot's copy",
                    ));
                }
                State::Pending => {
                    self.wanted.store(true, Ordering::Relaxed);
                    s = self.ready.wait(s).map_err(lost)?;
                }
            }
        }
    }
}
