//! Gradient accumulation with Keras 3's semantics (`gradient_accumulation_steps`): the update
//! every N micro-batches from the mean of their gradients (`shaders/accumulate.wgsl`).

use super::{Clipping, LearningRateSchedule, Optimizer, UpdateKernel};
use crate::error::{Error, Result};

/// An optimizer that updates every `steps` micro-batches, from the mean of their gradients
/// (`Accumulated::new(Adam::new(0.001), 4)`). The accumulated gradients are part of the saved
/// state (`optimizer.<param>.gradient_accumulator`), so a run resumes exactly mid-accumulation.
#[derive(Debug, Clone)]
pub struct Accumulated<O> {
    optimizer: O,
    steps: u32,
}

impl<O: Optimizer + Clone + 'static> Accumulated<O> {
    /// `optimizer`, updating every `steps` micro-batches.
    pub fn new(optimizer: O, steps: u32) -> Self {
        Accumulated { optimizer, steps }
    }
}

impl<O: Optimizer + Clone + 'static> Optimizer for Accumulated<O> {
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
        self.optimizer.clipping()
    }
    fn accumulation_steps(&self) -> u32 {
        self.steps
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.optimizer.set_learning_rate(lr)
    }
    fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        if self.steps == 0 {
            return Err(Error::config(
                "gradient accumulation",
                "0 steps; use 1 (no accumulation) or more",
            ));
        }
        Ok(())
    }
    fn fingerprint(&self) -> String {
        format!(
            "{} accumulated over {} steps",
            self.optimizer.fingerprint(),
            self.steps
        )
    }
    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(self.clone())
    }
}
