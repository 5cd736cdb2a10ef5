//! What a model's layers are, checked: each layer's shapes from the tensors it reads, shared
//! layers against their first call, the ids an Embedding looks up, and the labels' axes
//! against the output's.

use super::Sequential;
use crate::data::{Dataset, Targets};
use crate::error::{Error, Result};
use crate::layer::LayerSpec;

impl Sequential {
    /// Each layer with its input and output shapes, as the engine runs it; an error names
    /// the first layer that cannot take its input.
    pub fn specs(&self) -> Result<Vec<LayerSpec>> {
        // Tensor 0 is the input, tensor i + 1 layer i's output.
        let mut shapes = vec![self.input_shape().to_vec()];
        let mut specs = Vec::with_capacity(self.layers().len());
        for (i, l) in self.layers().iter().enumerate() {
            let failed = |reason: String| {
                Error::config(
                    "model",
                    format!("layer {i} ({}): {reason}", l.kind().class_name()),
                )
            };
            let sources = match l.sources() {
                [] => vec![i],
                given => given.to_vec(),
            };
            if let Some(s) = sources.iter().find(|&&s| s > i) {
                return Err(failed(format!(
                    "it reads tensor {s}, which is not computed before it"
                )));
            }
            let several = l.kind().takes_several_inputs();
            if several != (sources.len() > 1) {
                return Err(failed(format!(
                    "it reads {} tensors; {}",
                    sources.len(),
                    if several {
                        "it takes two or more"
                    } else {
                        "it takes one"
                    }
                )));
            }
            if l.kind().takes_ids() && sources != [0] {
                return Err(failed(
                    "it takes ids, so it must read the model's input".into(),
                ));
            }
            let shape = &shapes[sources[0]];
            if let Some(&s) = sources.iter().find(|&&s| shapes[s] != *shape) {
                return Err(failed(format!(
                    "its inputs' shapes differ: {shape:?} and {:?}",
                    shapes[s]
                )));
            }
            let spec = l.spec(shape).map_err(failed)?;
            if let Some(owner) = spec.shares {
                check_sharing(&specs, owner, &spec).map_err(failed)?;
            }
            shapes.push(spec.out_shape.clone());
            specs.push(spec);
        }
        Ok(specs)
    }

    /// Checks that the inputs are ids an Embedding can look up, if the model has one: whole
    /// numbers in `[0, input_dim)` (the GPU would read past the table otherwise).
    pub(super) fn check_ids(&self, data: &Dataset) -> Result<()> {
        let smallest = self
            .specs()?
            .iter()
            .filter_map(|s| match s.kind {
                crate::LayerKind::Embedding { input_dim, .. } => Some(input_dim),
                _ => None,
            })
            .min();
        let Some(input_dim) = smallest else {
            return Ok(());
        };
        let bad = data
            .x()
            .iter()
            .position(|&v| !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < input_dim));
        match bad {
            Some(i) => Err(Error::InvalidData {
                path: None,
                reason: format!(
                    "input {} of sample {} is {}, not an id in [0, {input_dim}) for the \
                     model's Embedding",
                    i % self.inputs(),
                    i / self.inputs(),
                    data.x()[i]
                ),
            }),
            None => Ok(()),
        }
    }
}

/// Why layer `spec` cannot use the weights of layer `owner` among `earlier`, if it cannot: a
/// shared layer is an earlier one with parameters and no state, of the same kind and
/// activation, whose tensors have the shapes this one's would.
fn check_sharing(
    earlier: &[LayerSpec],
    owner: usize,
    spec: &LayerSpec,
) -> std::result::Result<(), String> {
    let Some(first) = earlier.get(owner) else {
        return Err(format!(
            "it shares the weights of layer {owner}, which is not before it"
        ));
    };
    if first.shares.is_some() {
        return Err(format!(
            "it shares the weights of layer {owner}, itself a second call; name the first"
        ));
    }
    if spec.tensors().is_empty() || !spec.state_tensors().is_empty() {
        return Err(format!(
            "a {} shares nothing (only layers with parameters and no state can be shared)",
            spec.kind.class_name()
        ));
    }
    if first.kind != spec.kind
        || first.activation != spec.activation
        || first.tensors() != spec.tensors()
    {
        return Err(format!(
            "it shares the weights of layer {owner} ({}), whose kind, activation or weight shapes differ: {} against {}",
            first.kind.class_name(),
            first.describe(),
            spec.describe()
        ));
    }
    Ok(())
}

/// Class labels take one softmax over the output; per-position labels one per position, over
/// the last axis of an output whose other axes are the positions (or over consecutive runs
/// of a flat output, as `wgfit train`'s default model for sequences lays them out). Counting
/// outputs alone let a `[8, 6]` output take 4 positions of 12 "classes", each softmax
/// spanning two positions.
pub(super) fn check_label_axes(targets: &Targets, out_shape: &[usize]) -> Result<()> {
    let (rows, classes) = match out_shape.split_last() {
        Some((&classes, rows)) => (rows.iter().product::<usize>(), classes),
        None => return Ok(()),
    };
    let (fits, expected) = match targets {
        Targets::Tokens { positions, .. } => (
            out_shape.len() == 1 || rows == *positions,
            vec![*positions, classes],
        ),
        // One axis of classes; axes of 1 before it (a 1×1 convolution's) change nothing.
        Targets::Classes(_) => (rows == 1, vec![classes]),
        Targets::Values { .. } => return Ok(()),
    };
    if fits {
        return Ok(());
    }
    Err(Error::Shape {
        what: match targets {
            Targets::Tokens { .. } => {
                "the model's output for per-position labels ([positions, classes])".into()
            }
            _ => "the model's output for one class label per sample ([classes])".into(),
        },
        expected,
        got: out_shape.to_vec(),
    })
}
