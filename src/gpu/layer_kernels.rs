//! Host side of the layer kernels beyond Dense's matmuls: `shaders/conv2d.wgsl`,
//! `shaders/pool2d.wgsl`, `shaders/dropout.wgsl` and `shaders/elementwise.wgsl` — their
//! bindings, and pipelines compiled on first use (a Dense-only model never compiles them).
//! Their parameter structs are in `layer_dims.rs`.
//!
//! | kernel            | shader                    | entry point    |
//! |-------------------|---------------------------|----------------|
//! | ConvIm2col        | `shaders/conv2d.wgsl`     | `im2col`       |
//! | ConvReduce        | `shaders/conv2d.wgsl`     | `reduce`       |
//! | ConvCol2im        | `shaders/conv2d.wgsl`     | `col2im`       |
//! | ConvGemmForward   | `shaders/conv2d_gemm.wgsl`| `conv_forward` |
//! | ConvGemmKernelGrad| `shaders/conv2d_gemm.wgsl`| `conv_kernel_grad` |
//! | ConvGemmInputGrad | `shaders/conv2d_gemm.wgsl`| `conv_input_grad` |
//! | ConvGemmInputGradNarrow | `shaders/conv2d_gemm.wgsl` | `conv_input_grad_narrow` |
//! | ConvTiles         | `shaders/conv2d_gemm_tiles.wgsl` | `conv_tiles` |
//! | MaxForward        | `shaders/pool2d.wgsl`     | `max_forward`  |
//! | MaxBackward       | `shaders/pool2d.wgsl`     | `max_backward` |
//! | AvgForward        | `shaders/pool2d.wgsl`     | `avg_forward`  |
//! | AvgBackward       | `shaders/pool2d.wgsl`     | `avg_backward` |
//! | PoolZero          | `shaders/pool2d.wgsl`     | `zero`         |
//! | MaxScatter        | `shaders/pool2d.wgsl`     | `max_scatter`  |
//! | Dropout           | `shaders/dropout.wgsl`    | `main`         |
//! | PhiloxWords       | `shaders/dropout.wgsl`    | `philox_words` |
//! | ActForward        | `shaders/elementwise.wgsl`| `forward`      |
//! | ActBackward       | `shaders/elementwise.wgsl`| `backward`     |
//! | ActInPlace        | `shaders/elementwise.wgsl`| `in_place`     |
//! | Add               | `shaders/elementwise.wgsl`| `add`          |
//! | Accumulate        | `shaders/elementwise.wgsl`| `accumulate`   |
//! | Copy              | `shaders/elementwise.wgsl`| `copy`         |
//! | SoftmaxForward    | `shaders/softmax.wgsl`    | `forward`      |
//! | SoftmaxBackward   | `shaders/softmax.wgsl`    | `backward`     |
//! | EmbeddingForward  | `shaders/embedding.wgsl`  | `forward`      |
//! | EmbeddingGrad     | `shaders/embedding.wgsl`  | `table_grad`   |
//! | PositionsForward  | `shaders/embedding.wgsl`  | `positions_forward` |
//! | PositionsGrad     | `shaders/embedding.wgsl`  | `positions_grad` |
//! | WeightDecay       | `shaders/weight_decay.wgsl` | `main`       |
//! | AttentionForward  | `shaders/attention.wgsl`  | `forward`      |
//! | AttentionScoresGrad | `shaders/attention.wgsl` | `scores_grad` |
//! | AttentionKeyValueGrad | `shaders/attention.wgsl` | `key_value_grad` |
//! | AttentionForward4 | `shaders/attention.wgsl`  | `forward4`     |
//! | AttentionScoresGrad4 | `shaders/attention.wgsl` | `scores_grad4` |
//! | AttentionKeyValueGrad4 | `shaders/attention.wgsl` | `key_value_grad4` |
//! | NormSumPartials   | `shaders/batchnorm.wgsl`  | `sum_partials` |
//! | NormMean          | `shaders/batchnorm.wgsl`  | `mean`         |
//! | NormSquarePartials| `shaders/batchnorm.wgsl`  | `square_partials` |
//! | NormVariance      | `shaders/batchnorm.wgsl`  | `variance`     |
//! | Normalize         | `shaders/batchnorm.wgsl`  | `normalize`    |
//! | NormalizeMoving   | `shaders/batchnorm.wgsl`  | `normalize_moving` |
//! | NormGradPartials  | `shaders/batchnorm.wgsl`  | `grad_partials` |
//! | NormGradSums      | `shaders/batchnorm.wgsl`  | `grad_sums`    |
//! | NormInputGrad     | `shaders/batchnorm.wgsl`  | `input_grad`   |
//! | LayerNormForward  | `shaders/layernorm.wgsl`  | `forward`      |
//! | LayerNormGradPartials | `shaders/layernorm.wgsl` | `grad_partials` |
//! | LayerNormGradSums | `shaders/layernorm.wgsl`  | `grad_sums`    |
//! | LayerNormInputGrad| `shaders/layernorm.wgsl`  | `input_grad`   |

use super::kernels::{Kernel, Kernels, Slot};
use std::sync::Arc;

pub(crate) use super::layer_dims::{
    AttentionDims, CONV_CHUNK, ConvDims, DecayDims, DropoutDims, ElementDims, EmbeddingDims,
    LayerNormDims, NormDims, PoolDims, SoftmaxDims,
};

/// Bytes of the step values entry `dropout.wgsl` reads: the optimizer's 16, then the
/// epoch and the run's seed (see `GpuParams::write_step_values`).
const STEP_VALUES_READ: u64 = 32;

/// A layer kernel: which entry point of which shader, with its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerKernel {
    ConvIm2col,
    ConvReduce,
    ConvCol2im,
    ConvGemmForward,
    ConvGemmKernelGrad,
    ConvGemmInputGrad,
    ConvGemmInputGradNarrow,
    ConvTiles,
    MaxForward,
    MaxBackward,
    AvgForward,
    AvgBackward,
    PoolZero,
    MaxScatter,
    Dropout,
    PhiloxWords,
    ActForward,
    ActBackward,
    ActInPlace,
    Add,
    Accumulate,
    Copy,
    SoftmaxForward,
    SoftmaxBackward,
    EmbeddingForward,
    EmbeddingGrad,
    PositionsForward,
    PositionsGrad,
    WeightDecay,
    AttentionForward,
    AttentionScoresGrad,
    AttentionKeyValueGrad,
    AttentionForward4,
    AttentionScoresGrad4,
    AttentionKeyValueGrad4,
    NormSumPartials,
    NormMean,
    NormSquarePartials,
    NormVariance,
    Normalize,
    NormalizeMoving,
    NormGradPartials,
    NormGradSums,
    NormInputGrad,
    LayerNormForward,
    LayerNormGradPartials,
    LayerNormGradSums,
    LayerNormInputGrad,
}

impl LayerKernel {
    fn source(self) -> String {
        use LayerKernel::*;
        match self {
            ConvIm2col | ConvReduce | ConvCol2im => concat!(
                include_str!("../../shaders/conv2d_dims.wgsl"),
                include_str!("../../shaders/conv2d.wgsl")
            )
            .to_string(),
            // The block helpers of the subgroup matmul kernels, then the conv's own loads.
            ConvGemmForward | ConvGemmKernelGrad | ConvGemmInputGrad | ConvGemmInputGradNarrow => {
                super::unroll::unroll(&super::with_activations(concat!(
                    include_str!("../../shaders/matmul_common.wgsl"),
                    include_str!("../../shaders/matmul_subgroup.wgsl"),
                    include_str!("../../shaders/conv2d_dims.wgsl"),
                    include_str!("../../shaders/conv2d_gemm.wgsl")
                )))
            }
            ConvTiles => super::with_activations(concat!(
                include_str!("../../shaders/matmul_common.wgsl"),
                include_str!("../../shaders/conv2d_dims.wgsl"),
                include_str!("../../shaders/conv2d_gemm_tiles.wgsl")
            )),
            MaxForward | MaxBackward | AvgForward | AvgBackward | PoolZero | MaxScatter => {
                include_str!("../../shaders/pool2d.wgsl").to_string()
            }
            Dropout | PhiloxWords => include_str!("../../shaders/dropout.wgsl").to_string(),
            ActForward | ActBackward | ActInPlace | Add | Accumulate | Copy => {
                super::with_activations(include_str!("../../shaders/elementwise.wgsl"))
            }
            NormSumPartials | NormMean | NormSquarePartials | NormVariance | Normalize
            | NormalizeMoving | NormGradPartials | NormGradSums | NormInputGrad => {
                include_str!("../../shaders/batchnorm.wgsl").to_string()
            }
            LayerNormForward | LayerNormGradPartials | LayerNormGradSums | LayerNormInputGrad => {
                include_str!("../../shaders/layernorm.wgsl").to_string()
            }
            EmbeddingForward | EmbeddingGrad | PositionsForward | PositionsGrad => {
                include_str!("../../shaders/embedding.wgsl").to_string()
            }
            AttentionForward
            | AttentionScoresGrad
            | AttentionKeyValueGrad
            | AttentionForward4
            | AttentionScoresGrad4
            | AttentionKeyValueGrad4 => include_str!("../../shaders/attention.wgsl").to_string(),
            WeightDecay => include_str!("../../shaders/weight_decay.wgsl").to_string(),
            SoftmaxForward | SoftmaxBackward => {
                include_str!("../../shaders/softmax.wgsl").to_string()
            }
        }
    }

    fn entry(self) -> &'static str {
        use LayerKernel::*;
        match self {
            ActForward => "forward",
            ConvIm2col => "im2col",
            ConvReduce => "reduce",
            ConvCol2im => "col2im",
            ConvGemmForward => "conv_forward",
            ConvGemmKernelGrad => "conv_kernel_grad",
            ConvGemmInputGrad => "conv_input_grad",
            ConvGemmInputGradNarrow => "conv_input_grad_narrow",
            ConvTiles => "conv_tiles",
            MaxForward => "max_forward",
            MaxBackward => "max_backward",
            AvgForward => "avg_forward",
            AvgBackward => "avg_backward",
            PoolZero => "zero",
            MaxScatter => "max_scatter",
            Dropout => "main",
            PhiloxWords => "philox_words",
            ActBackward => "backward",
            ActInPlace => "in_place",
            Add => "add",
            Accumulate => "accumulate",
            Copy => "copy",
            SoftmaxForward => "forward",
            SoftmaxBackward => "backward",
            EmbeddingForward => "forward",
            EmbeddingGrad => "table_grad",
            PositionsForward => "positions_forward",
            PositionsGrad => "positions_grad",
            WeightDecay => "main",
            AttentionForward => "forward",
            AttentionForward4 => "forward4",
            AttentionScoresGrad4 => "scores_grad4",
            AttentionKeyValueGrad4 => "key_value_grad4",
            AttentionScoresGrad => "scores_grad",
            AttentionKeyValueGrad => "key_value_grad",
            NormSumPartials => "sum_partials",
            NormMean => "mean",
            NormSquarePartials => "square_partials",
            NormVariance => "variance",
            Normalize => "normalize",
            NormalizeMoving => "normalize_moving",
            NormGradPartials => "grad_partials",
            NormGradSums => "grad_sums",
            NormInputGrad => "input_grad",
            LayerNormForward => "forward",
            LayerNormGradPartials => "grad_partials",
            LayerNormGradSums => "grad_sums",
            LayerNormInputGrad => "input_grad",
        }
    }

    /// The bindings, in the order a launch gives its buffers.
    fn slots(self) -> Vec<(u32, Slot)> {
        use LayerKernel::*;
        use Slot::*;
        match self {
            ConvIm2col => vec![(0, Uniform), (1, Read), (2, ReadWrite)],
            ConvReduce => vec![(0, Uniform), (7, Read), (8, ReadWrite), (9, ReadWrite)],
            ConvCol2im => vec![(0, Uniform), (10, Read), (12, ReadWrite)],
            // matmul_subgroup.wgsl's dims, A, B, bias and C, and the conv's dims.
            ConvGemmForward | ConvTiles => vec![
                (0, Uniform),
                (1, Read),
                (2, Read),
                (3, Read),
                (4, ReadWrite),
                (5, Uniform),
            ],
            ConvGemmKernelGrad | ConvGemmInputGrad | ConvGemmInputGradNarrow => vec![
                (0, Uniform),
                (1, Read),
                (2, Read),
                (4, ReadWrite),
                (5, Uniform),
            ],
            AvgForward | AvgBackward => vec![(0, Uniform), (1, Read), (2, ReadWrite)],
            MaxForward => vec![(0, Uniform), (1, Read), (2, ReadWrite), (4, ReadWrite)],
            MaxBackward | MaxScatter => vec![(0, Uniform), (1, Read), (2, ReadWrite), (3, Read)],
            PoolZero => vec![(0, Uniform), (2, ReadWrite)],
            Dropout => vec![
                (0, UniformDynamic),
                (1, UniformDynamicOf(STEP_VALUES_READ)),
                (2, Uniform),
                (3, Read),
                (4, ReadWrite),
            ],
            PhiloxWords => vec![(5, Read), (6, ReadWrite)],
            ActForward => vec![(0, Uniform), (1, Read), (3, ReadWrite)],
            ActBackward => vec![(0, Uniform), (1, Read), (2, Read), (3, ReadWrite)],
            ActInPlace => vec![(0, Uniform), (2, Read), (3, ReadWrite)],
            Add => vec![(0, Uniform), (1, Read), (2, Read), (3, ReadWrite)],
            Accumulate | Copy | SoftmaxForward => vec![(0, Uniform), (1, Read), (3, ReadWrite)],
            SoftmaxBackward => vec![(0, Uniform), (1, Read), (2, Read), (3, ReadWrite)],
            EmbeddingForward | EmbeddingGrad => {
                vec![(0, Uniform), (1, Read), (2, Read), (3, ReadWrite)]
            }
            PositionsForward | PositionsGrad => vec![(0, Uniform), (2, Read), (3, ReadWrite)],
            WeightDecay => vec![
                (0, Uniform),
                (1, ReadWrite),
                (crate::optim::STEP_BINDING, UniformDynamic),
            ],
            // attention.wgsl: q, k, v in; p and the context out.
            AttentionForward => vec![
                (0, Uniform),
                (1, Read),
                (2, Read),
                (3, Read),
                (4, ReadWrite),
                (5, ReadWrite),
            ],
            // The vec4 forms bind q, k, v and d context at 13 to 16, in the same order.
            AttentionForward4 => vec![
                (0, Uniform),
                (13, Read),
                (14, Read),
                (15, Read),
                (4, ReadWrite),
                (5, ReadWrite),
            ],
            AttentionScoresGrad4 => vec![
                (0, Uniform),
                (14, Read),
                (15, Read),
                (6, Read),
                (16, Read),
                (8, ReadWrite),
                (9, ReadWrite),
            ],
            AttentionKeyValueGrad4 => vec![
                (0, Uniform),
                (13, Read),
                (6, Read),
                (16, Read),
                (10, Read),
                (11, ReadWrite),
                (12, ReadWrite),
            ],
            // k, v, p, d context in; d scores and d q out.
            AttentionScoresGrad => vec![
                (0, Uniform),
                (2, Read),
                (3, Read),
                (6, Read),
                (7, Read),
                (8, ReadWrite),
                (9, ReadWrite),
            ],
            // q, p, d context, d scores in; d k and d v out.
            AttentionKeyValueGrad => vec![
                (0, Uniform),
                (1, Read),
                (6, Read),
                (7, Read),
                (10, Read),
                (11, ReadWrite),
                (12, ReadWrite),
            ],
            // batchnorm.wgsl: see each entry point for what it binds.
            NormSumPartials => vec![(0, Uniform), (1, Read), (3, ReadWrite)],
            NormMean => vec![(0, Uniform), (4, Read), (2, ReadWrite)],
            NormSquarePartials => vec![(0, Uniform), (1, Read), (6, Read), (3, ReadWrite)],
            NormVariance => vec![(0, Uniform), (4, Read), (2, ReadWrite), (5, ReadWrite)],
            Normalize => vec![
                (0, Uniform),
                (1, Read),
                (6, Read),
                (7, Read),
                (8, Read),
                (9, ReadWrite),
            ],
            NormalizeMoving => vec![
                (0, Uniform),
                (1, Read),
                (10, Read),
                (7, Read),
                (8, Read),
                (9, ReadWrite),
            ],
            NormGradPartials => vec![
                (0, Uniform),
                (1, Read),
                (6, Read),
                (11, Read),
                (3, ReadWrite),
            ],
            NormGradSums => vec![
                (0, Uniform),
                (4, Read),
                (2, ReadWrite),
                (12, ReadWrite),
                (13, ReadWrite),
            ],
            // layernorm.wgsl
            LayerNormForward => vec![
                (0, Uniform),
                (1, Read),
                (2, Read),
                (3, Read),
                (4, ReadWrite),
                (5, ReadWrite),
            ],
            LayerNormGradPartials => vec![
                (0, Uniform),
                (1, Read),
                (6, Read),
                (7, Read),
                (8, ReadWrite),
            ],
            LayerNormGradSums => vec![(0, Uniform), (9, Read), (10, ReadWrite), (11, ReadWrite)],
            LayerNormInputGrad => vec![
                (0, Uniform),
                (1, Read),
                (2, Read),
                (6, Read),
                (7, Read),
                (12, ReadWrite),
            ],
            NormInputGrad => vec![
                (0, Uniform),
                (1, Read),
                (6, Read),
                (7, Read),
                (11, Read),
                (14, ReadWrite),
            ],
        }
    }
}

impl Kernels {
    /// The pipeline of `which`, compiled once per device on first use.
    pub(crate) fn layer(&self, device: &wgpu::Device, which: LayerKernel) -> Arc<Kernel> {
        let mut compiled = self
            .layer_kernels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, kernel)) = compiled.iter().find(|(k, _)| *k == which) {
            return kernel.clone();
        }
        let name = format!("{which:?}");
        let module = super::kernels::module(device, &name, &which.source());
        let kernel = Arc::new(Kernel::from_module(
            device,
            &name,
            &module,
            which.entry(),
            &which.slots(),
        ));
        compiled.push((which, kernel.clone()));
        kernel
    }
}
