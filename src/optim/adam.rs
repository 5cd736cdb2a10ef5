//! Adam and AdamW: Keras 3's `Adam` and `AdamW` optimizers. Their kernel is `shaders/adam.wgsl`.

use super::{Optimizer, UpdateKernel, check_learning_rate};
use crate::error::{Error, Result};

/// The uniform `shaders/adam.wgsl` reads, laid out as the shader declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamUniform {
    n4: u32,
    amsgrad: u32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    _pad: [u32; 2],
}

/// Adam (Kingma and Ba), with Keras 3's update rule and defaults; `Adam::adamw` is Keras's
/// `AdamW`: the same with a decoupled weight decay (default 0.004).
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    /// Step size (Keras default 0.001).
    pub learning_rate: f32,
    /// Decay of the first moment (0.9).
    pub beta_1: f32,
    /// Decay of the second moment (0.999).
    pub beta_2: f32,
    /// Added to the root of the second moment (1e-7).
    pub epsilon: f32,
    /// Use the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
    /// Decoupled weight decay, `w -= w · weight_decay · lr` before the update.
    pub weight_decay: f32,
    /// Keras's `AdamW` rather than `Adam` (its name and default decay).
    adamw: bool,
    /// Parameters whose name contains one of these take no weight decay (Keras's
    /// `exclude_from_weight_decay(var_names=...)`).
    exclude_from_weight_decay: Vec<String>,
}

impl Adam {
    /// Adam with Keras's defaults and this learning rate.
    pub fn new(learning_rate: f32) -> Self {
        Adam {
            learning_rate,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            weight_decay: 0.0,
            adamw: false,
            exclude_from_weight_decay: Vec::new(),
        }
    }

    /// Keras's `AdamW` with its defaults (weight decay 0.004) and this learning rate.
    pub fn adamw(learning_rate: f32) -> Self {
        Adam {
            weight_decay: 0.004,
            adamw: true,
            ..Adam::new(learning_rate)
        }
    }

    /// Sets the first moment's decay.
    pub fn beta_1(mut self, beta_1: f32) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Sets the second moment's decay.
    pub fn beta_2(mut self, beta_2: f32) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Sets epsilon.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Sets the decoupled weight decay.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Exempts from the weight decay every parameter whose name contains one of `names`, as
    /// Keras's `optimizer.exclude_from_weight_decay(var_names=names)`: for example
    /// `["gamma", "beta", "bias"]` for normalizations and biases (wgfit's names, such as
    /// `model.layers.3.gamma`, `model.layers.5.query_bias`).
    pub fn exclude_from_weight_decay(mut self, names: &[&str]) -> Self {
        self.exclude_from_weight_decay = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// The decay goes to every parameter: the update kernel applies it.
    fn decays_everything(&self) -> bool {
        self.exclude_from_weight_decay.is_empty()
    }
}

/// Checks that `value` lies in `[0, 1)`.
fn check_decay(what: &str, value: f32) -> Result<()> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(what, format!("{value} must be in [0, 1)")))
    }
}

/// Checks that `value` is finite and not negative.
pub(super) fn check_non_negative(what: &str, value: f32) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            what,
            format!("{value} must be a finite number >= 0"),
        ))
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        if self.adamw { "adamw" } else { "adam" }
    }

    fn kernel(&self) -> UpdateKernel {
        UpdateKernel {
            source: include_str!("../../shaders/adam.wgsl"),
            slots: &["momentum", "velocity", "velocity_hat"],
        }
    }

    fn keeps(&self, slot: &str) -> bool {
        slot != "velocity_hat" || self.amsgrad
    }

    fn uniform(&self, len: usize) -> Vec<u8> {
        assert!(len.is_multiple_of(4), "adam.wgsl updates whole vec4s");
        let u = AdamUniform {
            n4: (len / 4) as u32,
            amsgrad: u32::from(self.amsgrad),
            // As Keras computes `1 - beta` (in double precision, then cast).
            one_minus_beta_1: (1.0 - f64::from(self.beta_1)) as f32,
            one_minus_beta_2: (1.0 - f64::from(self.beta_2)) as f32,
            epsilon: self.epsilon,
            // With exclusions, the decay runs before the update, tensor by tensor.
            weight_decay: if self.decays_everything() {
                self.weight_decay
            } else {
                0.0
            },
            _pad: [0; 2],
        };
        bytemuck::bytes_of(&u).to_vec()
    }

    fn step_values(&self, iteration: u64, lr: f32) -> [f32; 4] {
        // alpha = lr · sqrt(1 - beta_2^t) / (1 - beta_1^t), t the iteration this update makes.
        let t = iteration as f64;
        let (b1, b2) = (f64::from(self.beta_1), f64::from(self.beta_2));
        let alpha = f64::from(lr) * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        [lr, alpha as f32, 0.0, 0.0]
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.learning_rate = lr;
    }

    fn validate(&self) -> Result<()> {
        check_learning_rate(self.learning_rate)?;
        check_decay("beta_1", self.beta_1)?;
        check_decay("beta_2", self.beta_2)?;
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::config(
                "epsilon",
                format!(
                    "{} must be a positive finite number, e.g. 1e-7",
                    self.epsilon
                ),
            ));
        }
        if let Some(empty) = self.exclude_from_weight_decay.iter().find(|n| n.is_empty()) {
            return Err(Error::config(
                "exclude_from_weight_decay",
                format!("{empty:?}: an empty name would exclude every parameter"),
            ));
        }
        check_non_negative("weight decay", self.weight_decay)
    }

    fn selective_weight_decay(&self) -> Option<(f32, &[String])> {
        (self.weight_decay > 0.0 && !self.decays_everything())
            .then_some((self.weight_decay, self.exclude_from_weight_decay.as_slice()))
    }

    fn fingerprint(&self) -> String {
        let excluded = if self.decays_everything() {
            String::new()
        } else {
            format!(
                ", exclude_from_weight_decay={:?}",
                self.exclude_from_weight_decay
            )
        };
        format!(
            "{}(lr={}, beta_1={}, beta_2={}, epsilon={}, amsgrad={}, weight_decay={}{excluded})",
            self.name(),
            self.learning_rate,
            self.beta_1,
            self.beta_2,
            self.epsilon,
            self.amsgrad,
            self.weight_decay
        )
    }

    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(self.clone())
    }
}
