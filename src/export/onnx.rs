//! The model as ONNX (opset 17), for onnxruntime and every other ONNX runtime:
//! [`Sequential::save_onnx`]. One input `input` `[batch, …input shape]` (float32; token ids
//! as exact floats, as wgfit takes them) and one output: `probabilities` (the softmax that
//! cross-entropy applies, what `wgfit predict` writes) or `outputs` (mean squared error's
//! values). Tensors stay `channels_last` as in wgfit; convolutions and pooling, which ONNX
//! defines on `channels_first`, are wrapped in transposes.

use super::onnx_graph::{Attr, OnnxGraph};
use crate::error::{Error, Result};
use crate::layer::{Activation, LayerKind, LayerSpec, Padding};
use crate::loss::Loss;
use crate::model::Sequential;
use crate::state::Tensor;
use onnx_protobuf::{ModelProto, OperatorSetIdProto, StringStringEntryProto};
use protobuf::{Message, MessageField};
use std::collections::HashMap;
use std::path::Path;

/// The opset the graph uses (LayerNormalization needs 17).
pub const ONNX_OPSET: i64 = 17;

const TO_CHANNELS_FIRST: [i64; 4] = [0, 3, 1, 2];
const TO_CHANNELS_LAST: [i64; 4] = [0, 2, 3, 1];

impl Sequential {
    /// Writes the model as an ONNX file (atomically) with a dynamic batch dimension; its
    /// metadata names the producer and the SHA-256 of the parameters.
    pub fn save_onnx(&self, path: impl AsRef<Path>) -> Result<()> {
        let specs = self.specs()?;
        let params = self.parameters()?;
        let by_name: HashMap<&str, &Tensor> = params.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut g = OnnxGraph::default();
        let mut values = vec!["input".to_string()];
        for (i, spec) in specs.iter().enumerate() {
            let sources: Vec<String> = match spec.sources.is_empty() {
                true => vec![values[i].clone()],
                false => spec.sources.iter().map(|&s| values[s].clone()).collect(),
            };
            let owner = spec.shares.unwrap_or(i);
            let param = |suffix: &str| -> Result<&Tensor> {
                let name = format!("model.layers.{owner}.{suffix}");
                by_name
                    .get(name.as_str())
                    .copied()
                    .ok_or_else(|| Error::internal(format!("no parameter {name}")))
            };
            let layer = Layer {
                spec,
                param: &param,
                prefix: format!("model.layers.{owner}"),
                shared: spec.shares.is_some(),
            };
            let out = layer.emit(&mut g, &sources)?;
            values.push(out);
        }
        let last = values.last().cloned().unwrap_or_default();
        let out_shape = specs
            .last()
            .map_or(self.input_shape().to_vec(), |s| s.out_shape.clone());
        let output = match self.loss()? {
            Loss::CrossEntropy => {
                let p = g.node("Softmax", &[&last], &[("axis", Attr::Int(-1))]);
                g.identity(&p, "probabilities");
                "probabilities"
            }
            _ => {
                g.identity(&last, "outputs");
                "outputs"
            }
        };
        let graph = g.finish(("input", self.input_shape()), (output, &out_shape));
        let mut model = ModelProto::new();
        model.ir_version = 8;
        model.producer_name = "wgfit".into();
        model.producer_version = env!("CARGO_PKG_VERSION").into();
        let mut opset = OperatorSetIdProto::new();
        opset.version = ONNX_OPSET;
        model.opset_import = vec![opset];
        let mut digest = StringStringEntryProto::new();
        digest.key = "parameters_sha256".into();
        digest.value = super::parameters_sha256(&params);
        model.metadata_props = vec![digest];
        model.graph = MessageField::some(graph);
        let bytes = model
            .write_to_bytes()
            .map_err(|e| Error::encoding("an ONNX model", e))?;
        crate::checkpoint::write_atomically(path.as_ref(), &bytes)?;
        Ok(())
    }
}

/// One layer being emitted.
pub(super) struct Layer<'a> {
    spec: &'a LayerSpec,
    param: &'a dyn Fn(&str) -> Result<&'a Tensor>,
    /// The initializers' prefix: the owner's `model.layers.<i>`.
    prefix: String,
    /// A second call of a shared layer: its owner's initializers exist already.
    shared: bool,
}

impl Layer<'_> {
    /// The parameter `suffix` as a constant `<prefix>.<as_name>` of `shape` (its data
    /// reordered by `reorder`).
    fn weight(
        &self,
        g: &mut OnnxGraph,
        (suffix, as_name): (&str, &str),
        shape: &[usize],
        reorder: impl Fn(&Tensor) -> Vec<f32>,
    ) -> Result<String> {
        let name = format!("{}.{as_name}", self.prefix);
        if self.shared {
            return Ok(name);
        }
        let t = (self.param)(suffix)?;
        Ok(g.constant(&name, shape, &reorder(t)))
    }

    fn same(&self, g: &mut OnnxGraph, suffix: &str) -> Result<String> {
        let shape = (self.param)(suffix)?.shape.clone();
        self.weight(g, (suffix, suffix), &shape, |t| t.data.clone())
    }

    fn has(&self, suffix: &str) -> bool {
        (self.param)(suffix).is_ok()
    }

    fn emit(&self, g: &mut OnnxGraph, inputs: &[String]) -> Result<String> {
        let spec = self.spec;
        let x = inputs[0].as_str();
        let last_in = *spec.in_shape.last().unwrap_or(&0);
        let y = match &spec.kind {
            LayerKind::Dense => {
                let units = *spec.out_shape.last().unwrap_or(&0);
                let kernel = self.weight(g, ("weight", "kernel"), &[last_in, units], |t| {
                    super::keras_layout::transpose(&t.data, units, last_in)
                })?;
                let bias = self.same(g, "bias")?;
                let m = g.node("MatMul", &[x, &kernel], &[]);
                g.node("Add", &[&m, &bias], &[])
            }
            LayerKind::Conv2D {
                filters,
                kernel,
                strides,
                padding,
                dilation,
                use_bias,
            } => {
                let (c, f) = (spec.in_shape[2], *filters);
                let (kh, kw) = (kernel[0], kernel[1]);
                let w = self.weight(g, ("weight", "weight_oihw"), &[f, c, kh, kw], |t| {
                    let mut out = vec![0.0; t.data.len()];
                    for (k, v) in t.data.iter().enumerate() {
                        // Keras's [kh, kw, c, f] to ONNX's [f, c, kh, kw].
                        let (fo, ci, x, y) =
                            (k % f, (k / f) % c, (k / (f * c)) % kw, k / (f * c * kw));
                        out[((fo * c + ci) * kh + y) * kw + x] = *v;
                    }
                    out
                })?;
                let mut conv_in = vec![g.node("Transpose", &[x], &[perm(TO_CHANNELS_FIRST)])];
                conv_in.push(w);
                if *use_bias {
                    conv_in.push(self.same(g, "bias")?);
                }
                let window = [(kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1];
                let ins: Vec<&str> = conv_in.iter().map(String::as_str).collect();
                let conv = g.node(
                    "Conv",
                    &ins,
                    &[
                        ("kernel_shape", ints(&[kh, kw])),
                        ("strides", ints(strides)),
                        ("dilations", ints(dilation)),
                        ("pads", pads(spec, *padding, window, *strides)),
                    ],
                );
                g.node("Transpose", &[&conv], &[perm(TO_CHANNELS_LAST)])
            }
            LayerKind::MaxPooling2D {
                pool,
                strides,
                padding,
            }
            | LayerKind::AveragePooling2D {
                pool,
                strides,
                padding,
            } => {
                let t = g.node("Transpose", &[x], &[perm(TO_CHANNELS_FIRST)]);
                let mut attrs = vec![
                    ("kernel_shape", ints(pool)),
                    ("strides", ints(strides)),
                    ("pads", pads(spec, *padding, *pool, *strides)),
                ];
                let op = match spec.kind {
                    LayerKind::MaxPooling2D { .. } => "MaxPool",
                    _ => {
                        // Keras averages over the window's elements inside the input.
                        attrs.push(("count_include_pad", Attr::Int(0)));
                        "AveragePool"
                    }
                };
                let p = g.node(op, &[&t], &attrs);
                g.node("Transpose", &[&p], &[perm(TO_CHANNELS_LAST)])
            }
            LayerKind::GlobalAveragePooling2D => g.node(
                "ReduceMean",
                &[x],
                &[("axes", Attr::Ints(vec![1, 2])), ("keepdims", Attr::Int(0))],
            ),
            LayerKind::Flatten => g.node("Flatten", &[x], &[("axis", Attr::Int(1))]),
            LayerKind::Reshape => {
                let mut shape = vec![-1i64];
                shape.extend(spec.out_shape.iter().map(|&d| d as i64));
                let s = g.ints(&shape);
                g.node("Reshape", &[x, &s], &[])
            }
            LayerKind::Dropout { .. } | LayerKind::Activation => x.to_string(),
            LayerKind::BatchNormalization { epsilon, .. } => {
                // (x − mean) / √(variance + ε) · γ + β, per channel (the moving statistics).
                let mean = self.same(g, "moving_mean")?;
                let var = self.same(g, "moving_variance")?;
                let eps = g.scalar(*epsilon);
                let centered = g.node("Sub", &[x, &mean], &[]);
                let v = g.node("Add", &[&var, &eps], &[]);
                let sd = g.node("Sqrt", &[&v], &[]);
                let mut y = g.node("Div", &[&centered, &sd], &[]);
                if self.has("gamma") {
                    let gamma = self.same(g, "gamma")?;
                    y = g.node("Mul", &[&y, &gamma], &[]);
                }
                if self.has("beta") {
                    let beta = self.same(g, "beta")?;
                    y = g.node("Add", &[&y, &beta], &[]);
                }
                y
            }
            LayerKind::LayerNormalization { epsilon, .. } => {
                let scale = match self.has("gamma") {
                    true => self.same(g, "gamma")?,
                    false => g.fresh_constant("ones", &[last_in], &vec![1.0; last_in]),
                };
                let mut ins = vec![x.to_string(), scale];
                if self.has("beta") {
                    ins.push(self.same(g, "beta")?);
                }
                let ins: Vec<&str> = ins.iter().map(String::as_str).collect();
                g.node(
                    "LayerNormalization",
                    &ins,
                    &[("axis", Attr::Int(-1)), ("epsilon", Attr::Float(*epsilon))],
                )
            }
            LayerKind::Add => {
                let mut sum = x.to_string();
                for other in &inputs[1..] {
                    sum = g.node("Add", &[&sum, other], &[]);
                }
                sum
            }
            LayerKind::Softmax => g.node("Softmax", &[x], &[("axis", Attr::Int(-1))]),
            LayerKind::Embedding { .. } => {
                let table = self.same(g, "embeddings")?;
                // TensorProto.DataType.INT64.
                let ids = g.node("Cast", &[x], &[("to", Attr::Int(7))]);
                g.node("Gather", &[&table, &ids], &[("axis", Attr::Int(0))])
            }
            LayerKind::PositionEmbedding { .. } => {
                let (t, c) = (spec.in_shape[0], last_in);
                let table = self.weight(
                    g,
                    ("position_embeddings", "position_embeddings"),
                    &[t, c],
                    |tab| tab.data[..t * c].to_vec(),
                )?;
                let shape = g.node("Shape", &[x], &[]);
                g.node("Expand", &[&table, &shape], &[])
            }
            LayerKind::MultiHeadAttention { .. } => super::onnx_attention::attention(self, g, x)?,
        };
        Ok(activation(g, &y, spec.activation))
    }
}

impl<'a> Layer<'a> {
    pub(super) fn spec(&self) -> &'a LayerSpec {
        self.spec
    }

    /// The parameter `suffix` as a constant of its own data and `shape`.
    pub(super) fn reshaped(
        &self,
        g: &mut OnnxGraph,
        suffix: &str,
        shape: &[usize],
    ) -> Result<String> {
        self.weight(g, (suffix, suffix), shape, |t| t.data.clone())
    }

    pub(super) fn has_param(&self, suffix: &str) -> bool {
        self.has(suffix)
    }
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&d| d as i64).collect())
}

fn perm(p: [i64; 4]) -> (&'static str, Attr) {
    ("perm", Attr::Ints(p.to_vec()))
}

/// ONNX's `pads` `[top, left, bottom, right]` of a window over the input `[H, W, C]`.
fn pads(spec: &LayerSpec, padding: Padding, window: [usize; 2], strides: [usize; 2]) -> Attr {
    let mut begin = [0usize; 2];
    let mut end = [0usize; 2];
    for a in 0..2 {
        let size = spec.in_shape[a];
        if let Some((out, lead)) = padding.output(size, window[a], strides[a]) {
            let total = ((out - 1) * strides[a] + window[a]).saturating_sub(size);
            begin[a] = lead;
            end[a] = total - lead;
        }
    }
    ints(&[begin[0], begin[1], end[0], end[1]])
}

/// `x` through `a`, as Keras computes it.
fn activation(g: &mut OnnxGraph, x: &str, a: Activation) -> String {
    match a {
        Activation::Linear => x.to_string(),
        Activation::Relu => g.node("Relu", &[x], &[]),
        Activation::Tanh => g.node("Tanh", &[x], &[]),
        Activation::Sigmoid => g.node("Sigmoid", &[x], &[]),
        Activation::Gelu => {
            // x · (1 + erf(x / √2)) / 2
            let root2 = g.scalar(std::f32::consts::SQRT_2);
            let (one, half) = (g.scalar(1.0), g.scalar(0.5));
            let scaled = g.node("Div", &[x, &root2], &[]);
            let erf = g.node("Erf", &[&scaled], &[]);
            let plus = g.node("Add", &[&erf, &one], &[]);
            let times = g.node("Mul", &[x, &plus], &[]);
            g.node("Mul", &[&times, &half], &[])
        }
        Activation::GeluApproximate => {
            // x · (1 + tanh(√(2/π) · (x + 0.044715 x³))) / 2
            let c = g.scalar(0.044715);
            let s = g.scalar((2.0 / std::f32::consts::PI).sqrt());
            let (one, half) = (g.scalar(1.0), g.scalar(0.5));
            let x2 = g.node("Mul", &[x, x], &[]);
            let x3 = g.node("Mul", &[&x2, x], &[]);
            let cx3 = g.node("Mul", &[&x3, &c], &[]);
            let inner = g.node("Add", &[x, &cx3], &[]);
            let scaled = g.node("Mul", &[&inner, &s], &[]);
            let t = g.node("Tanh", &[&scaled], &[]);
            let plus = g.node("Add", &[&t, &one], &[]);
            let times = g.node("Mul", &[x, &plus], &[]);
            g.node("Mul", &[&times, &half], &[])
        }
    }
}
