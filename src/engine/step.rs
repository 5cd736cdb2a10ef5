//! One training step on the GPU: [`record_train_step`] is the whole step, top to bottom,
//! over a [`Plan`] (every kernel launch of a step with its buffers bound, built in
//! `plan.rs` for a `Workspace`).

use super::layers::Phase;
use crate::gpu::Dispatch;

/// Every launch of one step for batches of `rows` rows.
pub(crate) struct Plan {
    pub(super) gather: Dispatch,
    /// Every layer's forward launches in order, each named and with when it runs.
    pub(super) forward: Vec<ForwardLaunch>,
    /// The loss and its gradient; with small batches also the batch statistics and the last
    /// layer's activation backward; with sequence targets, then each sample's mean over its
    /// tokens.
    pub(super) loss: Vec<Dispatch>,
    /// The batch statistics, unless `loss` computes them (batches of at most
    /// [`FUSED_LOSS_ROWS`] rows).
    pub(super) reduce: Option<Dispatch>,
    /// Per layer, first layer first.
    pub(super) backward: Vec<LayerBackward>,
}

/// One forward launch of a layer.
pub(super) struct ForwardLaunch {
    /// E.g. `dense1 forward`.
    pub(super) name: String,
    pub(super) phase: Phase,
    pub(super) launch: Dispatch,
}

/// The backward launches of one layer, in order (see each kind's file in `layers/`): for
/// Dense `dZ = dA ⊙ act'(A)` with `db = Σ_rows dZ` (for the last layer of a small batch done
/// by the loss launch), `dW = dZᵀ · A_prev`, `dA_prev = dZ · W` (absent for the first layer
/// with parameters: nothing needs the input's gradient).
pub(super) struct LayerBackward {
    /// E.g. `conv2d0`.
    pub(super) layer: String,
    pub(super) launches: Vec<(&'static str, Dispatch)>,
}

/// How a training step ends, after the backward pass.
pub(crate) enum Finish<'a> {
    /// Gradient accumulation, not an update step: add the gradients to the accumulator.
    /// (Element-wise launches come one per piece the parameters are bound in.)
    Accumulate(&'a [Dispatch]),
    /// The optimizer's update, after the mean of accumulated gradients (if accumulating) and
    /// clipping (if any).
    Update {
        average: Option<&'a [Dispatch]>,
        clip: &'a [Dispatch],
        update: &'a [Dispatch],
    },
}

/// Records one training step for batch `step` of the epoch: gather the batch, forward,
/// loss and its gradient, backward, optimizer update. No host work, no readback.
pub(crate) fn record_train_step(
    pass: &mut wgpu::ComputePass<'_>,
    plan: &Plan,
    finish: &Finish<'_>,
    step: u32,
) {
    // The batch, forward (dropout masked), the loss and its gradient dA_L, the statistics.
    record_forward(pass, plan, step, Phase::Training);
    record_backward(pass, &plan.backward, step);
    match finish {
        // acc ← acc + grad W: a micro-batch that does not update
        Finish::Accumulate(add) => add.iter().for_each(|a| a.record(pass, step)),
        Finish::Update {
            average,
            clip,
            update,
        } => {
            // grad W ← (grad W + acc) / N, acc ← 0, with gradient accumulation
            for launch in average.unwrap_or_default() {
                launch.record(pass, step);
            }
            // grad W ← grad W clipped (by tensor norm, global norm or value), if asked
            for launch in *clip {
                launch.record(pass, step);
            }
            // W ← the optimizer's update of W from grad W (and its slots), all at once
            for launch in *update {
                launch.record(pass, step);
            }
        }
    }
}

impl Plan {
    /// Every launch of a training step, named, in the order [`record_train_step`] records them.
    pub(crate) fn named_launches<'a>(
        &'a self,
        clip: &'a [Dispatch],
        sgd: &'a [Dispatch],
    ) -> Vec<(String, &'a Dispatch)> {
        let mut out = vec![("gather".to_string(), &self.gather)];
        for f in &self.forward {
            if f.phase != Phase::Evaluation {
                out.push((f.name.clone(), &f.launch));
            }
        }
        let last = self.backward.last().map_or("", |b| b.layer.as_str());
        match &self.reduce {
            Some(reduce) => {
                for (i, launch) in self.loss.iter().enumerate() {
                    let name = if i == 0 { "loss" } else { "loss sample means" };
                    out.push((name.into(), launch));
                }
                out.push(("loss reduce".into(), reduce));
            }
            None => {
                let name = format!("loss, reduce, {last} activation backward");
                out.extend(self.loss.iter().map(|launch| (name.clone(), launch)));
            }
        }
        for b in self.backward.iter().rev() {
            for (what, launch) in &b.launches {
                out.push((format!("{} {what}", b.layer), launch));
            }
        }
        for (i, launch) in clip.iter().enumerate() {
            out.push((format!("gradient clipping {i}"), launch));
        }
        for (i, launch) in sgd.iter().enumerate() {
            let piece = if sgd.len() > 1 {
                format!(" {i}")
            } else {
                String::new()
            };
            out.push((format!("sgd update{piece}"), launch));
        }
        out
    }
}

/// Records the forward pass and the loss of batch `step` as evaluation and prediction run
/// them (no dropout).
pub(crate) fn record_eval_step(pass: &mut wgpu::ComputePass<'_>, plan: &Plan, step: u32) {
    record_forward(pass, plan, step, Phase::Evaluation);
}

/// Records the backward launches of `layers` (consecutive layers of a plan), last layer first.
pub(super) fn record_backward(
    pass: &mut wgpu::ComputePass<'_>,
    layers: &[LayerBackward],
    step: u32,
) {
    for layer in layers.iter().rev() {
        // Dense: dZ_i = dA_i ⊙ act_i'(A_i), grad b_i = Σ_rows dZ_i (small batches: the last
        // layer's was done by the loss launch); grad W_i = dZ_iᵀ · A_{i-1};
        // dA_{i-1} = dZ_i · W_i. Other kinds likewise: their parameters' gradients, then
        // their input's.
        for (_, launch) in &layer.launches {
            launch.record(pass, step);
        }
    }
}

/// Records the forward pass and the loss of batch `step` in `phase`: the first half of a
/// training step, and all of `evaluate` and `predict`.
pub(super) fn record_forward(
    pass: &mut wgpu::ComputePass<'_>,
    plan: &Plan,
    step: u32,
    phase: Phase,
) {
    // x_b, t_b ← rows perm[start .. start + rows] of the data set
    plan.gather.record(pass, step);
    // A_i = layer_i(A_{i-1}), e.g. act_i(A_{i-1} · W_iᵀ + b_i)
    for f in &plan.forward {
        if f.phase == Phase::Always || f.phase == phase {
            f.launch.record(pass, step);
        }
    }
    // dA_L = ∂loss/∂A_L; per-row losses
    for launch in &plan.loss {
        launch.record(pass, step);
    }
    // stats[step] = (mean loss, correct) of this batch (small batches: done by the loss launch)
    if let Some(reduce) = &plan.reduce {
        reduce.record(pass, step);
    }
}
