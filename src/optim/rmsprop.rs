//! RMSprop: Keras 3's `RMSprop` optimizer. Its kernel is `shaders/rmsprop.wgsl`.

use super::adam::check_non_negative;
use super::{Optimizer, UpdateKernel, check_learning_rate};
use crate::error::{Error, Result};

/// The uniform `shaders/rmsprop.wgsl` reads, laid out as the shader declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct RmsPropUniform {
    n4: u32,
    centered: u32,
    rho: f32,
    one_minus_rho: f32,
    momentum: f32,
    epsilon: f32,
    weight_decay: f32,
    _pad: u32,
}

/// RMSprop with Keras 3's update rule and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsProp {
    /// Step size (Keras default 0.001).
    pub learning_rate: f32,
    /// Decay of the squared-gradient average (0.9).
    pub rho: f32,
    /// Momentum factor (0: none).
    pub momentum: f32,
    /// Added to the denominator (1e-7).
    pub epsilon: f32,
    /// Divide by the variance rather than the second moment.
    pub centered: bool,
    /// Decoupled weight decay, `w -= w · weight_decay · lr` before the update.
    pub weight_decay: f32,
}

impl RmsProp {
    /// RMSprop with Keras's defaults and this learning rate.
    pub fn new(learning_rate: f32) -> Self {
        RmsProp {
            learning_rate,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            weight_decay: 0.0,
        }
    }

    /// Sets rho.
    pub fn rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets epsilon.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Turns centering on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    /// Sets the decoupled weight decay.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

impl Optimizer for RmsProp {
    fn name(&self) -> &'static str {
        "rmsprop"
    }

    fn kernel(&self) -> UpdateKernel {
        UpdateKernel {
            source: include_str!("../../shaders/rmsprop.wgsl"),
            slots: &["velocity", "momentum", "average_gradient"],
        }
    }

    fn keeps(&self, slot: &str) -> bool {
        match slot {
            "momentum" => self.momentum > 0.0,
            "average_gradient" => self.centered,
            _ => true,
        }
    }

    fn uniform(&self, len: usize) -> Vec<u8> {
        assert!(len.is_multiple_of(4), "rmsprop.wgsl updates whole vec4s");
        let u = RmsPropUniform {
            n4: (len / 4) as u32,
            centered: u32::from(self.centered),
            rho: self.rho,
            // As Keras computes `1 - rho` (in double precision, then cast).
            one_minus_rho: (1.0 - f64::from(self.rho)) as f32,
            momentum: self.momentum,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
            _pad: 0,
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
        check_learning_rate(self.learning_rate)?;
        if !(self.rho.is_finite() && (0.0..1.0).contains(&self.rho)) {
            return Err(Error::config(
                "rho",
                format!("{} must be in [0, 1)", self.rho),
            ));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::config(
                "momentum",
                format!("{} must be in [0, 1)", self.momentum),
            ));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::config(
                "epsilon",
                format!(
                    "{} must be a positive finite number, e.g. 1e-7",
                    self.epsilon
                ),
            ));
        }
        check_non_negative("weight decay", self.weight_decay)
    }

    fn fingerprint(&self) -> String {
        format!(
            "rmsprop(lr={}, rho={}, momentum={}, epsilon={}, centered={}, weight_decay={})",
            self.learning_rate,
            self.rho,
            self.momentum,
            self.epsilon,
            self.centered,
            self.weight_decay
        )
    }

    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(*self)
    }
}
