//! The engine during one `fit`: the model's parameters and slots, the workspace of the data
//! set, the commands being recorded and the staging buffers of snapshots, with the verbs the
//! training loop calls: record a step, read the epoch's statistics, read and write the state,
//! take a snapshot, set the learning rate.

use super::layers::Phase;
use super::recorder::{BATCHES_PER_SUBMIT, Recorder};
use super::reduce::Reducer;
use super::snapshot::{self, Snapshot, StagingPool};
use super::step::{Finish, record_backward, record_forward, record_train_step};
use super::submission::Submission;
use super::{GpuParams, Workspace};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::state::{BATCH_STATS, StateMeta, Tensor};
use std::sync::Arc;

/// The engine of one `fit`.
pub(crate) struct Run<'a> {
    params: &'a mut GpuParams,
    work: &'a Workspace,
    recorder: Recorder,
    pool: Arc<StagingPool>,
    /// The optimizer's iteration count at the start of the epoch in progress.
    epoch_iteration: u64,
    /// In a distributed fit: the exchange and ordered sum of the ranks' gradients.
    reducer: Option<Reducer>,
}

impl<'a> Run<'a> {
    pub fn new(params: &'a mut GpuParams, work: &'a Workspace) -> Self {
        let pool = StagingPool::new(snapshot::staging_bytes(params, work.steps));
        Run {
            params,
            work,
            recorder: Recorder::default(),
            pool,
            epoch_iteration: 0,
            reducer: None,
        }
    }

    /// Makes every step a distributed one (the workspace holds this rank's shares).
    pub fn set_reducer(&mut self, reducer: Reducer) {
        self.params.schedule_ranks = reducer.group.size() as u64;
        self.reducer = Some(reducer);
    }

    /// The GPU context.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.params.gpu
    }

    /// The model's parameters (for evaluation between epochs).
    pub fn params(&self) -> &GpuParams {
        self.params
    }

    /// Batches per epoch.
    pub fn steps(&self) -> usize {
        self.work.steps
    }

    /// Samples in the data set.
    pub fn samples(&self) -> usize {
        self.work.samples
    }

    /// Rows in batch `step` (over every rank in a distributed fit).
    pub fn rows(&self, step: usize) -> usize {
        self.work.batch_rows(step)
    }

    /// Prepares an epoch: the order of its samples, and the optimizer's per-step values for
    /// an epoch whose first update makes iteration `epoch_iteration + 1`, with dropout's
    /// `(seed, epoch)`. Lands before the next submission, so it must follow the previous
    /// epoch's last submission.
    pub fn begin_epoch(
        &mut self,
        order: &[u32],
        epoch_iteration: u64,
        masks: (u64, u64),
    ) -> Result<()> {
        self.recorder.submit(&self.params.gpu)?;
        self.work.set_order(&self.params.gpu, order);
        self.epoch_iteration = epoch_iteration;
        self.params.masks = masks;
        let steps = self.work.steps;
        let table = &self.work.step_values;
        self.params
            .write_step_values(table, epoch_iteration, 0, steps);
        Ok(())
    }

    /// Records one training step for batch `step` of the epoch.
    pub fn record_step(&mut self, step: usize) -> Result<()> {
        if self.reducer.is_some() {
            return self.distributed_step(step);
        }
        self.params.ensure_initialized();
        let device = self.params.gpu.device.clone();
        let pass = self.recorder.pass(&device);
        let micro = self.epoch_iteration + step as u64 + 1;
        let finish = match &self.params.accumulate {
            Some(acc) if !micro.is_multiple_of(u64::from(acc.steps)) => {
                Finish::Accumulate(&acc.add)
            }
            acc => Finish::Update {
                average: acc.as_ref().map(|a| &a.average[..]),
                clip: &self.params.clip,
                update: &self.work.update,
            },
        };
        self.work.stage(&self.params.gpu, step);
        record_train_step(pass, self.work.plan(step), &finish, step as u32);
        self.recorder.batches += 1;
        if self.recorder.batches >= BATCHES_PER_SUBMIT || self.recorder.snapshot_wanted() {
            self.recorder.submit(&self.params.gpu)?;
        }
        Ok(())
    }

    /// One distributed step: this rank's share forward and backward, submitted in buckets
    /// (`buckets.rs`) whose gradients are read back and reduce-scattered while the GPU runs
    /// the later buckets' backward launches, then this rank's shard of every rank's summed in
    /// rank order, the sums all-gathered and the update.
    fn distributed_step(&mut self, step: usize) -> Result<()> {
        let Some(reducer) = self.reducer.as_ref() else {
            return Err(Error::internal("a distributed step without its reducer"));
        };
        let started = std::time::Instant::now();
        self.params.ensure_initialized();
        let gpu = &self.params.gpu;
        let device = gpu.device.clone();
        self.work.stage(gpu, step);
        let plan = self.work.plan(step);
        record_forward(
            self.recorder.pass(&device),
            plan,
            step as u32,
            Phase::Training,
        );
        let mut submitted = Vec::new();
        let mut next = plan.backward.len();
        for (b, bucket) in reducer.buckets.plans.iter().enumerate() {
            let layers = &plan.backward[bucket.first_layer..next];
            record_backward(self.recorder.pass(&device), layers, step as u32);
            next = bucket.first_layer;
            let from = (&self.params.grads, &self.work.stats);
            let encoder = self.recorder.encoder(&device);
            reducer.buckets.record_readback(encoder, from, step, b);
            submitted.push(self.recorder.submit_now(gpu)?);
        }
        let exchanged = reducer.exchange(gpu, &submitted, self.work.rows(step))?;
        self.recorder.finish(gpu, "training batches")?;
        let computed = exchanged.computed - started;
        let (reducing, comm) = (std::time::Instant::now(), crate::distributed::comm_nanos());
        let done = self.epoch_iteration + step as u64;
        reducer.reduce(self.params, self.work, step, done, &exchanged.received)?;
        let comm_in_reduce = crate::distributed::comm_nanos() - comm;
        let times = (computed, exchanged.overlapped);
        crate::distributed::record_step_times(times, reducing.elapsed(), comm_in_reduce);
        Ok(())
    }

    /// The learning rate of the update on step `step` of the epoch (1-based within the run's
    /// micro-batches: the epoch's `step`-th batch).
    pub fn learning_rate_at(&self, step: usize) -> f32 {
        self.params
            .learning_rate_at(self.epoch_iteration + step as u64)
    }

    /// Submits everything recorded and waits for the GPU.
    pub fn finish(&mut self, what: &str) -> Result<()> {
        self.recorder.finish(&self.params.gpu, what)
    }

    /// The `(mean loss, correct)` pairs of the first `steps` batches of the epoch: the copy
    /// rides in the same submission as the last batches, so reading costs one GPU round trip.
    pub fn epoch_stats(&mut self, steps: usize) -> Result<Vec<f32>> {
        if steps == 0 {
            return Ok(Vec::new());
        }
        let bytes = steps as u64 * 8;
        let device = self.params.gpu.device.clone();
        let encoder = self.recorder.encoder(&device);
        encoder.copy_buffer_to_buffer(&self.work.stats, 0, &self.work.stats_staging, 0, bytes);
        self.recorder.finish(&self.params.gpu, "training batches")?;
        let raw = self.params.gpu.map_read(
            &self.work.stats_staging,
            bytes,
            "reading the epoch's losses",
        )?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }

    /// The `(mean loss, correct)` pair of batch `step` (waits for the GPU).
    pub fn batch_stats(&mut self, step: usize) -> Result<Vec<f32>> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        self.params
            .gpu
            .read_f32(&self.work.stats, 2 * step, 2, "reading a batch loss")
    }

    /// The parameters, the optimizer slots and the statistics of the first `steps` batches
    /// of the epoch (waits for the GPU).
    pub fn read_state(&mut self, steps: usize) -> Result<(Vec<Tensor>, Vec<Tensor>, Tensor)> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        let stats =
            self.params
                .gpu
                .read_f32(&self.work.stats, 0, 2 * steps, "reading batch statistics")?;
        let stats = Tensor {
            name: BATCH_STATS.into(),
            shape: vec![steps, 2],
            data: stats,
        };
        let gathered = self.gather_slots()?;
        let slots = self.params.read_slots_with(&gathered)?;
        Ok((self.params.read_params()?, slots, stats))
    }

    /// Shards the optimizer slots over the ranks of a distributed fit (ZeRO stage 1): from
    /// now on each rank keeps and updates its shard only. Nothing on one rank.
    pub fn shard_optimizer(&mut self) -> Result<()> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        match self.reducer.as_mut() {
            Some(reducer) => reducer.shard(self.params, &self.work.step_values),
            None => Ok(()),
        }
    }

    /// Makes the optimizer slots whole on every rank again. Collective when sharded.
    pub fn unshard_optimizer(&mut self) -> Result<()> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        match self.reducer.as_mut() {
            Some(reducer) => reducer.unshard(self.params),
            None => Ok(()),
        }
    }

    /// After a failed fit: the shards of the optimizer slots this rank never held are lost
    /// (see `Reducer::abandon`). No collective.
    pub fn abandon_shards(&mut self) -> Result<()> {
        match self.reducer.as_mut() {
            Some(reducer) => reducer.abandon(self.params),
            None => Ok(()),
        }
    }

    /// Ends a round of callback hooks: whether any rank asked for a snapshot (`snapshot` on
    /// this one). Collective while the optimizer slots are sharded, since a snapshot then
    /// needs every rank's shard.
    pub fn end_round(&self, snapshot: bool) -> Result<bool> {
        match &self.reducer {
            Some(reducer) if reducer.sharded() => reducer.group.end_round(snapshot),
            _ => Ok(snapshot),
        }
    }

    /// The whole contents of the sharded optimizer slots, gathered from the ranks (none
    /// unless sharded). Collective while sharded.
    pub fn gather_slots(&mut self) -> Result<Vec<Vec<f32>>> {
        match &self.reducer {
            Some(reducer) if reducer.sharded() => {
                self.recorder.finish(&self.params.gpu, "training batches")?;
                reducer.gather_slots(self.params)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The parameters only (waits for the batches queued so far).
    pub fn read_params(&mut self) -> Result<Vec<Tensor>> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        self.params.read_params()
    }

    /// Replaces the parameters only (after the batches queued so far).
    pub fn write_params(&mut self, params: &[Tensor]) -> Result<()> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        self.params.write_params(params, "")
    }

    /// Replaces the parameters, the optimizer slots, the batch statistics and the learning
    /// rate. Nothing is written unless every tensor fits.
    pub fn write_state(
        &mut self,
        params: &[Tensor],
        slots: &[Tensor],
        batch_stats: &Tensor,
        learning_rate: f32,
    ) -> Result<()> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        self.params.check_params(params, "")?;
        self.params.check_slots(slots, "")?;
        self.params.write_params(params, "")?;
        self.params.write_slots(slots, "")?;
        // A whole set: slots a failed sharded fit left incomplete are complete again.
        if self.params.shard.is_none() {
            self.params.slots_incomplete = None;
        }
        self.params
            .gpu
            .write(&self.work.stats, 0, bytemuck::cast_slice(&batch_stats.data));
        self.params.set_learning_rate(learning_rate);
        // The state is on the device before training goes on: an upload that fails says so
        // here, and a resume's time includes its upload.
        let upload = self.params.gpu.queue.submit([]);
        self.params
            .gpu
            .wait(Some(upload), "uploading the training state")
    }

    /// Changes the learning rate for the batches recorded from now on, from step `step` of
    /// the epoch (those already recorded are submitted first, with the old rate). Refused
    /// when the rate follows a schedule.
    pub fn set_learning_rate(&mut self, lr: f32, step: usize) -> Result<()> {
        if self.follows_schedule() {
            return Err(Error::config(
                "learning rate",
                "it follows a schedule (Configured::schedule), which sets it at every step; compile without the schedule to set it by hand",
            ));
        }
        self.recorder.submit(&self.params.gpu)?;
        self.params.set_learning_rate(lr);
        let (table, steps) = (&self.work.step_values, self.work.steps);
        self.params
            .write_step_values(table, self.epoch_iteration, step, steps);
        Ok(())
    }

    /// Whether the learning rate follows the optimizer's schedule.
    pub fn follows_schedule(&self) -> bool {
        self.params.optimizer.schedule().is_some()
    }

    /// Submits what was recorded if it holds a deferred snapshot's copy, without waiting
    /// for the GPU: before anything that waits on a snapshot's reader (the end of `fit`).
    pub fn submit_snapshots(&mut self) -> Result<()> {
        if self.recorder.deferred.is_empty() {
            return Ok(());
        }
        self.recorder.submit_now(&self.params.gpu).map(|_| ())
    }

    /// Tells the readers of deferred snapshots not submitted yet that they never will be.
    pub fn abandon_snapshots(&mut self) {
        self.recorder.abandon_deferred();
    }

    /// Queues a copy of the state after the recorded batches: the snapshot of the state
    /// `meta` describes. `gathered`: from [`Run::gather_slots`] at this moment. Submitted
    /// now, or with `deferred` in the loop's next submission (see `submission.rs`).
    pub fn snapshot(
        &mut self,
        meta: StateMeta,
        callback_tensors: Vec<Arc<[Tensor]>>,
        gathered: &[Vec<f32>],
        deferred: bool,
    ) -> Result<Snapshot> {
        self.params.ensure_initialized();
        if !self.pool.has_free() {
            // The buffers' holders may wait for this loop's submission to release them.
            self.submit_snapshots()?;
        }
        let device = self.params.gpu.device.clone();
        let encoder = self.recorder.encoder(&device);
        let (staging, layout) = snapshot::record_copy(
            self.params,
            &self.work.stats,
            meta.position.step,
            &self.pool,
            encoder,
            gathered,
        )?;
        let submission =
            if deferred {
                let pending = Submission::pending();
                self.recorder.deferred.push(pending.clone());
                pending
            } else {
                Submission::submitted(self.recorder.submit(&self.params.gpu)?.ok_or_else(|| {
                    Error::internal("a snapshot was taken with nothing submitted")
                })?)
            };
        Ok(Snapshot::new(
            self.params.gpu.clone(),
            self.pool.clone(),
            staging,
            submission,
            layout,
            meta,
            callback_tensors,
        ))
    }
}
