//! The training loop's state, as callbacks see it.

use crate::error::{Error, Result};
use crate::gpu::AdapterSummary;
use crate::model::GpuParams;
use crate::model::step::{Workspace, record_train_step};
use crate::snapshot::{self, Snapshot, StagingPool};
use crate::state::{
    BATCH_STATS, Fingerprint, History, Logs, Position, StateMeta, Tensor, TrainState,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Queued batches are submitted in groups of this many, so the GPU has work while the host
/// records the next group, and the host is never more than two groups ahead.
const BATCHES_PER_SUBMIT: usize = 16;

/// Commands being recorded for the GPU.
#[derive(Default)]
pub(crate) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    pass: Option<wgpu::ComputePass<'static>>,
    pub batches: usize,
    in_flight: Option<wgpu::SubmissionIndex>,
}

impl Recorder {
    pub fn pass(&mut self, device: &wgpu::Device) -> &mut wgpu::ComputePass<'static> {
        if self.pass.is_none() {
            let encoder = self
                .encoder
                .get_or_insert_with(|| device.create_command_encoder(&Default::default()));
            self.pass = Some(
                encoder
                    .begin_compute_pass(&Default::default())
                    .forget_lifetime(),
            );
        }
        match self.pass.as_mut() {
            Some(p) => p,
            None => unreachable!("pass was just created"),
        }
    }

    pub fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder
            .get_or_insert_with(|| device.create_command_encoder(&Default::default()))
    }

    /// Submits what was recorded, after the previous submission finished (bounded queue).
    pub fn submit(&mut self, gpu: &crate::gpu::Gpu) -> Result<Option<wgpu::SubmissionIndex>> {
        self.pass = None;
        self.batches = 0;
        let Some(encoder) = self.encoder.take() else {
            return Ok(self.in_flight.clone());
        };
        let index = gpu.queue.submit([encoder.finish()]);
        if let Some(previous) = self.in_flight.replace(index.clone()) {
            gpu.wait(Some(previous), "training batches")?;
        }
        Ok(Some(index))
    }

    /// Submits and waits for everything.
    pub fn finish(&mut self, gpu: &crate::gpu::Gpu, what: &str) -> Result<()> {
        self.submit(gpu)?;
        self.in_flight = None;
        gpu.wait(None, what)
    }
}

/// The training loop's state. Callbacks receive it in every hook; through it they read and
/// replace the full training state, read batch logs, ask for a snapshot, or stop training.
pub struct Context<'a> {
    pub(crate) params: &'a mut GpuParams,
    pub(crate) work: &'a Workspace,
    pub(crate) meta: StateMeta,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) epochs: usize,
    pub(crate) stop_requested: bool,
    pub(crate) snapshot_requests: Vec<usize>,
    pub(crate) current_callback: usize,
    /// After `on_train_begin` the position belongs to the loop.
    pub(crate) position_locked: bool,
    /// Callback states from a replaced state, handed to the callbacks after the current round.
    pub(crate) pending_callback_states: Option<BTreeMap<String, serde_json::Value>>,
    pub(crate) recorder: Recorder,
    pool: Arc<StagingPool>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        params: &'a mut GpuParams,
        work: &'a Workspace,
        meta: StateMeta,
        fingerprint: Fingerprint,
        epochs: usize,
    ) -> Self {
        let pool = StagingPool::new(snapshot::staging_bytes(params, work.steps));
        Context {
            params,
            work,
            meta,
            fingerprint,
            epochs,
            stop_requested: false,
            snapshot_requests: Vec::new(),
            current_callback: 0,
            position_locked: false,
            pending_callback_states: None,
            recorder: Recorder::default(),
            pool,
        }
    }

    /// Where the run stands: after a batch-end hook, `step` counts that batch.
    pub fn position(&self) -> Position {
        self.meta.position
    }

    /// The number of epochs `fit` was asked for.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// Batches per epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.work.steps
    }

    /// Finished epochs so far (a resumed run's history includes the epochs before the stop).
    pub fn history(&self) -> &History {
        &self.meta.history
    }

    /// What identifies this run (model, loss, optimizer, batch size, data).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The seed the data order derives from.
    pub fn seed(&self) -> u64 {
        self.meta.seed
    }

    /// The adapter training runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        self.params.gpu.adapter()
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f32 {
        self.meta.learning_rate
    }

    /// Changes the learning rate for the batches queued from now on.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        crate::optim::Sgd::new(lr).validate()?;
        // Batches already queued keep the old rate: submit them before the uniform changes.
        self.recorder.submit(&self.params.gpu)?;
        self.params.set_learning_rate(lr);
        self.meta.learning_rate = lr;
        Ok(())
    }

    /// Asks the loop to stop after the current batch (the epoch's end hooks still run).
    pub fn stop_training(&mut self) {
        self.stop_requested = true;
    }

    /// Whether a stop was asked for.
    pub fn stop_requested(&self) -> bool {
        self.stop_requested
    }

    /// Asks for a snapshot of the state at this moment; it is delivered to this callback's
    /// [`super::Callback::on_snapshot`] once every callback's hook for this moment has run.
    pub fn request_snapshot(&mut self) {
        if !self.snapshot_requests.contains(&self.current_callback) {
            self.snapshot_requests.push(self.current_callback);
        }
    }

    /// The logs (`loss`, and `accuracy` with cross-entropy) of the batch just queued. Waits
    /// for the GPU: use it only when needed.
    pub fn batch_logs(&mut self) -> Result<Logs> {
        let step = self.meta.position.step;
        if step == 0 {
            return Ok(Logs::new());
        }
        self.recorder.finish(&self.params.gpu, "training batches")?;
        let stats = self.params.gpu.read_f32(
            &self.work.stats,
            2 * (step - 1),
            2,
            "reading a batch loss",
        )?;
        let rows = self.work.rows(step - 1);
        Ok(crate::fit::logs_of(
            &stats,
            &[rows],
            self.fingerprint.loss == crate::loss::Loss::CrossEntropy.name(),
            "",
        ))
    }

    /// Reads the whole training state (waits for the GPU).
    pub fn read_state(&mut self) -> Result<TrainState> {
        self.recorder.finish(&self.params.gpu, "training batches")?;
        let step = self.meta.position.step;
        let stats =
            self.params
                .gpu
                .read_f32(&self.work.stats, 0, 2 * step, "reading batch statistics")?;
        Ok(TrainState {
            params: self.params.read_params()?,
            slots: self.params.read_slots()?,
            meta: self.meta.clone(),
            batch_stats: Tensor {
                name: BATCH_STATS.into(),
                shape: vec![step, 2],
                data: stats,
            },
        })
    }

    /// Replaces the whole training state. The position may change only in `on_train_begin`;
    /// later, `state.meta.position` must equal the current position.
    pub fn set_state(&mut self, state: TrainState) -> Result<()> {
        let position = state.meta.position;
        if self.position_locked && position != self.meta.position {
            return Err(Error::config(
                "training state",
                format!(
                    "the position can only be replaced in on_train_begin (now {:?}, given {:?})",
                    self.meta.position, position
                ),
            ));
        }
        if position.step > self.work.steps {
            return Err(Error::config(
                "training state",
                format!(
                    "step {} is past the {} batches of an epoch",
                    position.step, self.work.steps
                ),
            ));
        }
        if state.batch_stats.shape != [position.step, 2]
            || state.batch_stats.data.len() != 2 * position.step
        {
            return Err(Error::Shape {
                what: BATCH_STATS.into(),
                expected: vec![position.step, 2],
                got: state.batch_stats.shape.clone(),
            });
        }
        crate::optim::Sgd::new(state.meta.learning_rate).validate()?;
        self.recorder.finish(&self.params.gpu, "training batches")?;
        self.params.write_params(&state.params, "")?;
        self.params.write_slots(&state.slots, "")?;
        let gpu = &self.params.gpu;
        gpu.write(
            &self.work.stats,
            0,
            bytemuck::cast_slice(&state.batch_stats.data),
        );
        self.params.set_learning_rate(state.meta.learning_rate);
        self.pending_callback_states = Some(state.meta.callbacks.clone());
        self.meta = state.meta;
        Ok(())
    }

    /// The `(mean loss, correct)` pairs of the first `steps` batches of the epoch: the copy
    /// rides in the same submission as the last batches, so reading costs one GPU round trip.
    pub(crate) fn epoch_stats(&mut self, steps: usize) -> Result<Vec<f32>> {
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

    /// Records one training step for the batch at the current position.
    pub(crate) fn record_step(&mut self) -> Result<()> {
        let step = self.meta.position.step;
        self.params.ensure_initialized();
        let device = self.params.gpu.device.clone();
        let pass = self.recorder.pass(&device);
        record_train_step(pass, self.work.plan(step), &self.params.sgd, step as u32);
        self.recorder.batches += 1;
        if self.recorder.batches >= BATCHES_PER_SUBMIT {
            self.recorder.submit(&self.params.gpu)?;
        }
        Ok(())
    }

    /// Queues a snapshot of the current state and submits it.
    pub(crate) fn take_snapshot(&mut self) -> Result<Snapshot> {
        self.params.ensure_initialized();
        let device = self.params.gpu.device.clone();
        let encoder = self.recorder.encoder(&device);
        let (staging, layout) = snapshot::record_copy(
            self.params,
            &self.work.stats,
            self.meta.position.step,
            &self.pool,
            encoder,
        )?;
        let submission = self
            .recorder
            .submit(&self.params.gpu)?
            .ok_or_else(|| Error::gpu("snapshot", "nothing was submitted"))?;
        Ok(Snapshot::new(
            self.params.gpu.clone(),
            self.pool.clone(),
            staging,
            submission,
            layout,
            self.meta.clone(),
        ))
    }
}
