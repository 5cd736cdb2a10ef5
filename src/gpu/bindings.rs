//! Each kernel's bindings, written once: the layout its pipeline is built with (`LAYOUT`: the
//! binding numbers and access the WGSL declares) and the buffers a launch binds, by name.
//! The training plan (`src/engine/plan.rs`) and the one-off ops (`src/gpu/ops/`) both fill
//! these structs, so neither depends on the order of the bindings.

use super::kernels::{Slice, Slot};

/// Declares a kernel's bindings: `field: binding access` in the WGSL's order.
macro_rules! bindings {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $binding:literal $slot:ident),* $(,)? }) => {
        $(#[$doc])*
        pub(crate) struct $name<'a> {
            $(pub $field: Slice<'a>,)*
        }

        impl<'a> $name<'a> {
            /// The binding numbers and how the kernel sees each.
            pub const LAYOUT: &'static [(u32, Slot)] = &[$(($binding, Slot::$slot)),*];

            /// The buffers in `LAYOUT`'s order.
            pub fn slices(&self) -> Vec<Slice<'a>> {
                vec![$(self.$field),*]
            }
        }
    };
}

bindings!(
    /// `matmul.wgsl`, `matmul_vec4.wgsl`, `matmul_subgroup.wgsl`, `matmul_gpu.wgsl`:
    /// `C = act(A · B + bias)` with the shape and epilogue in `dims`.
    MatmulBindings { dims: 0 Uniform, a: 1 Read, b: 2 Read, bias: 3 Read, c: 4 ReadWrite }
);

bindings!(
    /// `activation.wgsl`: `d ← d ⊙ act'(a)` in place, `db` its column sums.
    ActBackwardBindings { dims: 0 Uniform, a: 1 Read, d: 2 ReadWrite, db: 3 ReadWrite }
);

bindings!(
    /// `loss.wgsl`'s `loss_grad`: per-row losses of outputs `y` against targets `t`, and `dy`.
    LossGradBindings {
        dims: 0 Uniform,
        y: 1 Read,
        t: 2 Read,
        dy: 3 ReadWrite,
        row_stats: 4 ReadWrite,
    }
);

bindings!(
    /// `loss.wgsl`'s `sample_means`: each sample's mean `(loss, correct)` over its tokens.
    SampleMeansBindings { dims: 0 Uniform, row_stats: 4 ReadWrite, token_stats: 9 Read }
);

bindings!(
    /// `loss.wgsl`'s `reduce`: the batch's `(mean loss, correct)` into `stats[batch.step]`.
    LossReduceBindings { batch: 5 UniformDynamic, rows_in: 6 Read, stats: 7 ReadWrite }
);

bindings!(
    /// `loss.wgsl`'s `loss_grad_reduce`: `loss_grad`, `reduce` and the last layer's
    /// activation backward (`db` its bias gradient) in one launch.
    LossFusedBindings {
        dims: 0 Uniform,
        y: 1 Read,
        t: 2 Read,
        dy: 3 ReadWrite,
        batch: 5 UniformDynamic,
        stats: 7 ReadWrite,
        db: 8 ReadWrite,
    }
);

bindings!(
    /// `gather.wgsl`: the rows `perm[batch.start ..]` of `x` and `t` into `xb` and `tb`.
    GatherBindings {
        batch: 0 UniformDynamic,
        dims: 1 Uniform,
        perm: 2 Read,
        x: 3 Read,
        t: 4 Read,
        xb: 5 ReadWrite,
        tb: 6 ReadWrite,
    }
);

bindings!(
    /// `clip.wgsl`: the flat gradients `g`, a table of tensors, their squared norms, and the
    /// squares of each 64-element block of the flat gradients.
    ClipBindings {
        dims: 0 Uniform,
        g: 1 ReadWrite,
        tensors: 2 Read,
        sums: 3 ReadWrite,
        block_sums: 4 ReadWrite
    }
);

bindings!(
    /// `accumulate.wgsl`: the gradients `g` and their accumulator `acc`.
    AccumulateBindings { dims: 0 Uniform, g: 1 ReadWrite, acc: 2 ReadWrite }
);

/// An optimizer's update kernel (see [`crate::optim::UpdateKernel`]): its uniform, the
/// parameters, the gradients, one binding per slot, and the per-step values.
pub(crate) struct UpdateBindings<'a> {
    pub uniform: Slice<'a>,
    pub params: Slice<'a>,
    pub grads: Slice<'a>,
    pub slots: Vec<Slice<'a>>,
    /// One 256-byte entry per step of the epoch, read at the step's dynamic offset.
    pub step: Slice<'a>,
}

impl<'a> UpdateBindings<'a> {
    /// The layout for a kernel with `slots` slots.
    pub fn layout(slots: usize) -> Vec<(u32, Slot)> {
        let mut layout = vec![(0, Slot::Uniform), (1, Slot::ReadWrite), (2, Slot::Read)];
        layout.extend((0..slots as u32).map(|i| (3 + i, Slot::ReadWrite)));
        layout.push((crate::optim::STEP_BINDING, Slot::UniformDynamic));
        layout
    }

    /// The buffers in the layout's order.
    pub fn slices(&self) -> Vec<Slice<'a>> {
        let mut all = vec![self.uniform, self.params, self.grads];
        all.extend(self.slots.iter().copied());
        all.push(self.step);
        all
    }
}
