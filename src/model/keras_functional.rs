//! A model from what Keras 3's `model.to_json()` writes for a `Functional` model
//! (`keras.Model(inputs, outputs)`): the layers in the file's order, each reading the tensors
//! its one inbound node names (`keras_history`), with one input and one output. Call
//! arguments are read as the layer configs are: `use_causal_mask` for MultiHeadAttention,
//! anything else refused by name.

use super::keras_json::{KerasModel, bad, config_of, input_layer, layer_of, model_of};
use super::{Layer, MultiHeadAttention};
use crate::error::Result;
use crate::layer::LayerKind;
use serde_json::{Map, Value};

/// The one layer name in `input_layers` or `output_layers` (`["name", 0, 0]`, or a list of
/// one such).
fn only_endpoint(root: &Value, key: &str) -> Result<String> {
    let v = root
        .pointer(&format!("/config/{key}"))
        .ok_or_else(|| bad(format!("no config.{key}")))?;
    let one = match v.as_array().map(Vec::as_slice) {
        Some([first, ..]) if first.is_string() => v,
        Some([only]) => only,
        _ => {
            return Err(bad(format!(
                "config.{key} is {v}: wgfit's models have one input and one output"
            )));
        }
    };
    one.get(0)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("config.{key} is {v}, not [name, node, index]")))
}

/// Every Keras tensor in a node's arguments, in order: the names of the layers they come from.
fn tensors(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|item| tensors(item, out)),
        Value::Object(o)
            if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            if let Some(name) = v.pointer("/config/keras_history/0").and_then(Value::as_str) {
                out.push(name.to_string());
            }
        }
        _ => {}
    }
}

pub(super) fn functional(root: &Value, layers: &[Value]) -> Result<KerasModel> {
    let input_name = only_endpoint(root, "input_layers")?;
    let output_name = only_endpoint(root, "output_layers")?;
    // Tensor 0 is the input; tensor k + 1 the output of built layer k.
    let mut names: Vec<String> = Vec::new();
    let mut input_shape = None;
    let mut built: Vec<Layer> = Vec::new();
    let mut softmax_at = None;
    for (i, entry) in layers.iter().enumerate() {
        let empty = Map::new();
        let mut c = config_of(entry, i, &empty)?;
        let name = entry
            .get("name")
            .or_else(|| c.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("layer {i} has no name")))?
            .to_string();
        if c.class == "InputLayer" {
            if name != input_name {
                return Err(c.error(format!(
                    "is a second input ({name}; the model's is {input_name}): wgfit's models \
                     have one input"
                )));
            }
            input_shape = Some(input_layer(&mut c)?);
            names.insert(0, name);
            continue;
        }
        if input_shape.is_none() {
            return Err(c.error("comes before the InputLayer"));
        }
        let nodes = entry
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let node = match nodes {
            [node] => node,
            [] => return Err(c.error("is not called on anything (no inbound node)")),
            _ => {
                return Err(c.error(format!(
                    "is called {} times: a layer applied twice shares its weights, which wgfit \
                     does not support yet",
                    nodes.len()
                )));
            }
        };
        let mut from = Vec::new();
        tensors(node.get("args").unwrap_or(&Value::Null), &mut from);
        let kwargs = node
            .get("kwargs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut layer = layer_of(&mut c)?;
        let mut causal = false;
        for (key, value) in &kwargs {
            let mha = c.class == "MultiHeadAttention";
            match (key.as_str(), value) {
                ("use_causal_mask", Value::Bool(b)) if mha => causal = *b,
                ("key", v) if mha => tensors(v, &mut from),
                // What the symbolic call recorded; fit and evaluate set training themselves.
                ("training", Value::Null | Value::Bool(false)) | ("mask", Value::Null) => {}
                ("return_attention_scores", Value::Bool(false)) if mha => {}
                ("attention_mask" | "query_mask" | "value_mask" | "key_mask", Value::Null)
                    if mha => {}
                _ => {
                    return Err(c.error(format!(
                        "is called with {key} = {value}, which wgfit does not support"
                    )));
                }
            }
        }
        let mut sources = Vec::with_capacity(from.len());
        for source in &from {
            let at = names.iter().position(|n| n == source).ok_or_else(|| {
                c.error(format!("reads `{source}`, which is not a layer before it"))
            })?;
            sources.push(at);
        }
        if let LayerKind::MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim,
            use_bias,
            ..
        } = *layer.kind()
        {
            // Self-attention: query, value (and key) are one tensor.
            sources.dedup();
            if sources.len() != 1 {
                return Err(c.error(
                    "attends from one tensor to another (cross-attention); wgfit has \
                     self-attention, mha(x, x)",
                ));
            }
            layer = Layer::from(
                MultiHeadAttention::new(num_heads, key_dim)
                    .value_dim(value_dim)
                    .use_bias(use_bias)
                    .use_causal_mask(causal),
            );
        }
        if c.softmax && softmax_at.is_none() {
            softmax_at = Some(built.len());
        }
        built.push(layer.reading(&sources));
        names.push(name);
    }
    if names.last() != Some(&output_name) {
        return Err(bad(format!(
            "the output `{output_name}` is not the last layer; wgfit computes every layer the \
             file lists, the output last"
        )));
    }
    model_of(input_shape, built, softmax_at)
}
