//! SGD: Keras 3's `SGD` optimizer. Its kernel is `shaders/sgd.wgsl`.

use super::{Optimizer, UpdateKernel};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The uniform `shaders/sgd.wgsl` reads, laid out as the shader declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct SgdUniform {
    /// Parameters / 4 (the kernel updates four per invocation).
    n4: u32,
    nesterov: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    _pad: [u32; 3],
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and decoupled weight
/// decay, with Keras 3's update rules (see `shaders/sgd.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// Step size.
    pub learning_rate: f32,
    /// Momentum factor in `[0, 1)`; 0 disables the momentum slot.
    pub momentum: f32,
    /// Use Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
    /// Decoupled weight decay factor, applied as `w -= lr * weight_decay * w`.
    pub weight_decay: f32,
}

impl Sgd {
    /// Plain SGD with the given learning rate.
    pub fn new(learning_rate: f32) -> Self {
        Sgd {
            learning_rate,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Sets the decoupled weight decay.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, reason: String| Err(Error::config(what, reason));
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning rate",
                format!(
                    "{} must be a positive finite number, e.g. 0.01",
                    self.learning_rate
                ),
            );
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return bad(
                "momentum",
                format!("{} must be in [0, 1), e.g. 0.9", self.momentum),
            );
        }
        if self.nesterov && self.momentum == 0.0 {
            return bad(
                "nesterov",
                "Nesterov momentum needs a momentum > 0, e.g. 0.9".into(),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight decay",
                format!("{} must be a finite number >= 0", self.weight_decay),
            );
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn kernel(&self) -> UpdateKernel {
        UpdateKernel {
            source: include_str!("../../shaders/sgd.wgsl"),
            slots: &["momentum"],
        }
    }

    fn keeps(&self, _slot: &str) -> bool {
        self.momentum > 0.0
    }

    fn uniform(&self, len: usize) -> Vec<u8> {
        assert!(len.is_multiple_of(4), "sgd.wgsl updates whole vec4s");
        let u = SgdUniform {
            n4: (len / 4) as u32,
            nesterov: u32::from(self.nesterov),
            lr: self.learning_rate,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            _pad: [0; 3],
        };
        bytemuck::bytes_of(&u).to_vec()
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.learning_rate = lr;
    }

    fn validate(&self) -> Result<()> {
        Sgd::validate(self)
    }

    fn fingerprint(&self) -> String {
        format!(
            "sgd(lr={}, momentum={}, nesterov={}, weight_decay={})",
            self.learning_rate, self.momentum, self.nesterov, self.weight_decay
        )
    }

    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(*self)
    }
}
