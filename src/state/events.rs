//! A run's bounded event list: starts, resumes, fallbacks and preemptions (docs/FORMAT.md).

use serde::{Deserialize, Serialize};

/// What happened to a run at one moment, as the backup's bounded event list records it
/// (docs/FORMAT.md): `wgfit inspect` prints the list and `wgfit plot` marks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run began from its initial parameters.
    Start,
    /// A run resumed from `latest.json`.
    Resume,
    /// A run resumed from `previous.json` because `latest.json` could not be restored.
    Fallback,
    /// A preemption signal stopped the run and its state was saved.
    Preempted,
}

/// One entry of a run's event list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// What happened.
    pub kind: EventKind,
    /// The position at that moment.
    pub epoch: usize,
    /// Batches of that epoch done.
    pub step: usize,
    /// Batches per epoch, so that a reader can place the event at `epoch + step / steps`.
    pub steps: usize,
    /// Batches done in the whole run.
    pub global_step: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// The most events a state keeps: the first (the start) and the newest others.
pub const MAX_EVENTS: usize = 64;

impl RunEvent {
    /// The epoch count (fractional) at which the event happened: `epoch + step / steps`.
    pub fn epoch_position(&self) -> f64 {
        self.epoch as f64 + self.step as f64 / self.steps.max(1) as f64
    }
}

/// Appends `event`, keeping the first event and the newest ones within [`MAX_EVENTS`].
pub fn push_event(events: &mut Vec<RunEvent>, event: RunEvent) {
    events.push(event);
    if events.len() > MAX_EVENTS {
        events.remove(1);
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
