//! Where the time of one training step goes: every launch of the step timed on its own.

use super::step::{Finish, Plan, record_train_step};
use crate::error::Result;
use crate::gpu::{Dispatch, Gpu};
use std::time::Instant;

/// The time of each launch of one training step, and of the whole step (see
/// [`crate::Sequential::profile_step`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StepProfile {
    /// Each launch in step order with its milliseconds: `gather`, each layer's forward
    /// launches (`dense<i> forward`, `conv2d<i> forward`, …, named by the layer's class in
    /// lower case and its index), `loss`, `loss reduce` (for batches of at most 64 rows on a GPU
    /// one launch, `loss, reduce, dense<last> activation backward`), then per layer from the
    /// last its backward launches (`dense<i> activation backward`, `dense<i> weight gradient`,
    /// `dense<i> input gradient`, …), and `sgd update`.
    pub launches: Vec<(String, f64)>,
    /// Milliseconds of a whole step recorded as `fit` records it.
    pub step_ms: f64,
}

impl StepProfile {
    /// Milliseconds of all launches timed apart.
    pub fn launches_ms(&self) -> f64 {
        self.launches.iter().map(|(_, ms)| ms).sum()
    }
}

/// Milliseconds per repetition of what `record` records, `reps` times in one pass and one
/// submission (as `fit` records many batches per submission), after one untimed run.
fn time_pass(gpu: &Gpu, reps: usize, record: impl Fn(&mut wgpu::ComputePass<'_>)) -> Result<f64> {
    let run = |times: usize| -> Result<f64> {
        let started = Instant::now();
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            for _ in 0..times {
                record(&mut pass);
            }
        }
        let submission = gpu.queue.submit([encoder.finish()]);
        gpu.wait(Some(submission), "profiling a training step")?;
        Ok(started.elapsed().as_secs_f64() * 1e3)
    };
    run(1)?;
    Ok(run(reps.max(1))? / reps.max(1) as f64)
}

/// Times every launch of batch 0's step apart, then whole steps.
pub(crate) fn profile(
    gpu: &Gpu,
    plan: &Plan,
    clip: &[Dispatch],
    sgd: &[Dispatch],
    reps: usize,
) -> Result<StepProfile> {
    let mut launches = Vec::new();
    for (name, launch) in plan.named_launches(clip, sgd) {
        let ms = time_pass(gpu, reps, |pass| launch.record(pass, 0))?;
        launches.push((name, ms));
    }
    let step_ms = time_pass(gpu, reps, |pass| {
        record_train_step(
            pass,
            plan,
            &Finish::Update {
                average: None,
                clip,
                update: sgd,
            },
            0,
        )
    })?;
    Ok(StepProfile { launches, step_ms })
}
