//! The sizes llvmpipe (lavapipe) cannot compute exactly. It ends every loop of an invocation
//! once the invocation has run 65 535 loop iterations in all (Mesa's
//! `LP_MAX_TGSI_LOOP_ITERATIONS`), silently, so a kernel that loops over a size gives a wrong
//! result past it. The matmul kernels loop over the summed dimension k (up to about 1.3
//! iterations per k, their inner loops included) and the activation backward over the batch
//! rows; k is a layer's input width (forward), its output width (the gradient of its input)
//! and the batch rows (weight gradients). The loss kernels stay within the limit at every
//! width (`loss.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// The largest k (and batch) any kernel computes exactly on a CPU adapter, with margin for the
/// kernels' inner loops.
pub(crate) const CPU_MAX_LOOP_SIZE: usize = 32_768;

/// [`Error::LoopLimit`] when `size` of `what` exceeds [`CPU_MAX_LOOP_SIZE`] on llvmpipe.
pub(crate) fn check(gpu: &Gpu, what: impl FnOnce() -> String, size: usize) -> Result<()> {
    let llvmpipe = gpu.is_cpu() && gpu.adapter().name.contains("llvmpipe");
    if llvmpipe && size > CPU_MAX_LOOP_SIZE {
        return Err(Error::LoopLimit {
            what: what(),
            size,
            limit: CPU_MAX_LOOP_SIZE,
            adapter: gpu.adapter().name.clone(),
        });
    }
    Ok(())
}

/// Checks every size the step of a model with Dense layers `(index, input width, output
/// width, positions per sample)` loops over, for batches of `rows` rows (every position of a
/// sample is one more row of the layer's matmuls).
pub(crate) fn check_model(
    gpu: &Gpu,
    layers: &[(usize, usize, usize, usize)],
    rows: usize,
) -> Result<()> {
    check(gpu, || "the batch size (rows per step)".into(), rows)?;
    for &(i, inputs, outputs, positions) in layers {
        check(gpu, || format!("layer {i}'s input width"), inputs)?;
        if i > 0 {
            check(gpu, || format!("layer {i}'s output width"), outputs)?;
        }
        if positions > 1 {
            check(
                gpu,
                || format!("layer {i}'s rows (batch × positions)"),
                rows * positions,
            )?;
        }
    }
    Ok(())
}
