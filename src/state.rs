//! The training state: everything needed to continue a run exactly (docs/FORMAT.md describes how it is saved).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod events;
mod fingerprint;
mod history;
pub mod log_values;
pub(crate) mod rank_count;
pub use events::{EventKind, MAX_EVENTS, RunEvent, push_event, unix_ms_now};
pub use fingerprint::{Fingerprint, OneRankRun};
pub use history::{HISTORY_CHUNK, History};

/// Metric name → value, as Keras's `logs` dictionaries (`loss`, `accuracy`, `val_loss`, ...).
pub type Logs = BTreeMap<String, f64>;

/// A named host tensor of f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// E.g. `model.layers.0.weight` or `optimizer.model.layers.0.weight.momentum`.
    pub name: String,
    /// E.g. `[out, in]` for a weight.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// The epoch in progress, or the next to start (0-based).
    pub epoch: usize,
    /// Batches of that epoch already done.
    pub step: usize,
    /// Batches done in the whole run.
    pub global_step: u64,
}

/// The logs of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLogs {
    /// 0-based epoch number.
    pub epoch: usize,
    /// Its metrics (in JSON, non-finite values are strings: docs/FORMAT.md).
    #[serde(with = "log_values")]
    pub logs: Logs,
}

/// The full state of a run at a batch boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    /// Model parameters, `model.layers.<i>.weight` `[out, in]` and `.bias` `[out]`.
    pub params: Vec<Tensor>,
    /// Optimizer slots, `optimizer.<param name>.<slot>`.
    pub slots: Vec<Tensor>,
    /// Host-side facts: position, seed, history, callback states, optimizer counters.
    pub meta: StateMeta,
    /// `(mean loss, correct)` of each batch already done in the current epoch, shape
    /// `[step, 2]`: the epoch's logs after a mid-epoch resume cover the whole epoch.
    pub batch_stats: Tensor,
    /// Tensors of callbacks' states, `callbacks.<callback>.<parameter name>`, each shaped as
    /// that parameter (e.g. `EarlyStopping`'s best weights).
    pub callback_tensors: Vec<Tensor>,
}

/// The prefix of callback tensors in a [`TrainState`] and in checkpoints.
pub const CALLBACK_TENSORS: &str = "callbacks.";

/// The most parameter-sized copies all callback tensors of a state may add up to (one for
/// `EarlyStopping`'s best weights, one spare for a user's callback).
pub const MAX_CALLBACK_COPIES: u64 = 2;

/// For a callback tensor name `callbacks.<callback>.<parameter name>`: the callback and the
/// parameter name, if the name has that form.
pub fn split_callback_tensor(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(CALLBACK_TENSORS)?;
    let at = rest.find(".model.")?;
    let callback = &rest[..at];
    (!callback.is_empty()).then(|| (callback, &rest[at + 1..]))
}

/// The most slots an optimizer's update kernel may keep per parameter (Adam with amsgrad, or
/// RMSprop centered with momentum, keeps three); `compile` refuses one that keeps more.
pub const MAX_OPTIMIZER_SLOTS: u64 = 3;

/// The most slots one parameter may have in a state: the optimizer's and the gradient
/// accumulator.
pub const MAX_SLOTS: u64 = MAX_OPTIMIZER_SLOTS + 1;

/// Name of the batch statistics tensor in a [`TrainState`] and in checkpoints.
pub const BATCH_STATS: &str = "fit.batch_stats";

/// The host-side part of a [`TrainState`] (it travels in the JSON sidecar of a backup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMeta {
    /// Where the run stands.
    pub position: Position,
    /// The seed the data order derives from.
    pub seed: u64,
    /// Optimizer updates applied (Keras `iterations`).
    pub optimizer_steps: u64,
    /// The current learning rate (callbacks may change it).
    pub learning_rate: f32,
    /// Finished epochs.
    pub history: History,
    /// State of stateful callbacks, by callback name.
    pub callbacks: BTreeMap<String, serde_json::Value>,
    /// What happened to the run so far (starts, resumes, preemptions), bounded.
    pub events: Vec<RunEvent>,
    /// A callback asked to stop (e.g. `EarlyStopping`): a state saved after that resumes to
    /// no more training, only the end of training.
    pub stop_training: bool,
}
