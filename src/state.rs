//! The training state: everything needed to continue a run exactly (DESIGN.md, "Training state").

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// The per-epoch logs of a run, as Keras's `History`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// One entry per finished epoch, in order; `epochs[i]` is the logs of epoch `i` of the run
    /// (or of `initial_epoch + i` when the run started later).
    pub epochs: Vec<EpochLogs>,
}

/// The logs of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLogs {
    /// 0-based epoch number.
    pub epoch: usize,
    /// Its metrics.
    pub logs: Logs,
}

impl History {
    /// Number of finished epochs recorded.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// True when no epoch finished.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The values of one metric, one per recorded epoch (missing values are skipped).
    pub fn metric(&self, name: &str) -> Vec<f64> {
        self.epochs
            .iter()
            .filter_map(|e| e.logs.get(name).copied())
            .collect()
    }

    /// The epoch numbers recorded.
    pub fn epoch_numbers(&self) -> Vec<usize> {
        self.epochs.iter().map(|e| e.epoch).collect()
    }

    /// The logs of the last recorded epoch.
    pub fn last(&self) -> Option<&Logs> {
        self.epochs.last().map(|e| &e.logs)
    }
}

/// What must not change between a run and its resumption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Per layer: `(inputs, outputs, activation)`.
    pub layers: Vec<(usize, usize, String)>,
    /// Loss name.
    pub loss: String,
    /// Optimizer kind and hyper-parameters, e.g. `sgd(lr=0.01, momentum=0.9, nesterov=false, weight_decay=0)`.
    pub optimizer: String,
    /// Batch size.
    pub batch_size: usize,
    /// Whether batches are shuffled.
    pub shuffle: bool,
    /// Number of training samples.
    pub data_len: usize,
    /// SHA-256 of the training data, hex.
    pub data_sha256: String,
}

impl Fingerprint {
    /// One line per differing item, `what: backup …, now …`.
    pub fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: &str, then: String, now: String| {
            if then != now {
                out.push(format!("{what}: backup {then}, now {now}"));
            }
        };
        let layers = |f: &Fingerprint| {
            f.layers
                .iter()
                .map(|(i, o, a)| format!("{i}->{o} {a}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        check("layers", layers(self), layers(now));
        check("loss", self.loss.clone(), now.loss.clone());
        check("optimizer", self.optimizer.clone(), now.optimizer.clone());
        check(
            "batch size",
            self.batch_size.to_string(),
            now.batch_size.to_string(),
        );
        check("shuffle", self.shuffle.to_string(), now.shuffle.to_string());
        check(
            "data set length",
            self.data_len.to_string(),
            now.data_len.to_string(),
        );
        check(
            "data set SHA-256",
            self.data_sha256.clone(),
            now.data_sha256.clone(),
        );
        out
    }
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
}

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
}
