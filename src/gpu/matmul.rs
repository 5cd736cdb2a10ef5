//! Which matmul kernel a product runs on, and its launch grid.
//!
//! CPU adapters (lavapipe) run the register-blocked vec4 kernels of `matmul_vec4.wgsl` when a
//! product's layout and sizes allow, else the scalar 4×4 blocks of `matmul.wgsl` `blocked`;
//! GPUs run the 16×16 tiles of `matmul.wgsl` `small`. The 64×64 tiles of `main` are kept as
//! the plain reference the tests check every other kernel against. Every kernel sums each output over k in increasing
//! order in one invocation, so results on one device never depend on batching or timing.

use super::kernels::{Dispatch, Kernels, MATMUL_TILE, MatmulDims, Slice};

/// Lanes of one `matmul_vec4.wgsl` workgroup (its `LANES`), side by side along n.
const VEC4_LANES: usize = 8;
/// Rows and vec4 columns of C one `nn` invocation computes.
const NN_ROWS: usize = 16;
const NN_COLS: usize = 2;

/// Which `matmul` kernel a product runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// `matmul.wgsl` `main`: 64×64 tiles through workgroup memory, 4×4 outputs per
    /// invocation; any strides. The reference the tests compare the others with.
    Tiled,
    /// `matmul.wgsl` `blocked`: 4×4 outputs per invocation from scalar loads, no workgroup
    /// memory; any strides. Used on CPU adapters where the vec4 kernels do not apply.
    Blocked,
    /// `matmul.wgsl` `small`: 16×16 tiles, one output per invocation; any strides. Used on
    /// GPUs.
    SmallTiles,
    /// `matmul_vec4.wgsl` `nn`: A and B both row-major.
    Nn,
    /// `matmul_vec4.wgsl` `nt`: A row-major, B stored transposed (`X · Wᵀ`).
    Nt,
    /// `matmul_vec4.wgsl` `tn`: A stored transposed, B row-major (`dZᵀ · X`).
    Tn,
}

/// Whether a binding can be read as `array<vec4<f32>>` with exact indices: its offset and
/// size are whole vec4s (a partial last vec4 would be out of bounds and read as zero).
fn vec4_bindable(s: &Slice<'_>) -> bool {
    let size = s.size.unwrap_or(s.buffer.size() - s.offset);
    s.offset.is_multiple_of(16) && size.is_multiple_of(16)
}

impl MatmulVariant {
    /// The variant for `dims`: on a CPU adapter the vec4 kernel of its layout when the
    /// vectorised dimensions and strides are multiples of 4, else the tiled kernel.
    fn choose(cpu: bool, d: &MatmulDims, a: &Slice<'_>, b: &Slice<'_>) -> Self {
        if !cpu {
            // Measured on an H100: 16×16 tiles reach 1.6 TFLOP/s at 512³ where 64×64 tiles
            // reach 0.34 (too few workgroups for small products, too few threads per SM).
            return MatmulVariant::SmallTiles;
        }
        if !vec4_bindable(a) || !vec4_bindable(b) {
            return MatmulVariant::Blocked;
        }
        let four = |x: u32| x.is_multiple_of(4);
        let (a_rows, b_rows) = (d.a_col_stride == 1, d.b_col_stride == 1);
        let (a_cols, b_cols) = (d.a_row_stride == 1, d.b_row_stride == 1);
        if a_rows
            && b_rows
            && four(d.k)
            && four(d.n)
            && four(d.a_row_stride)
            && four(d.b_row_stride)
        {
            MatmulVariant::Nn
        } else if a_rows && b_cols && four(d.k) && four(d.a_row_stride) && four(d.b_col_stride) {
            MatmulVariant::Nt
        } else if a_cols
            && b_rows
            && four(d.m)
            && four(d.n)
            && four(d.a_col_stride)
            && four(d.b_row_stride)
        {
            MatmulVariant::Tn
        } else {
            MatmulVariant::Blocked
        }
    }
}

impl Kernels {
    /// A matmul launch covering `C [m, n]`: `buffers` are the uniform holding `dims`, then A,
    /// B, bias and C. `cpu` selects the register-blocked kernels of `matmul_vec4.wgsl` (see
    /// there for why llvmpipe needs them).
    /// `force` picks a kernel that takes any strides (tests run every variant this way).
    pub fn matmul_dispatch(
        &self,
        device: &wgpu::Device,
        cpu: bool,
        dims: &MatmulDims,
        buffers: &[Slice<'_>; 5],
        force: Option<MatmulVariant>,
    ) -> Dispatch {
        let (m, n) = (dims.m as usize, dims.n as usize);
        let lanes = VEC4_LANES;
        let variant = match force {
            Some(
                v @ (MatmulVariant::Tiled | MatmulVariant::SmallTiles | MatmulVariant::Blocked),
            ) => v,
            _ => MatmulVariant::choose(cpu, dims, &buffers[1], &buffers[2]),
        };
        let (kernel, groups) = match variant {
            MatmulVariant::Tiled => (
                &self.matmul,
                (n.div_ceil(MATMUL_TILE), m.div_ceil(MATMUL_TILE)),
            ),
            MatmulVariant::SmallTiles => (&self.matmul_small, (n.div_ceil(16), m.div_ceil(16))),
            // 4 rows × 4 columns per invocation.
            MatmulVariant::Blocked => {
                (&self.matmul_blocked, (n.div_ceil(lanes * 4), m.div_ceil(4)))
            }
            MatmulVariant::Nn => (
                &self.matmul_nn,
                (n.div_ceil(lanes * 4 * NN_COLS), m.div_ceil(NN_ROWS)),
            ),
            // 8 rows × 8 columns per invocation.
            MatmulVariant::Tn => (&self.matmul_tn, (n.div_ceil(lanes * 8), m.div_ceil(8))),
            // 8 rows × 4 columns per invocation.
            MatmulVariant::Nt => (&self.matmul_nt, (n.div_ceil(lanes * 4), m.div_ceil(8))),
        };
        kernel.dispatch(device, buffers, (groups.0 as u32, groups.1 as u32))
    }
}
