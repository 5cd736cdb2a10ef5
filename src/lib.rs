//! # wgfit
//!
//! Neural-network training on the GPU through wgpu compute shaders, with a Keras-style API and
//! a [`BackupAndRestore`] callback whose resumed runs end bit-identical to uninterrupted ones.
//!
//! ```
//! use wgfit::{Activation, Dataset, Dense, FitOptions, Loss, Sequential, Sgd};
//!
//! # fn main() -> wgfit::Result<()> {
//! // Two features, a label 0 or 1 per sample.
//! let x = vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
//! let data = Dataset::classification(x, 2, vec![0, 1, 1, 0])?;
//!
//! let mut model = Sequential::new(2)
//!     .add(Dense::new(8).activation(Activation::Tanh))
//!     .add(Dense::new(2))
//!     .seed(1);
//! model.compile(Loss::CrossEntropy, Sgd::new(0.5))?;
//! let options = FitOptions { epochs: 200, batch_size: 4, ..Default::default() };
//! let history = model.fit(&data, options, &mut [])?;
//! println!("final loss {:?}", history.last());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod activation;
pub mod callbacks;
pub mod checkpoint;
pub mod checksum;
pub mod data;
pub mod distributed;
mod engine;
pub mod env_knobs;
mod error;
mod export;
mod fit;
pub mod gpu;
mod layer;
mod loss;
mod model;
pub mod optim;
pub mod plot;
mod state;

pub use callbacks::{
    BackupAndRestore, Callback, CheckpointFreq, Context, CsvLogger, EarlyStopping, FitOutcome,
    LambdaCallback, LearningRateScheduler, ModelCheckpoint, Progress, ProgressSink,
    ReduceLROnPlateau, SaveFreq, TerminateOnNaN,
};
pub use data::{CsvOptions, CsvTargets, Dataset, Header, SharedValues, Targets};
pub use engine::snapshot::Snapshot;
pub use engine::{DataOn, StepProfile};
pub use error::{Error, Result};
pub use export::{KerasFile, KerasWeights, ONNX_OPSET, read_keras_file};
pub use fit::FitOptions;
pub use gpu::{AdapterSummary, Gpu, GpuMemory};
pub use layer::{Activation, LayerKind, LayerSpec, Padding};
pub use loss::Loss;
pub use model::{
    ActivationLayer, Add, AveragePooling2D, BatchNormalization, Call, Conv2D, Dense, Dropout,
    Embedding, Flatten, GlobalAveragePooling2D, Input, KerasModel, Layer, LayerNormalization,
    MaxPooling2D, Model, ModelRecord, MultiHeadAttention, PositionEmbedding, Reshape,
    SUPPORTED_LAYERS, Sampling, Sequential, Shared, Softmax, SymbolicTensor, WEIGHTS_META_KEY,
    WeightsMeta, from_keras_json,
};
pub use optim::{
    Adam, Clipping, Configured, LearningRateSchedule, Optimizer, RmsProp, Sgd, UpdateKernel,
};
pub use state::{
    EpochLogs, EventKind, Fingerprint, HISTORY_CHUNK, History, Logs, MAX_EVENTS,
    MAX_OPTIMIZER_SLOTS, OneRankRun, Position, RunEvent, StateMeta, Tensor, TrainState,
};

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
