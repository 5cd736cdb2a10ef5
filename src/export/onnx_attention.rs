//! MultiHeadAttention in ONNX, step by step as Keras computes it: the projections as
//! MatMuls on the kernels flattened to `[C, heads·dim]`, heads split to `[N, heads, T, dim]`,
//! the query scaled by `1/√key_dim`, scores, the causal mask as −1e9 added above the
//! diagonal (Keras's large negative), softmax over the keys, context, heads merged, output
//! projection.

use super::onnx::Layer;
use super::onnx_graph::{Attr, OnnxGraph};
use crate::error::Result;
use crate::layer::LayerKind;

/// The attention of `layer` on `x` `[N, T, C]`; returns `[N, T, C]`.
pub(super) fn attention(layer: &Layer, g: &mut OnnxGraph, x: &str) -> Result<String> {
    let spec = layer.spec();
    let LayerKind::MultiHeadAttention {
        num_heads,
        key_dim,
        value_dim,
        use_causal_mask,
        ..
    } = spec.kind
    else {
        panic!("attention() of a {}", spec.kind.class_name());
    };
    let (t, c, h) = (spec.in_shape[0], spec.in_shape[1], num_heads);
    // [N, T, C] · [C, h·dim] (+ bias) to [N, heads, T, dim].
    let mut project = |name: &str, dim: usize, perm: [i64; 4]| -> Result<String> {
        let kernel = layer.reshaped(g, &format!("{name}_kernel"), &[c, h * dim])?;
        let mut y = g.node("MatMul", &[x, &kernel], &[]);
        if layer.has_param(&format!("{name}_bias")) {
            let bias = layer.reshaped(g, &format!("{name}_bias"), &[h * dim])?;
            y = g.node("Add", &[&y, &bias], &[]);
        }
        let heads = g.ints(&[0, 0, h as i64, dim as i64]);
        let split = g.node("Reshape", &[&y, &heads], &[]);
        Ok(g.node(
            "Transpose",
            &[&split],
            &[("perm", Attr::Ints(perm.to_vec()))],
        ))
    };
    let q = project("query", key_dim, [0, 2, 1, 3])?;
    let k = project("key", key_dim, [0, 2, 3, 1])?;
    let v = project("value", value_dim, [0, 2, 1, 3])?;
    let scale = g.scalar(1.0 / (key_dim as f32).sqrt());
    let q = g.node("Mul", &[&q, &scale], &[]);
    let mut scores = g.node("MatMul", &[&q, &k], &[]);
    if use_causal_mask {
        let mask: Vec<f32> = (0..t * t)
            .map(|i| if i % t > i / t { -1e9 } else { 0.0 })
            .collect();
        let m = g.fresh_constant("causal_mask", &[t, t], &mask);
        scores = g.node("Add", &[&scores, &m], &[]);
    }
    let p = g.node("Softmax", &[&scores], &[("axis", Attr::Int(-1))]);
    let context = g.node("MatMul", &[&p, &v], &[]);
    let context = g.node(
        "Transpose",
        &[&context],
        &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let merged_shape = g.ints(&[0, 0, (h * value_dim) as i64]);
    let merged = g.node("Reshape", &[&context, &merged_shape], &[]);
    let out_kernel = layer.reshaped(g, "output_kernel", &[h * value_dim, c])?;
    let mut y = g.node("MatMul", &[&merged, &out_kernel], &[]);
    if layer.has_param("output_bias") {
        let bias = layer.reshaped(g, "output_bias", &[c])?;
        y = g.node("Add", &[&y, &bias], &[]);
    }
    Ok(y)
}
