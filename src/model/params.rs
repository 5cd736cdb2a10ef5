//! Parameters, gradients and optimizer slots on the GPU.
//!
//! All parameters of a model live in one flat buffer, each tensor starting at a multiple of 64
//! floats (256 bytes, the strictest storage-binding alignment), so that a kernel can bind one
//! tensor as a sub-range and the SGD update can treat the whole model as one array. Gradients
//! and momentum use the same layout.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::{Kernels, Slice};
use crate::model::Activation;
use crate::optim::Sgd;
use crate::state::Tensor;
use std::sync::Arc;

/// Alignment of each tensor in the flat buffers, in f32 elements.
const ALIGN: usize = 64;

/// Where one layer's tensors live in the flat buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerLayout {
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Activation,
    /// First element of the weight `[outputs, inputs]`.
    pub weight: usize,
    /// First element of the bias `[outputs]`.
    pub bias: usize,
}

/// A model's trainable state on the GPU.
pub(crate) struct GpuParams {
    pub gpu: Arc<Gpu>,
    pub layers: Vec<LayerLayout>,
    /// Elements in each flat buffer.
    pub len: usize,
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    /// Momentum slot; a 16-byte placeholder when the optimizer keeps none.
    pub momentum: wgpu::Buffer,
    pub optimizer: Sgd,
    sgd_params: wgpu::Buffer,
    pub sgd: crate::gpu::Dispatch,
}

impl GpuParams {
    /// Lays out and uploads `weights` (per layer: weight, bias).
    pub fn new(
        gpu: Arc<Gpu>,
        shapes: &[(usize, usize, Activation)],
        weights: &[(Vec<f32>, Vec<f32>)],
        optimizer: Sgd,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut len = 0usize;
        for &(inputs, outputs, activation) in shapes {
            let weight = len;
            len += (inputs * outputs).next_multiple_of(ALIGN);
            let bias = len;
            len += outputs.next_multiple_of(ALIGN);
            layers.push(LayerLayout {
                inputs,
                outputs,
                activation,
                weight,
                bias,
            });
        }
        // Each tensor goes straight to its place (one host copy, in wgpu's staging); the
        // alignment padding stays zero.
        let params = gpu.storage("parameters", len as u64 * 4)?;
        for (layer, (w, b)) in layers.iter().zip(weights) {
            gpu.write(&params, layer.weight as u64 * 4, bytemuck::cast_slice(w));
            gpu.write(&params, layer.bias as u64 * 4, bytemuck::cast_slice(b));
        }
        let grads = gpu.storage("gradients", len as u64 * 4)?;
        let momentum_len = if optimizer.momentum > 0.0 { len } else { 4 };
        let momentum = gpu.upload("momentum", &vec![0f32; momentum_len])?;
        let sgd_params = gpu.uniform(
            "sgd parameters",
            &crate::gpu::SgdParams::of(&optimizer, len),
        );
        let sgd = sgd_dispatch(
            &gpu.device,
            &gpu.kernels,
            &sgd_params,
            &params,
            &grads,
            &momentum,
            len,
        );
        Ok(GpuParams {
            gpu,
            layers,
            len,
            params,
            grads,
            momentum,
            optimizer,
            sgd_params,
            sgd,
        })
    }

    /// Changes the learning rate used by the following updates.
    pub fn set_learning_rate(&mut self, lr: f32) {
        self.optimizer.learning_rate = lr;
        let value = crate::gpu::SgdParams::of(&self.optimizer, self.len);
        self.gpu
            .write(&self.sgd_params, 0, bytemuck::bytes_of(&value));
    }

    /// The names and element ranges of every parameter tensor, in order.
    pub fn param_layout(&self) -> Vec<(String, Vec<usize>, usize)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.push((
                format!("model.layers.{i}.weight"),
                vec![l.outputs, l.inputs],
                l.weight,
            ));
            out.push((format!("model.layers.{i}.bias"), vec![l.outputs], l.bias));
        }
        out
    }

    /// The optimizer slots: `(name, shape, first element)` into the slot buffer.
    pub fn slot_layout(&self) -> Vec<(String, Vec<usize>, usize)> {
        let mut out = Vec::new();
        for slot in self.optimizer.slot_names() {
            for (name, shape, first) in self.param_layout() {
                out.push((format!("optimizer.{name}.{slot}"), shape, first));
            }
        }
        out
    }

    /// Cuts a host copy of a flat buffer into named tensors.
    pub fn split(flat: &[f32], layout: &[(String, Vec<usize>, usize)]) -> Vec<Tensor> {
        layout
            .iter()
            .map(|(name, shape, first)| {
                let n: usize = shape.iter().product();
                Tensor {
                    name: name.clone(),
                    shape: shape.clone(),
                    data: flat[*first..*first + n].to_vec(),
                }
            })
            .collect()
    }

    /// Reads the parameters as named tensors (blocking).
    pub fn read_params(&self) -> Result<Vec<Tensor>> {
        let flat = self
            .gpu
            .read_f32(&self.params, 0, self.len, "reading parameters")?;
        Ok(Self::split(&flat, &self.param_layout()))
    }

    /// Reads the optimizer slots as named tensors (blocking).
    pub fn read_slots(&self) -> Result<Vec<Tensor>> {
        if self.optimizer.slot_names().is_empty() {
            return Ok(Vec::new());
        }
        let flat = self
            .gpu
            .read_f32(&self.momentum, 0, self.len, "reading optimizer slots")?;
        Ok(Self::split(&flat, &self.slot_layout()))
    }

    /// Replaces every parameter; `tensors` must hold each name once with the right shape.
    pub fn write_params(&self, tensors: &[Tensor], context: &str) -> Result<()> {
        for (t, first) in place(&self.param_layout(), tensors, context)? {
            self.gpu.write(
                &self.params,
                first as u64 * 4,
                bytemuck::cast_slice(&t.data),
            );
        }
        Ok(())
    }

    /// Replaces every optimizer slot (an empty list when the optimizer keeps none).
    pub fn write_slots(&self, tensors: &[Tensor], context: &str) -> Result<()> {
        let layout = self.slot_layout();
        if layout.is_empty() {
            if let Some(t) = tensors.first() {
                return Err(Error::config(
                    "optimizer state",
                    format!(
                        "`{}`{context} is a momentum slot, but this optimizer has no momentum",
                        t.name
                    ),
                ));
            }
            return Ok(());
        }
        for (t, first) in place(&layout, tensors, context)? {
            self.gpu.write(
                &self.momentum,
                first as u64 * 4,
                bytemuck::cast_slice(&t.data),
            );
        }
        Ok(())
    }
}

/// Where each named tensor goes in a flat buffer laid out by `layout` (its first element),
/// checking that each is present once with the right shape and that no unknown name is
/// given. Nothing is written unless every tensor fits, so a bad set changes nothing.
fn place<'t>(
    layout: &[(String, Vec<usize>, usize)],
    tensors: &'t [Tensor],
    context: &str,
) -> Result<Vec<(&'t Tensor, usize)>> {
    let mut placed = Vec::with_capacity(layout.len());
    for t in tensors {
        if !layout.iter().any(|(name, _, _)| *name == t.name) {
            return Err(Error::config(
                "tensors",
                format!("`{}`{context} is not a tensor of this model", t.name),
            ));
        }
    }
    for (name, shape, first) in layout {
        let mut matching = tensors.iter().filter(|t| t.name == *name);
        let t = matching.next().ok_or_else(|| Error::MissingTensor {
            name: name.clone(),
            context: context.to_string(),
        })?;
        if matching.next().is_some() {
            return Err(Error::config(
                "tensors",
                format!("`{name}`{context} appears twice"),
            ));
        }
        if t.shape != *shape || t.data.len() != shape.iter().product::<usize>() {
            return Err(Error::Shape {
                what: format!("{name}{context}"),
                expected: shape.clone(),
                got: t.shape.clone(),
            });
        }
        placed.push((t, *first));
    }
    Ok(placed)
}

fn sgd_dispatch(
    device: &wgpu::Device,
    kernels: &Kernels,
    uniform: &wgpu::Buffer,
    params: &wgpu::Buffer,
    grads: &wgpu::Buffer,
    momentum: &wgpu::Buffer,
    len: usize,
) -> crate::gpu::Dispatch {
    kernels.sgd.dispatch(
        device,
        &[
            Slice::all(uniform),
            Slice::all(params),
            Slice::all(grads),
            Slice::all(momentum),
        ],
        // One invocation per four parameters (see sgd.wgsl).
        crate::gpu::grid(len / 4, 256),
    )
}
