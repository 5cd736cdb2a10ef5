//! `Sequential` models of `Dense` layers, and their parameters on the GPU.

mod dense;
mod params;
mod plan;
mod profile;
mod sequential;
pub(crate) mod step;

pub use dense::{Activation, Dense};
pub(crate) use params::GpuParams;
pub use profile::StepProfile;
pub use sequential::Sequential;
