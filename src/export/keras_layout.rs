//! Where each of a model's tensors lives in Keras 3's `.weights.h5` (as
//! `keras/src/saving/saving_lib.py` lays it out): `layers/<key>/vars/<i>`, the key the
//! snake-case class name made unique by a count (`dense`, `dense_1`, … in the order of
//! `model.layers`), the variables numbered in the order the layer creates them.
//! MultiHeadAttention keeps its projections in sub-layers (`query_dense/vars/0` the kernel,
//! `vars/1` the bias, …). A Functional model lists its InputLayer among its layers; a
//! Sequential model does not.

use crate::layer::{LayerKind, LayerSpec};
use std::collections::HashMap;

/// One parameter tensor in Keras's file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KerasVar {
    /// wgfit's name, `model.layers.<i>.<suffix>`.
    pub name: String,
    /// wgfit's shape.
    pub shape: Vec<usize>,
    /// The dataset's path, e.g. `layers/dense_1/vars/0`.
    pub path: String,
    /// Whether Keras stores it transposed (a Dense kernel is `[in, out]`, wgfit's weight
    /// `[out, in]`).
    pub transposed: bool,
}

impl KerasVar {
    /// The shape Keras stores.
    pub fn keras_shape(&self) -> Vec<usize> {
        match self.transposed {
            true => vec![self.shape[1], self.shape[0]],
            false => self.shape.clone(),
        }
    }
}

/// Every group of the file (with the `name` attribute Keras gives a `vars` group) and every
/// parameter's place.
#[derive(Debug, Clone, Default)]
pub(crate) struct KerasLayout {
    /// Group paths, parents first; `Some(name)` for a `vars` group.
    pub groups: Vec<(String, Option<String>)>,
    /// The parameters, in wgfit's order.
    pub vars: Vec<KerasVar>,
}

/// Keras's `to_snake_case` of a class name: `MaxPooling2D` → `max_pooling2d`,
/// `MultiHeadAttention` → `multi_head_attention`.
pub(crate) fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let before_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let after_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && i > 0 && (before_lower || after_lower) {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Each layer's key in `model.layers`' order: `dense`, `dense_1`, …; `None` for the second
/// calls of a shared layer (Keras lists a layer once). A Functional model's InputLayer takes
/// `input_layer` first.
pub(crate) fn layer_keys(specs: &[LayerSpec], functional: bool) -> Vec<Option<String>> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    if functional {
        counts.insert("input_layer".into(), 1);
    }
    specs
        .iter()
        .map(|s| {
            if s.shares.is_some() {
                return None;
            }
            let base = snake_case(s.kind.class_name());
            let n = counts.entry(base.clone()).or_insert(0);
            let key = match *n {
                0 => base,
                k => format!("{base}_{k}"),
            };
            *n += 1;
            Some(key)
        })
        .collect()
}

/// Whether Keras would build the model as a Functional one: some layer reads anything but
/// the previous layer's output, or shares another's weights, or is a MultiHeadAttention
/// (whose call takes a query and a value, which a Keras Sequential cannot give, and whose
/// `use_causal_mask` is an argument of that call).
pub(crate) fn is_functional(specs: &[LayerSpec]) -> bool {
    specs.iter().enumerate().any(|(i, s)| {
        s.shares.is_some()
            || !(s.sources.is_empty() || s.sources == [i])
            || matches!(s.kind, LayerKind::MultiHeadAttention { .. })
    })
}

/// MultiHeadAttention's sub-layer (attribute name in the file, its layer name) of a tensor.
fn attention_part(suffix: &str) -> (&'static str, &'static str) {
    match suffix.split('_').next() {
        Some("query") => ("query_dense", "query"),
        Some("key") => ("key_dense", "key"),
        Some("value") => ("value_dense", "value"),
        _ => ("output_dense", "attention_output"),
    }
}

/// The layout of a model of `specs`.
pub(crate) fn keras_layout(specs: &[LayerSpec], functional: bool) -> KerasLayout {
    let keys = layer_keys(specs, functional);
    let root = if functional {
        "functional"
    } else {
        "sequential"
    };
    let mut groups = vec![("layers".to_string(), None)];
    if functional {
        groups.push(("layers/input_layer".into(), None));
        groups.push(("layers/input_layer/vars".into(), Some("input_layer".into())));
    }
    let mut vars = Vec::new();
    for (i, (spec, key)) in specs.iter().zip(&keys).enumerate() {
        let Some(key) = key else { continue };
        let layer = format!("layers/{key}");
        groups.push((layer.clone(), None));
        // Each (sub-)layer's variables count from 0 in the order it creates them.
        let mut counts: HashMap<String, usize> = HashMap::new();
        let attention = matches!(spec.kind, LayerKind::MultiHeadAttention { .. });
        if attention {
            for (part, name) in [
                ("_dropout_layer", "dropout"),
                ("_softmax", "softmax"),
                ("key_dense", "key"),
                ("output_dense", "attention_output"),
                ("query_dense", "query"),
                ("value_dense", "value"),
            ] {
                groups.push((format!("{layer}/{part}"), None));
                groups.push((format!("{layer}/{part}/vars"), Some(name.into())));
            }
        }
        groups.push((format!("{layer}/vars"), Some(key.clone())));
        for (suffix, shape) in spec.tensors().into_iter().chain(spec.state_tensors()) {
            let holder = match attention {
                true => format!("{layer}/{}/vars", attention_part(suffix).0),
                false => format!("{layer}/vars"),
            };
            let n = counts.entry(holder.clone()).or_insert(0);
            vars.push(KerasVar {
                name: format!("model.layers.{i}.{suffix}"),
                transposed: matches!(spec.kind, LayerKind::Dense) && suffix == "weight",
                shape,
                path: format!("{holder}/{n}"),
            });
            *n += 1;
        }
    }
    groups.push(("vars".into(), Some(root.into())));
    KerasLayout { groups, vars }
}

/// `data` of `[rows, cols]` as `[cols, rows]`.
pub(crate) fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_keras_keys() {
        let cases = [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("BatchNormalization", "batch_normalization"),
            ("MultiHeadAttention", "multi_head_attention"),
            ("PositionEmbedding", "position_embedding"),
        ];
        for (class, key) in cases {
            assert_eq!(snake_case(class), key);
        }
    }

    #[test]
    fn transposing_twice_gives_the_data_back() {
        let data: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let t = transpose(&data, 2, 3);
        assert_eq!(t, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(transpose(&t, 3, 2), data);
    }
}
