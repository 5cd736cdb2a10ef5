//! Gradient clipping with Keras 3's options (`clipnorm`, `global_clipnorm`, `clipvalue`),
//! applied on the GPU between the backward pass and the update (`shaders/clip.wgsl`).

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
