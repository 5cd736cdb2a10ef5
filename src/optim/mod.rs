//! Optimizers, as the engine runs them: each declares the slots it keeps per parameter, the
//! uniform its update kernel reads and the kernel itself; the engine allocates one buffer per
//! slot, and snapshots, backups and the fingerprint go over the slots by name.
//!
//! A new optimizer is a type implementing [`Optimizer`], its kernel in `shaders/`, and its
//! tests: nothing else in the crate names optimizers.

mod adam;
mod clip;
mod configured;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::Adam;
pub use clip::Clipping;
pub use configured::Configured;
pub use rmsprop::RmsProp;
pub use schedule::LearningRateSchedule;
pub use sgd::Sgd;

use crate::error::Result;

/// An update kernel: a WGSL source whose entry point `main` updates every parameter of the
/// model, four per invocation, with the bindings 0 = the optimizer's uniform, 1 = parameters
/// (read-write), 2 = gradients (read), then one read-write binding per slot, in order, and
/// [`STEP_BINDING`] = the step's values (`Optimizer::step_values`, a `vec4<f32>` uniform read
/// at the step's offset; a kernel that needs none leaves it undeclared).
#[derive(Debug, Clone, Copy)]
pub struct UpdateKernel {
    /// The WGSL source.
    pub source: &'static str,
    /// The slots the kernel binds, in binding order (from binding 3); at most three of them
    /// kept ([`MAX_OPTIMIZER_SLOTS`](crate::MAX_OPTIMIZER_SLOTS), what a backup holds).
    pub slots: &'static [&'static str],
}

/// The binding of the per-step values in an update kernel.
pub const STEP_BINDING: u32 = 16;

/// An optimizer: its update rule (a kernel) and the state it keeps (named slots, each shaped
/// as the parameters), with the hyper-parameters that identify a run.
pub trait Optimizer: std::fmt::Debug + Send + Sync {
    /// Keras's name, e.g. `sgd`.
    fn name(&self) -> &'static str;
    /// The update kernel.
    fn kernel(&self) -> UpdateKernel;
    /// Whether the slot named `slot` of the kernel holds state with these hyper-parameters
    /// (SGD without momentum keeps none: the kernel's slot is then a placeholder, not saved).
    fn keeps(&self, slot: &str) -> bool;
    /// The bytes of the kernel's uniform for a model of `len` parameters (a multiple of 4).
    fn uniform(&self, len: usize) -> Vec<u8>;
    /// What the kernel needs that changes from step to step, for the update that makes the
    /// optimizer's update count `iteration` (1 for the first update) at learning rate `lr`
    /// (e.g. Adam's bias-corrected step size; the engine computes `lr`, from the schedule if
    /// there is one). Computed on the host, exactly the same on a resumed run. Default: `lr`.
    fn step_values(&self, iteration: u64, lr: f32) -> [f32; 4] {
        let _ = iteration;
        [lr, 0.0, 0.0, 0.0]
    }
    /// The current learning rate (with a schedule, see [`Configured`]).
    fn learning_rate(&self) -> f32;
    /// The schedule the learning rate follows, if any (it cannot be set then).
    fn schedule(&self) -> Option<&LearningRateSchedule> {
        None
    }
    /// How gradients are clipped before the update (see [`Configured`]).
    fn clipping(&self) -> Clipping {
        Clipping::None
    }
    /// Micro-batches per update (see [`Configured`]); 1: every batch.
    fn accumulation_steps(&self) -> u32 {
        1
    }
    /// Changes the learning rate.
    fn set_learning_rate(&mut self, lr: f32);
    /// Checks the hyper-parameters.
    fn validate(&self) -> Result<()>;
    /// The kind and hyper-parameters, as a backup's fingerprint records them.
    fn fingerprint(&self) -> String;
    /// The decoupled weight decay and the names it skips, when it does not go to every
    /// parameter: then the engine applies it before the update, tensor by tensor (and the
    /// update kernel applies none). `None` otherwise.
    fn selective_weight_decay(&self) -> Option<(f32, &[String])> {
        None
    }
    /// A boxed copy.
    fn boxed(&self) -> Box<dyn Optimizer>;

    /// The slots kept, in kernel order: `optimizer.<param>.<slot>` in backups.
    fn kept_slots(&self) -> Vec<&'static str> {
        let slots = self.kernel().slots;
        slots.iter().copied().filter(|s| self.keeps(s)).collect()
    }
}

/// The launch grid of an update kernel for `len` parameters: one invocation per four.
pub(crate) fn update_grid(len: usize) -> (u32, u32) {
    crate::gpu::grid(len / 4, 256)
}

/// Checks a learning rate given on its own (a callback changing it).
pub(crate) fn check_learning_rate(lr: f32) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(crate::Error::config(
            "learning rate",
            format!("{lr} must be a positive finite number, e.g. 0.01"),
        ))
    }
}

/// A boxed optimizer is one (an optimizer chosen at run time, e.g. from the command line).
impl Optimizer for Box<dyn Optimizer> {
    fn name(&self) -> &'static str {
        self.as_ref().name()
    }
    fn kernel(&self) -> UpdateKernel {
        self.as_ref().kernel()
    }
    fn keeps(&self, slot: &str) -> bool {
        self.as_ref().keeps(slot)
    }
    fn uniform(&self, len: usize) -> Vec<u8> {
        self.as_ref().uniform(len)
    }
    fn step_values(&self, iteration: u64, lr: f32) -> [f32; 4] {
        self.as_ref().step_values(iteration, lr)
    }
    fn learning_rate(&self) -> f32 {
        self.as_ref().learning_rate()
    }
    fn schedule(&self) -> Option<&LearningRateSchedule> {
        self.as_ref().schedule()
    }
    fn clipping(&self) -> Clipping {
        self.as_ref().clipping()
    }
    fn accumulation_steps(&self) -> u32 {
        self.as_ref().accumulation_steps()
    }
    fn selective_weight_decay(&self) -> Option<(f32, &[String])> {
        self.as_ref().selective_weight_decay()
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.as_mut().set_learning_rate(lr)
    }
    fn validate(&self) -> Result<()> {
        self.as_ref().validate()
    }
    fn fingerprint(&self) -> String {
        self.as_ref().fingerprint()
    }
    fn boxed(&self) -> Box<dyn Optimizer> {
        self.as_ref().boxed()
    }
}

impl Clone for Box<dyn Optimizer> {
    fn clone(&self) -> Self {
        self.as_ref().boxed()
    }
}
