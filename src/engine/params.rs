//! Parameters, gradients and optimizer slots on the GPU.
//!
//! All parameters of a model live in one flat buffer, each tensor starting at a multiple of 64
//! floats (256 bytes, the strictest storage-binding alignment), so that a kernel can bind one
//! tensor as a sub-range and the optimizer's update can treat the whole model as one array.
//! Gradients and each optimizer slot use buffers of the same layout.

use super::update::{Accumulate, accumulate_launches, clip_launches};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::layer::{Activation, LayerSpec};
use crate::optim::Optimizer;
use crate::state::{MAX_OPTIMIZER_SLOTS, Tensor};
use std::sync::{Arc, Mutex};

/// A model's first parameters.
pub(crate) enum InitialWeights {
    /// Given (every parameter tensor, in [`GpuParams::param_layout`]'s order).
    Given(Vec<Vec<f32>>),
    /// Glorot-uniform weights from this seed and zero biases, drawn on first use (see
    /// [`GpuParams::ensure_initialized`]).
    Glorot { seed: u64 },
}

/// Alignment of each tensor in the flat buffers, in f32 elements.
const ALIGN: usize = 64;

/// Where one layer's tensors live in the flat buffers.
#[derive(Debug, Clone)]
pub(crate) struct LayerLayout {
    /// The layer with its shapes.
    pub spec: LayerSpec,
    /// Input and output elements per sample.
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Activation,
    /// Its trainable tensors (none for layers without): name suffix, shape, first element.
    pub tensors: Vec<(&'static str, Vec<usize>, usize)>,
    /// Its non-trainable state (BatchNormalization's moving statistics), laid out after every
    /// layer's trainable tensors: the optimizer's update never reaches it.
    pub state: Vec<(&'static str, Vec<usize>, usize)>,
}

impl LayerLayout {
    /// First element and length of the tensor named `suffix`, if the layer has one.
    pub fn tensor(&self, suffix: &str) -> Option<(usize, usize)> {
        self.tensors
            .iter()
            .chain(&self.state)
            .find(|(name, _, _)| *name == suffix)
            .map(|(_, shape, first)| (*first, shape.iter().product()))
    }

    /// First element of the bias, if the layer has one.
    pub fn bias(&self) -> Option<usize> {
        self.tensor("bias").map(|(first, _)| first)
    }
}

/// The pieces `(first element, elements)` the flat buffers are bound in: whole when they fit
/// one storage binding, else runs of whole tensors (each with its padding) of at most one
/// binding, so that a tensor's gradient norm never spans two pieces. Fails, naming the layer,
/// if one tensor exceeds a binding.
fn pieces(gpu: &Gpu, layers: &[LayerLayout], len: usize) -> Result<Vec<(usize, usize)>> {
    let most = (gpu.parameter_piece_limit() / 4) as usize;
    if len <= most {
        return Ok(vec![(0, len)]);
    }
    // Every tensor's span: from its first element to the next tensor's (or the end).
    let starts: Vec<(usize, String)> = owners(layers)
        .flat_map(|(i, l)| {
            l.tensors
                .iter()
                .map(move |(name, _, first)| (*first, format!("layer {i}'s {}", plural(name))))
        })
        .collect();
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    for (k, (first, what)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(len, |(next, _)| *next);
        gpu.check_limit(what, (end - first) as u64 * 4, most as u64 * 4)?;
        match pieces.last_mut() {
            Some((start, n)) if end - *start <= most => *n = end - *start,
            _ => pieces.push((*first, end - first)),
        }
    }
    Ok(pieces)
}

/// The layers that own their tensors, with their indices: all but the second calls of a
/// shared layer, whose tensors are their owner's.
pub(crate) fn owners(layers: &[LayerLayout]) -> impl Iterator<Item = (usize, &LayerLayout)> {
    layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.spec.shares.is_none())
}

/// `weights`, `biases`: how errors name a layer's tensors.
fn plural(suffix: &str) -> String {
    match suffix {
        "bias" => "biases".into(),
        other => format!("{other}s"),
    }
}

/// A zeroed buffer of `len` floats, bound in pieces.
fn zeros(gpu: &Gpu, label: &str, len: usize) -> Result<wgpu::Buffer> {
    // A new buffer is zeroed (WebGPU requires it), so nothing needs uploading.
    gpu.storage_in_pieces(label, len as u64 * 4)
}

/// A model's trainable state on the GPU.
pub(crate) struct GpuParams {
    pub gpu: Arc<Gpu>,
    /// The model's layers, as given.
    pub specs: Vec<LayerSpec>,
    pub layers: Vec<LayerLayout>,
    /// Elements in each flat buffer.
    pub len: usize,
    /// Elements of the trainable tensors, which come first (the rest is state, see
    /// [`LayerLayout::state`]): what the optimizer's update, clipping, accumulation and the
    /// ranks' exchange cover.
    pub trainable_len: usize,
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    /// The update kernel's slots in binding order, with whether each holds state (a slot
    /// that does not is a 16-byte placeholder).
    pub slots: Vec<Slot>,
    pub optimizer: Box<dyn Optimizer>,
    /// The pieces `(first element, elements)` the flat buffers are bound in by the
    /// element-wise launches (update, accumulation): one unless a flat buffer exceeds a
    /// storage binding.
    pub chunks: Vec<(usize, usize)>,
    /// The update's uniform, one per piece of [`GpuParams::update_pieces`].
    pub(super) update_uniforms: Vec<wgpu::Buffer>,
    /// In a distributed fit, this rank's shard `(first element, elements)` of the trainable
    /// elements: the only part of the model its update covers and its optimizer slots hold
    /// (ZeRO stage 1, `engine/shard.rs`). `None`: the whole model.
    pub shard: Option<(usize, usize)>,
    /// The rank count of a distributed fit that failed with the optimizer slots sharded:
    /// this process holds only its shard of them, so they cannot be read or trained on
    /// until a whole set is written.
    pub slots_incomplete: Option<usize>,
    /// Counts the replacements of the slot buffers: launches bound to older buffers (a
    /// workspace's update) must be made again.
    pub slot_generation: u64,
    /// The gradient clipping launches before the update (none without clipping).
    pub clip: Vec<crate::gpu::Dispatch>,
    /// With gradient accumulation: the accumulator (saved with the slots), and the launches
    /// that add a micro-batch's gradients to it and that take their mean.
    pub accumulator: Option<Slot>,
    pub accumulate: Option<Accumulate>,
    /// Kept alive for the clipping launches' bind groups.
    _clip_buffers: Vec<wgpu::Buffer>,
    /// Micro-batches of the equivalent one-rank run per step: the rank count in a distributed
    /// fit (the learning rate schedule counts them), else 1.
    pub schedule_ranks: u64,
    /// The seed of Glorot weights not drawn yet (see [`GpuParams::ensure_initialized`]).
    pending_glorot: Mutex<Option<u64>>,
    /// Dropout's `(seed, epoch)` for the epoch being trained: the run's seed (which orders
    /// its data, recorded in its fingerprint) and the epoch, set as each epoch begins.
    pub masks: (u64, u64),
}

impl GpuParams {
    /// Lays out the buffers and uploads given weights; Glorot weights wait for first use.
    pub fn new(
        gpu: Arc<Gpu>,
        specs: &[LayerSpec],
        weights: InitialWeights,
        optimizer: Box<dyn Optimizer>,
    ) -> Result<Self> {
        let kernel = optimizer.kernel();
        let kept = optimizer.kept_slots().len() as u64;
        if kept > MAX_OPTIMIZER_SLOTS {
            // A restore refuses a larger state as damaged (Fingerprint::max_state_bytes).
            return Err(Error::config(
                "optimizer",
                format!(
                    "{} keeps {kept} slots per parameter; a backup holds at most \
                     {MAX_OPTIMIZER_SLOTS}",
                    optimizer.name()
                ),
            ));
        }
        let mut layers: Vec<LayerLayout> = Vec::new();
        let mut len = 0usize;
        for spec in specs {
            let mut tensors = Vec::new();
            match spec.shares {
                // The owner's tensors, where they are.
                Some(owner) => tensors = layers[owner].tensors.clone(),
                None => {
                    for (name, shape) in spec.tensors() {
                        let first = len;
                        len += shape.iter().product::<usize>().next_multiple_of(ALIGN);
                        tensors.push((name, shape, first));
                    }
                }
            }
            layers.push(LayerLayout {
                spec: spec.clone(),
                inputs: spec.inputs,
                outputs: spec.outputs,
                activation: spec.activation,
                tensors,
                state: Vec::new(),
            });
        }
        let trainable_len = len;
        for (layer, spec) in layers.iter_mut().zip(specs) {
            for (name, shape) in spec.state_tensors() {
                let first = len;
                len += shape.iter().product::<usize>().next_multiple_of(ALIGN);
                layer.state.push((name, shape, first));
            }
        }
        if trainable_len == 0 {
            return Err(Error::config(
                "model",
                "it has no parameters; add a Dense or Conv2D layer",
            ));
        }
        let chunks = pieces(&gpu, &layers, trainable_len)?;
        let params = gpu.storage_in_pieces("parameters", len as u64 * 4)?;
        let pending_glorot = match weights {
            InitialWeights::Given(weights) => {
                write_layers(&gpu, &params, &layers, &weights);
                None
            }
            InitialWeights::Glorot { seed } => Some(seed),
        };
        let grads = gpu.storage_in_pieces("gradients", len as u64 * 4)?;
        let mut slots = Vec::new();
        for name in kernel.slots {
            let kept = optimizer.keeps(name);
            let buffer = zeros(&gpu, name, if kept { len } else { 4 })?;
            let range = (0, if kept { len } else { 0 });
            slots.push(Slot {
                name,
                kept,
                buffer,
                range,
            });
        }
        let update_uniforms = update_uniforms(&gpu, optimizer.as_ref(), &chunks);
        let (clip, mut clip_buffers) =
            clip_launches(&gpu, optimizer.as_ref(), &layers, &grads, &chunks)?
                .map(|c| c.into_parts())
                .unwrap_or_default();
        let steps = optimizer.accumulation_steps();
        let (accumulator, accumulate) = if steps > 1 {
            let buffer = zeros(&gpu, "gradient accumulator", len)?;
            let (launches, uniforms) = accumulate_launches(&gpu, &grads, &buffer, &chunks, steps);
            clip_buffers.extend(uniforms);
            let slot = Slot {
                name: "gradient_accumulator",
                kept: true,
                buffer,
                range: (0, len),
            };
            (Some(slot), Some(launches))
        } else {
            (None, None)
        };
        Ok(GpuParams {
            gpu,
            specs: specs.to_vec(),
            layers,
            len,
            trainable_len,
            params,
            grads,
            slots,
            optimizer,
            chunks,
            update_uniforms,
            shard: None,
            slots_incomplete: None,
            slot_generation: 0,
            clip,
            accumulator,
            accumulate,
            _clip_buffers: clip_buffers,
            schedule_ranks: 1,
            pending_glorot: Mutex::new(pending_glorot),
            masks: (0, 0),
        })
    }

    /// Draws and uploads the Glorot weights if they are still pending. Everything that reads
    /// the parameters calls this first; replacing all of them ([`GpuParams::write_params`])
    /// cancels it, so a run that restores from a backup never draws them.
    pub fn ensure_initialized(&self) {
        // A poisoned lock still holds a valid Option: take it as it is.
        let mut pending = self
            .pending_glorot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(seed) = pending.take() {
            let weights = super::init::glorot_layers(seed, &self.specs);
            write_layers(&self.gpu, &self.params, &self.layers, &weights);
        }
    }

    /// Changes the learning rate used by the following updates.
    pub fn set_learning_rate(&mut self, lr: f32) {
        self.optimizer.set_learning_rate(lr);
        for (uniform, (_, n)) in self.update_uniforms.iter().zip(self.update_pieces()) {
            let bytes = self.optimizer.uniform(n);
            self.gpu.write(uniform, 0, &bytes);
        }
    }

    /// The names and element ranges of every parameter tensor, in order.
    pub fn param_layout(&self) -> Vec<(String, Vec<usize>, usize)> {
        let mut out = Vec::new();
        for (i, l) in owners(&self.layers) {
            for (name, shape, first) in l.tensors.iter().chain(&l.state) {
                out.push((format!("model.layers.{i}.{name}"), shape.clone(), *first));
            }
        }
        out
    }

    /// The slots that hold state, in binding order.
    pub fn kept_slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .filter(|s| s.kept)
            .chain(&self.accumulator)
    }

    /// The optimizer slots: `(name, shape, first element)`, the first element counted in the
    /// kept slots' buffers laid end to end (slot `k` starts at `k * len`).
    pub fn slot_layout(&self) -> Vec<(String, Vec<usize>, usize)> {
        let mut out = Vec::new();
        for (k, slot) in self.kept_slots().enumerate() {
            // The state has no optimizer slots.
            let trainable = self.param_layout().into_iter();
            for (name, shape, first) in trainable.filter(|t| t.2 < self.trainable_len) {
                let name = format!("optimizer.{name}.{}", slot.name);
                out.push((name, shape, k * self.len + first));
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
        self.ensure_initialized();
        let flat = self
            .gpu
            .read_f32(&self.params, 0, self.len, "reading parameters")?;
        Ok(Self::split(&flat, &self.param_layout()))
    }

    /// Checks that `tensors` would replace every parameter (see [`GpuParams::write_params`]).
    pub fn check_params(&self, tensors: &[Tensor], context: &str) -> Result<()> {
        place(&self.param_layout(), tensors, context).map(|_| ())
    }

    /// Replaces every parameter; `tensors` must hold each name once with the right shape.
    pub fn write_params(&self, tensors: &[Tensor], context: &str) -> Result<()> {
        let placed = place(&self.param_layout(), tensors, context)?;
        // Every parameter is replaced: pending initial weights are not needed any more.
        *self
            .pending_glorot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        for (t, first) in placed {
            self.gpu.write(
                &self.params,
                first as u64 * 4,
                bytemuck::cast_slice(&t.data),
            );
        }
        Ok(())
    }
}

/// Writes each parameter tensor straight to its place (one host copy, in wgpu's staging);
/// the alignment padding stays zero. `weights` are in [`GpuParams::param_layout`]'s order.
fn write_layers(gpu: &Gpu, params: &wgpu::Buffer, layers: &[LayerLayout], weights: &[Vec<f32>]) {
    let places = owners(layers).flat_map(|(_, l)| l.tensors.iter().chain(&l.state).map(|t| t.2));
    for (first, w) in places.zip(weights) {
        gpu.write(params, first as u64 * 4, bytemuck::cast_slice(w));
    }
}

/// Where each named tensor goes in a flat buffer laid out by `layout` (its first element),
/// checking that each is present once with the right shape and that no unknown name is
/// given. Nothing is written unless every tensor fits, so a bad set changes nothing.
pub(super) fn place<'t>(
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

/// One buffer of an optimizer slot.
pub(crate) struct Slot {
    /// The slot's name, e.g. `momentum`.
    pub name: &'static str,
    /// Whether it holds state (else it is a placeholder the kernel binds but never reads).
    pub kept: bool,
    pub buffer: wgpu::Buffer,
    /// The elements `(first, count)` of the flat layout the buffer holds, from its start:
    /// all of them, or this rank's shard ([`GpuParams::shard`]); none for a placeholder.
    pub range: (usize, usize),
}

/// The update's uniforms, one per piece `(first, elements)` it covers.
pub(super) fn update_uniforms(
    gpu: &Gpu,
    optimizer: &dyn Optimizer,
    pieces: &[(usize, usize)],
) -> Vec<wgpu::Buffer> {
    pieces
        .iter()
        .map(|&(_, n)| gpu.uniform_bytes("optimizer", &optimizer.uniform(n)))
        .collect()
}
