//! Embedding and PositionEmbedding on `shaders/embedding.wgsl`: a row of the table per id (or
//! per position), and the table's gradient as per-entry sums over the batch in order
//! (deterministic).

use super::LayerLaunch;
use crate::gpu::layer_kernels::{EmbeddingDims, LayerKernel};
use crate::gpu::{Dispatch, Slice, grid};
use crate::layer::LayerKind;

/// The dims, and the table's name: Embedding's ids are its input's elements; a
/// PositionEmbedding's positions are its input's rows.
fn dims(l: &LayerLaunch<'_>) -> (EmbeddingDims, &'static str) {
    let spec = &l.layer.spec;
    let (positions, input_dim, output_dim, table) = match spec.kind {
        LayerKind::Embedding {
            input_dim,
            output_dim,
        } => (spec.inputs, input_dim, output_dim, "embeddings"),
        LayerKind::PositionEmbedding { sequence_length } => (
            spec.in_shape[0],
            sequence_length,
            spec.in_shape[1],
            "position_embeddings",
        ),
        _ => panic!("embedding launches for a {} layer", spec.kind.class_name()),
    };
    let dims = EmbeddingDims {
        positions: (l.rows * positions) as u32,
        input_dim: input_dim as u32,
        output_dim: output_dim as u32,
        rows: l.rows as u32,
    };
    (dims, table)
}

/// Whether the layer looks ids up (Embedding) rather than positions.
fn ids(l: &LayerLaunch<'_>) -> bool {
    matches!(l.layer.spec.kind, LayerKind::Embedding { .. })
}

/// `which` over `n` invocations from `src` to `dst` (with the ids bound for Embedding).
fn run(
    l: &LayerLaunch<'_>,
    which: LayerKernel,
    src: Slice<'_>,
    dst: Slice<'_>,
    n: usize,
) -> Dispatch {
    let gpu = l.gpu();
    let uniform = gpu.uniform("embedding", &dims(l).0);
    let mut bindings = vec![Slice::all(&uniform)];
    if ids(l) {
        bindings.push(Slice::all(l.input));
    }
    bindings.extend([src, dst]);
    gpu.kernels
        .layer(&gpu.device, which)
        .dispatch(&gpu.device, &bindings, grid(n, 64))
}

fn table<'b>(l: &LayerLaunch<'_>, buffer: &'b wgpu::Buffer) -> Slice<'b> {
    let name = dims(l).1;
    l.tensor(buffer, name)
        .unwrap_or_else(|| panic!("an embedding layer without its {name}"))
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Dispatch {
    let n = l.rows * l.layer.outputs;
    let src = table(l, &l.params.params);
    let which = if ids(l) {
        LayerKernel::EmbeddingForward
    } else {
        LayerKernel::PositionsForward
    };
    run(l, which, src, Slice::all(l.output), n)
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    let d = dims(l).0;
    let n = (d.input_dim * d.output_dim) as usize;
    let dst = table(l, l.grads);
    let which = if ids(l) {
        LayerKernel::EmbeddingGrad
    } else {
        LayerKernel::PositionsGrad
    };
    vec![(
        "table gradient",
        run(l, which, Slice::all(l.d_output), dst, n),
    )]
}
