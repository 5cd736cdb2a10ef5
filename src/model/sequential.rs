//! `Sequential`: a stack of layers ([`Dense`], [`crate::Conv2D`], pooling, [`crate::Dropout`],
//! …) with Keras's `compile` / `fit` / `evaluate` / `predict`.

mod evaluate;
mod weights;

use crate::callbacks::Callback;
use crate::data::{Dataset, Targets};
use crate::engine::GpuParams;
use crate::engine::InitialWeights;
use crate::engine::{DataOn, Workspace};
use crate::error::{Error, Result};
use crate::fit::{FitOptions, FitSetup};
use crate::gpu::Gpu;
use crate::layer::{Activation, LayerSpec};
use crate::loss::Loss;
use crate::model::{Dense, Layer};
use crate::optim::Optimizer;
use crate::state::{Fingerprint, History};
use std::sync::Arc;

/// A model: inputs of one shape through a stack of layers.
pub struct Sequential {
    inputs: usize,
    input_shape: Vec<usize>,
    layers: Vec<Layer>,
    seed: u64,
    compiled: Option<Compiled>,
}

struct Compiled {
    loss: Loss,
    params: GpuParams,
    /// The training workspace of the last `fit`, kept for the next one on the same data and
    /// batch size (keyed by the data's SHA-256 and the batch size): a warm `fit` then uploads
    /// and binds nothing.
    workspace: Option<(WorkspaceKey, Workspace)>,
}

/// What a kept workspace was made for: the data's SHA-256, the batch size, where the data
/// lives, and this rank's share of each batch in a distributed fit.
type WorkspaceKey = (String, usize, DataOn, Option<crate::engine::Split>);

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("input_shape", &self.input_shape)
            .field("layers", &self.layers)
            .field("seed", &self.seed)
            .field("compiled", &self.compiled.is_some())
            .finish()
    }
}

impl Sequential {
    /// An empty model taking `inputs` features per sample (Keras `Input(shape=(inputs,))`).
    pub fn new(inputs: usize) -> Self {
        Self::with_input_shape(&[inputs])
    }

    /// An empty model taking samples of `shape` (Keras `Input(shape=…)`), e.g. `[28, 28, 1]`
    /// for images (`channels_last`); a data set's rows hold the samples flattened in that
    /// order.
    pub fn with_input_shape(shape: &[usize]) -> Self {
        Sequential {
            // A shape too large to multiply out fits no data, and compile refuses it by name.
            inputs: shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .unwrap_or(usize::MAX),
            input_shape: shape.to_vec(),
            layers: Vec::new(),
            seed: 0,
            compiled: None,
        }
    }

    /// A multilayer perceptron: `inputs` features through one [`Dense`] layer per entry of
    /// `widths`, the hidden layers with activation `hidden`, the last one linear (its outputs
    /// are the logits or values the loss takes).
    ///
    /// `Sequential::dense_stack(64, &[32, 10], Activation::Relu)` is
    /// `Sequential::new(64).add(Dense::new(32).activation(Activation::Relu)).add(Dense::new(10))`.
    pub fn dense_stack(inputs: usize, widths: &[usize], hidden: Activation) -> Self {
        let last = widths.len().saturating_sub(1);
        widths
            .iter()
            .enumerate()
            .fold(Sequential::new(inputs), |model, (i, &units)| {
                let layer = Dense::new(units);
                model.add(if i < last {
                    layer.activation(hidden)
                } else {
                    layer
                })
            })
    }

    /// Appends a layer (Keras's `model.add`): a [`Dense`], [`crate::Conv2D`], … . After
    /// `compile`, the model must be compiled again before it is used; the layers it had keep
    /// their weights, and the new ones are drawn as `compile` draws them.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Into<Layer>) -> Self {
        self.layers.push(layer.into());
        self
    }

    /// Sets the seed of the initial weights (default 0). Takes effect at `compile`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Input features per sample.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The shape of one input sample.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Outputs per sample (the last layer's; 0 for an empty model or one whose layers do not
    /// fit their inputs).
    pub fn outputs(&self) -> usize {
        self.specs()
            .ok()
            .and_then(|s| s.last().map(|l| l.outputs))
            .unwrap_or(0)
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Prepares the model for training on the process's shared GPU context: sets the loss and
    /// optimizer, and allocates the parameters. The first time they are Glorot-uniform weights
    /// from the seed and zero biases, drawn on first use (so a `fit` that restores every
    /// parameter from a backup never draws them); when compiled again, the current parameters.
    pub fn compile(&mut self, loss: Loss, optimizer: impl Optimizer + 'static) -> Result<()> {
        self.compile_on(Gpu::shared()?, loss, optimizer)
    }

    /// Like [`Sequential::compile`] on a given GPU context.
    pub fn compile_on(
        &mut self,
        gpu: Arc<Gpu>,
        loss: Loss,
        optimizer: impl Optimizer + 'static,
    ) -> Result<()> {
        optimizer.validate()?;
        if self.inputs == 0 || self.input_shape.is_empty() {
            return Err(Error::config(
                "model",
                "the input width is 0; pass the number of features to Sequential::new",
            ));
        }
        if self.layers.is_empty() {
            return Err(Error::config(
                "model",
                "it has no layers; add at least one Dense layer",
            ));
        }
        // A Dense layer's own check (0 units, or more than a shape can count), named.
        if let Some((i, reason)) = self.layers.iter().enumerate().find_map(|(i, l)| {
            let dense = *l.kind() == crate::LayerKind::Dense;
            dense.then(|| l.spec(&[1]).err().map(|e| (i, e))).flatten()
        }) {
            return Err(Error::config("model", format!("layer {i}: {reason}")));
        }
        let specs = self.specs()?;
        // Kernel grids cover at most 65 535 workgroups of 64 in one dimension.
        const MAX_WIDTH: usize = 65_535 * 64;
        if let Some((i, l)) = specs
            .iter()
            .enumerate()
            .find(|(_, l)| l.out_shape.last().is_some_and(|&u| u > MAX_WIDTH))
        {
            return Err(Error::config(
                "model",
                format!(
                    "layer {i} has {} units; at most {MAX_WIDTH} are supported",
                    l.out_shape.last().unwrap_or(&0)
                ),
            ));
        }
        if loss == Loss::CrossEntropy && self.outputs() < 2 {
            return Err(Error::config(
                "model",
                "cross-entropy needs at least 2 outputs (one per class)",
            ));
        }
        // Refuse a model the adapter cannot hold before allocating anything on the host.
        let owners = specs.iter().filter(|l| l.shares.is_none());
        let bytes = owners.fold(0u64, |sum, l| {
            let elems = l
                .tensors()
                .iter()
                .map(|(_, shape)| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)) + 64)
                .fold(0u64, u64::saturating_add);
            sum.saturating_add(elems.saturating_mul(4))
        });
        // (Bound in pieces: the largest buffer limits them, each layer the largest binding.)
        gpu.check_size_in_pieces("the model's parameters", bytes)?;
        let weights = match &self.compiled {
            Some(c) => {
                let mut kept: Vec<Vec<f32>> = c
                    .params
                    .read_params()?
                    .into_iter()
                    .map(|t| t.data)
                    .collect();
                // Layers added since: their first weights, as compile draws them.
                if specs.len() > c.params.specs.len() {
                    let drawn = crate::engine::glorot_layers(self.seed, &specs);
                    kept.extend(drawn.into_iter().skip(kept.len()));
                }
                InitialWeights::Given(kept)
            }
            // Drawn on first use: a fit that restores a backup never needs them.
            None => InitialWeights::Glorot { seed: self.seed },
        };
        let params = GpuParams::new(gpu, &specs, weights, Box::new(optimizer))?;
        self.compiled = Some(Compiled {
            loss,
            params,
            workspace: None,
        });
        Ok(())
    }

    fn compiled(&self) -> Result<&Compiled> {
        let c = self.compiled.as_ref().ok_or(Error::NotCompiled)?;
        Self::still_compiled(c, self.layers.len())?;
        Ok(c)
    }

    /// A model compiled before layers were added must be compiled again: its parameters on
    /// the GPU are those of the layers it had.
    fn still_compiled(c: &Compiled, layers: usize) -> Result<()> {
        let had = c.params.specs.len();
        if had == layers {
            return Ok(());
        }
        Err(Error::config(
            "model",
            format!(
                "{} layer(s) were added after compile (it had {had}): call compile again; \
                 the layers it had keep their weights",
                layers - had
            ),
        ))
    }

    /// The loss given to `compile`.
    pub fn loss(&self) -> Result<Loss> {
        Ok(self.compiled()?.loss)
    }

    /// The optimizer and its current hyper-parameters.
    pub fn optimizer(&self) -> Result<&dyn Optimizer> {
        Ok(self.compiled()?.params.optimizer.as_ref())
    }

    /// The adapter the model runs on.
    pub fn adapter(&self) -> Result<crate::gpu::AdapterSummary> {
        Ok(self.compiled()?.params.gpu.adapter().clone())
    }

    /// The record of the architecture that weights files and backups carry, unless the model
    /// is a stack of Dense layers on flat inputs (whose tensors and activations say it all).
    pub fn record(&self) -> Result<Option<crate::model::ModelRecord>> {
        let dense_stack = self.specs()?.iter().all(|l| {
            l.kind == crate::LayerKind::Dense && l.in_shape.len() == 1 && l.sources.is_empty()
        });
        Ok((!dense_stack).then(|| crate::model::ModelRecord {
            input_shape: self.input_shape.clone(),
            layers: self.layers.clone(),
        }))
    }

    /// Checks a data set against the model and loss before any GPU work.
    pub fn check_data(&self, data: &Dataset) -> Result<()> {
        let c = self.compiled()?;
        let loss = c.loss;
        data.check_model(self.inputs, self.outputs())?;
        let out_shape = c.params.specs.last().map_or(&[][..], |l| &l.out_shape[..]);
        super::model_checks::check_label_axes(data.targets(), out_shape)?;
        self.check_ids(data)?;
        let labels = matches!(data.targets(), Targets::Classes(_) | Targets::Tokens { .. });
        if loss == Loss::CrossEntropy && !labels {
            return Err(Error::InvalidData {
                path: None,
                reason: "cross-entropy needs integer class labels, but the targets are floats"
                    .into(),
            });
        }
        Ok(())
    }

    /// What identifies a run of this model on `data` with `options` (see [`Fingerprint`]).
    pub fn fingerprint(&self, data: &Dataset, options: &FitOptions) -> Result<Fingerprint> {
        let c = self.compiled()?;
        let o = &c.params.optimizer;
        let specs = self.specs()?;
        let record = self.record()?;
        let tensors = match record {
            None => Vec::new(),
            Some(_) => c
                .params
                .param_layout()
                .into_iter()
                .map(|(name, shape, _)| (name, shape))
                .collect(),
        };
        Ok(Fingerprint {
            layers: specs.iter().map(LayerSpec::fingerprint).collect(),
            tensors,
            model: record,
            loss: c.loss.name().to_string(),
            optimizer: o.fingerprint(),
            batch_size: options.batch_size,
            shuffle: options.shuffle,
            data_len: data.len(),
            data_sha256: data
                .content_hash()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            seed: options.seed,
            ranks: Some(options.distributed.as_ref().map_or(1, |g| g.size())),
            accumulation: Some(o.accumulation_steps()),
        })
    }

    /// Trains the model on `data` (Keras's `fit(x, y, ...)`; a [`Dataset`] holds `x` and `y`).
    /// Returns the History of the whole run, including epochs restored from a backup.
    ///
    /// In a distributed fit ([`FitOptions::distributed`]) an error on any rank ends every
    /// rank's `fit`: the failing rank's with its error, the others' with
    /// [`Error::RankFailed`] naming it.
    pub fn fit(
        &mut self,
        data: &Dataset,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let group = options.distributed.clone();
        let result = self.fit_this_rank(data, options, callbacks);
        match group {
            Some(group) => group.finish(result),
            None => result,
        }
    }

    /// [`Sequential::fit`] on this rank.
    fn fit_this_rank(
        &mut self,
        data: &Dataset,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        self.check_data(data)?;
        options.validate(data.len())?;
        // Started as one of N copies by an MPI launcher, a build without MPI would train N
        // independent models racing on one backup.
        #[cfg(not(feature = "mpi"))]
        if let Some(world) = crate::distributed::launcher_world() {
            return Err(Error::LauncherWithoutMpi {
                variable: world.variable.to_string(),
                size: world.size,
            });
        }
        if let Some(fraction) = options.validation_split {
            let (train, validation) = data.split_tail(fraction)?;
            let options = FitOptions {
                validation_data: Some(validation),
                validation_split: None,
                ..options
            };
            return self.fit_this_rank(&train, options, callbacks);
        }
        if let Some(v) = &options.validation_data {
            self.check_data(v)?;
        }
        let fingerprint = self.fingerprint(data, &options)?;
        let layers = self.layers.len();
        let c = self.compiled.as_mut().ok_or(Error::NotCompiled)?;
        Self::still_compiled(c, layers)?;
        // Distributed: the ranks agree on the run before anything else, then each takes its
        // share of every batch.
        let split = match &options.distributed {
            Some(_)
                if c.params.layers.iter().any(|l| {
                    matches!(l.spec.kind, crate::LayerKind::BatchNormalization { .. })
                }) =>
            {
                return Err(Error::config(
                    "distributed fit",
                    "BatchNormalization would compute its statistics over each rank's share of a batch, so N ranks would not train as one rank does; train this model on one rank",
                ));
            }
            Some(group) => {
                let adapter = c.params.gpu.adapter().to_string();
                let run = crate::distributed::ranks_must_share(&options, callbacks, &adapter);
                crate::distributed::check_ranks_agree(group, &fingerprint, &run)?;
                crate::distributed::check_split(options.batch_size, group.size(), data.len())?;
                Some(crate::engine::Split {
                    rank: group.rank(),
                    ranks: group.size(),
                })
            }
            None => None,
        };
        let key = (
            fingerprint.data_sha256.clone(),
            options.batch_size,
            options.data_on,
            split,
        );
        if c.workspace.as_ref().map(|(k, _)| k) != Some(&key) {
            c.workspace = None;
            let work = Workspace::new_split(
                &c.params,
                data,
                options.batch_size,
                c.loss,
                options.data_on,
                split,
            )?;
            c.workspace = Some((key, work));
        }
        let Some((_, work)) = c.workspace.as_mut() else {
            unreachable!("the workspace was just made");
        };
        // A distributed fit replaces the slot buffers the update binds.
        work.refresh_update(&c.params);
        crate::fit::fit(
            &mut c.params,
            work,
            FitSetup {
                options,
                fingerprint,
                loss: c.loss,
            },
            callbacks,
        )
    }
}
