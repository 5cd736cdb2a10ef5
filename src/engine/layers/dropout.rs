//! Dropout on `shaders/dropout.wgsl`: masks drawn from their coordinates (Philox4x32-10), so
//! the backward pass draws the forward pass's mask again instead of keeping it.

use super::{LayerLaunch, Phase};
use crate::gpu::layer_kernels::{DropoutDims, LayerKernel};
use crate::gpu::{Batch, Dispatch, Slice, grid};
use crate::layer::LayerKind;

/// The launch from `src` to `dst`: masked (`training`) or a copy.
fn launch(l: &LayerLaunch<'_>, src: &wgpu::Buffer, dst: &wgpu::Buffer, training: bool) -> Dispatch {
    let LayerKind::Dropout { rate } = l.layer.spec.kind else {
        panic!(
            "dropout launches for a {} layer",
            l.layer.spec.kind.class_name()
        );
    };
    let gpu = l.gpu();
    let d = DropoutDims {
        features: l.layer.outputs as u32,
        threshold: (f64::from(rate) * f64::from(1u32 << 24)).round() as u32,
        scale: 1.0 / (1.0 - rate),
        layer: l.index as u32,
        training: u32::from(training),
        rows: l.rows as u32,
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("dropout", &d);
    let batch = Slice {
        buffer: l.table,
        offset: 0,
        size: Some(std::mem::size_of::<Batch>() as u64),
    };
    let step = Slice {
        buffer: l.step_values,
        offset: 0,
        size: Some(32),
    };
    gpu.kernels
        .layer(&gpu.device, LayerKernel::Dropout)
        .dispatch_per_batch(
            &gpu.device,
            &[
                batch,
                step,
                Slice::all(&uniform),
                Slice::all(src),
                Slice::all(dst),
            ],
            grid(l.rows * l.layer.outputs, 64),
        )
}

pub(super) fn forward(l: &LayerLaunch<'_>) -> Vec<(Phase, Dispatch)> {
    vec![
        (Phase::Training, launch(l, l.input, l.output, true)),
        (Phase::Evaluation, launch(l, l.input, l.output, false)),
    ]
}

pub(super) fn backward(l: &LayerLaunch<'_>) -> Vec<(&'static str, Dispatch)> {
    match l.d_input {
        Some(d_input) => vec![("input gradient", launch(l, l.d_output, d_input, true))],
        None => Vec::new(),
    }
}
