//! The Functional API: a model as a graph of layer calls, as Keras's
//! `keras.Model(inputs, outputs)`. Layers are called on symbolic tensors
//! ([`SymbolicTensor`], from [`Input`]); [`Model::new`] walks back from the output to the
//! input and lays the calls out in an order where every layer comes after what it reads,
//! as a [`Sequential`] whose layers name their sources.

use super::{Layer, Sequential};
use crate::error::{Error, Result};
use std::rc::Rc;

/// A tensor of a model under construction: the input, or the output of a layer called on
/// earlier tensors (Keras's `KerasTensor`).
#[derive(Debug, Clone)]
pub struct SymbolicTensor(Rc<Node>);

#[derive(Debug)]
enum Node {
    Input(Vec<usize>),
    Call {
        layer: Layer,
        inputs: Vec<SymbolicTensor>,
        /// The identity of a [`Shared`] layer: its calls share one set of weights.
        shared: Option<Rc<()>>,
    },
}

/// Keras's `Input(shape)`: the model's input, one sample of `shape` (for example `[T]` ids
/// for a sequence model, or `[28, 28, 1]` for images).
pub struct Input;

impl Input {
    /// The input tensor of samples of `shape`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: &[usize]) -> SymbolicTensor {
        SymbolicTensor(Rc::new(Node::Input(shape.to_vec())))
    }
}

/// Calling a layer on tensors, as Keras's `layer(x)`.
pub trait Call: Into<Layer> {
    /// The layer applied to `x`. Each call is a layer of its own, with its own weights.
    fn call(self, x: &SymbolicTensor) -> SymbolicTensor {
        self.call_on(&[x])
    }

    /// The layer applied to several tensors (Add).
    fn call_on(self, inputs: &[&SymbolicTensor]) -> SymbolicTensor {
        SymbolicTensor(Rc::new(Node::Call {
            layer: self.into(),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            shared: None,
        }))
    }
}

/// A layer called more than once with one set of weights, as a Keras layer object called
/// twice: `let dense = Shared::new(Dense::new(8)); let a = dense.call(&x); let b =
/// dense.call(&y);`. Every call trains the same weights (their gradients summed, in the
/// order the backward pass reaches the calls); the weights are the first call's
/// (`model.layers.<i>.…` of the first call's place).
#[derive(Debug, Clone)]
pub struct Shared {
    layer: Layer,
    id: Rc<()>,
}

impl Shared {
    /// The layer, to be called on several tensors.
    pub fn new(layer: impl Into<Layer>) -> Self {
        Shared {
            layer: layer.into(),
            id: Rc::new(()),
        }
    }

    /// The layer applied to `x`, with the weights of every call.
    pub fn call(&self, x: &SymbolicTensor) -> SymbolicTensor {
        self.call_on(&[x])
    }

    /// The layer applied to several tensors.
    pub fn call_on(&self, inputs: &[&SymbolicTensor]) -> SymbolicTensor {
        SymbolicTensor(Rc::new(Node::Call {
            layer: self.layer.clone(),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            shared: Some(self.id.clone()),
        }))
    }
}

impl<T: Into<Layer>> Call for T {}

impl SymbolicTensor {
    /// `Add()([self, other])`: a residual connection.
    pub fn add(&self, other: &SymbolicTensor) -> SymbolicTensor {
        super::Add.call_on(&[self, other])
    }

    fn id(&self) -> *const Node {
        Rc::as_ptr(&self.0)
    }
}

/// A model built from a graph of layer calls (Keras's Functional API). It is a
/// [`Sequential`] whose layers name the tensors they read, so it compiles, fits, evaluates,
/// predicts, saves and resumes as one (it dereferences to it).
#[derive(Debug)]
pub struct Model(Sequential);

impl Model {
    /// The model computing `output` from `input`: every layer call `output` depends on, each
    /// after the tensors it reads (inputs first, in the order given). Fails if `output`
    /// depends on another input than `input`.
    pub fn new(input: &SymbolicTensor, output: &SymbolicTensor) -> Result<Model> {
        let Node::Input(shape) = &*input.0 else {
            return Err(Error::config(
                "model",
                "the model's input must be an Input tensor, not a layer's output",
            ));
        };
        let mut order: Vec<*const Node> = vec![input.id()];
        let mut layers = Vec::new();
        let mut shared = Vec::new();
        visit(output, &mut order, &mut layers, &mut shared)?;
        let model = layers
            .into_iter()
            .fold(Sequential::with_input_shape(shape), |m, l| m.add(l));
        model.specs()?;
        Ok(Model(model))
    }

    /// The model as a [`Sequential`] of layers with sources.
    pub fn into_sequential(self) -> Sequential {
        self.0
    }
}

/// Depth-first from `t`: lays out what `t` reads, then `t`'s layer reading their indices (a
/// shared layer's later calls naming its first call's place in `shared`).
fn visit(
    t: &SymbolicTensor,
    order: &mut Vec<*const Node>,
    layers: &mut Vec<Layer>,
    shared: &mut Vec<(*const (), usize)>,
) -> Result<usize> {
    if let Some(i) = order.iter().position(|&id| id == t.id()) {
        return Ok(i);
    }
    match &*t.0 {
        Node::Input(_) => Err(Error::config(
            "model",
            "the output depends on an Input other than the model's input; a model has one input",
        )),
        Node::Call {
            layer,
            inputs,
            shared: identity,
        } => {
            if inputs.is_empty() {
                // A layer reading no tensor would be taken to read the one laid out before it.
                return Err(Error::config(
                    "model",
                    format!(
                        "a {} layer is called on no tensor: call_on needs at least one",
                        layer.kind().class_name()
                    ),
                ));
            }
            let mut sources = Vec::with_capacity(inputs.len());
            for x in inputs {
                sources.push(visit(x, order, layers, shared)?);
            }
            let mut layer = layer.clone().reading(&sources);
            if let Some(id) = identity {
                let id = Rc::as_ptr(id);
                match shared.iter().find(|(seen, _)| *seen == id) {
                    Some(&(_, first)) => layer = layer.sharing_weights_of(first),
                    None => shared.push((id, layers.len())),
                }
            }
            layers.push(layer);
            order.push(t.id());
            Ok(order.len() - 1)
        }
    }
}

impl std::ops::Deref for Model {
    type Target = Sequential;
    fn deref(&self) -> &Sequential {
        &self.0
    }
}

impl std::ops::DerefMut for Model {
    fn deref_mut(&mut self) -> &mut Sequential {
        &mut self.0
    }
}
