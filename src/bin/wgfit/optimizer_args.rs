//! `wgfit train`'s optimizer and learning-rate schedule flags, and the optimizer they make.
//! A flag that does not apply to the chosen optimizer or schedule is a usage error that names
//! the flags that do.

use crate::{CliResult, Failure};
use clap::{Args, ValueEnum};
use wgfit::{Adam, Clipping, Configured, LearningRateSchedule, Optimizer, RmsProp, Sgd};

/// `--optimizer` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
}

/// `--lr-schedule` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleKind {
    Constant,
    Exponential,
    Piecewise,
    Polynomial,
    InverseTime,
    Cosine,
}

#[derive(Args, Debug)]
pub struct OptimizerArgs {
    /// The optimizer, with Keras 3's update rule and defaults
    #[arg(long, value_enum, default_value = "sgd", help_heading = "Optimizer")]
    pub optimizer: OptimizerKind,
    /// Learning rate (the schedule's initial rate) [default: 0.1 for sgd, 0.001 otherwise]
    #[arg(long, help_heading = "Optimizer")]
    pub lr: Option<f32>,
    /// Momentum (sgd, rmsprop) [default: 0.9 for sgd, 0 for rmsprop]
    #[arg(long, help_heading = "Optimizer")]
    pub momentum: Option<f32>,
    /// Nesterov momentum (sgd)
    #[arg(long, help_heading = "Optimizer")]
    pub nesterov: bool,
    /// Decay of the first moment (adam, adamw) [default: 0.9]
    #[arg(long, help_heading = "Optimizer")]
    pub beta1: Option<f32>,
    /// Decay of the second moment (adam, adamw) [default: 0.999]
    #[arg(long, help_heading = "Optimizer")]
    pub beta2: Option<f32>,
    /// Epsilon (adam, adamw, rmsprop) [default: 1e-7]
    #[arg(long, help_heading = "Optimizer")]
    pub epsilon: Option<f32>,
    /// AMSGrad (adam, adamw)
    #[arg(long, help_heading = "Optimizer")]
    pub amsgrad: bool,
    /// Decay of the squared-gradient average (rmsprop) [default: 0.9]
    #[arg(long, help_heading = "Optimizer")]
    pub rho: Option<f32>,
    /// Centered RMSprop (rmsprop)
    #[arg(long, help_heading = "Optimizer")]
    pub centered: bool,
    /// Decoupled weight decay [default: 0.004 for adamw, 0 otherwise]
    #[arg(long, help_heading = "Optimizer")]
    pub weight_decay: Option<f32>,
    /// No weight decay for parameters whose name contains one of these (adam, adamw; Keras's
    /// exclude_from_weight_decay), e.g. gamma,beta,bias for normalizations and biases
    #[arg(
        long,
        value_name = "NAME,..",
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        help_heading = "Optimizer"
    )]
    pub exclude_from_weight_decay: Option<Vec<String>>,
    /// Clip each tensor's gradient to this L2 norm (Keras clipnorm)
    #[arg(long, value_name = "C", help_heading = "Optimizer", conflicts_with_all = ["global_clipnorm", "clipvalue"])]
    pub clipnorm: Option<f32>,
    /// Clip all gradients together to this L2 norm (Keras global_clipnorm)
    #[arg(
        long,
        value_name = "C",
        help_heading = "Optimizer",
        conflicts_with = "clipvalue"
    )]
    pub global_clipnorm: Option<f32>,
    /// Clip each gradient value to [-C, C] (Keras clipvalue)
    #[arg(long, value_name = "C", help_heading = "Optimizer")]
    pub clipvalue: Option<f32>,
    /// Update every N batches from the mean of their gradients (Keras
    /// gradient_accumulation_steps; --batch-size is then the micro-batch)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Optimizer"
    )]
    pub accumulate: u32,

    /// How the learning rate follows the optimizer's iteration count (Keras's schedules)
    #[arg(
        long,
        value_enum,
        default_value = "constant",
        help_heading = "Learning-rate schedule"
    )]
    pub lr_schedule: ScheduleKind,
    /// Steps of the decay (exponential, polynomial, inverse-time, cosine)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Learning-rate schedule")]
    pub decay_steps: Option<u64>,
    /// Decay rate (exponential, inverse-time)
    #[arg(long, help_heading = "Learning-rate schedule")]
    pub decay_rate: Option<f64>,
    /// Decay in whole steps of --decay-steps (exponential, inverse-time)
    #[arg(long, help_heading = "Learning-rate schedule")]
    pub staircase: bool,
    /// Final rate (polynomial) [default: 0.0001]
    #[arg(long, help_heading = "Learning-rate schedule")]
    pub end_lr: Option<f64>,
    /// Power (polynomial) [default: 1]
    #[arg(long, help_heading = "Learning-rate schedule")]
    pub power: Option<f64>,
    /// Final rate as a fraction of the rate the decay starts from (cosine) [default: 0]
    #[arg(long, help_heading = "Learning-rate schedule")]
    pub alpha: Option<f64>,
    /// Steps of a linear warmup to --warmup-target before the decay (cosine)
    #[arg(long, value_name = "N", help_heading = "Learning-rate schedule")]
    pub warmup_steps: Option<u64>,
    /// The rate the warmup reaches (cosine; needs --warmup-steps)
    #[arg(long, help_heading = "Learning-rate schedule")]
    pub warmup_target: Option<f64>,
    /// Steps at which the rate changes (piecewise)
    #[arg(
        long,
        value_name = "A,B,..",
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        help_heading = "Learning-rate schedule"
    )]
    pub boundaries: Option<Vec<u64>>,
    /// The rates before, between and after the boundaries (piecewise; one more than them)
    #[arg(
        long,
        value_name = "X,Y,..",
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        help_heading = "Learning-rate schedule"
    )]
    pub values: Option<Vec<f64>>,
}

fn usage(message: String) -> Failure {
    Failure { message, code: 2 }
}

/// Refuses the given flags that are not among `allowed`, naming the ones that are.
fn only(given: &[(&str, bool)], allowed: &[&str], chosen: &str) -> CliResult {
    let stray: Vec<&str> = given
        .iter()
        .filter(|(name, set)| *set && !allowed.contains(name))
        .map(|(name, _)| *name)
        .collect();
    if stray.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "{} {} not apply to {chosen}; its flags are {}",
        stray.join(", "),
        if stray.len() == 1 { "does" } else { "do" },
        if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        }
    )))
}

fn required<T: Copy>(value: Option<T>, flag: &str, chosen: &str) -> CliResult<T> {
    value.ok_or_else(|| usage(format!("{chosen} needs {flag}")))
}

impl OptimizerArgs {
    /// The optimizer the flags describe (usage errors for flags that do not apply).
    pub fn build(&self) -> CliResult<Box<dyn Optimizer>> {
        let given = [
            ("--momentum", self.momentum.is_some()),
            ("--nesterov", self.nesterov),
            ("--beta1", self.beta1.is_some()),
            ("--beta2", self.beta2.is_some()),
            ("--epsilon", self.epsilon.is_some()),
            ("--amsgrad", self.amsgrad),
            ("--rho", self.rho.is_some()),
            ("--centered", self.centered),
            (
                "--exclude-from-weight-decay",
                self.exclude_from_weight_decay.is_some(),
            ),
        ];
        let kind = self.optimizer;
        let name = format!(
            "--optimizer {}",
            kind.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        );
        let optimizer: Box<dyn Optimizer> = match kind {
            OptimizerKind::Sgd => {
                only(&given, &["--momentum", "--nesterov"], &name)?;
                Box::new(
                    Sgd::new(self.lr.unwrap_or(0.1))
                        .momentum(self.momentum.unwrap_or(0.9))
                        .nesterov(self.nesterov)
                        .weight_decay(self.weight_decay.unwrap_or(0.0)),
                )
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                only(
                    &given,
                    &[
                        "--beta1",
                        "--beta2",
                        "--epsilon",
                        "--amsgrad",
                        "--exclude-from-weight-decay",
                    ],
                    &name,
                )?;
                let lr = self.lr.unwrap_or(0.001);
                let base = if kind == OptimizerKind::Adamw {
                    Adam::adamw(lr)
                } else {
                    Adam::new(lr)
                };
                let (beta_1, beta_2, epsilon) = (base.beta_1, base.beta_2, base.epsilon);
                let mut adam = base
                    .beta_1(self.beta1.unwrap_or(beta_1))
                    .beta_2(self.beta2.unwrap_or(beta_2))
                    .epsilon(self.epsilon.unwrap_or(epsilon))
                    .amsgrad(self.amsgrad);
                if let Some(wd) = self.weight_decay {
                    adam = adam.weight_decay(wd);
                }
                if let Some(names) = &self.exclude_from_weight_decay {
                    if names.iter().any(String::is_empty) {
                        return Err(usage(
                            "--exclude-from-weight-decay: an empty name would exclude every \
                             parameter; give names such as gamma,beta,bias"
                                .into(),
                        ));
                    }
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    adam = adam.exclude_from_weight_decay(&names);
                }
                Box::new(adam)
            }
            OptimizerKind::Rmsprop => {
                only(
                    &given,
                    &["--momentum", "--epsilon", "--rho", "--centered"],
                    &name,
                )?;
                let base = RmsProp::new(self.lr.unwrap_or(0.001));
                Box::new(
                    base.rho(self.rho.unwrap_or(base.rho))
                        .momentum(self.momentum.unwrap_or(0.0))
                        .epsilon(self.epsilon.unwrap_or(base.epsilon))
                        .centered(self.centered)
                        .weight_decay(self.weight_decay.unwrap_or(0.0)),
                )
            }
        };
        let clipping = match (self.clipnorm, self.global_clipnorm, self.clipvalue) {
            (Some(c), _, _) => Clipping::Norm(c),
            (_, Some(c), _) => Clipping::GlobalNorm(c),
            (_, _, Some(c)) => Clipping::Value(c),
            _ => Clipping::None,
        };
        let schedule = self.schedule(f64::from(optimizer.learning_rate()))?;
        let mut configured = Configured::new(optimizer)
            .clipping(clipping)
            .accumulate(self.accumulate);
        if let Some(schedule) = schedule {
            configured = configured.schedule(schedule);
        }
        Ok(Box::new(configured))
    }

    fn schedule(&self, initial: f64) -> CliResult<Option<LearningRateSchedule>> {
        let given = [
            ("--decay-steps", self.decay_steps.is_some()),
            ("--decay-rate", self.decay_rate.is_some()),
            ("--staircase", self.staircase),
            ("--end-lr", self.end_lr.is_some()),
            ("--power", self.power.is_some()),
            ("--alpha", self.alpha.is_some()),
            ("--warmup-steps", self.warmup_steps.is_some()),
            ("--warmup-target", self.warmup_target.is_some()),
            ("--boundaries", self.boundaries.is_some()),
            ("--values", self.values.is_some()),
        ];
        let kind = self.lr_schedule;
        let name = format!(
            "--lr-schedule {}",
            kind.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        );
        let decay_steps = |this: &Self| required(this.decay_steps, "--decay-steps", &name);
        let decay_rate = |this: &Self| required(this.decay_rate, "--decay-rate", &name);
        Ok(match kind {
            ScheduleKind::Constant => {
                only(&given, &[], &name)?;
                None
            }
            ScheduleKind::Exponential => {
                only(
                    &given,
                    &["--decay-steps", "--decay-rate", "--staircase"],
                    &name,
                )?;
                Some(LearningRateSchedule::ExponentialDecay {
                    initial_learning_rate: initial,
                    decay_steps: decay_steps(self)?,
                    decay_rate: decay_rate(self)?,
                    staircase: self.staircase,
                })
            }
            ScheduleKind::InverseTime => {
                only(
                    &given,
                    &["--decay-steps", "--decay-rate", "--staircase"],
                    &name,
                )?;
                Some(LearningRateSchedule::InverseTimeDecay {
                    initial_learning_rate: initial,
                    decay_steps: decay_steps(self)?,
                    decay_rate: decay_rate(self)?,
                    staircase: self.staircase,
                })
            }
            ScheduleKind::Polynomial => {
                only(&given, &["--decay-steps", "--end-lr", "--power"], &name)?;
                Some(LearningRateSchedule::PolynomialDecay {
                    initial_learning_rate: initial,
                    decay_steps: decay_steps(self)?,
                    end_learning_rate: self.end_lr.unwrap_or(0.0001),
                    power: self.power.unwrap_or(1.0),
                    cycle: false,
                })
            }
            ScheduleKind::Piecewise => {
                only(&given, &["--boundaries", "--values"], &name)?;
                let boundaries = self.boundaries.clone();
                let values = self.values.clone();
                Some(LearningRateSchedule::PiecewiseConstantDecay {
                    boundaries: boundaries
                        .ok_or_else(|| usage(format!("{name} needs --boundaries")))?,
                    values: values.ok_or_else(|| usage(format!("{name} needs --values")))?,
                })
            }
            ScheduleKind::Cosine => {
                only(
                    &given,
                    &[
                        "--decay-steps",
                        "--alpha",
                        "--warmup-steps",
                        "--warmup-target",
                    ],
                    &name,
                )?;
                if self.warmup_target.is_some() != self.warmup_steps.is_some() {
                    return Err(usage(
                        "--warmup-steps and --warmup-target go together".to_string(),
                    ));
                }
                Some(LearningRateSchedule::CosineDecay {
                    initial_learning_rate: initial,
                    decay_steps: decay_steps(self)?,
                    alpha: self.alpha.unwrap_or(0.0),
                    warmup_target: self.warmup_target,
                    warmup_steps: self.warmup_steps.unwrap_or(0),
                })
            }
        })
    }
}
