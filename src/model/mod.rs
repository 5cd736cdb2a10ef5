//! The model as the user describes it: `Sequential` models of layers, with Keras's
//! `compile` / `fit` / `evaluate` / `predict`. What runs on the GPU is `engine/`.

mod dense;
mod functional;
mod generate;
mod keras_config;
mod keras_functional;
mod keras_json;
mod layers;
mod model_checks;
mod record;
mod sequence_layers;
mod sequential;
mod weights_meta;

pub use dense::Dense;
pub use functional::{Call, Input, Model, Shared, SymbolicTensor};
pub use generate::Sampling;
pub use keras_json::{KerasModel, SUPPORTED_LAYERS, from_keras_json};
pub use layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dropout, Flatten,
    GlobalAveragePooling2D, Layer, LayerNormalization, MaxPooling2D, Reshape,
};
pub use record::ModelRecord;
pub use sequence_layers::{Add, Embedding, MultiHeadAttention, PositionEmbedding, Softmax};
pub use sequential::Sequential;
pub use weights_meta::{WEIGHTS_META_KEY, WeightsMeta};
