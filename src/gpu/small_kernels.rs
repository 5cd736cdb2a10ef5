//! Which form of the small kernels a launch uses: `activation.wgsl` and `gather.wgsl` have a
//! scalar and a vec4 entry point that give the same bits; the vec4 one needs rows of whole
//! vec4s.

use super::bindings::{ActBackwardBindings, GatherBindings, LossGradBindings};
use super::kernels::{Dispatch, Kernels, grid};
use super::params::WIDE_LOSS_COLS;

impl Kernels {
    /// The activation backward launch for `dims` (held by `buffers.dims`). On CPU adapters `backward4` where rows are whole vec4s, else
    /// `backward`: the two give the same bits. GPUs keep `backward`, whose wider workgroups
    /// suit them (`backward4` has not been timed on a GPU).
    pub fn act_backward_dispatch(
        &self,
        device: &wgpu::Device,
        cpu: bool,
        dims: &super::ActDims,
        buffers: &ActBackwardBindings<'_>,
    ) -> Dispatch {
        let cols = dims.cols as usize;
        let slices = buffers.slices();
        if cpu && cols.is_multiple_of(4) && buffers.a.vec4_bindable() && buffers.d.vec4_bindable() {
            self.act_backward4
                .dispatch(device, &slices, grid(cols / 4, 8))
        } else {
            self.act_backward.dispatch(device, &slices, grid(cols, 64))
        }
    }

    /// The gather launch for batches of up to `rows` rows (`dims` held by `buffers.dims`). `main4` where rows of x are whole vec4s
    /// (same copies, a quarter of the loads), else `main`.
    pub fn gather_dispatch(
        &self,
        device: &wgpu::Device,
        dims: &super::GatherDims,
        rows: usize,
        buffers: &GatherBindings<'_>,
    ) -> Dispatch {
        let vec4 = dims.features.is_multiple_of(4)
            && buffers.x.vec4_bindable()
            && buffers.xb.vec4_bindable();
        let kernel = if vec4 { &self.gather4 } else { &self.gather };
        kernel.dispatch_per_batch(device, &buffers.slices(), super::GatherDims::grid(rows))
    }

    /// The loss-and-gradient launch for `rows` rows of `cols` outputs: `loss_grad`, one
    /// invocation per row, up to [`WIDE_LOSS_COLS`] columns, else `loss_grad_wide`, one
    /// workgroup per row (llvmpipe would cut `loss_grad`'s loops short on wider rows).
    pub fn loss_grad_dispatch(
        &self,
        device: &wgpu::Device,
        rows: usize,
        cols: usize,
        buffers: &LossGradBindings<'_>,
    ) -> Dispatch {
        let slices = buffers.slices();
        if cols > WIDE_LOSS_COLS {
            self.loss_grad_wide.dispatch(device, &slices, grid(rows, 1))
        } else {
            self.loss_grad.dispatch(device, &slices, grid(rows, 64))
        }
    }
}
