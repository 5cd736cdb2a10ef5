//! Gradient clipping with Keras 3's options (`clipnorm`, `global_clipnorm`, `clipvalue`),
//! applied on the GPU between the backward pass and the update (`shaders/clip.wgsl`).

use super::{LearningRateSchedule, Optimizer, UpdateKernel};
use crate::error::{Error, Result};

/// How gradients are clipped before the update.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Clipping {
    /// Not at all.
    #[default]
    None,
    /// Keras's `clipnorm`: each tensor's gradient scaled to an L2 norm of at most this.
    Norm(f32),
    /// Keras's `global_clipnorm`: all gradients scaled so that their joint L2 norm is at most
    /// this.
    GlobalNorm(f32),
    /// Keras's `clipvalue`: each gradient value clamped to `[-v, v]`.
    Value(f32),
}

impl Clipping {
    /// The kernel's code and bound, `None` when nothing is clipped.
    pub(crate) fn kernel_params(self) -> Option<(u32, f32)> {
        match self {
            Clipping::None => None,
            Clipping::Norm(c) => Some((1, c)),
            Clipping::GlobalNorm(c) => Some((2, c)),
            Clipping::Value(c) => Some((3, c)),
        }
    }

    /// Checks the bound.
    pub fn validate(self) -> Result<()> {
        match self.kernel_params() {
            Some((_, c)) if !(c.is_finite() && c > 0.0) => Err(Error::config(
                "gradient clipping",
                format!("{c} must be a positive finite number"),
            )),
            _ => Ok(()),
        }
    }
}

/// An optimizer whose gradients are clipped first: `Clipped::new(Adam::new(0.001),
/// Clipping::GlobalNorm(1.0))`.
#[derive(Debug, Clone)]
pub struct Clipped<O> {
    optimizer: O,
    clipping: Clipping,
}

impl<O: Optimizer + Clone + 'static> Clipped<O> {
    /// `optimizer` with its gradients clipped by `clipping`.
    pub fn new(optimizer: O, clipping: Clipping) -> Self {
        Clipped {
            optimizer,
            clipping,
        }
    }
}

impl<O: Optimizer + Clone + 'static> Optimizer for Clipped<O> {
    fn name(&self) -> &'static str {
        self.optimizer.name()
    }
    fn kernel(&self) -> UpdateKernel {
        self.optimizer.kernel()
    }
    fn keeps(&self, slot: &str) -> bool {
        self.optimizer.keeps(slot)
    }
    fn uniform(&self, len: usize) -> Vec<u8> {
        self.optimizer.uniform(len)
    }
    fn step_values(&self, iteration: u64, lr: f32) -> [f32; 4] {
        self.optimizer.step_values(iteration, lr)
    }
    fn learning_rate(&self) -> f32 {
        self.optimizer.learning_rate()
    }
    fn schedule(&self) -> Option<&LearningRateSchedule> {
        self.optimizer.schedule()
    }
    fn clipping(&self) -> Clipping {
        self.clipping
    }
    fn accumulation_steps(&self) -> u32 {
        self.optimizer.accumulation_steps()
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.optimizer.set_learning_rate(lr)
    }
    fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        self.clipping.validate()
    }
    fn fingerprint(&self) -> String {
        format!(
            "{} clipped by {:?}",
            self.optimizer.fingerprint(),
            self.clipping
        )
    }
    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(self.clone())
    }
}
