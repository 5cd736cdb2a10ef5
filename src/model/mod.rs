//! The model as the user describes it: `Sequential` models of `Dense` layers, with Keras's
//! `compile` / `fit` / `evaluate` / `predict`. What runs on the GPU is `engine/`.

mod dense;
mod sequential;

pub use dense::Dense;
pub use sequential::Sequential;
