//! An ONNX graph being built: nodes with one output each, constants as initializers, and the
//! protobuf messages of `onnx.proto` (the `onnx-protobuf` crate) they end up in.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use protobuf::{EnumOrUnknown, MessageField};

/// The nodes and initializers so far.
#[derive(Default)]
pub(super) struct OnnxGraph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    count: usize,
}

/// A node's attribute.
pub(super) enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

impl OnnxGraph {
    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// A float constant named `name` (an initializer), returned for use as an input.
    pub fn constant(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        let mut t = TensorProto::new();
        t.name = name.to_string();
        t.dims = shape.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::FLOAT as i32;
        t.raw_data = bytemuck::cast_slice(data).to_vec();
        self.initializers.push(t);
        name.to_string()
    }

    /// A float constant of a new name starting with `hint`.
    pub fn fresh_constant(&mut self, hint: &str, shape: &[usize], data: &[f32]) -> String {
        let name = self.fresh(hint);
        self.constant(&name, shape, data)
    }

    /// A float scalar constant.
    pub fn scalar(&mut self, value: f32) -> String {
        self.fresh_constant("const", &[], &[value])
    }

    /// A 1-D int64 constant (shapes, axes).
    pub fn ints(&mut self, values: &[i64]) -> String {
        let mut t = TensorProto::new();
        t.name = self.fresh("shape");
        t.dims = vec![values.len() as i64];
        t.data_type = DataType::INT64 as i32;
        t.int64_data = values.to_vec();
        let name = t.name.clone();
        self.initializers.push(t);
        name
    }

    /// Appends a node computing `op` of `inputs`; returns its output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let output = self.fresh(&op.to_ascii_lowercase());
        let mut n = NodeProto::new();
        n.op_type = op.to_string();
        n.name = output.clone();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![output.clone()];
        n.attribute = attrs.iter().map(|(name, a)| attribute(name, a)).collect();
        self.nodes.push(n);
        output
    }

    /// Renames the value `from` to `to` with an Identity node (the graph's named output).
    pub fn identity(&mut self, from: &str, to: &str) {
        let mut n = NodeProto::new();
        n.op_type = "Identity".into();
        n.name = to.to_string();
        n.input = vec![from.to_string()];
        n.output = vec![to.to_string()];
        self.nodes.push(n);
    }

    /// The graph with one float input and one float output, both `[batch, …]`.
    pub fn finish(self, input: (&str, &[usize]), output: (&str, &[usize])) -> GraphProto {
        let mut g = GraphProto::new();
        g.name = "wgfit".into();
        g.node = self.nodes;
        g.initializer = self.initializers;
        g.input = vec![value_info(input.0, input.1)];
        g.output = vec![value_info(output.0, output.1)];
        g
    }
}

fn attribute(name: &str, a: &Attr) -> AttributeProto {
    let mut p = AttributeProto::new();
    p.name = name.to_string();
    let kind = match a {
        Attr::Int(v) => {
            p.i = *v;
            AttributeType::INT
        }
        Attr::Ints(v) => {
            p.ints = v.clone();
            AttributeType::INTS
        }
        Attr::Float(v) => {
            p.f = *v;
            AttributeType::FLOAT
        }
    };
    p.type_ = EnumOrUnknown::new(kind);
    p
}

/// A float tensor `[batch, shape…]`, the batch dimension named (any size).
fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let dim = |value| {
        let mut d = Dimension::new();
        d.value = Some(value);
        d
    };
    let mut dims = vec![dim(dimension::Value::DimParam("batch".into()))];
    dims.extend(
        shape
            .iter()
            .map(|&n| dim(dimension::Value::DimValue(n as i64))),
    );
    let mut s = TensorShapeProto::new();
    s.dim = dims;
    let mut t = type_proto::Tensor::new();
    t.elem_type = DataType::FLOAT as i32;
    t.shape = MessageField::some(s);
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(t));
    let mut v = ValueInfoProto::new();
    v.name = name.to_string();
    v.type_ = MessageField::some(ty);
    v
}
