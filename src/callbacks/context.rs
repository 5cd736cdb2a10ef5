//! The training loop's state, as callbacks see it: a view of the engine of the run and of
//! the loop's position, with methods only.

use crate::engine::Run;
use crate::engine::snapshot::Snapshot;
use crate::error::{Error, Result};
use crate::gpu::AdapterSummary;
use crate::state::Tensor;
use crate::state::{
    BATCH_STATS, EventKind, Fingerprint, History, Logs, Position, RunEvent, StateMeta, TrainState,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The training loop's state. Callbacks receive it in every hook; through it they read and
/// replace the full training state, read batch logs, ask for a snapshot, or stop training.
pub struct Context<'a> {
    engine: Run<'a>,
    meta: StateMeta,
    fingerprint: Fingerprint,
    epochs: usize,
    /// Callbacks (by index) that asked for a snapshot in the current round of hooks, and
    /// whether its copy may wait for the loop's next submission.
    snapshot_requests: Vec<(usize, bool)>,
    current_callback: usize,
    /// After `on_train_begin` the position belongs to the loop.
    position_locked: bool,
    /// Whether `fit` has validation data.
    validates: bool,
    /// Validate at the end of every n-th epoch (`FitOptions::validation_freq`).
    validation_freq: usize,
    /// Callback states (JSON and tensors) from a replaced state, handed to the callbacks
    /// after the current round.
    pending_callback_states: Option<CallbackStates>,
    /// The callbacks' tensors as of the last round that asked for a snapshot.
    callback_tensors: Vec<Arc<[Tensor]>>,
}

/// Callbacks' saved states: JSON by callback name, and tensors.
pub(crate) type CallbackStates = (BTreeMap<String, serde_json::Value>, Vec<Tensor>);

impl<'a> Context<'a> {
    pub(crate) fn new(
        engine: Run<'a>,
        meta: StateMeta,
        fingerprint: Fingerprint,
        epochs: usize,
    ) -> Self {
        Context {
            engine,
            meta,
            fingerprint,
            epochs,
            snapshot_requests: Vec::new(),
            current_callback: 0,
            position_locked: false,
            validates: false,
            validation_freq: 1,
            pending_callback_states: None,
            callback_tensors: Vec::new(),
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
        self.engine.steps()
    }

    /// Finished epochs so far (a resumed run's history includes the epochs before the stop).
    pub fn history(&self) -> &History {
        &self.meta.history
    }

    /// What happened to the run so far: its start, resumes and preemptions (bounded; saved
    /// with every backup).
    pub fn events(&self) -> &[RunEvent] {
        &self.meta.events
    }

    /// Records that `kind` happened at the current position, with the time now.
    pub fn record_event(&mut self, kind: EventKind) {
        let p = self.meta.position;
        let event = RunEvent {
            kind,
            epoch: p.epoch,
            step: p.step,
            steps: self.engine.steps(),
            global_step: p.global_step,
            unix_ms: crate::state::unix_ms_now(),
        };
        crate::state::push_event(&mut self.meta.events, event);
    }

    /// What identifies this run (model, loss, optimizer, batch size, data).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Whether `fit` was given validation data (its epochs may still skip validation, by
    /// `FitOptions::validation_freq`).
    pub fn validates(&self) -> bool {
        self.validates
    }

    /// The seed the data order derives from.
    pub fn seed(&self) -> u64 {
        self.meta.seed
    }

    /// The adapter training runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        self.engine.gpu().adapter()
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f32 {
        self.meta.learning_rate
    }

    /// Changes the learning rate for the batches queued from now on.
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        crate::optim::check_learning_rate(lr)?;
        self.engine.set_learning_rate(lr, self.meta.position.step)?;
        self.meta.learning_rate = lr;
        Ok(())
    }

    /// Whether the learning rate follows the optimizer's schedule
    /// ([`crate::Configured::schedule`]); [`set_learning_rate`](Self::set_learning_rate)
    /// then fails.
    pub fn learning_rate_follows_schedule(&self) -> bool {
        self.engine.follows_schedule()
    }

    /// Asks the loop to stop after the current batch (the epoch's end hooks still run). The
    /// request is part of the state saved after it, so a resumed run stops too.
    pub fn stop_training(&mut self) {
        self.meta.stop_training = true;
    }

    /// Whether a stop was asked for.
    pub fn stop_requested(&self) -> bool {
        self.meta.stop_training
    }

    /// Asks for a snapshot of the state at this moment; it is delivered to this callback's
    /// [`super::Callback::on_snapshot`] once every callback's hook for this moment has run.
    pub fn request_snapshot(&mut self) {
        self.request(false);
    }

    /// [`Context::request_snapshot`], the GPU copy recorded into the loop's commands and
    /// submitted with them: for a reader on another thread (the backup writer), which waits
    /// for that submission; one reading it in a hook would wait for the loop it holds up.
    pub(crate) fn request_deferred_snapshot(&mut self) {
        self.request(true);
    }

    fn request(&mut self, deferred: bool) {
        let callback = self.current_callback;
        match self.snapshot_requests.iter_mut().find(|r| r.0 == callback) {
            Some(request) => request.1 &= deferred,
            None => self.snapshot_requests.push((callback, deferred)),
        }
    }

    /// The logs (`loss`, and `accuracy` with cross-entropy) of the batch just queued. Waits
    /// for the GPU: use it only when needed.
    pub fn batch_logs(&mut self) -> Result<Logs> {
        let step = self.meta.position.step;
        if step == 0 {
            return Ok(Logs::new());
        }
        let stats = self.engine.batch_stats(step - 1)?;
        let rows = self.engine.rows(step - 1);
        Ok(crate::fit::logs_of(
            &stats,
            &[rows],
            self.fingerprint.loss == crate::loss::Loss::CrossEntropy.name(),
            "",
        ))
    }

    /// The logs over the batches of the current epoch done so far, as Keras's batch-end logs
    /// (running means). Waits for the GPU.
    pub fn epoch_logs_so_far(&mut self) -> Result<Logs> {
        let step = self.meta.position.step;
        let stats = self.engine.epoch_stats(step)?;
        let rows: Vec<usize> = (0..step).map(|s| self.engine.rows(s)).collect();
        Ok(crate::fit::logs_of(
            &stats,
            &rows,
            self.fingerprint.loss == crate::loss::Loss::CrossEntropy.name(),
            "",
        ))
    }

    /// Reads the whole training state (waits for the GPU). In a distributed fit whose
    /// optimizer slots are sharded over the ranks, the ranks gather them: every rank must
    /// call it at the same moment (docs/MPI.md, "Sharded optimizer state").
    pub fn read_state(&mut self) -> Result<TrainState> {
        let (params, slots, batch_stats) = self.engine.read_state(self.meta.position.step)?;
        Ok(TrainState {
            params,
            slots,
            meta: self.meta.clone(),
            batch_stats,
            callback_tensors: self
                .callback_tensors
                .iter()
                .flat_map(|t| t.iter().cloned())
                .collect(),
        })
    }

    /// Reads the model's parameters (waits for the GPU), as Keras's `get_weights`.
    pub fn read_params(&mut self) -> Result<Vec<crate::state::Tensor>> {
        self.engine.read_params()
    }

    /// Replaces the model's parameters and nothing else (optimizer slots, position and
    /// callback states stay), as Keras's `set_weights`. Every parameter must be given once.
    pub fn set_params(&mut self, params: &[crate::state::Tensor]) -> Result<()> {
        self.engine.write_params(params)
    }

    /// The whole training state as other ranks must take it in `on_train_begin`: the callback
    /// states a restore brought (not handed to the callbacks yet) rather than the current ones.
    pub(crate) fn state_for_peers(&mut self) -> Result<TrainState> {
        let mut state = self.read_state()?;
        if let Some((_, tensors)) = &self.pending_callback_states {
            state.callback_tensors = tensors.clone();
        }
        Ok(state)
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
        if position.step > self.engine.steps() {
            return Err(Error::config(
                "training state",
                format!(
                    "step {} is past the {} batches of an epoch",
                    position.step,
                    self.engine.steps()
                ),
            ));
        }
        // Every batch trained counts one update (fit.rs numbers the epoch's updates from it).
        if state.meta.optimizer_steps < position.step as u64 {
            return Err(Error::config(
                "training state",
                format!(
                    "{} optimizer updates, fewer than the {} batches of epoch {} it has trained",
                    state.meta.optimizer_steps, position.step, position.epoch
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
        crate::optim::check_learning_rate(state.meta.learning_rate)?;
        self.engine.write_state(
            &state.params,
            &state.slots,
            &state.batch_stats,
            state.meta.learning_rate,
        )?;
        self.pending_callback_states = Some((state.meta.callbacks.clone(), state.callback_tensors));
        self.meta = state.meta;
        Ok(())
    }

    // What the loop (fit.rs) does with the context between hooks.

    /// Optimizer updates applied so far (Keras's `iterations`).
    pub fn optimizer_steps(&self) -> u64 {
        self.meta.optimizer_steps
    }

    /// The engine of the run.
    pub(crate) fn engine(&mut self) -> &mut Run<'a> {
        &mut self.engine
    }

    /// The hooks that follow are this callback's.
    pub(crate) fn set_current_callback(&mut self, index: usize) {
        self.current_callback = index;
    }

    /// Records whether `fit` has validation data, and how often it validates.
    pub(crate) fn set_validates(&mut self, validates: bool, validation_freq: usize) {
        self.validates = validates;
        self.validation_freq = validation_freq;
    }

    /// Whether some epoch of the run validates: it has validation data, and
    /// `validation_freq` is at most its epochs (the whole run's, so that a resume past the
    /// last validating epoch is not refused).
    pub(crate) fn some_epoch_validates(&self) -> bool {
        self.validates && self.validation_freq <= self.epochs
    }

    /// Validate at the end of every n-th epoch.
    pub(crate) fn validation_freq(&self) -> usize {
        self.validation_freq
    }

    /// From now on only the loop moves the position.
    pub(crate) fn lock_position(&mut self) {
        self.position_locked = true;
    }

    /// Callback states a `set_state` brought, not handed to the callbacks yet.
    pub(crate) fn take_pending_callback_states(&mut self) -> Option<CallbackStates> {
        self.pending_callback_states.take()
    }

    /// The callbacks that asked for a snapshot since the last call.
    pub(crate) fn take_snapshot_requests(&mut self) -> Vec<(usize, bool)> {
        std::mem::take(&mut self.snapshot_requests)
    }

    /// Records the callbacks' states, to go with the next snapshots.
    pub(crate) fn set_callback_states(
        &mut self,
        states: BTreeMap<String, serde_json::Value>,
        tensors: Vec<Arc<[Tensor]>>,
    ) {
        self.meta.callbacks = states;
        self.callback_tensors = tensors;
    }

    /// Records the training step of the batch at the current position and moves past it.
    pub(crate) fn train_batch(&mut self) -> Result<()> {
        self.engine.record_step(self.meta.position.step)?;
        let p = &mut self.meta.position;
        p.step += 1;
        p.global_step += 1;
        self.meta.optimizer_steps += 1;
        Ok(())
    }

    /// Closes the epoch in progress with its logs: the position moves to the next epoch.
    pub(crate) fn end_epoch(&mut self, logs: Logs) {
        let p = &mut self.meta.position;
        self.meta.history.push(crate::state::EpochLogs {
            epoch: p.epoch,
            logs,
        });
        p.epoch += 1;
        p.step = 0;
    }

    /// A snapshot of the state at this moment; `gathered` as [`Run::gather_slots`] gave it
    /// at this moment; `deferred` as [`Context::request_deferred_snapshot`].
    pub(crate) fn take_snapshot(
        &mut self,
        gathered: &[Vec<f32>],
        deferred: bool,
    ) -> Result<Snapshot> {
        self.engine.snapshot(
            self.meta.clone(),
            self.callback_tensors.clone(),
            gathered,
            deferred,
        )
    }
}
