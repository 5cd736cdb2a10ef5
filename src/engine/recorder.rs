//! The commands the training loop records for the GPU, submitted in groups of batches,
//! with the deferred snapshots whose copies ride in them (`submission.rs`).

use super::submission::Submission;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use std::sync::Arc;

/// Queued batches are submitted in groups of this many, so the GPU has work while the host
/// records the next group, and the host is never more than two groups ahead.
pub(crate) const BATCHES_PER_SUBMIT: usize = 16;

/// Commands being recorded for the GPU.
#[derive(Default)]
pub(super) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    pub(super) batches: usize,
    in_flight: Option<wgpu::SubmissionIndex>,
    /// Deferred snapshots whose copies are recorded in `encoder`.
    pub(super) deferred: Vec<Arc<Submission>>,
}

impl Recorder {
    pub(super) fn pass(&mut self, device: &wgpu::Device) -> &mut wgpu::ComputePass<'static> {
        let encoder = &mut self.encoder;
        self.pass.get_or_insert_with(|| {
            encoder
                .get_or_insert_with(|| device.create_command_encoder(&Default::default()))
                .begin_compute_pass(&Default::default())
                .forget_lifetime()
        })
    }

    pub(super) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder
            .get_or_insert_with(|| device.create_command_encoder(&Default::default()))
    }

    /// Submits what was recorded, after the previous submission finished (bounded queue).
    pub(super) fn submit(&mut self, gpu: &Gpu) -> Result<Option<wgpu::SubmissionIndex>> {
        self.pass = None;
        self.batches = 0;
        if self.encoder.is_none() {
            return Ok(self.in_flight.clone());
        }
        let previous = self.in_flight.take();
        let index = self.submit_now(gpu)?;
        if let Some(previous) = previous {
            gpu.wait(Some(previous), "training batches")?;
        }
        Ok(Some(index))
    }

    /// Submits what was recorded at once, without waiting for the previous submission: for
    /// the buckets of a distributed step, which the host reads back as each completes.
    pub(super) fn submit_now(&mut self, gpu: &Gpu) -> Result<wgpu::SubmissionIndex> {
        self.pass = None;
        self.batches = 0;
        let encoder = self
            .encoder
            .take()
            .ok_or_else(|| Error::internal("a bucket submission with nothing recorded"))?;
        let index = gpu.queue.submit([encoder.finish()]);
        self.in_flight = Some(index.clone());
        for snapshot in self.deferred.drain(..) {
            snapshot.resolve(index.clone());
        }
        Ok(index)
    }

    /// Whether a reader waits for a deferred snapshot recorded here.
    pub(super) fn snapshot_wanted(&self) -> bool {
        self.deferred.iter().any(|s| s.is_wanted())
    }

    /// Submits and waits for everything.
    pub(super) fn finish(&mut self, gpu: &Gpu, what: &str) -> Result<()> {
        self.submit(gpu)?;
        self.in_flight = None;
        gpu.wait(None, what)
    }
}

impl Recorder {
    /// Tells the readers of the deferred snapshots recorded here that they will never be
    /// submitted.
    pub(super) fn abandon_deferred(&mut self) {
        for snapshot in self.deferred.drain(..) {
            snapshot.abandon();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Commands never submitted: a reader of their snapshots learns it instead of waiting.
        self.abandon_deferred();
    }
}
