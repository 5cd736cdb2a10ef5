//! Learning-rate schedules with Keras 3's names and formulas
//! (`keras/src/optimizers/schedules/learning_rate_schedule.py`). The learning rate is a
//! function of the optimizer's iteration count alone, computed on the host for each step, so
//! a run resumed at any batch continues the schedule exactly.

use crate::error::{Error, Result};

/// A learning rate as a function of the optimizer's iteration count (the updates done before
/// the one it is used for), as Keras's `LearningRateSchedule`s.
#[derive(Debug, Clone, PartialEq)]
pub enum LearningRateSchedule {
    /// `initial · decay_rate^(step / decay_steps)`, the exponent floored with `staircase`.
    ExponentialDecay {
        /// The rate at step 0.
        initial_learning_rate: f64,
        /// Steps per power of `decay_rate`.
        decay_steps: u64,
        /// The factor per `decay_steps`.
        decay_rate: f64,
        /// Decay in whole steps of `decay_steps`.
        staircase: bool,
    },
    /// `values[0]` up to and including `boundaries[0]`, `values[1]` up to `boundaries[1]`, …,
    /// and the last value after the last boundary.
    PiecewiseConstantDecay {
        /// Increasing steps.
        boundaries: Vec<u64>,
        /// One more than the boundaries.
        values: Vec<f64>,
    },
    /// `(initial - end) · (1 - step / decay_steps)^power + end`, the step capped at
    /// `decay_steps` (or, with `cycle`, `decay_steps` stretched to the next multiple).
    PolynomialDecay {
        /// The rate at step 0.
        initial_learning_rate: f64,
        /// Steps to reach `end_learning_rate`.
        decay_steps: u64,
        /// The final rate.
        end_learning_rate: f64,
        /// The polynomial's power.
        power: f64,
        /// Start again after `decay_steps`.
        cycle: bool,
    },
    /// `initial / (1 + decay_rate · step / decay_steps)`, the fraction floored with
    /// `staircase`.
    InverseTimeDecay {
        /// The rate at step 0.
        initial_learning_rate: f64,
        /// Steps per unit of decay.
        decay_steps: u64,
        /// The decay per `decay_steps`.
        decay_rate: f64,
        /// Decay in whole steps of `decay_steps`.
        staircase: bool,
    },
    /// A linear warmup from `initial` to `warmup_target` over `warmup_steps` (when a target
    /// is given), then a cosine decay over `decay_steps` to `alpha` times the rate it starts
    /// from.
    CosineDecay {
        /// The rate at step 0.
        initial_learning_rate: f64,
        /// Steps of the cosine.
        decay_steps: u64,
        /// The final rate as a fraction of the rate the decay starts from.
        alpha: f64,
        /// The rate the warmup reaches, if there is one.
        warmup_target: Option<f64>,
        /// Steps of the warmup.
        warmup_steps: u64,
    },
}

impl LearningRateSchedule {
    /// The learning rate for the update after `step` updates.
    pub fn at(&self, step: u64) -> f32 {
        let s = step as f64;
        let rate = match self {
            Self::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = s / *decay_steps as f64;
                if *staircase {
                    p = p.floor();
                }
                initial_learning_rate * decay_rate.powf(p)
            }
            Self::PiecewiseConstantDecay { boundaries, values } => {
                let i = boundaries.iter().take_while(|&&b| step > b).count();
                values[i]
            }
            Self::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                cycle,
            } => {
                let mut steps = *decay_steps as f64;
                let mut s = s;
                if *cycle {
                    let multiplier = if step == 0 { 1.0 } else { (s / steps).ceil() };
                    steps *= multiplier;
                } else {
                    s = s.min(steps);
                }
                let p = s / steps;
                (initial_learning_rate - end_learning_rate) * (1.0 - p).powf(*power)
                    + end_learning_rate
            }
            Self::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = s / *decay_steps as f64;
                if *staircase {
                    p = p.floor();
                }
                initial_learning_rate / (1.0 + decay_rate * p)
            }
            Self::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let decay = *decay_steps as f64;
                let cosine = |s: f64, from: f64| {
                    let fraction = s / decay;
                    let decayed = 0.5 * (1.0 + (std::f64::consts::PI * fraction).cos());
                    from * ((1.0 - alpha) * decayed + alpha)
                };
                match warmup_target {
                    None => cosine(s.min(decay), *initial_learning_rate),
                    Some(target) => {
                        let warmup = *warmup_steps as f64;
                        let s = s.min(decay + warmup);
                        if s < warmup {
                            (target - initial_learning_rate) * (s / warmup) + initial_learning_rate
                        } else {
                            cosine(s - warmup, *target)
                        }
                    }
                }
            }
        };
        rate as f32
    }

    /// Checks the schedule's parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::config("learning-rate schedule", reason));
        match self {
            Self::ExponentialDecay { decay_steps, .. }
            | Self::PolynomialDecay { decay_steps, .. }
            | Self::InverseTimeDecay { decay_steps, .. }
            | Self::CosineDecay { decay_steps, .. }
                if *decay_steps == 0 =>
            {
                return bad("decay_steps must be at least 1".into());
            }
            Self::PiecewiseConstantDecay { boundaries, values } => {
                if values.len() != boundaries.len() + 1 {
                    return bad(format!(
                        "{} values for {} boundaries: give one more value than boundaries",
                        values.len(),
                        boundaries.len()
                    ));
                }
                if boundaries.windows(2).any(|w| w[0] >= w[1]) {
                    return bad("the boundaries must increase".into());
                }
            }
            Self::CosineDecay {
                warmup_target: Some(_),
                warmup_steps: 0,
                ..
            } => return bad("a warmup target needs warmup_steps of at least 1".into()),
            _ => {}
        }
        // A negative base or rate makes the schedule change sign between the steps sampled
        // below (a decay_rate of -0.5 with staircase gives -0.05 at step 10, +0.025 at 20):
        // refused by name. With every parameter here >= 0 each schedule is monotone between
        // its ends and boundaries.
        let signed = match self {
            Self::ExponentialDecay { decay_rate, .. } => Some(("decay_rate", *decay_rate)),
            Self::InverseTimeDecay { decay_rate, .. } => Some(("decay_rate", *decay_rate)),
            Self::PolynomialDecay { power, .. } => Some(("power", *power)),
            Self::CosineDecay { alpha, .. } => Some(("alpha", *alpha)),
            Self::PiecewiseConstantDecay { .. } => None,
        };
        if let Some((name, value)) = signed
            && !(value.is_finite() && value >= 0.0)
        {
            return bad(format!(
                "{name} is {value}; it must be a finite number >= 0"
            ));
        }
        // Every rate the schedule can give is a finite number >= 0 (a warmup may start at 0,
        // as Keras's often do): its extremes are at its ends and boundaries, which these steps
        // cover.
        let mut steps = vec![0, 1, u64::MAX / 2];
        if let Self::PiecewiseConstantDecay { boundaries, .. } = self {
            steps.extend(boundaries.iter().flat_map(|&b| [b, b.saturating_add(1)]));
        }
        if let Self::CosineDecay { warmup_steps, .. } = self {
            steps.push(*warmup_steps);
        }
        match steps
            .into_iter()
            .map(|s| self.at(s))
            .find(|r| !(r.is_finite() && *r >= 0.0))
        {
            Some(rate) => bad(format!(
                "it gives the learning rate {rate}; every rate must be a finite number >= 0"
            )),
            None => Ok(()),
        }
    }
}
