//! Embedding on `shaders/embedding.wgsl`: a row of the table per id, and the table's gradient
//! as per-entry sums over the batch's positions in order (deterministic).

use super::LayerLaunch;
use crate::gpu::layer_kernels::{EmbeddingDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};
use crate::layer::LayerKind;

fn dims(l: &LayerLaunch<'_>) -> EmbeddingDims {
    let LayerKind::Embedding {
        input_dim,
        output_dim,
    } = l.layer.spec.kind
    else {
        panic!(
            "embedding launches for a {} layer",
            l.layer.spec.kind.class_name()
        );
    };
    EmbeddingDims {
        positions: (l.rows * l.layer.spec.inputs) as u32,
        input_dim: input_dim as u32,
        output_dim: output_dim as u32,
        _pad: 0,
    }
}

fn run(
    l: &LayerLaunch<'_>,
    which: LayerKernel,
    src: Slice<'_>,
    dst: Slice<'_>,
    n: usize,
) -> Dispatch {
    let gpu = l.gpu();
    let uniform = gpu.uniform("embedding", &dims(l));
    let bindings = [Slice::all(&uniform), Slice::all(l.input), src, dst];
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(n, 64))
}

fn table<'b>(l: &LayerLaunch<'_>, buffer: &'b wgpu::Buffer) -> Slice<'b> {
    l.tensor(buffer, "embeddings")
        .expect("an Embedding layer without its table")
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    let n = l.rows * l.layer.outputs;
    let src = table(l, &l.params.params);
    run(
        l,
        LayerKernel::EmbeddingForward,
        src,
        Slice::all(l.output),
        n,
    )
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let d = dims(l);
    let n = (d.input_dim * d.output_dim) as usize;
    let dst = table(l, &l.params.grads);
    vec![(
        "table gradient",
        run(
            l,
            LayerKernel::EmbeddingGrad,
            Slice::all(l.d_output),
            dst,
            n,
        ),
    )]
}
