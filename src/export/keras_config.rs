//! The Keras 3 config of a model (`model.to_json()`'s form), for the `.keras` archive:
//! a Sequential config for a stack, a Functional one (layers with their inbound nodes) for a
//! graph. Layer names are the weights file's keys (`keras_layout.rs`), so the config and the
//! weights agree. Only what differs from Keras's defaults needs saying; Keras fills the rest.

use super::keras_layout::{is_functional, layer_keys};
use crate::error::{Error, Result};
use crate::layer::{Activation, LayerKind, LayerSpec};
use crate::loss::Loss;
use crate::model::Sequential;
use serde_json::{Value, json};

impl Sequential {
    /// The model's Keras 3 config as `model.to_json()` writes it; `keras.models.model_from_json`
    /// builds the same model from it. A cross-entropy model's last layer gets the softmax
    /// that wgfit's loss applies, so that Keras predicts the probabilities `wgfit predict`
    /// writes (as its activation, or as a Softmax layer after a last layer that has another
    /// activation or none to take). Refused: activations Keras's config cannot name (`gelu_approximate`).
    pub fn to_keras_json(&self) -> Result<String> {
        let specs = self.specs()?;
        let softmax_last = self.loss()? == Loss::CrossEntropy
            && specs.last().is_some_and(|s| {
                matches!(s.kind, LayerKind::Dense | LayerKind::Conv2D { .. })
                    && s.activation == Activation::Linear
            });
        let functional = is_functional(&specs);
        let keys = layer_keys(&specs, functional);
        let mut layers = Vec::new();
        let input_dtype = match specs.first().is_some_and(|s| s.kind.takes_ids()) {
            true => "int32",
            false => "float32",
        };
        let mut input_shape = vec![Value::Null];
        input_shape.extend(self.input_shape().iter().map(|&d| json!(d)));
        layers.push(keras_layer(
            "InputLayer",
            json!({"batch_shape": input_shape, "dtype": input_dtype, "name": "input_layer"}),
        ));
        // How many times each layer (by key) has been called so far: a tensor's node index.
        let mut calls = vec![0usize; specs.len()];
        let mut tensors: Vec<(String, usize, Vec<usize>, &str)> = vec![(
            "input_layer".into(),
            0,
            self.input_shape().to_vec(),
            input_dtype,
        )];
        let mut node_layers: Vec<usize> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let owner = spec.shares.unwrap_or(i);
            let key = keys[owner]
                .clone()
                .ok_or_else(|| Error::internal("a shared layer's owner has no key"))?;
            let last = i + 1 == specs.len() && softmax_last;
            if spec.shares.is_none() {
                let config = layer_config(spec, &key, last)?;
                layers.push(keras_layer(spec.kind.class_name(), config));
                node_layers.push(layers.len() - 1);
            }
            if functional {
                let sources: Vec<usize> = match spec.sources.is_empty() {
                    true => vec![i],
                    false => spec.sources.clone(),
                };
                let args: Vec<Value> = sources.iter().map(|&s| keras_tensor(&tensors[s])).collect();
                let node = match &spec.kind {
                    LayerKind::Add => json!({"args": [args], "kwargs": {}}),
                    LayerKind::MultiHeadAttention {
                        use_causal_mask, ..
                    } => json!({
                        "args": [args[0].clone(), args[0].clone()],
                        "kwargs": {"use_causal_mask": use_causal_mask},
                    }),
                    _ => json!({"args": args, "kwargs": {}}),
                };
                let at = node_layers[keys[..owner].iter().flatten().count()];
                push_node(&mut layers[at], node);
            }
            tensors.push((key, calls[owner], spec.out_shape.clone(), "float32"));
            calls[owner] += 1;
        }
        // The loss's softmax, where the last layer cannot take it as its activation: a Softmax
        // layer after it, as Keras's own `Dense(n, "tanh"), Softmax()`.
        if self.loss()? == Loss::CrossEntropy && !softmax_last {
            let (key, node) = softmax_layer(&keys, &tensors)?;
            layers.push(node);
            let last = tensors.len() - 1;
            if functional {
                let args = json!({"args": [keras_tensor(&tensors[last])], "kwargs": {}});
                if let Some(node) = layers.last_mut() {
                    push_node(node, args);
                }
            }
            let shape = tensors[last].2.clone();
            tensors.push((key, 0, shape, "float32"));
        }
        if functional {
            for layer in layers
                .iter_mut()
                .filter(|l| l.get("inbound_nodes").is_none())
            {
                layer["inbound_nodes"] = json!([]);
            }
        }
        let config = match functional {
            false => keras_model(
                "Sequential",
                json!({"name": "sequential", "layers": layers}),
            ),
            true => {
                let last = tensors.last().map_or("input_layer", |t| t.0.as_str());
                let last_node = tensors.last().map_or(0, |t| t.1);
                keras_model(
                    "Functional",
                    json!({
                        "name": "functional",
                        "layers": layers,
                        "input_layers": [["input_layer", 0, 0]],
                        "output_layers": [[last, last_node, 0]],
                    }),
                )
            }
        };
        serde_json::to_string(&config).map_err(|e| Error::encoding("the Keras config", e))
    }
}

/// A Softmax layer on the last of `tensors`, with a key no layer of `keys` has.
fn softmax_layer(
    keys: &[Option<String>],
    tensors: &[(String, usize, Vec<usize>, &str)],
) -> Result<(String, Value)> {
    let shape = tensors.last().map_or(&[][..], |t| &t.2[..]);
    let spec = LayerSpec::new(LayerKind::Softmax, shape, Activation::Linear, 0)
        .map_err(Error::internal)?;
    let taken = keys
        .iter()
        .flatten()
        .filter(|k| *k == "softmax" || k.starts_with("softmax_"))
        .count();
    let key = match taken {
        0 => "softmax".to_string(),
        n => format!("softmax_{n}"),
    };
    let config = layer_config(&spec, &key, false)?;
    Ok((key, keras_layer("Softmax", config)))
}

fn keras_model(class: &str, config: Value) -> Value {
    // Keras registers Functional under its module's own name, Sequential under `keras`.
    let (module, registered) = match class {
        "Functional" => (json!("keras.src.models.functional"), json!("Functional")),
        _ => (json!("keras"), Value::Null),
    };
    json!({"module": module, "class_name": class, "config": config, "registered_name": registered})
}

fn keras_layer(class: &str, config: Value) -> Value {
    let name = config["name"].clone();
    // keras_hub's layer is registered under its package's name, as Keras writes it.
    let (module, registered) = match class {
        "PositionEmbedding" => (Value::Null, json!("keras_hub>PositionEmbedding")),
        _ => (json!("keras.layers"), Value::Null),
    };
    json!({
        "module": module,
        "class_name": class,
        "config": config,
        "registered_name": registered,
        "name": name,
    })
}

fn push_node(layer: &mut Value, node: Value) {
    match layer.get_mut("inbound_nodes").and_then(Value::as_array_mut) {
        Some(nodes) => nodes.push(node),
        None => layer["inbound_nodes"] = json!([node]),
    }
}

fn keras_tensor((layer, node, shape, dtype): &(String, usize, Vec<usize>, &str)) -> Value {
    let mut batch_shape = vec![Value::Null];
    batch_shape.extend(shape.iter().map(|&d| json!(d)));
    json!({
        "class_name": "__keras_tensor__",
        "config": {"shape": batch_shape, "dtype": dtype, "keras_history": [layer, node, 0]},
    })
}

/// Keras's name of an activation, or why its config cannot hold it.
fn activation_name(a: Activation) -> Result<&'static str> {
    match a {
        Activation::GeluApproximate => Err(Error::config(
            "the Keras config",
            "Keras's config names no approximate GELU (its \"gelu\" is the exact one)",
        )),
        other => Ok(other.name()),
    }
}

/// The config of one layer named `name` (with a softmax activation if `softmax`).
fn layer_config(spec: &LayerSpec, name: &str, softmax: bool) -> Result<Value> {
    let activation = match softmax {
        true => "softmax",
        false => activation_name(spec.activation)?,
    };
    let pair = |a: [usize; 2]| json!([a[0], a[1]]);
    let config = match &spec.kind {
        LayerKind::Dense => json!({
            "units": spec.out_shape.last().copied().unwrap_or(0),
            "activation": activation,
            "use_bias": true,
        }),
        LayerKind::Conv2D {
            filters,
            kernel,
            strides,
            padding,
            dilation,
            use_bias,
        } => json!({
            "filters": filters, "kernel_size": pair(*kernel), "strides": pair(*strides),
            "padding": padding.name(), "data_format": "channels_last",
            "dilation_rate": pair(*dilation), "activation": activation, "use_bias": use_bias,
        }),
        LayerKind::MaxPooling2D {
            pool,
            strides,
            padding,
        }
        | LayerKind::AveragePooling2D {
            pool,
            strides,
            padding,
        } => json!({
            "pool_size": pair(*pool), "strides": pair(*strides), "padding": padding.name(),
            "data_format": "channels_last",
        }),
        LayerKind::GlobalAveragePooling2D | LayerKind::Flatten => {
            json!({"data_format": "channels_last"})
        }
        LayerKind::Reshape => json!({"target_shape": spec.out_shape}),
        LayerKind::Dropout { rate } => json!({"rate": rate}),
        LayerKind::Activation => json!({"activation": activation}),
        LayerKind::BatchNormalization {
            momentum,
            epsilon,
            center,
            scale,
        } => json!({
            "axis": -1, "momentum": momentum, "epsilon": epsilon, "center": center,
            "scale": scale,
        }),
        LayerKind::LayerNormalization {
            epsilon,
            center,
            scale,
        } => json!({"axis": -1, "epsilon": epsilon, "center": center, "scale": scale}),
        LayerKind::Add => json!({}),
        LayerKind::Softmax => json!({"axis": -1}),
        LayerKind::Embedding {
            input_dim,
            output_dim,
        } => json!({"input_dim": input_dim, "output_dim": output_dim}),
        LayerKind::PositionEmbedding { sequence_length } => {
            json!({"sequence_length": sequence_length})
        }
        LayerKind::MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim,
            use_bias,
            ..
        } => json!({
            "num_heads": num_heads, "key_dim": key_dim, "value_dim": value_dim,
            "dropout": 0.0, "use_bias": use_bias,
        }),
    };
    let mut config = config;
    config["name"] = json!(name);
    Ok(config)
}
