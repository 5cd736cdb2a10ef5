//! Plain f64 references shared by the kernel and gradient tests.

use wgfit::Activation;

/// The unit roundoff of f32 (2^-24), the unit of the kernel tests' tolerances.
pub const U: f64 = 1.0 / (1u64 << 24) as f64;

/// The activation in f64.
pub fn act_f64(x: f64, act: Activation) -> f64 {
    match act {
        Activation::Linear => x,
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}
