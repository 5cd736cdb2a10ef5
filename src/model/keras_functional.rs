//! A model from what Keras 3's `model.to_json()` writes for a `Functional` model
//! (`keras.Model(inputs, outputs)`): one call of a layer per inbound node, each reading the
//! tensors its node names (`keras_history`: the layer and which of its calls), laid out in
//! the file's order as far as what they read allows; one input and one output. A layer with
//! several inbound nodes is a shared layer: its later calls use its first call's weights.
//! Call arguments are read as the layer configs are: `use_causal_mask` for
//! MultiHeadAttention, anything else refused by name.

use super::keras_json::{KerasModel, bad, config_of, input_layer, layer_of, model_of};
use super::{Layer, MultiHeadAttention};
use crate::error::Result;
use crate::layer::LayerKind;
use serde_json::{Map, Value};

/// The one `[name, node, index]` in `input_layers` or `output_layers` (or a list of one such):
/// the layer's name and which of its calls.
fn only_endpoint(root: &Value, key: &str) -> Result<(String, usize)> {
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
    let name = one.get(0).and_then(Value::as_str);
    let node = one.get(1).and_then(Value::as_u64);
    match (name, node) {
        (Some(name), Some(node)) => Ok((name.to_string(), node as usize)),
        _ => Err(bad(format!("config.{key} is {v}, not [name, node, index]"))),
    }
}

/// Every Keras tensor in a node's arguments, in order: the layer and call it comes from.
fn tensors(v: &Value, out: &mut Vec<(String, usize)>) {
    match v {
        Value::Array(items) => items.iter().for_each(|item| tensors(item, out)),
        Value::Object(o)
            if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            let history = v.pointer("/config/keras_history");
            let name = history.and_then(|h| h.get(0)).and_then(Value::as_str);
            let node = history.and_then(|h| h.get(1)).and_then(Value::as_u64);
            if let (Some(name), Some(node)) = (name, node) {
                out.push((name.to_string(), node as usize));
            }
        }
        _ => {}
    }
}

/// One call of a layer: the layer's place in the file, its name, which of its calls, and the
/// tensors it reads (the query, value and key of an attention together).
struct Call {
    entry: usize,
    name: String,
    node: usize,
    reads: Vec<(String, usize)>,
    kwargs: Map<String, Value>,
}

pub(super) fn functional(root: &Value, layers: &[Value]) -> Result<KerasModel> {
    let input = only_endpoint(root, "input_layers")?;
    let output = only_endpoint(root, "output_layers")?;
    let mut input_shape = None;
    let mut calls = Vec::new();
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
            if name != input.0 {
                return Err(c.error(format!(
                    "is a second input ({name}; the model's is {}): wgfit's models have one input",
                    input.0
                )));
            }
            input_shape = Some(input_layer(&mut c)?);
            continue;
        }
        let nodes = entry
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if nodes.is_empty() {
            return Err(c.error("is not called on anything (no inbound node)"));
        }
        for (node, n) in nodes.iter().enumerate() {
            let mut reads = Vec::new();
            tensors(n.get("args").unwrap_or(&Value::Null), &mut reads);
            let kwargs = n
                .get("kwargs")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(key) = kwargs.get("key") {
                tensors(key, &mut reads);
            }
            calls.push(Call {
                entry: i,
                name: name.clone(),
                node,
                reads,
                kwargs,
            });
        }
    }
    let order = file_order(&calls, &input)?;
    // Tensor 0 is the input; tensor k + 1 the output of built layer k.
    let mut placed: Vec<(String, usize)> = vec![input.clone()];
    let mut built: Vec<Layer> = Vec::new();
    let mut softmax_at = None;
    for &k in &order {
        let call = &calls[k];
        let empty = Map::new();
        let mut c = config_of(&layers[call.entry], call.entry, &empty)?;
        let mut layer = layer_of(&mut c)?;
        let mha = c.class == "MultiHeadAttention";
        let mut causal = false;
        for (key, value) in &call.kwargs {
            match (key.as_str(), value) {
                ("use_causal_mask", Value::Bool(b)) if mha => causal = *b,
                ("key", _) if mha => {}
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
        let mut sources: Vec<usize> = call
            .reads
            .iter()
            .map(|r| placed.iter().position(|p| p == r).unwrap_or(0))
            .collect();
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
        layer = layer.reading(&sources);
        // A later call of a shared layer uses its first call's weights.
        // (placed[0] is the input, whose name a layer cannot share.)
        match placed.iter().position(|(name, _)| *name == call.name) {
            Some(0) => {
                return Err(c.error(format!(
                    "is named `{}`, as the model's input is; Keras names layers uniquely",
                    call.name
                )));
            }
            Some(first) => layer = layer.sharing_weights_of(first - 1),
            None => {}
        }
        if c.softmax && softmax_at.is_none() {
            softmax_at = Some(built.len());
        }
        built.push(layer);
        placed.push((call.name.clone(), call.node));
    }
    if placed.last() != Some(&output) {
        return Err(bad(format!(
            "the output `{}` (call {}) is not the last layer; wgfit computes every layer the \
             file lists, the output last",
            output.0, output.1
        )));
    }
    model_of(input_shape, built, softmax_at)
}

/// The calls in the file's order, each moved after the calls it reads (a shared layer's
/// later call may read layers listed after it); an error names a call that reads something
/// no call makes.
fn file_order(calls: &[Call], input: &(String, usize)) -> Result<Vec<usize>> {
    let mut made: Vec<(String, usize)> = vec![input.clone()];
    let mut order = Vec::with_capacity(calls.len());
    while order.len() < calls.len() {
        let ready = (0..calls.len())
            .find(|&k| !order.contains(&k) && calls[k].reads.iter().all(|r| made.contains(r)));
        let Some(k) = ready else {
            let stuck = (0..calls.len())
                .find(|k| !order.contains(k))
                .map(|k| &calls[k]);
            let (name, what) = stuck
                .and_then(|c| {
                    let missing = c.reads.iter().find(|r| !made.contains(r))?;
                    Some((
                        c.name.clone(),
                        format!("`{}` (call {})", missing.0, missing.1),
                    ))
                })
                .unwrap_or_default();
            return Err(bad(format!(
                "layer `{name}` reads {what}, which no layer of the file computes (or a cycle)"
            )));
        };
        order.push(k);
        made.push((calls[k].name.clone(), calls[k].node));
    }
    Ok(order)
}
