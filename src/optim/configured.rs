//! Keras's options that apply to every optimizer: a learning-rate schedule, gradient clipping
//! and gradient accumulation, around any [`Optimizer`].

use super::{Clipping, LearningRateSchedule, Optimizer, UpdateKernel};
use crate::error::{Error, Result};

/// An optimizer with a learning-rate schedule, gradient clipping or gradient accumulation:
///
/// ```
/// use wgfit::{Adam, Clipping, Configured, LearningRateSchedule};
/// let schedule = LearningRateSchedule::ExponentialDecay {
///     initial_learning_rate: 0.001, decay_steps: 1000, decay_rate: 0.9, staircase: false,
/// };
/// let optimizer = Configured::new(Adam::new(0.001))
///     .schedule(schedule)
///     .clipping(Clipping::GlobalNorm(1.0))
///     .accumulate(4);
/// ```
#[derive(Debug, Clone)]
pub struct Configured<O> {
    optimizer: O,
    schedule: Option<LearningRateSchedule>,
    clipping: Clipping,
    accumulation: u32,
}

impl<O: Optimizer + Clone + 'static> Configured<O> {
    /// `optimizer` as it is: no schedule, no clipping, an update every batch.
    pub fn new(optimizer: O) -> Self {
        Configured {
            optimizer,
            schedule: None,
            clipping: Clipping::None,
            accumulation: 1,
        }
    }

    /// The learning rate follows `schedule` (the optimizer's own rate is not used, and it
    /// cannot be set during training).
    pub fn schedule(mut self, schedule: LearningRateSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Gradients are clipped before each update (Keras's `clipnorm`, `global_clipnorm`,
    /// `clipvalue`).
    pub fn clipping(mut self, clipping: Clipping) -> Self {
        self.clipping = clipping;
        self
    }

    /// An update every `steps` micro-batches from the mean of their gradients (Keras's
    /// `gradient_accumulation_steps`). The accumulated gradients are part of the saved state
    /// (`optimizer.<param>.gradient_accumulator`), so a run resumes exactly mid-accumulation.
    pub fn accumulate(mut self, steps: u32) -> Self {
        self.accumulation = steps;
        self
    }
}

impl<O: Optimizer + Clone + 'static> Optimizer for Configured<O> {
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
    /// The wrapped optimizer's own rate: with a schedule the steps do not use it (the engine
    /// takes the schedule's), but it is what a backup records as the rate, and stays positive.
    fn learning_rate(&self) -> f32 {
        self.optimizer.learning_rate()
    }
    fn schedule(&self) -> Option<&LearningRateSchedule> {
        self.schedule.as_ref().or_else(|| self.optimizer.schedule())
    }
    /// This one's, or else the wrapped optimizer's (a `Configured` may wrap another).
    fn clipping(&self) -> Clipping {
        match self.clipping {
            Clipping::None => self.optimizer.clipping(),
            given => given,
        }
    }
    fn selective_weight_decay(&self) -> Option<(f32, &[String])> {
        self.optimizer.selective_weight_decay()
    }

    /// This one's, or else the wrapped optimizer's.
    fn accumulation_steps(&self) -> u32 {
        match self.accumulation {
            1 => self.optimizer.accumulation_steps(),
            given => given,
        }
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.optimizer.set_learning_rate(lr)
    }
    fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        if let Some(schedule) = &self.schedule {
            schedule.validate()?;
        }
        self.clipping.validate()?;
        if self.accumulation == 0 {
            return Err(Error::config(
                "gradient accumulation",
                "0 steps; use 1 (no accumulation) or more",
            ));
        }
        // A Configured around a Configured: each setting given once, whichever holds it.
        let inner = &self.optimizer;
        if self.clipping != Clipping::None && inner.clipping() != Clipping::None {
            return Err(Error::config(
                "clipping",
                "given to two nested Configured optimizers; give it once",
            ));
        }
        if self.accumulation != 1 && inner.accumulation_steps() != 1 {
            return Err(Error::config(
                "gradient accumulation",
                "given to two nested Configured optimizers; give it once",
            ));
        }
        Ok(())
    }
    fn fingerprint(&self) -> String {
        let mut text = self.optimizer.fingerprint();
        if let Some(schedule) = &self.schedule {
            text.push_str(&format!(" with {schedule:?}"));
        }
        if self.clipping != Clipping::None {
            text.push_str(&format!(" clipped by {:?}", self.clipping));
        }
        if self.accumulation != 1 {
            text.push_str(&format!(" accumulated over {} steps", self.accumulation));
        }
        text
    }
    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(self.clone())
    }
}
