//! What must not change between a run and its resumption, and how a difference is told.

use super::{MAX_CALLBACK_COPIES, MAX_SLOTS};
use serde::{Deserialize, Serialize};

/// What must not change between a run and its resumption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Per layer: `(inputs, outputs, description)`: a Dense layer on flat inputs is described
    /// by its activation, any other layer by its class, arguments and shapes
    /// ([`crate::LayerSpec::fingerprint`]).
    pub layers: Vec<(usize, usize, String)>,
    /// The parameter tensors' names and shapes when the model has layers other than Dense
    /// layers on flat inputs (empty otherwise: a Dense stack's follow from `layers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensors: Vec<(String, Vec<usize>)>,
    /// The whole architecture, for the same models (`None` for a Dense stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::model::ModelRecord>,
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
    /// Seed of the data order: a rerun with another seed is another run.
    pub seed: u64,
    /// The ranks of the run (1 without MPI). With [`Fingerprint::accumulation`] it says which
    /// one-rank run the run equals, so that a backup resumes exactly on another rank count
    /// (docs/MPI.md, "Resuming on another rank count"). Absent before format version 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<usize>,
    /// Micro-batches each rank accumulates per update (`--accumulate`, 1 for none; also in
    /// `optimizer`'s text). Absent before format version 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulation: Option<u32>,
}

/// How a run at N ranks with global batch B accumulating A micro-batches per rank is the
/// one-rank run with batch B/N accumulating N·A: what must match for an exact resume on
/// another rank count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneRankRun {
    /// The ranks.
    pub ranks: usize,
    /// Rows of one micro-batch: the global batch over the ranks.
    pub micro_batch: usize,
    /// Micro-batches per update: the ranks times the accumulation.
    pub per_update: u64,
    /// Samples in the training data.
    pub samples: usize,
}

impl OneRankRun {
    /// Micro-batches in an epoch (the last may be partial).
    pub fn micro_batches_per_epoch(&self) -> usize {
        self.samples.div_ceil(self.micro_batch.max(1))
    }

    /// Rows of micro-batch `j` of an epoch.
    pub fn rows_of(&self, j: usize) -> usize {
        self.micro_batch
            .min(self.samples.saturating_sub(j * self.micro_batch))
    }

    /// Whether `ranks` ranks run this exactly: they share each update's micro-batches
    /// equally, and each epoch's too (every rank has rows in the last batch of an epoch, as
    /// a distributed fit requires), in a global batch no larger than the data.
    pub fn runs_on(&self, ranks: usize) -> bool {
        let n = ranks as u64;
        ranks == 1
            || (ranks > 0
                && self.per_update.is_multiple_of(n)
                && self.micro_batches_per_epoch().is_multiple_of(ranks)
                && self.micro_batch.saturating_mul(ranks) <= self.samples)
    }

    /// The rank counts that run this exactly ([`OneRankRun::runs_on`]).
    pub fn rank_counts(&self) -> Vec<u64> {
        let n = self.per_update;
        let small: Vec<u64> = (1..)
            .take_while(|d| d * d <= n)
            .filter(|d| n.is_multiple_of(*d))
            .collect();
        let mut all = small.clone();
        all.extend(small.iter().rev().map(|d| n / d).filter(|d| d * d != n));
        all.retain(|&d| usize::try_from(d).is_ok_and(|d| self.runs_on(d)));
        all
    }

    /// `--batch-size` and `--accumulate` for running this on `ranks` ranks, if they can.
    pub fn arguments_for(&self, ranks: usize) -> Option<(usize, u64)> {
        self.runs_on(ranks)
            .then(|| (self.micro_batch * ranks, self.per_update / ranks as u64))
    }
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
        check(
            "layers",
            self.layer_lines().join(", "),
            now.layer_lines().join(", "),
        );
        // Each layer that differs, by its index, when the stacks are as deep.
        let (then_layers, now_layers) = (self.layer_lines(), now.layer_lines());
        if then_layers.len() == now_layers.len() {
            for (i, (a, b)) in then_layers.iter().zip(&now_layers).enumerate() {
                check(&format!("layer {i}"), a.clone(), b.clone());
            }
        }
        check("loss", self.loss.clone(), now.loss.clone());
        let mut rank_count = None;
        match (self.one_rank_run(), now.one_rank_run()) {
            // Written on another rank count: the same one-rank run resumes exactly.
            (Some(then), Some(run)) if then.ranks != run.ranks => {
                check(
                    "optimizer",
                    self.optimizer_alone().to_string(),
                    now.optimizer_alone().to_string(),
                );
                if (then.micro_batch, then.per_update) != (run.micro_batch, run.per_update) {
                    rank_count = Some(rank_count_difference(then, run));
                }
            }
            _ => {
                check("optimizer", self.optimizer.clone(), now.optimizer.clone());
                check(
                    "batch size",
                    self.batch_size.to_string(),
                    now.batch_size.to_string(),
                );
            }
        }
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
        check("seed", self.seed.to_string(), now.seed.to_string());
        out.extend(rank_count);
        out
    }

    /// The one-rank run this run equals (None for a backup of format version 5 or older,
    /// which did not record its rank count).
    pub fn one_rank_run(&self) -> Option<OneRankRun> {
        let (ranks, accumulation) = (self.ranks?, self.accumulation?);
        Some(OneRankRun {
            ranks,
            micro_batch: self.batch_size / ranks.max(1),
            per_update: (ranks as u64).saturating_mul(u64::from(accumulation)),
            samples: self.data_len,
        })
    }

    /// The optimizer's text without its gradient accumulation, which depends on the ranks.
    fn optimizer_alone(&self) -> &str {
        let suffix = format!(" accumulated over {} steps", self.accumulation.unwrap_or(1));
        self.optimizer
            .strip_suffix(suffix.as_str())
            .unwrap_or(&self.optimizer)
    }

    /// Each layer as people read it: `64->32 relu` for a Dense layer on flat inputs, else its
    /// description (class, arguments and shapes).
    pub fn layer_lines(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|(i, o, d)| match d.contains('(') {
                true => d.clone(),
                false => format!("{i}->{o} {d}"),
            })
            .collect()
    }

    /// Every parameter tensor's name and shape: [`Fingerprint::tensors`], or for a Dense
    /// stack `model.layers.<i>.weight [out, in]` and `.bias [out]` per layer.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        if !self.tensors.is_empty() {
            return self.tensors.clone();
        }
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, &(inputs, outputs, _))| {
                [
                    (format!("model.layers.{i}.weight"), vec![outputs, inputs]),
                    (format!("model.layers.{i}.bias"), vec![outputs]),
                ]
            })
            .collect()
    }

    /// The most bytes a weights file of a state of this run can have: every parameter with
    /// up to `MAX_SLOTS` (4) optimizer slots and `MAX_CALLBACK_COPIES` (2) callback copies, a
    /// pair of statistics per batch, and a header. A
    /// sidecar claiming more is refused before anything is read or allocated.
    pub fn max_state_bytes(&self) -> u64 {
        let params: u64 = self
            .parameter_shapes()
            .iter()
            .map(|(_, shape)| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)))
            .fold(0, u64::saturating_add);
        let steps = (self.data_len as u64).div_ceil(self.batch_size.max(1) as u64);
        let tensors = (self.parameter_shapes().len() as u64)
            .saturating_mul(1 + MAX_SLOTS + MAX_CALLBACK_COPIES)
            + 1;
        params
            .saturating_mul(1 + MAX_SLOTS + MAX_CALLBACK_COPIES)
            .saturating_add(2 * steps)
            .saturating_mul(4)
            .saturating_add(4096 + 512 * tensors)
    }
}

/// The line saying how a backup's run differs from one on another rank count, with the
/// arguments that would resume it exactly.
fn rank_count_difference(then: OneRankRun, now: OneRankRun) -> String {
    let describe = |r: OneRankRun| {
        format!(
            "{} rank(s) in micro-batches of {} rows, {} per update",
            r.ranks, r.micro_batch, r.per_update
        )
    };
    let how = match then.arguments_for(now.ranks) {
        Some((batch, accumulate)) => format!(
            "on {} rank(s) it resumes exactly with --batch-size {batch} --accumulate {accumulate}",
            now.ranks
        ),
        None => format!(
            "it resumes exactly only on a rank count that shares its {} micro-batches per update and its {} per epoch: {:?}",
            then.per_update,
            then.micro_batches_per_epoch(),
            then.rank_counts()
        ),
    };
    format!(
        "rank count: backup {}, now {}; {how}",
        describe(then),
        describe(now)
    )
}
