//! Keras 3's `.weights.h5` both ways: [`Sequential::save_keras_weights`] writes what
//! `model.save_weights("m.weights.h5")` writes for the same model, and
//! [`Sequential::load_keras_weights`] reads what it wrote (the layout: `keras_layout.rs`).

use super::keras_layout::{KerasLayout, keras_layout, transpose};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::state::Tensor;
use hdf5_pure::{AttrValue, DType, File, FileBuilder, FinishedGroup, GroupBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FORMAT: &str = "Keras weights";

impl Sequential {
    /// The model's place for each tensor in Keras's weights file.
    pub(crate) fn keras_layout(&self) -> Result<KerasLayout> {
        let specs = self.specs()?;
        let functional = super::keras_layout::is_functional(&specs);
        Ok(keras_layout(&specs, functional))
    }

    /// Writes the parameters as Keras 3's `.weights.h5` (atomically), which
    /// `keras_model.load_weights(path)` reads into the same model built in Keras: Dense
    /// kernels `[in, out]`, every other tensor in wgfit's (Keras's) layout. The root group's
    /// attributes name the producer and the parameters' SHA-256.
    pub fn save_keras_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.keras_weights_bytes()?;
        crate::checkpoint::write_atomically(path.as_ref(), &bytes)?;
        Ok(())
    }

    /// The bytes of [`Sequential::save_keras_weights`]'s file.
    pub(crate) fn keras_weights_bytes(&self) -> Result<Vec<u8>> {
        let layout = self.keras_layout()?;
        let params = self.parameters()?;
        let mut tree = Node::default();
        for (path, name) in &layout.groups {
            let node = tree.at(path);
            node.name = name.clone();
        }
        for var in self.keras_variables()? {
            let (parent, leaf) = var.name.rsplit_once('/').unwrap_or(("", &var.name));
            tree.at(parent)
                .data
                .insert(leaf.to_string(), (var.shape, var.data));
        }
        let mut builder = FileBuilder::new();
        // What produced the file, where Keras's reader does not look (the root's attributes).
        builder.set_attr("producer", AttrValue::String(super::producer()));
        builder.set_attr(
            "parameters_sha256",
            AttrValue::String(super::parameters_sha256(&params)),
        );
        for (name, child) in tree.children {
            let group = builder.create_group(&name);
            builder.add_group(child.build(group));
        }
        builder
            .finish()
            .map_err(|e| Error::encoding("a Keras weights file", e))
    }

    /// Every variable in Keras's order and layout, as `keras_model.get_weights()` lists them
    /// for the same model (Dense kernels `[in, out]`), named by their place in Keras's
    /// weights file (`layers/dense/vars/0`).
    pub fn keras_variables(&self) -> Result<Vec<Tensor>> {
        let params = self.parameters()?;
        self.keras_layout()?
            .vars
            .iter()
            .map(|var| {
                let t = params
                    .iter()
                    .find(|t| t.name == var.name)
                    .ok_or_else(|| Error::internal(format!("no parameter {}", var.name)))?;
                let data = match var.transposed {
                    true => transpose(&t.data, var.shape[0], var.shape[1]),
                    false => t.data.clone(),
                };
                Ok(Tensor {
                    name: var.path.clone(),
                    shape: var.keras_shape(),
                    data,
                })
            })
            .collect()
    }

    /// Replaces every variable, given in the order and layout of
    /// [`Sequential::keras_variables`] (`keras_model.set_weights`'s); a wrong count or size
    /// is refused, naming the variable.
    pub fn set_keras_variables(&mut self, values: &[Vec<f32>]) -> Result<()> {
        let layout = self.keras_layout()?;
        if values.len() != layout.vars.len() {
            return Err(Error::config(
                "set_weights",
                format!(
                    "{} arrays given; the model has {} variables",
                    values.len(),
                    layout.vars.len()
                ),
            ));
        }
        let mut tensors = Vec::new();
        for (var, data) in layout.vars.iter().zip(values) {
            let want: usize = var.shape.iter().product();
            if data.len() != want {
                return Err(Error::config(
                    "set_weights",
                    format!(
                        "{} holds {} values; {} has shape {:?}",
                        var.path,
                        data.len(),
                        var.name,
                        var.keras_shape()
                    ),
                ));
            }
            let data = match var.transposed {
                true => transpose(data, var.shape[1], var.shape[0]),
                false => data.clone(),
            };
            tensors.push(Tensor {
                name: var.name.clone(),
                shape: var.shape.clone(),
                data,
            });
        }
        self.set_parameters(&tensors)
    }

    /// Replaces the parameters with those of a Keras `.weights.h5` (as Keras's
    /// `model.save_weights` writes it) for this model. The file must hold exactly this
    /// model's variables, each of its shape, as float32: anything else is refused, naming
    /// the variable ([`Error::ForeignModelFile`]).
    pub fn load_keras_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let tensors = self.read_keras_weights(path.as_ref())?;
        self.set_parameters(&tensors)
    }

    /// The tensors a Keras `.weights.h5` holds for this model, with wgfit's names and shapes
    /// (the checks of [`Sequential::load_keras_weights`]).
    pub fn read_keras_weights(&self, path: &Path) -> Result<Vec<Tensor>> {
        let bytes = std::fs::read(path).map_err(|e| Error::ckpt_io(path, e))?;
        self.keras_weights_from_bytes(&bytes, path)
    }

    /// [`Sequential::read_keras_weights`] of a file's bytes (`path` names it in errors).
    pub(crate) fn keras_weights_from_bytes(
        &self,
        bytes: &[u8],
        path: &Path,
    ) -> Result<Vec<Tensor>> {
        let bad = |reason: String| Error::ForeignModelFile {
            path: path.to_path_buf(),
            format: FORMAT,
            reason,
        };
        let file =
            File::from_bytes(bytes.to_vec()).map_err(|e| bad(format!("not an HDF5 file: {e}")))?;
        let layout = self.keras_layout()?;
        let mut found = BTreeSet::new();
        collect_datasets(&file, "layers", &mut found).map_err(|e| bad(e.to_string()))?;
        let expected: BTreeSet<String> = layout.vars.iter().map(|v| v.path.clone()).collect();
        if let Some(extra) = found.difference(&expected).next() {
            return Err(bad(format!(
                "it holds {extra}, which this model has no variable for (a file of another model? this model's are {})",
                list(&expected)
            )));
        }
        let mut tensors = Vec::new();
        for var in &layout.vars {
            let ds = file.dataset(&var.path).map_err(|_| {
                bad(format!(
                    "it has no {} ({} of this model); it holds {}",
                    var.path,
                    var.name,
                    list(&found)
                ))
            })?;
            let what = |e: hdf5_pure::Error| bad(format!("{}: {e}", var.path));
            let dtype = ds.dtype().map_err(what)?;
            if dtype != DType::F32 {
                return Err(bad(format!("{} is {dtype:?}, not float32", var.path)));
            }
            let shape: Vec<usize> = ds
                .shape()
                .map_err(what)?
                .iter()
                .map(|&d| d as usize)
                .collect();
            if shape != var.keras_shape() {
                return Err(bad(format!(
                    "{} has shape {shape:?}; this model's {} needs {:?}",
                    var.path,
                    var.name,
                    var.keras_shape()
                )));
            }
            let data = ds.read_f32().map_err(what)?;
            let want: usize = var.shape.iter().product();
            if data.len() != want {
                return Err(bad(format!(
                    "{} holds {} values; its shape {shape:?} needs {want}",
                    var.path,
                    data.len()
                )));
            }
            let data = match var.transposed {
                true => transpose(&data, var.shape[1], var.shape[0]),
                false => data,
            };
            tensors.push(Tensor {
                name: var.name.clone(),
                shape: var.shape.clone(),
                data,
            });
        }
        Ok(tensors)
    }
}

/// A group of the file being built: its `name` attribute, datasets and sub-groups.
#[derive(Default)]
struct Node {
    name: Option<String>,
    data: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    children: BTreeMap<String, Node>,
}

impl Node {
    /// The group at `path` below this one, made if missing.
    fn at(&mut self, path: &str) -> &mut Node {
        path.split('/')
            .filter(|p| !p.is_empty())
            .fold(self, |node, part| {
                node.children.entry(part.into()).or_default()
            })
    }

    fn build(self, mut group: GroupBuilder) -> FinishedGroup {
        if let Some(name) = self.name {
            group.set_attr("name", AttrValue::String(name));
        }
        for (name, (shape, data)) in &self.data {
            let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
            group
                .create_dataset(name)
                .with_f32_data(data)
                .with_shape(&dims);
        }
        for (name, child) in self.children {
            let sub = group.create_group(&name);
            group.add_group(child.build(sub));
        }
        group.finish()
    }
}

/// Every dataset's path below `path` (none if there is no such group).
fn collect_datasets(
    file: &File,
    path: &str,
    out: &mut BTreeSet<String>,
) -> std::result::Result<(), hdf5_pure::Error> {
    let Ok(group) = file.group(path) else {
        return Ok(());
    };
    for d in group.datasets()? {
        out.insert(format!("{path}/{d}"));
    }
    for g in group.groups()? {
        collect_datasets(file, &format!("{path}/{g}"), out)?;
    }
    Ok(())
}

fn list(paths: &BTreeSet<String>) -> String {
    match paths.is_empty() {
        true => "no variables".into(),
        false => paths.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}
