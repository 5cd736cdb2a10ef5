//! A [`Sequential`] model from what Keras 3's `model.to_json()` writes for a `Sequential`
//! model (a `Functional` one: `keras_functional.rs`): its `InputLayer`'s `batch_shape` gives
//! the input shape, each layer's `config` its arguments. Every argument is read or checked: an unsupported layer, argument or value is
//! an error that names it (and the layers wgfit has), never silently ignored.

use super::keras_config::Config;
use super::layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dropout, Flatten,
    GlobalAveragePooling2D, LayerNormalization, MaxPooling2D, Reshape,
};
use super::{
    Add, Dense, Embedding, Layer, MultiHeadAttention, PositionEmbedding, Sequential, Softmax,
};
use crate::error::{Error, Result};
use crate::layer::LayerKind;
use serde_json::{Map, Value};

/// The Keras classes wgfit builds, for error messages.
pub const SUPPORTED_LAYERS: &str = "InputLayer, Dense, Conv2D, MaxPooling2D, AveragePooling2D, \
     GlobalAveragePooling2D, Flatten, Reshape, Dropout, Activation, BatchNormalization, \
     LayerNormalization, Embedding, PositionEmbedding (keras_hub), MultiHeadAttention, Add, \
     Softmax";

/// A model read from Keras JSON, with what wgfit does differently from the file's letter.
#[derive(Debug)]
pub struct KerasModel {
    /// The model.
    pub model: Sequential,
    /// Whether the last layer's activation was `softmax`: wgfit's model outputs its logits,
    /// and cross-entropy applies the softmax (the same loss and gradients).
    pub softmax_output: bool,
}

pub(super) fn bad(what: impl Into<String>) -> Error {
    Error::config("Keras model", what.into())
}

/// Reads a model from Keras 3's `model.to_json()` text: a `Sequential` model, or a
/// `Functional` one (`keras.Model(inputs, outputs)`, see `keras_functional.rs`).
pub fn from_keras_json(text: &str) -> Result<KerasModel> {
    let root: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let class = root.get("class_name").and_then(Value::as_str).unwrap_or("");
    let layers = || {
        root.pointer("/config/layers")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no config.layers list"))
    };
    match class {
        "Sequential" => sequential(&root, layers()?),
        "Functional" | "Model" => super::keras_functional::functional(&root, layers()?),
        _ => Err(bad(format!(
            "a `{class}` model; wgfit reads Sequential and Functional models (model.to_json() \
             of keras.Sequential or keras.Model(inputs, outputs))"
        ))),
    }
}

fn sequential(root: &Value, layers: &[Value]) -> Result<KerasModel> {
    let mut input_shape: Option<Vec<usize>> = root
        .pointer("/config/build_input_shape")
        .and_then(|v| batch_shape(v).ok());
    let mut built: Vec<Layer> = Vec::new();
    let mut softmax_at: Option<usize> = None;
    for (i, layer) in layers.iter().enumerate() {
        let empty = Map::new();
        let mut c = config_of(layer, i, &empty)?;
        if c.class == "InputLayer" {
            input_shape = Some(input_layer(&mut c)?);
            continue;
        }
        let layer = layer_of(&mut c)?;
        if c.softmax && softmax_at.is_none() {
            softmax_at = Some(built.len());
        }
        built.push(layer);
    }
    model_of(input_shape, built, softmax_at)
}

/// Layer `i`'s class and config (`empty` when it has none), its common keys checked
/// (except an InputLayer's, which [`input_layer`] reads).
pub(super) fn config_of<'a>(
    layer: &'a Value,
    i: usize,
    empty: &'a Map<String, Value>,
) -> Result<Config<'a>> {
    let class = layer
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("layer {i} has no class_name")))?;
    let config = layer
        .get("config")
        .and_then(Value::as_object)
        .unwrap_or(empty);
    let c = Config {
        class,
        index: i,
        config,
        read: vec!["name", "trainable", "dtype"],
        softmax: false,
    };
    if class != "InputLayer" {
        c.check_common()?;
    }
    Ok(c)
}

/// An InputLayer's sample shape (float inputs, or integer ids for an Embedding).
pub(super) fn input_layer(c: &mut Config<'_>) -> Result<Vec<usize>> {
    let shape = c
        .get("batch_shape")
        .or_else(|| c.get("batch_input_shape"))
        .ok_or_else(|| c.error("has no batch_shape"))?;
    let shape = batch_shape(shape).map_err(|e| c.error(e))?;
    c.read.extend(["batch_shape", "batch_input_shape"]);
    c.default("dtype", &["float32", "int32", "int64"])?;
    c.default("sparse", &[Value::Bool(false)])?;
    c.default("ragged", &[Value::Bool(false)])?;
    c.default("optional", &[Value::Bool(false)])?;
    c.finish()?;
    Ok(shape)
}

/// The model of `built` layers on `input_shape`, with softmax allowed on the last layer only.
pub(super) fn model_of(
    input_shape: Option<Vec<usize>>,
    mut built: Vec<Layer>,
    mut softmax_at: Option<usize>,
) -> Result<KerasModel> {
    // A last Softmax layer on the layer before it is that layer's softmax activation: kept,
    // cross-entropy would take the softmax of probabilities (Keras takes their logarithm).
    // (A softmax activation elsewhere is refused below.)
    let last = built.len().saturating_sub(1);
    if let Some(l) = built.last()
        && built.len() >= 2
        && *l.kind() == LayerKind::Softmax
        && (l.sources().is_empty() || l.sources() == [last])
        && l.shares().is_none()
    {
        match softmax_at {
            Some(at) if at + 1 == last => {
                return Err(bad(
                    "the last layer is a Softmax after a layer with activation softmax: the \
                     output would be the softmax of probabilities; keep one of the two",
                ));
            }
            Some(_) => {}
            None => {
                built.pop();
                softmax_at = Some(last - 1);
            }
        }
    }
    if let Some(at) = softmax_at
        && at + 1 != built.len()
    {
        return Err(bad(format!(
            "the {} layer after the input has activation softmax; wgfit takes softmax only on the last layer, as the output of a classifier",
            ordinal(at + 1)
        )));
    }
    let shape = input_shape.ok_or_else(|| {
        bad("no input shape: the model needs an InputLayer (keras.Input(shape=...)) or to be built")
    })?;
    let mut model = Sequential::with_input_shape(&shape);
    for layer in built {
        model = model.add(layer);
    }
    model.specs()?;
    Ok(KerasModel {
        model,
        softmax_output: softmax_at.is_some(),
    })
}

/// The layer a Keras layer's config describes, every key read or checked (`InputLayer` is
/// [`input_layer`]'s).
pub(super) fn layer_of(c: &mut Config<'_>) -> Result<Layer> {
    let class = c.class;
    let i = c.index;
    let layer = match class {
        "Dense" => {
            let units = c.usize("units")?;
            let activation = c.activation()?;
            c.must(
                "use_bias",
                Value::Bool(true),
                "wgfit's Dense layers have a bias",
            )?;
            c.weights_defaults()?;
            c.default("lora_rank", &[Value::Null])?;
            c.default("lora_alpha", &[Value::Null])?;
            c.default("quantization_config", &[Value::Null])?;
            Layer::from(Dense::new(units).activation(activation))
        }
        "Conv2D" => {
            let filters = c.usize("filters")?;
            let kernel = c.pair("kernel_size")?;
            let strides = c.pair_or("strides", [1, 1])?;
            let padding = c.padding()?;
            let dilation = c.pair_or("dilation_rate", [1, 1])?;
            c.channels_last()?;
            c.must(
                "groups",
                Value::from(1),
                "grouped convolutions are not supported",
            )?;
            let activation = c.activation()?;
            let use_bias = c.bool_or("use_bias", true)?;
            c.weights_defaults()?;
            c.default("lora_rank", &[Value::Null])?;
            c.default("lora_alpha", &[Value::Null])?;
            Layer::from(
                Conv2D::new(filters, 1)
                    .kernel_size(kernel)
                    .strides(strides)
                    .padding(padding)
                    .dilation_rate(dilation)
                    .use_bias(use_bias)
                    .activation(activation),
            )
        }
        "MaxPooling2D" | "AveragePooling2D" => {
            let pool = c.pair_or("pool_size", [2, 2])?;
            let strides = match c.get("strides") {
                None | Some(Value::Null) => {
                    c.read.push("strides");
                    pool
                }
                Some(_) => c.pair("strides")?,
            };
            let padding = c.padding()?;
            c.channels_last()?;
            if class == "MaxPooling2D" {
                Layer::from(MaxPooling2D::new(pool).strides(strides).padding(padding))
            } else {
                Layer::from(
                    AveragePooling2D::new(pool)
                        .strides(strides)
                        .padding(padding),
                )
            }
        }
        "GlobalAveragePooling2D" => {
            c.channels_last()?;
            c.must("keepdims", Value::Bool(false), "keepdims is not supported")?;
            Layer::from(GlobalAveragePooling2D)
        }
        "Flatten" => {
            c.channels_last()?;
            Layer::from(Flatten)
        }
        "Reshape" => {
            let target = c
                .get("target_shape")
                .and_then(Value::as_array)
                .ok_or_else(|| c.error("has no target_shape list"))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| c.error("target_shape must be positive sizes (no -1)"))?;
            c.read.push("target_shape");
            Layer::from(Reshape::new(&target))
        }
        "Dropout" => {
            let rate = c
                .get("rate")
                .and_then(Value::as_f64)
                .ok_or_else(|| c.error("has no numeric rate"))?;
            c.read.push("rate");
            c.must(
                "seed",
                Value::Null,
                "wgfit draws every mask from the run's seed (--seed); remove the layer's seed",
            )?;
            c.must("noise_shape", Value::Null, "noise_shape is not supported")?;
            Layer::from(Dropout::new(rate as f32))
        }
        "Activation" => Layer::from(ActivationLayer(c.activation()?)),
        "BatchNormalization" => {
            c.must(
                "axis",
                Value::from(-1),
                "wgfit normalizes the last axis (channels)",
            )?;
            let momentum = c.number_or("momentum", 0.99)?;
            let epsilon = c.number_or("epsilon", 0.001)?;
            let center = c.bool_or("center", true)?;
            let scale = c.bool_or("scale", true)?;
            for (key, class) in [
                ("beta_initializer", "Zeros"),
                ("gamma_initializer", "Ones"),
                ("moving_mean_initializer", "Zeros"),
                ("moving_variance_initializer", "Ones"),
            ] {
                c.initializer(key, class)?;
            }
            for key in [
                "beta_regularizer",
                "gamma_regularizer",
                "beta_constraint",
                "gamma_constraint",
                "renorm_clipping",
            ] {
                c.must(key, Value::Null, "not supported")?;
            }
            c.must("synchronized", Value::Bool(false), "not supported")?;
            c.must(
                "renorm",
                Value::Bool(false),
                "batch renormalization is not supported",
            )?;
            c.read.push("renorm_momentum");
            Layer::from(
                BatchNormalization::new()
                    .momentum(momentum as f32)
                    .epsilon(epsilon as f32)
                    .center(center)
                    .scale(scale),
            )
        }
        "LayerNormalization" => {
            c.last_axis_only("wgfit normalizes the last axis only (-1)")?;
            let epsilon = c.number_or("epsilon", 0.001)?;
            let center = c.bool_or("center", true)?;
            let scale = c.bool_or("scale", true)?;
            c.must(
                "rms_scaling",
                Value::Bool(false),
                "RMS scaling is not supported",
            )?;
            c.initializer("beta_initializer", "Zeros")?;
            c.initializer("gamma_initializer", "Ones")?;
            for key in [
                "beta_regularizer",
                "gamma_regularizer",
                "beta_constraint",
                "gamma_constraint",
            ] {
                c.must(key, Value::Null, "not supported")?;
            }
            Layer::from(
                LayerNormalization::new()
                    .epsilon(epsilon as f32)
                    .center(center)
                    .scale(scale),
            )
        }
        "Embedding" => {
            let input_dim = c.usize("input_dim")?;
            let output_dim = c.usize("output_dim")?;
            c.read.push("embeddings_initializer");
            let init = c.get("embeddings_initializer");
            let keras_default = init.is_none_or(|v| {
                v.get("class_name").and_then(Value::as_str) == Some("RandomUniform")
                    && v.pointer("/config/minval").and_then(Value::as_f64) == Some(-0.05)
                    && v.pointer("/config/maxval").and_then(Value::as_f64) == Some(0.05)
                    && v.pointer("/config/seed").is_none_or(Value::is_null)
            });
            if !keras_default {
                return Err(c.error(
                    "has an embeddings_initializer other than Keras's default (unseeded \
                     RandomUniform(-0.05, 0.05)); give the initial weights with --init",
                ));
            }
            for key in [
                "embeddings_regularizer",
                "activity_regularizer",
                "embeddings_constraint",
                "quantization_config",
            ] {
                c.must(key, Value::Null, "not supported")?;
            }
            c.must("mask_zero", Value::Bool(false), "masking is not supported")?;
            c.default("input_length", &[Value::Null])?;
            c.default("lora_rank", &[Value::Null])?;
            c.default("lora_alpha", &[Value::Null])?;
            Layer::from(Embedding::new(input_dim, output_dim))
        }
        // keras_hub's PositionEmbedding.
        "PositionEmbedding" => {
            let sequence_length = c.usize("sequence_length")?;
            c.initializer("initializer", "GlorotUniform")?;
            Layer::from(PositionEmbedding::new(sequence_length))
        }
        "MultiHeadAttention" => {
            let num_heads = c.usize("num_heads")?;
            let key_dim = c.usize("key_dim")?;
            let value_dim = match c.get("value_dim") {
                None | Some(Value::Null) => {
                    c.read.push("value_dim");
                    key_dim
                }
                Some(_) => c.usize("value_dim")?,
            };
            c.must(
                "dropout",
                Value::from(0.0),
                "attention dropout is not supported; put Dropout layers after the attention",
            )?;
            let use_bias = c.bool_or("use_bias", true)?;
            c.must(
                "use_gate",
                Value::Bool(false),
                "gated attention is not supported",
            )?;
            c.must(
                "output_shape",
                Value::Null,
                "the output keeps the query's width",
            )?;
            c.read.push("attention_axes");
            match c.get("attention_axes") {
                None | Some(Value::Null) => {}
                Some(v) if *v == serde_json::json!([1]) => {}
                Some(v) => {
                    return Err(c.error(format!(
                        "has attention_axes {v}: wgfit attends over the sequence axis (1)"
                    )));
                }
            }
            c.must("sliding_window", Value::Null, "not supported")?;
            c.must("seed", Value::Null, "not supported")?;
            c.default("flash_attention", &[Value::Null, Value::Bool(false)])?;
            c.weights_defaults()?;
            Layer::from(
                MultiHeadAttention::new(num_heads, key_dim)
                    .value_dim(value_dim)
                    .use_bias(use_bias),
            )
        }
        "Add" => Layer::from(Add),
        "Softmax" => {
            c.last_axis_only("wgfit's softmax is over the last axis (-1)")?;
            Layer::from(Softmax)
        }
        other => {
            return Err(bad(format!(
                "layer {i} is a `{other}`, which wgfit does not have; it has {SUPPORTED_LAYERS}"
            )));
        }
    };
    c.finish()?;
    Ok(layer)
}

/// `1st`, `2nd`, `3rd`, `4th`, ...
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `[null, d1, d2, ...]` to `[d1, d2, ...]`.
fn batch_shape(v: &Value) -> std::result::Result<Vec<usize>, String> {
    let dims = v.as_array().ok_or("batch_shape is not a list")?;
    match dims.split_first() {
        Some((_, rest)) if !rest.is_empty() => rest
            .iter()
            .map(|d| d.as_u64().filter(|&d| d > 0).map(|d| d as usize))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("batch_shape {v} has a size that is not a positive number")),
        _ => Err(format!("batch_shape {v} has no sample dimensions")),
    }
}
