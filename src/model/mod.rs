//! The model as the user describes it: `Sequential` models of `Dense` layers, with Keras's
//! `compile` / `fit` / `evaluate` / `predict`. What runs on the GPU is `engine/`.

mod dense;
mod sequential;
mod weights_meta;

pub use dense::Dense;
pub use sequential::Sequential;
pub use weights_meta::{WEIGHTS_META_KEY, WeightsMeta};
