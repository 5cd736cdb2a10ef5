//! The engine: everything a run keeps on the GPU (parameters, optimizer slots, the data set
//! and a batch's buffers, the launches of a step, the commands being recorded, snapshots) and
//! the few verbs the training loop calls on it. It knows nothing of the model's user-facing
//! types, the loop or the callbacks.

mod buckets;
mod graph;
mod init;
mod layers;
pub(crate) mod loop_limit;
mod params;
mod plan;
mod profile;
mod recorder;
mod reduce;
mod run;
mod shard;
mod slots;
pub(crate) mod snapshot;
pub(crate) mod step;
mod stream;
mod submission;
mod update;
mod workspace;

pub(crate) use init::glorot_layers;
pub(crate) use params::{GpuParams, InitialWeights};
pub use profile::StepProfile;
pub(crate) use profile::profile;
pub(crate) use reduce::{Reducer, shards};
pub(crate) use run::Run;
pub use workspace::DataOn;
pub(crate) use workspace::{Split, Workspace, resident_limit, streams};
