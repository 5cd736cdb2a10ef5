//! Host side of the WGSL kernels in `shaders/`: bind group layouts and pipelines (their
//! parameter structs are in `params.rs`), and one recorded dispatch ([`Dispatch`]).
//!
//! | kernel        | shader                   | entry point |
//! |---------------|--------------------------|-------------|
//! | matmul        | `shaders/matmul.wgsl`     | `main`      |
//! | matmul_small  | `shaders/matmul.wgsl`     | `small`     |
//! | matmul_blocked| `shaders/matmul.wgsl`     | `blocked`   |
//! | matmul_nn     | `shaders/matmul_vec4.wgsl`| `nn`        |
//! | matmul_nt     | `shaders/matmul_vec4.wgsl`| `nt`        |
//! | matmul_tn     | `shaders/matmul_vec4.wgsl`| `tn`        |
//! | matmul_sub_nn | `shaders/matmul_subgroup.wgsl` | `nn`   |
//! | matmul_sub_nt | `shaders/matmul_subgroup.wgsl` | `nt`   |
//! | matmul_sub_tn | `shaders/matmul_subgroup.wgsl` | `tn`   |
//! | matmul_sub_an | `shaders/matmul_subgroup.wgsl` | `an`   |
//! | matmul_gpu    | `shaders/matmul_gpu.wgsl` | `main`      |
//! | act_backward  | `shaders/activation.wgsl` | `backward`  |
//! | act_backward4 | `shaders/activation.wgsl` | `backward4` |
//! | loss_grad     | `shaders/loss.wgsl`       | `loss_grad` |
//! | loss_grad_wide| `shaders/loss.wgsl`       | `loss_grad_wide` |
//! | loss_reduce   | `shaders/loss.wgsl`       | `reduce`    |
//! | loss_sample_means | `shaders/loss.wgsl`   | `sample_means` |
//! | loss_fused    | `shaders/loss.wgsl`       | `loss_grad_reduce` |
//! | gather        | `shaders/gather.wgsl`     | `main`      |
//! | gather4       | `shaders/gather.wgsl`     | `main4`     |
//! | an optimizer's update | its `UpdateKernel` (`shaders/sgd.wgsl`, …) | `main` |

use super::bindings::{
    AccumulateBindings, ActBackwardBindings, ClipBindings, GatherBindings, LossFusedBindings,
    LossGradBindings, LossReduceBindings, MatmulBindings, SampleMeansBindings, UpdateBindings,
};
use super::matmul::LazyMatmul;
use super::params::Batch;
use std::num::NonZeroU64;

/// Edge of the square tile of C one `matmul.wgsl` workgroup computes.
pub(crate) const MATMUL_TILE: usize = 64;

/// Parses a WGSL source into a module.
pub(super) fn module(device: &wgpu::Device, name: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

/// How a kernel sees one binding.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Uniform,
    /// A uniform read at a per-dispatch offset (the batch table).
    UniformDynamic,
    /// A uniform of at least this many bytes read at the same per-dispatch offset as the
    /// batch table (the step values).
    UniformDynamicOf(u64),
    Read,
    ReadWrite,
}

/// A compiled kernel and the layout of its bindings.
pub(crate) struct Kernel {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    bindings: Vec<u32>,
    /// Bindings read at a per-dispatch offset (at most two).
    dynamic: usize,
}

/// A buffer range bound to a kernel: `offset` and `size` in bytes (`None` = to the end).
#[derive(Clone, Copy)]
pub(crate) struct Slice<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: Option<u64>,
}

impl<'a> Slice<'a> {
    /// Whether this binding can be read as `array<vec4<f32>>` with exact indices: its offset
    /// and size are whole vec4s (a partial last vec4 would be out of bounds and read as zero).
    pub fn vec4_bindable(&self) -> bool {
        let size = self.size.unwrap_or(self.buffer.size() - self.offset);
        self.offset.is_multiple_of(16) && size.is_multiple_of(16)
    }

    /// The whole buffer.
    pub fn all(buffer: &'a wgpu::Buffer) -> Self {
        Slice {
            buffer,
            offset: 0,
            size: None,
        }
    }

    /// `len` f32 elements starting at element `first`.
    pub fn f32s(buffer: &'a wgpu::Buffer, first: usize, len: usize) -> Self {
        Slice {
            buffer,
            offset: first as u64 * 4,
            size: Some((len.max(1) as u64) * 4),
        }
    }
}

/// One kernel launch, ready to record: pipeline, bound buffers and the grid.
pub(crate) struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
    /// Bindings read at the batch's offset.
    dynamic: usize,
}

impl Dispatch {
    /// Records the launch; `batch` selects the batch-table entry for kernels that read one.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>, batch: u32) {
        pass.set_pipeline(&self.pipeline);
        if self.dynamic > 0 {
            let offset = (batch as u64 * Batch::STRIDE) as u32;
            pass.set_bind_group(0, &self.bind_group, &[offset; 2][..self.dynamic]);
        } else {
            pass.set_bind_group(0, &self.bind_group, &[]);
        }
        pass.dispatch_workgroups(self.groups.0, self.groups.1, 1);
    }
}

/// A 1-D grid of `items` invocations in workgroups of `size`, folded into two dimensions when
/// it exceeds the 65 535 workgroups one dimension allows (kernels rebuild the flat index).
pub(crate) fn grid(items: usize, size: usize) -> (u32, u32) {
    let groups = items.div_ceil(size).max(1);
    if groups <= 65_535 {
        (groups as u32, 1)
    } else {
        (65_535, groups.div_ceil(65_535) as u32)
    }
}

impl Kernel {
    fn new(
        device: &wgpu::Device,
        name: &str,
        source: &str,
        entry: &str,
        slots: &[(u32, Slot)],
    ) -> Self {
        Self::from_module(device, name, &module(device, name, source), entry, slots)
    }

    /// [`Kernel::new`] on a module already parsed (several entry points of a large file).
    pub(super) fn from_module(
        device: &wgpu::Device,
        name: &str,
        module: &wgpu::ShaderModule,
        entry: &str,
        slots: &[(u32, Slot)],
    ) -> Self {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
            .iter()
            .map(|&(binding, slot)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match slot {
                    Slot::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Slot::UniformDynamic => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: NonZeroU64::new(std::mem::size_of::<Batch>() as u64),
                    },
                    Slot::UniformDynamicOf(bytes) => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: NonZeroU64::new(bytes),
                    },
                    Slot::Read | Slot::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: matches!(slot, Slot::Read),
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(name),
            entries: &entries,
        });
        let dynamic = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::UniformDynamic | Slot::UniformDynamicOf(_)))
            .count();
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(name),
            layout: Some(&pipeline_layout),
            module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        Kernel {
            pipeline,
            layout,
            bindings: slots.iter().map(|s| s.0).collect(),
            dynamic,
        }
    }

    /// Binds `buffers` (in the order of the kernel's bindings) and fixes the grid.
    pub fn dispatch(
        &self,
        device: &wgpu::Device,
        buffers: &[Slice<'_>],
        groups: (u32, u32),
    ) -> Dispatch {
        assert_eq!(
            buffers.len(),
            self.bindings.len(),
            "binding count of a kernel"
        );
        let entries: Vec<wgpu::BindGroupEntry> = self
            .bindings
            .iter()
            .zip(buffers)
            .map(|(&binding, s)| wgpu::BindGroupEntry {
                binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: s.buffer,
                    offset: s.offset,
                    size: s.size.and_then(NonZeroU64::new),
                }),
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &entries,
        });
        Dispatch {
            pipeline: self.pipeline.clone(),
            bind_group,
            groups,
            dynamic: 0,
        }
    }

    /// Like [`Kernel::dispatch`] for kernels whose first binding is the batch table.
    pub fn dispatch_per_batch(
        &self,
        device: &wgpu::Device,
        buffers: &[Slice<'_>],
        groups: (u32, u32),
    ) -> Dispatch {
        Dispatch {
            dynamic: self.dynamic,
            ..self.dispatch(device, buffers, groups)
        }
    }
}

/// Every kernel wgfit uses, compiled for one device.
pub(crate) struct Kernels {
    pub matmul: Kernel,
    pub matmul_small: Kernel,
    pub matmul_blocked: Kernel,
    /// The register-blocked variants of `matmul` for CPU adapters, one per operand layout.
    pub matmul_nn: Kernel,
    pub matmul_nt: Kernel,
    pub matmul_tn: Kernel,
    /// The subgroup-broadcast variants for CPU adapters whose subgroup is one 8-lane
    /// workgroup (see `matmul_subgroup.wgsl`); `None` elsewhere.
    pub matmul_sub: Option<LazyMatmul>,
    /// The register-blocked 128×128 tiles (see `matmul_gpu.wgsl`), compiled on first use;
    /// `None` on devices whose limits it does not fit.
    pub matmul_gpu: Option<LazyMatmul>,
    pub act_backward: Kernel,
    /// `act_backward` four columns at a time (see [`Kernels::act_backward_dispatch`]).
    pub act_backward4: Kernel,
    pub loss_grad: Kernel,
    /// `loss_grad` with one workgroup per row, for rows wider than [`WIDE_LOSS_COLS`](super::params::WIDE_LOSS_COLS)
    /// (see [`Kernels::loss_grad_dispatch`]).
    pub loss_grad_wide: Kernel,
    pub loss_reduce: Kernel,
    /// Sequences: each sample's mean over its tokens' losses, before `loss_reduce`.
    pub loss_sample_means: Kernel,
    /// `loss_grad`, `loss_reduce` and the last layer's `act_backward` in one launch, for
    /// batches of at most [`FUSED_LOSS_ROWS`].
    pub loss_fused: Kernel,
    pub gather: Kernel,
    /// `gather` four floats at a time (see [`Kernels::gather_dispatch`]).
    pub gather4: Kernel,
    /// `accumulate.wgsl`: a micro-batch's gradients into the accumulator, and their mean.
    pub accumulate_add: Kernel,
    pub accumulate_average: Kernel,
    /// `clip.wgsl`'s squares per 64-element block, squared norm per tensor, and its scaling
    /// of the gradients.
    pub clip_blocks: Kernel,
    pub clip_norms: Kernel,
    pub clip_scale: Kernel,
    /// Optimizers' update kernels by name, compiled on first use.
    update: std::sync::Mutex<Vec<(&'static str, std::sync::Arc<Kernel>)>>,
    /// The layer kernels (`layer_kernels.rs`), compiled on first use.
    pub(super) layer_kernels:
        std::sync::Mutex<Vec<(super::layer_kernels::LayerKernel, std::sync::Arc<Kernel>)>>,
}

impl Kernels {
    /// Compiles every kernel; `subgroup_matmul` adds those of `matmul_subgroup.wgsl`, which
    /// need the `SUBGROUP` feature and 8-lane subgroups, and `gpu_tiles` that of
    /// `matmul_gpu.wgsl`, which needs more workgroup memory than some devices have (both
    /// compiled on first use).
    pub fn new(device: &wgpu::Device, subgroup_matmul: bool, gpu_tiles: bool) -> Self {
        let matmul = &matmul_source!("matmul.wgsl");
        let matmul_vec4 = &matmul_source!("matmul_vec4.wgsl");
        let activation = &super::with_activations(include_str!("../../shaders/activation.wgsl"));
        let act_slots = ActBackwardBindings::LAYOUT;
        let loss = &super::with_activations(include_str!("../../shaders/loss.wgsl"));
        let gather = include_str!("../../shaders/gather.wgsl");
        let gather_slots = GatherBindings::LAYOUT;
        let clip = include_str!("../../shaders/clip.wgsl");
        let accumulate = include_str!("../../shaders/accumulate.wgsl");
        let acc_slots = AccumulateBindings::LAYOUT;
        let matmul_slots = MatmulBindings::LAYOUT;
        Kernels {
            matmul: Kernel::new(device, "matmul", matmul, "main", matmul_slots),
            matmul_small: Kernel::new(device, "matmul_small", matmul, "small", matmul_slots),
            matmul_blocked: Kernel::new(device, "matmul_blocked", matmul, "blocked", matmul_slots),
            matmul_nn: Kernel::new(device, "matmul_nn", matmul_vec4, "nn", matmul_slots),
            matmul_nt: Kernel::new(device, "matmul_nt", matmul_vec4, "nt", matmul_slots),
            matmul_tn: Kernel::new(device, "matmul_tn", matmul_vec4, "tn", matmul_slots),
            matmul_sub: subgroup_matmul.then(LazyMatmul::subgroup),
            matmul_gpu: gpu_tiles.then(LazyMatmul::gpu_tiles),
            act_backward: Kernel::new(device, "act_backward", activation, "backward", act_slots),
            act_backward4: Kernel::new(device, "act_backward4", activation, "backward4", act_slots),
            loss_grad: Kernel::new(
                device,
                "loss_grad",
                loss,
                "loss_grad",
                LossGradBindings::LAYOUT,
            ),
            loss_grad_wide: Kernel::new(
                device,
                "loss_grad_wide",
                loss,
                "loss_grad_wide",
                LossGradBindings::LAYOUT,
            ),
            loss_reduce: Kernel::new(
                device,
                "loss_reduce",
                loss,
                "reduce",
                LossReduceBindings::LAYOUT,
            ),
            loss_sample_means: Kernel::new(
                device,
                "loss_sample_means",
                loss,
                "sample_means",
                SampleMeansBindings::LAYOUT,
            ),
            loss_fused: Kernel::new(
                device,
                "loss_fused",
                loss,
                "loss_grad_reduce",
                LossFusedBindings::LAYOUT,
            ),
            gather: Kernel::new(device, "gather", gather, "main", gather_slots),
            gather4: Kernel::new(device, "gather4", gather, "main4", gather_slots),
            accumulate_add: Kernel::new(device, "accumulate_add", accumulate, "add", acc_slots),
            accumulate_average: Kernel::new(
                device,
                "accumulate_average",
                accumulate,
                "average",
                acc_slots,
            ),
            clip_blocks: Kernel::new(device, "clip_blocks", clip, "blocks", ClipBindings::LAYOUT),
            clip_norms: Kernel::new(device, "clip_norms", clip, "norms", ClipBindings::LAYOUT),
            clip_scale: Kernel::new(device, "clip_scale", clip, "scale", ClipBindings::LAYOUT),
            update: Default::default(),
            layer_kernels: Default::default(),
        }
    }

    /// The update kernel of `optimizer` (see [`crate::optim::UpdateKernel`] for its
    /// bindings), compiled once per device.
    pub fn update(
        &self,
        device: &wgpu::Device,
        optimizer: &dyn crate::optim::Optimizer,
    ) -> std::sync::Arc<Kernel> {
        let mut compiled = self
            .update
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let name = optimizer.name();
        if let Some((_, kernel)) = compiled.iter().find(|(n, _)| *n == name) {
            return kernel.clone();
        }
        let source = optimizer.kernel();
        let slots = UpdateBindings::layout(source.slots.len());
        let kernel = std::sync::Arc::new(Kernel::new(device, name, source.source, "main", &slots));
        compiled.push((name, kernel.clone()));
        kernel
    }
}
