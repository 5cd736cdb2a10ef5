//! The one error type of wgfit. Every variant carries the facts a user needs to act on it.

use std::path::PathBuf;

/// Result alias used throughout wgfit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in wgfit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU or software Vulkan adapter was found.
    #[error(
        "no GPU adapter found{detail}; on Debian or Ubuntu install the software Vulkan driver with \
         `apt-get install mesa-vulkan-drivers` (lavapipe), or set WGPU_ADAPTER_NAME / WGPU_BACKEND"
    )]
    NoAdapter {
        /// Extra context, e.g. which name filter matched nothing.
        detail: String,
    },
    /// The adapter refused to create a device.
    #[error("could not open the GPU device on adapter `{adapter}`: {reason}")]
    DeviceRequest {
        /// Adapter name.
        adapter: String,
        /// The driver's reason.
        reason: String,
    },
    /// The GPU did not finish work within the timeout.
    #[error(
        "the GPU did not finish `{what}` within {millis} ms (a hung or lost driver; the limit is WGFIT_GPU_TIMEOUT_MS)"
    )]
    GpuTimeout {
        /// What was being waited for.
        what: String,
        /// The limit, in milliseconds.
        millis: u64,
    },
    /// The GPU device was lost (a driver reset, a removed device, or [`crate::Gpu::destroy`]).
    /// Nothing after the last committed backup can be saved; a new process (or a new
    /// [`crate::Gpu`]) resumes from that backup.
    #[error(
        "the GPU device was lost during {what} ({reason}); work since the last committed backup is gone, rerun to resume from it"
    )]
    DeviceLost {
        /// What was running.
        what: String,
        /// The driver's reason.
        reason: String,
    },
    /// A GPU operation failed (validation, out of memory, mapping).
    #[error("GPU error during {what}: {reason}")]
    Gpu {
        /// The operation.
        what: String,
        /// The driver's or wgpu's message.
        reason: String,
    },
    /// A model or data size exceeds what the adapter allows.
    #[error("{what} needs {requested} bytes but the adapter `{adapter}` allows at most {limit}")]
    TooLargeForAdapter {
        /// Which buffer.
        what: String,
        /// Bytes asked for.
        requested: u64,
        /// Adapter limit.
        limit: u64,
        /// Adapter name.
        adapter: String,
    },

    /// A kernel would loop more often in one invocation than the adapter runs loops: llvmpipe
    /// (lavapipe) silently ends an invocation's loops after 65 535 iterations in all, which
    /// would make the result wrong, so wgfit refuses such a size there.
    #[error(
        "{what} is {size}, but on the adapter `{adapter}` (llvmpipe, which cuts a kernel's loops \
         short after 65 535 iterations) at most {limit} can be computed exactly; use a GPU \
         adapter or a smaller {what}"
    )]
    LoopLimit {
        /// The size, as the user set it (e.g. "the batch size", "layer 0's input width").
        what: String,
        /// Its value.
        size: usize,
        /// The largest value computed exactly on this adapter.
        limit: usize,
        /// Adapter name.
        adapter: String,
    },

    /// A configuration value is invalid (model, fit options, callback options).
    #[error("invalid {what}: {reason}")]
    Config {
        /// The option or item.
        what: String,
        /// What is wrong and what to pass instead.
        reason: String,
    },
    /// `fit`, `evaluate` or `predict` was called before `compile`.
    #[error("the model is not compiled: call `compile(loss, optimizer)` first")]
    NotCompiled,
    /// A tensor has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// The tensor.
        what: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Actual shape.
        got: Vec<usize>,
    },
    /// A named tensor is missing from a parameter set.
    #[error("tensor `{name}` is missing{context}")]
    MissingTensor {
        /// Tensor name.
        name: String,
        /// Where it was expected, e.g. " in model.safetensors".
        context: String,
    },

    /// A data file could not be read.
    #[error("cannot read data file {}: {source}", path.display())]
    DataIo {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A data file holds no rows.
    #[error("data file {} holds no data rows", path.display())]
    EmptyData {
        /// The file.
        path: PathBuf,
    },
    /// A row of a data file is malformed. Rows and columns are 1-based as in an editor.
    #[error("{}: row {row}, column {column}: {reason}", path.display())]
    DataParse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        row: usize,
        /// 1-based column number (0 when the whole row is at fault).
        column: usize,
        /// What is wrong.
        reason: String,
    },
    /// A data set fails validation (in-memory or from a tensor file).
    #[error("invalid data{}: {reason}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    InvalidData {
        /// The source file, when there is one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// A class label does not fit the model's output width.
    #[error(
        "label {label} at sample {sample} (counted from 0) is out of range: the model has {classes} outputs, so labels must be 0 to {}",
        classes.saturating_sub(1)
    )]
    LabelOutOfRange {
        /// 0-based sample index.
        sample: usize,
        /// The label.
        label: u32,
        /// Number of classes (output width).
        classes: usize,
    },

    /// Training produced a non-finite loss or non-finite parameters.
    #[error(
        "training diverged: {what} became {value} in epoch {} (by global step {global_step}); lower the learning rate",
        epoch + 1
    )]
    Diverged {
        /// `the loss` or `the parameters`.
        what: String,
        /// 0-based epoch (the message counts from 1).
        epoch: usize,
        /// Global step at which it was seen.
        global_step: u64,
        /// The offending value (NaN or ±inf).
        value: f32,
    },
    /// A callback returned an error; `fit` stops with it.
    #[error("callback `{callback}` failed: {reason}")]
    Callback {
        /// Callback name.
        callback: String,
        /// Its message.
        reason: String,
    },
    /// Training stopped because SIGTERM or SIGINT arrived; the state was saved and committed.
    #[error(
        "preempted by signal {signal}: state saved {}; run again to resume",
        position_words(*epoch, *step)
    )]
    Preempted {
        /// The signal number (15 for SIGTERM, 2 for SIGINT).
        signal: i32,
        /// Epoch of the saved state (0-based: the finished epochs when `step` is 0; the
        /// message counts from 1).
        epoch: usize,
        /// Batches of that epoch the saved state has done.
        step: usize,
    },

    /// An output file (parameters, history, predictions) could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An I/O error on a checkpoint path.
    #[error("checkpoint I/O error on {}: {source}", path.display())]
    CheckpointIo {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint file is damaged or not a wgfit checkpoint.
    #[error("checkpoint {} is unusable: {reason}", path.display())]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The backup directory exists, is not empty, and is not a wgfit backup: wgfit changes
    /// nothing in it.
    #[error(
        "{} is not a wgfit backup directory: it holds {} (e.g. {}) and no {} marker; wgfit changes nothing in it. Pass an empty or new directory as the backup directory",
        dir.display(),
        if *entries == 1 { "1 entry".to_string() } else { format!("{entries} entries") },
        examples.join(", "),
        crate::checkpoint::MARKER
    )]
    NotABackupDir {
        /// The directory.
        dir: PathBuf,
        /// How many entries it holds.
        entries: usize,
        /// A few of their names.
        examples: Vec<String>,
    },
    /// A name in the backup directory is not a regular file (a link, a FIFO, a device, a
    /// directory): it is neither followed, nor read, nor waited on.
    #[error("{} is {kind}, not a regular file; wgfit neither follows nor reads it (remove it, or use another backup directory)", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: String,
    },
    /// A sidecar about to be committed did not parse back: it is not committed.
    #[error(
        "the sidecar for global step {global_step} would not restore ({reason}); it was not committed, the last committed state stays"
    )]
    UnrestorableSidecar {
        /// The state's global step.
        global_step: u64,
        /// Why it did not parse.
        reason: String,
    },
    /// A model file of another framework (Keras's `.weights.h5` or `.keras`) that does not
    /// hold what this model needs, or is not such a file at all.
    #[error("{format} file {}: {reason}", path.display())]
    ForeignModelFile {
        /// The file.
        path: PathBuf,
        /// Its format, e.g. `Keras weights`.
        format: &'static str,
        /// What is wrong, naming the variable or entry.
        reason: String,
    },
    /// Encoding a file failed.
    #[error("cannot encode {what}: {reason}")]
    Encoding {
        /// What was being encoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A broken internal invariant, e.g. a worker thread that panicked (a bug in wgfit).
    #[error("internal error (a bug in wgfit, please report it): {what}")]
    Internal {
        /// The thread or task.
        what: String,
    },
    #[error("object store error on {url} while {what}: {reason}")]
    /// A request to an object store failed after its retries (or was refused: credentials,
    /// a missing bucket). The last committed state there stays valid.
    ObjectStore {
        /// The object or prefix.
        url: String,
        /// What wgfit was doing.
        what: String,
        /// The client's error.
        reason: String,
    },
    #[error(
        "backup {url} is leased by another run that keeps renewing it (run {owner} on host {host}, pid {pid}); wgfit takes a lease over only once its owner stops renewing it"
    )]
    /// Another live run holds the lease of a backup on object storage.
    BackupLeased {
        /// The backup's URL.
        url: String,
        /// The holder's run id.
        owner: String,
        /// The holder's host name.
        host: String,
        /// The holder's process id.
        pid: u32,
    },
    #[error("this run lost its lease on backup {url}: {reason}; it stops without writing there")]
    /// The lease was taken over (this run stopped renewing it for longer than it lasts) or
    /// the pointer changed under it: another run writes the backup now; or this run could not
    /// renew it in time (the store unreachable) and stopped before another run could.
    LeaseLost {
        /// The backup's URL.
        url: String,
        /// What showed it.
        reason: String,
        /// Whether another run took the backup over (it writes there now), rather than this
        /// run having been unable to renew the lease in time.
        taken_over: bool,
    },
    /// The backup directory is used by another run.
    #[error("backup directory {} is in use by another run (lock file {} is held)", dir.display(), dir.join(".lock").display())]
    BackupLocked {
        /// The directory.
        dir: PathBuf,
    },
    /// The backup was written by a different model or different options.
    #[error(
        "the backup in {} belongs to a different run; differences:\n  {}\nuse a fresh backup directory (CLI --backup-dir), or discard the old backup (BackupAndRestore::discard_mismatched(true), CLI --discard-mismatched-backup)",
        dir.display(), differences.join("\n  ")
    )]
    FingerprintMismatch {
        /// The directory.
        dir: PathBuf,
        /// One line per differing item: "what: backup X, now Y".
        differences: Vec<String>,
    },
    /// A backup saved by one rank count, resumed on another whose steps do not end where the
    /// saved state does: the state lies inside one of its steps.
    #[error(
        "the backup was saved by {from} rank(s) after {micro_batches} micro-batches of epoch {epoch}, inside a step of {to} rank(s) ({to} micro-batches each); resume it on a rank count whose steps end there: {counts:?} (docs/MPI.md, \"Resuming on another rank count\")"
    )]
    RankCountMisaligned {
        /// The ranks that saved it.
        from: usize,
        /// The ranks resuming it.
        to: usize,
        /// The epoch in progress.
        epoch: usize,
        /// Micro-batches of that epoch done (those of the one-rank run).
        micro_batches: u64,
        /// The rank counts that run it and whose steps end at the saved state.
        counts: Vec<u64>,
    },
    /// The optimizer slots of this model were sharded over the ranks of a distributed fit
    /// that failed: this process holds only its shard of them.
    #[error(
        "the optimizer state of this model was sharded over the {ranks} ranks of a distributed fit that failed, and this process holds only its shard of it; restore a backup (BackupAndRestore resumes the run) or compile the model again (docs/MPI.md, \"Sharded optimizer state\")"
    )]
    OptimizerStateIncomplete {
        /// The ranks of the fit that failed.
        ranks: usize,
    },
    /// A binary built without the `mpi` feature was started by an MPI launcher with several
    /// processes: each would train the whole model alone and all would race on one backup.
    #[error(
        "started as one of {size} processes ({variable}={size}) by an MPI launcher, but this wgfit was built without MPI: every process would train the whole model alone and all would race on one backup; build with `cargo build --release --features mpi` (docs/MPI.md), or start one process"
    )]
    LauncherWithoutMpi {
        /// The launcher's variable that gave the process count.
        variable: String,
        /// The process count.
        size: usize,
    },
    /// A rank of a distributed fit disagrees with rank 0 on the run.
    #[error(
        "rank {rank} disagrees with rank 0 on the run (every rank must train the same model on the same data with the same options):\n  {}",
        differences.join("\n  ")
    )]
    RankDisagreement {
        /// The rank.
        rank: usize,
        /// One line per differing item: "what: rank 0 X, rank r Y".
        differences: Vec<String>,
    },
    /// Ranks of a distributed fit hold different parameters.
    #[error(
        "the parameters of rank(s) {ranks:?} differ from rank 0's {when}: the ranks no longer train one model (different device types or drivers?)"
    )]
    RanksDiverged {
        /// The ranks whose parameters differ from rank 0's.
        ranks: Vec<usize>,
        /// When it was found, e.g. "at the end of epoch 3".
        when: String,
    },
    /// Another rank of a distributed fit failed; every rank's `fit` ends with it (the failing
    /// rank's with its own error), at the next exchange.
    #[error("rank {rank} failed, which ends the distributed fit on every rank: {reason}")]
    RankFailed {
        /// The rank that failed.
        rank: usize,
        /// Its error.
        reason: String,
    },
    /// The ranks of a distributed fit reached different exchanges (one ended its fit while
    /// another trained on, or they exchanged different things): they no longer run one fit.
    #[error(
        "the ranks are out of step: rank {rank} {theirs} while this rank {mine} (do all ranks run the same epochs and callbacks?)"
    )]
    RanksOutOfStep {
        /// The first rank found elsewhere.
        rank: usize,
        /// What that rank was doing.
        theirs: String,
        /// What this rank was doing.
        mine: String,
    },
    /// The batch cannot be split over the ranks of a distributed fit.
    #[error("a batch of {batch} rows cannot be split over {ranks} ranks: {reason}")]
    BatchSplit {
        /// The global batch size.
        batch: usize,
        /// The rank count.
        ranks: usize,
        /// Why, and what to use instead.
        reason: String,
    },
    /// A distributed fit stopped on every rank at the same batch because a rank caught
    /// SIGTERM or SIGINT; rank 0 saved the state if it backs up.
    #[error(
        "stopped by signal {signal} {}, together with every rank (rank 0 saves the state when it backs up); run again to resume",
        position_words(*epoch, *step)
    )]
    StoppedBySignal {
        /// The signal number.
        signal: i32,
        /// Epoch of the stop.
        epoch: usize,
        /// Step of the stop.
        step: usize,
    },
    /// A backup holds more training than `epochs` asks for: continuing would mean going back,
    /// and stopping there would leave weights of a later epoch than asked. Nothing is changed.
    #[error(
        "the backup holds {}, past epoch {epochs}, the last one asked for; nothing was trained and the backup is unchanged. Ask for at least {} epochs (CLI --epochs {}) to continue it, or start over with another backup directory",
        progress_words(*epoch, *step),
        epoch + usize::from(*step > 0),
        epoch + usize::from(*step > 0)
    )]
    BackupBeyondEpochs {
        /// The epochs asked for.
        epochs: usize,
        /// The backup's epoch (0-based: finished epochs when `step` is 0).
        epoch: usize,
        /// Batches of that epoch the backup has done.
        step: usize,
    },
    /// A weights file records another model (architecture, activations, loss) than the one it is loaded
    /// into: its weights would compute something else there.
    #[error(
        "{} holds weights of another model: it records {what} {recorded}, but the model has {given}",
        path.display()
    )]
    ModelRecordMismatch {
        /// The weights file.
        path: PathBuf,
        /// `architecture`, `activations` or `loss`.
        what: String,
        /// What the file records.
        recorded: String,
        /// What the model has.
        given: String,
    },
    /// An MPI operation failed.
    #[error("MPI: {what}: {reason}")]
    Mpi {
        /// The operation.
        what: String,
        /// Why.
        reason: String,
    },
    /// An environment variable that tunes wgfit (`WGFIT_*`, see [`crate::env_knobs`]) holds a
    /// value wgfit cannot use; it is refused rather than ignored.
    #[error("environment variable {variable}={value:?}: {reason}; unset it for the default")]
    Environment {
        /// The variable's name.
        variable: String,
        /// The value it holds (lossily decoded when it is not UTF-8).
        value: String,
        /// What a usable value looks like.
        reason: String,
    },
}

/// A training position in words, epochs 1-based as the progress lines count them:
/// "at the end of epoch 3", "in epoch 4 after batch 12".
fn position_words(epoch: usize, step: usize) -> String {
    match (epoch, step) {
        (0, 0) => "before epoch 1".into(),
        (e, 0) => format!("at the end of epoch {e}"),
        (e, s) => format!("in epoch {} after batch {s}", e + 1),
    }
}

/// How much training a state holds: "20 finished epochs and 1 batch of epoch 21".
fn progress_words(epoch: usize, step: usize) -> String {
    let epochs = if epoch == 1 { "epoch" } else { "epochs" };
    match step {
        0 => format!("{epoch} finished {epochs}"),
        1 => format!(
            "{epoch} finished {epochs} and 1 batch of epoch {}",
            epoch + 1
        ),
        s => format!(
            "{epoch} finished {epochs} and {s} batches of epoch {}",
            epoch + 1
        ),
    }
}

impl Error {
    /// Shorthand for a [`Error::Config`].
    pub fn config(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for a [`Error::Gpu`].
    pub fn gpu(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Gpu {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// An [`Error::Encoding`].
    pub fn encoding(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Encoding {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    /// An [`Error::Internal`].
    pub fn internal(what: impl Into<String>) -> Self {
        Error::Internal { what: what.into() }
    }

    /// Shorthand for a [`Error::CheckpointIo`].
    pub fn ckpt_io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::CheckpointIo {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for a [`Error::CorruptCheckpoint`].
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::CorruptCheckpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
