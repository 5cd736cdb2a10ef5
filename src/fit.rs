//! The training loop: epochs of batches, callbacks at Keras's hooks, logs read once per epoch.

use crate::callbacks::rounds::{check_callback_names, each};
use crate::callbacks::{Callback, Context, FitOutcome, Progress};
use crate::data::{Dataset, epoch_permutation};
use crate::engine::step::record_eval_step;
use crate::engine::{DataOn, Workspace};
use crate::engine::{GpuParams, Run};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::state::{Fingerprint, History, Logs, StateMeta};

/// Options of [`crate::Sequential::fit`], as Keras's `fit` arguments.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Train until this epoch count is reached (epochs `initial_epoch..epochs`). A state
    /// restored by a callback (a [`crate::BackupAndRestore`] backup) that is already past it
    /// is refused with [`Error::BackupBeyondEpochs`], before anything is trained.
    pub epochs: usize,
    /// Rows per batch; the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Shuffle the samples every epoch (the order derives from `(seed, epoch)` alone).
    pub shuffle: bool,
    /// Seed of the data order.
    pub seed: u64,
    /// The epoch to start at when no state is restored.
    pub initial_epoch: usize,
    /// 0 silent, 1 a progress bar per epoch, 2 one line per epoch (Keras's meaning, on
    /// stderr): `fit` then runs a [`crate::Progress`] after the given callbacks.
    pub verbose: u8,
    /// Data to evaluate at the end of each epoch (`val_loss`, `val_accuracy`).
    pub validation_data: Option<Dataset>,
    /// The fraction of the data (its last rows, before any shuffling, as Keras) to hold out
    /// as validation data instead of `validation_data`.
    pub validation_split: Option<f64>,
    /// Validate at the end of every n-th epoch (epochs n-1, 2n-1, ...), as Keras.
    pub validation_freq: usize,
    /// Rows per validation batch (default: `batch_size`). The `val_` logs do not depend on
    /// it beyond rounding.
    pub validation_batch_size: Option<usize>,
    /// Where the training and validation data live: on the GPU, or streamed a batch at a time
    /// from host memory (`Auto`: streamed when it does not fit). Both give the same bits.
    pub data_on: DataOn,
    /// Train over the ranks of an MPI group, data-parallel (docs/MPI.md): `batch_size` is then
    /// the global batch, split by sample index; every rank calls `fit` alike. `None`: this
    /// process alone.
    pub distributed: Option<crate::distributed::Group>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            initial_epoch: 0,
            verbose: 0,
            validation_data: None,
            validation_split: None,
            validation_freq: 1,
            validation_batch_size: None,
            data_on: DataOn::Auto,
            distributed: None,
        }
    }
}

impl FitOptions {
    /// Checks the options against the data set.
    pub fn validate(&self, samples: usize) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::config(
                "batch size",
                "0 is not a batch size; use 1 or more, e.g. 32",
            ));
        }
        if self.batch_size > samples {
            return Err(Error::config(
                "batch size",
                format!(
                    "{} is larger than the data set ({samples} samples); use at most {samples}",
                    self.batch_size
                ),
            ));
        }
        // One matmul launch covers a batch with at most 65 535 rows of 64-row tiles.
        const MAX_BATCH: usize = 65_535 * 64;
        if self.batch_size > MAX_BATCH {
            return Err(Error::config(
                "batch size",
                format!(
                    "{} is more than the {MAX_BATCH} rows one batch may have",
                    self.batch_size
                ),
            ));
        }
        if self.epochs == 0 {
            return Err(Error::config(
                "epochs",
                "0 epochs trains nothing; use 1 or more",
            ));
        }
        if self.initial_epoch >= self.epochs {
            return Err(Error::config(
                "initial epoch",
                format!(
                    "initial_epoch {} must be below epochs {}",
                    self.initial_epoch, self.epochs
                ),
            ));
        }
        if self.validation_freq == 0 {
            return Err(Error::config(
                "validation frequency",
                "0; use 1 (every epoch) or more",
            ));
        }
        if self.validation_batch_size == Some(0) {
            return Err(Error::config(
                "validation batch size",
                "0 is not a batch size; use 1 or more",
            ));
        }
        if let Some(f) = self.validation_split {
            if self.validation_data.is_some() {
                return Err(Error::config(
                    "validation",
                    "give validation_data or validation_split, not both",
                ));
            }
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::config(
                    "validation split",
                    format!("{f} must be above 0 and below 1"),
                ));
            }
        }
        check_batches(samples, self.batch_size)
    }
}

/// Each batch of a pass over `samples` has its 256-byte entry in the batch table, picked by
/// a 32-bit offset: 2^24 batches at most (training, validation, evaluate and predict alike).
pub(crate) fn check_batches(samples: usize, batch_size: usize) -> Result<()> {
    let most = (u32::MAX as u64 / crate::gpu::Batch::STRIDE + 1) as usize;
    let steps = samples.div_ceil(batch_size.max(1));
    if steps > most {
        return Err(Error::config(
            "batch size",
            format!(
                "{steps} batches of {samples} samples; at most {most} are supported: use a \
                 batch size of at least {}",
                samples.div_ceil(most)
            ),
        ));
    }
    Ok(())
}

/// The order of samples in `epoch`.
pub(crate) fn epoch_order(seed: u64, epoch: usize, samples: usize, shuffle: bool) -> Vec<u32> {
    if shuffle {
        epoch_permutation(seed, epoch as u64, samples)
    } else {
        (0..samples as u32).collect()
    }
}

/// Logs from per-batch `(mean loss, correct)` pairs: the loss weighted by batch rows, as
/// Keras's running mean; accuracy as correct / rows. Summed in f64 in batch order.
pub(crate) fn logs_of(stats: &[f32], rows: &[usize], accuracy: bool, prefix: &str) -> Logs {
    let mut loss = 0f64;
    let mut correct = 0f64;
    let mut total = 0f64;
    for (pair, &r) in stats.chunks_exact(2).zip(rows) {
        loss += pair[0] as f64 * r as f64;
        correct += pair[1] as f64;
        total += r as f64;
    }
    let mut logs = Logs::new();
    if total > 0.0 {
        logs.insert(format!("{prefix}loss"), loss / total);
        if accuracy {
            logs.insert(format!("{prefix}accuracy"), correct / total);
        }
    }
    logs
}

/// What `fit` needs besides the model's parameters.
pub(crate) struct FitSetup {
    pub options: FitOptions,
    pub fingerprint: Fingerprint,
    pub loss: Loss,
}

/// Trains `params` on the data set of `work`: the body of [`crate::Sequential::fit`].
pub(crate) fn fit(
    params: &mut GpuParams,
    work: &Workspace,
    setup: FitSetup,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    // `verbose` is a progress callback after the caller's (after a restore, so it sees where
    // the run resumes).
    let mut progress = (setup.options.verbose > 0).then(|| Progress::new(setup.options.verbose));
    let mut all: Vec<&mut dyn Callback> = Vec::with_capacity(callbacks.len() + 1);
    for cb in callbacks.iter_mut() {
        all.push(&mut **cb);
    }
    if let Some(p) = progress.as_mut() {
        all.push(p);
    }
    let callbacks = &mut all[..];
    let options = &setup.options;
    let validation = match &options.validation_data {
        Some(v) => Some(Workspace::new(
            params,
            v,
            options
                .validation_batch_size
                .unwrap_or(options.batch_size)
                .min(v.len()),
            setup.loss,
            options.data_on,
        )?),
        None => None,
    };
    check_callback_names(callbacks)?;
    let meta = StateMeta {
        position: crate::state::Position {
            epoch: options.initial_epoch,
            step: 0,
            global_step: 0,
        },
        seed: options.seed,
        optimizer_steps: 0,
        learning_rate: params.optimizer.learning_rate(),
        history: History::default(),
        callbacks: Default::default(),
        events: Vec::new(),
        stop_training: false,
    };
    if options.verbose > 0 {
        eprintln!("wgfit: training on {}", params.gpu.adapter());
    }
    // A distributed fit: the ranks' gradients are exchanged and summed at every step, and a
    // signal is caught on every rank so that all stop together (`distributed::check_stop`).
    params.schedule_ranks = 1;
    let (_distributed, reducer) = match &options.distributed {
        Some(group) => (
            Some(crate::distributed::begin(group)?),
            Some(crate::engine::Reducer::new(params, group.clone())?),
        ),
        None => (None, None),
    };
    let mut run = Run::new(params, work);
    if let Some(reducer) = reducer {
        run.set_reducer(reducer);
    }
    let mut ctx = Context::new(run, meta, setup.fingerprint.clone(), options.epochs);
    ctx.set_validates(validation.is_some(), options.validation_freq);
    let result = train(&mut ctx, callbacks, &setup, validation.as_ref());
    // The exit hooks wait for the backup writer, which may wait for a deferred snapshot's
    // copy: it is submitted first. A failure here leaves the snapshot abandoned (its reader
    // is told), and the training's own error is the one to report.
    if ctx.engine().submit_snapshots().is_err() {
        ctx.engine().abandon_snapshots();
    }
    if result.is_err() {
        // The other ranks' shards of the optimizer slots are out of reach; the slots are
        // marked incomplete whether or not freeing the shard succeeds, and the training's
        // error is the one to report.
        let _ = ctx.engine().abandon_shards();
    }
    let outcome = match &result {
        Ok(_) => FitOutcome::Completed,
        Err(Error::Preempted { .. }) => FitOutcome::Preempted,
        Err(_) => FitOutcome::Failed,
    };
    // Every callback gets its exit hook, whatever happened; the first error wins.
    let mut exit_error = None;
    for (i, cb) in callbacks.iter_mut().enumerate() {
        ctx.set_current_callback(i);
        if let Err(e) = cb.on_fit_exit(&mut ctx, outcome) {
            exit_error.get_or_insert(e);
        }
    }
    let finished = ctx.engine().finish("training batches");
    match (result, exit_error) {
        (Err(e), _) => Err(e),
        (Ok(_), Some(e)) => Err(e),
        (Ok(h), None) => finished.map(|_| h),
    }
}

fn train(
    ctx: &mut Context<'_>,
    callbacks: &mut [&mut dyn Callback],
    setup: &FitSetup,
    validation: Option<&Workspace>,
) -> Result<History> {
    each(callbacks, ctx, |cb, ctx| cb.on_train_begin(ctx))?;
    crate::distributed::check_agree(ctx, "at the start")?;
    ctx.engine().params().check_slots_complete()?;
    check_within_epochs(ctx.position(), setup.options.epochs)?;
    // Every rank holds the state the run starts from: each keeps its shard of the optimizer
    // slots from here to the end of training (docs/MPI.md, "Sharded optimizer state").
    ctx.engine().shard_optimizer()?;
    ctx.lock_position();
    while ctx.position().epoch < setup.options.epochs && !ctx.stop_requested() {
        train_epoch(ctx, callbacks, setup, validation)?;
    }
    ctx.engine().finish("training batches")?;
    crate::distributed::check_agree(ctx, "at the end of training")?;
    ctx.engine().unshard_optimizer()?;
    let logs = ctx.history().last().cloned().unwrap_or_default();
    each(callbacks, ctx, |cb, ctx| cb.on_train_end(ctx, &logs))?;
    Ok(ctx.history().clone())
}

/// Refuses a restored state past the last epoch asked for: training nothing would return (and
/// a caller would write) weights of a later epoch than asked, and a history longer than
/// `epochs`, as if they were the result of `epochs` epochs.
fn check_within_epochs(p: crate::state::Position, epochs: usize) -> Result<()> {
    if p.epoch > epochs || (p.epoch == epochs && p.step > 0) {
        return Err(Error::BackupBeyondEpochs {
            epochs,
            epoch: p.epoch,
            step: p.step,
        });
    }
    Ok(())
}

fn train_epoch(
    ctx: &mut Context<'_>,
    callbacks: &mut [&mut dyn Callback],
    setup: &FitSetup,
    validation: Option<&Workspace>,
) -> Result<()> {
    let (seed, epoch) = (ctx.seed(), ctx.position().epoch);
    // A resumed epoch began `step` updates before the state it resumes from.
    let epoch_iteration = ctx.optimizer_steps() - ctx.position().step as u64;
    let engine = ctx.engine();
    let order = epoch_order(seed, epoch, engine.samples(), setup.options.shuffle);
    engine.begin_epoch(&order, epoch_iteration, (seed, epoch as u64))?;
    each(callbacks, ctx, |cb, ctx| cb.on_epoch_begin(ctx, epoch))?;
    while ctx.position().step < ctx.steps_per_epoch() && !ctx.stop_requested() {
        let batch = ctx.position().step;
        each(callbacks, ctx, |cb, ctx| {
            cb.on_train_batch_begin(ctx, batch)
        })?;
        ctx.train_batch()?;
        each(callbacks, ctx, |cb, ctx| cb.on_train_batch_end(ctx, batch))?;
        crate::distributed::check_stop(ctx)?;
    }

    // The epoch's logs: one readback of every batch's statistics.
    let done = ctx.position().step;
    let stats = ctx.engine().epoch_stats(done)?;
    let rows: Vec<usize> = (0..done).map(|s| ctx.engine().rows(s)).collect();
    let mut logs = logs_of(&stats, &rows, setup.loss.reports_accuracy(), "");
    // The rate of the epoch's last update (as Keras's ReduceLROnPlateau names it).
    if done > 0 {
        let lr = ctx.engine().learning_rate_at(done);
        logs.insert("learning_rate".into(), f64::from(lr));
    }
    if let Some(&loss) = logs.get("loss")
        && !loss.is_finite()
    {
        return Err(Error::Diverged {
            what: "the loss".into(),
            epoch,
            global_step: ctx.position().global_step,
            value: loss as f32,
        });
    }
    if let Some(v) = validation
        && (epoch + 1).is_multiple_of(setup.options.validation_freq)
    {
        logs.extend(evaluate_on(
            ctx.engine().params(),
            v,
            setup.loss.reports_accuracy(),
            "val_",
        )?);
    }
    ctx.end_epoch(logs.clone());
    each(callbacks, ctx, |cb, ctx| cb.on_epoch_end(ctx, epoch, &logs))
}

/// The steps of a pass over `work`, in the groups one submission may hold.
fn submissions(work: &Workspace) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let per = work.steps_per_submission().min(work.steps.max(1));
    (0..work.steps.div_ceil(per)).map(move |g| g * per..((g + 1) * per).min(work.steps))
}

/// Runs the forward pass and loss over a whole workspace in order and returns its logs.
pub(crate) fn evaluate_on(
    params: &GpuParams,
    work: &Workspace,
    accuracy: bool,
    prefix: &str,
) -> Result<Logs> {
    params.ensure_initialized();
    let gpu = &params.gpu;
    let order: Vec<u32> = (0..work.samples as u32).collect();
    work.set_order(gpu, &order);
    for group in submissions(work) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for step in group {
                work.stage(gpu, step);
                record_eval_step(&mut pass, work.plan(step), step as u32);
            }
        }
        gpu.queue.submit([encoder.finish()]);
    }
    let stats = gpu.read_f32(&work.stats, 0, 2 * work.steps, "reading evaluation losses")?;
    let rows: Vec<usize> = (0..work.steps).map(|s| work.rows(s)).collect();
    Ok(logs_of(&stats, &rows, accuracy, prefix))
}

/// Runs the forward pass over a workspace in order and returns the outputs, row-major.
pub(crate) fn predict_on(params: &GpuParams, work: &Workspace, outputs: usize) -> Result<Vec<f32>> {
    params.ensure_initialized();
    let gpu = &params.gpu;
    let order: Vec<u32> = (0..work.samples as u32).collect();
    work.set_order(gpu, &order);
    let result = gpu.storage("predictions", (work.samples * outputs) as u64 * 4)?;
    let row_bytes = outputs as u64 * 4;
    for group in submissions(work) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for step in group {
            work.stage(gpu, step);
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                record_eval_step(&mut pass, work.plan(step), step as u32);
            }
            encoder.copy_buffer_to_buffer(
                work.output(),
                0,
                &result,
                (step * work.batch_size) as u64 * row_bytes,
                work.rows(step) as u64 * row_bytes,
            );
        }
        gpu.queue.submit([encoder.finish()]);
    }
    gpu.read_f32(&result, 0, work.samples * outputs, "reading predictions")
}
