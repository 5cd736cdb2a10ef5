//! Which matmul kernel a product runs on, and its launch grid.
//!
//! CPU adapters (lavapipe) run, in order of preference: the subgroup-broadcast kernels of
//! `matmul_subgroup.wgsl` (where the adapter has 8-lane subgroups and the product is not
//! tiny), the register-blocked vec4 kernels of `matmul_vec4.wgsl` when a product's layout
//! and sizes allow, else the 128×128 tiles of `matmul_gpu.wgsl` for products with enough of
//! them, else the scalar 4×4 blocks of `matmul.wgsl` `blocked`. GPUs run `matmul_gpu.wgsl`
//! where C has enough tiles, else the 16×16 tiles of `matmul.wgsl` `small`. The 64×64 tiles
//! of `main` are kept as the plain reference the tests check every other kernel against.
//! Every kernel sums each output over k in increasing order in one invocation with the same
//! fma chain, so results on one device never depend on batching, timing or the kernel chosen.

use super::bindings::MatmulBindings;
use super::kernels::{Dispatch, Kernel, Kernels, MATMUL_TILE, Slice, module};
use super::params::MatmulDims;
use std::sync::OnceLock;

/// Lanes of one `matmul_vec4.wgsl` workgroup (its `LANES`), side by side along n.
const VEC4_LANES: usize = 8;
/// Rows and vec4 columns of C one `nn` invocation computes.
const NN_ROWS: usize = 16;
const NN_COLS: usize = 2;

/// Rows of C one `matmul_subgroup.wgsl` workgroup computes (its `ROWS`); every variant there
/// covers 8 columns per lane.
const SUBGROUP_ROWS: usize = 64;
/// The smallest product (m·n·k) given to the subgroup kernels: below it a product costs about
/// one launch on any kernel, and the smaller kernels compile far faster on llvmpipe (figures:
/// bench/NOTES.md "Matmul on lavapipe").
const SUBGROUP_MIN_PRODUCT: usize = 1 << 18;

/// Edge of the square tile of C one `matmul_gpu.wgsl` workgroup computes (its `TILE`).
const GPU_TILE: u32 = 128;

/// The fewest 128×128 tiles of C for which a GPU runs a product on `matmul_gpu.wgsl`; with
/// fewer it runs on the 16×16 tiles of `matmul.wgsl` `small`, which is the faster of the two
/// below about 20 tiles on an H100 (figures: bench/h100-m-kernels.json, bench/NOTES.md "Matmul
/// on the H100").
const GPU_MIN_TILES: usize = 24;

/// The fewest 128×128 tiles of C for which a CPU adapter runs a product that no vec4 kernel
/// can compute on `matmul_gpu.wgsl` rather than `matmul.wgsl` `blocked`: on lavapipe the
/// former is faster at 21 tiles and more, slower at 6 and fewer (figures:
/// bench/lavapipe-m-kernels.json, bench/NOTES.md "Matmul on lavapipe").
const CPU_MIN_TILES: usize = 16;

/// Bytes of workgroup memory one `matmul_gpu.wgsl` workgroup takes: its two tiles of DEPTH
/// (16) k-rows × PITCH (33) vec4s.
const GPU_TILES_WORKGROUP_BYTES: u32 = 2 * 16 * 33 * 16;

/// Whether `shaders/matmul_gpu.wgsl` fits a device with these limits: 16×16 invocations and
/// 16.5 KiB of workgroup memory, above WebGPU's default 16 KiB, which some adapters keep.
pub(crate) fn gpu_tiles_fit(limits: &wgpu::Limits) -> bool {
    limits.max_compute_workgroup_storage_size >= GPU_TILES_WORKGROUP_BYTES
        && limits.max_compute_invocations_per_workgroup >= 256
        && limits.max_compute_workgroup_size_x >= 16
        && limits.max_compute_workgroup_size_y >= 16
}

/// Whether `shaders/matmul_subgroup.wgsl` can run on `adapter`: a CPU adapter with subgroup
/// operations whose subgroup is always one 8-lane workgroup (the kernels broadcast from
/// lanes 0..7 and assume all eight are one subgroup).
pub(crate) fn subgroup_kernels_apply(adapter: &wgpu::Adapter) -> bool {
    let info = adapter.get_info();
    info.device_type == wgpu::DeviceType::Cpu
        && adapter.features().contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == VEC4_LANES as u32
        && info.subgroup_max_size == VEC4_LANES as u32
}

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
    /// `matmul_subgroup.wgsl` `nn`: the layout of `Nn`, rows of A shared by broadcast.
    SubgroupNn,
    /// `matmul_subgroup.wgsl` `nt`: the layout of `Nt`.
    SubgroupNt,
    /// `matmul_subgroup.wgsl` `tn`: the layout of `Tn`.
    SubgroupTn,
    /// `matmul_subgroup.wgsl` `an`: A in any layout, B row-major.
    SubgroupAn,
    /// `matmul_gpu.wgsl`: 128×128 tiles through workgroup memory, 8×8 outputs per
    /// invocation in registers; any strides. Used for products with enough such tiles: on
    /// GPUs, and on CPU adapters where no vec4 kernel applies.
    GpuTiles,
}

impl MatmulVariant {
    /// Every variant, in order of preference on a CPU adapter (the last two are never chosen
    /// there: `Blocked`, before them, always applies).
    pub const ALL: [MatmulVariant; 11] = [
        MatmulVariant::SubgroupNn,
        MatmulVariant::SubgroupNt,
        MatmulVariant::SubgroupTn,
        MatmulVariant::SubgroupAn,
        MatmulVariant::Nn,
        MatmulVariant::Nt,
        MatmulVariant::Tn,
        MatmulVariant::GpuTiles,
        MatmulVariant::Blocked,
        MatmulVariant::Tiled,
        MatmulVariant::SmallTiles,
    ];

    /// Whether this variant computes `dims` correctly from these bindings (`ops`: A, B and
    /// C) with the kernels this device has (`have`).
    fn applies(self, have: &Kernels, d: &MatmulDims, ops: [&Slice<'_>; 3]) -> bool {
        let subgroups = have.matmul_sub.is_some();
        let [a, b, c] = ops;
        let four = |x: u32| x.is_multiple_of(4);
        let vec4 = a.vec4_bindable() && b.vec4_bindable();
        let (a_rows, b_rows) = (d.a_col_stride == 1, d.b_col_stride == 1);
        let (a_cols, b_cols) = (d.a_row_stride == 1, d.b_row_stride == 1);
        let nn = vec4
            && a_rows
            && b_rows
            && four(d.k)
            && four(d.n)
            && four(d.a_row_stride)
            && four(d.b_row_stride);
        let nt =
            vec4 && a_rows && b_cols && four(d.k) && four(d.a_row_stride) && four(d.b_col_stride);
        let tn = vec4
            && a_cols
            && b_rows
            && four(d.m)
            && four(d.n)
            && four(d.a_col_stride)
            && four(d.b_row_stride);
        match self {
            MatmulVariant::Tiled | MatmulVariant::Blocked | MatmulVariant::SmallTiles => true,
            MatmulVariant::GpuTiles => have.matmul_gpu.is_some(),
            MatmulVariant::Nn => nn,
            MatmulVariant::Nt => nt,
            MatmulVariant::Tn => tn,
            // These write C as vec4s.
            MatmulVariant::SubgroupNn => subgroups && nn && c.vec4_bindable(),
            // This one writes C as floats.
            MatmulVariant::SubgroupNt => subgroups && nt,
            MatmulVariant::SubgroupTn => subgroups && tn && c.vec4_bindable(),
            // A is read as floats: only B needs whole vec4s.
            MatmulVariant::SubgroupAn => {
                subgroups
                    && b.vec4_bindable()
                    && b_rows
                    && four(d.n)
                    && four(d.b_row_stride)
                    && c.vec4_bindable()
            }
        }
    }

    /// The variant for `dims`: on a GPU the 128×128 tiles if C has at least
    /// [`GPU_MIN_TILES`] of them, else 16×16; on a CPU adapter the first of
    /// [`MatmulVariant::ALL`] that applies, leaving out the subgroup kernels for tiny products
    /// (m·n·k below [`SUBGROUP_MIN_PRODUCT`]) and the 128×128 tiles below [`CPU_MIN_TILES`].
    fn choose(cpu: bool, have: &Kernels, d: &MatmulDims, ops: [&Slice<'_>; 3]) -> Self {
        let tiles = d.m.div_ceil(GPU_TILE) as usize * d.n.div_ceil(GPU_TILE) as usize;
        if !cpu {
            return if tiles >= GPU_MIN_TILES && have.matmul_gpu.is_some() {
                MatmulVariant::GpuTiles
            } else {
                MatmulVariant::SmallTiles
            };
        }
        let big = d.m as usize * d.n as usize * d.k as usize >= SUBGROUP_MIN_PRODUCT;
        *Self::ALL
            .iter()
            .filter(|v| match v {
                MatmulVariant::GpuTiles => tiles >= CPU_MIN_TILES,
                v => big || !v.is_subgroup(),
            })
            .find(|v| v.applies(have, d, ops))
            .unwrap_or(&MatmulVariant::Blocked)
    }

    fn is_subgroup(self) -> bool {
        matches!(
            self,
            MatmulVariant::SubgroupNn
                | MatmulVariant::SubgroupNt
                | MatmulVariant::SubgroupTn
                | MatmulVariant::SubgroupAn
        )
    }
}

impl Kernels {
    /// A matmul launch covering `C [m, n]`: `buffers` are the uniform holding `dims`, then A,
    /// B, bias and C. `cpu` selects the kernels for CPU adapters (see `matmul_vec4.wgsl` for
    /// why llvmpipe needs them). `force` picks a kernel; it must apply to these operands
    /// ([`Kernels::matmul_applies`]).
    pub fn matmul_dispatch(
        &self,
        device: &wgpu::Device,
        cpu: bool,
        dims: &MatmulDims,
        buffers: &MatmulBindings<'_>,
        force: Option<MatmulVariant>,
    ) -> Dispatch {
        let (m, n) = (dims.m as usize, dims.n as usize);
        let lanes = VEC4_LANES;
        let ops = [&buffers.a, &buffers.b, &buffers.c];
        let variant = match force {
            Some(v) => {
                assert!(
                    v.applies(self, dims, ops),
                    "{v:?} forced on a product it cannot compute"
                );
                v
            }
            None => MatmulVariant::choose(cpu, self, dims, ops),
        };
        let sub = |entry: &str| match &self.matmul_sub {
            Some(kernels) => kernels.kernel(device, entry),
            None => panic!("a subgroup matmul variant without its kernels"),
        };
        // The subgroup kernels: SUBGROUP_ROWS rows × 8 columns per lane.
        let sub_groups = (n.div_ceil(lanes * 8), m.div_ceil(SUBGROUP_ROWS));
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
            MatmulVariant::SubgroupNn => (sub("nn"), sub_groups),
            MatmulVariant::SubgroupNt => (sub("nt"), sub_groups),
            MatmulVariant::SubgroupTn => (sub("tn"), sub_groups),
            MatmulVariant::SubgroupAn => (sub("an"), sub_groups),
            MatmulVariant::GpuTiles => (
                match &self.matmul_gpu {
                    Some(kernels) => kernels.kernel(device, "main"),
                    None => panic!("matmul_gpu.wgsl chosen on a device it does not fit"),
                },
                (n.div_ceil(GPU_TILE as usize), m.div_ceil(GPU_TILE as usize)),
            ),
        };
        kernel.dispatch(
            device,
            &buffers.slices(),
            (groups.0 as u32, groups.1 as u32),
        )
    }

    /// Whether `variant` can compute `dims` from these operands (A, B, C) on this device.
    pub fn matmul_applies(
        &self,
        variant: MatmulVariant,
        dims: &MatmulDims,
        ops: [&Slice<'_>; 3],
    ) -> bool {
        variant.applies(self, dims, ops)
    }
}

/// Kernels of one matmul module that are compiled on first use, from one parsed module: a
/// model with small layers never launches them, and compiling them is not free (the expanded
/// subgroup template is about 2 000 lines; figures: bench/NOTES.md "Matmul on lavapipe").
pub(crate) struct LazyMatmul {
    label: &'static str,
    source: fn() -> String,
    module: OnceLock<wgpu::ShaderModule>,
    entries: Vec<(&'static str, OnceLock<Kernel>)>,
}

impl LazyMatmul {
    fn new(label: &'static str, source: fn() -> String, entries: &[&'static str]) -> Self {
        LazyMatmul {
            label,
            source,
            module: OnceLock::new(),
            entries: entries.iter().map(|e| (*e, OnceLock::new())).collect(),
        }
    }

    /// `shaders/matmul_subgroup.wgsl`: entry points `nn`, `nt`, `tn` and `an`.
    pub(super) fn subgroup() -> Self {
        fn source() -> String {
            super::unroll::unroll(&matmul_source!("matmul_subgroup.wgsl"))
        }
        Self::new("matmul_sub", source, &["nn", "nt", "tn", "an"])
    }

    /// `shaders/matmul_gpu.wgsl`: entry point `main`.
    pub(super) fn gpu_tiles() -> Self {
        fn source() -> String {
            super::unroll::unroll(&matmul_source!("matmul_gpu.wgsl"))
        }
        Self::new("matmul_gpu", source, &["main"])
    }

    /// The kernel of entry point `entry`.
    pub fn kernel(&self, device: &wgpu::Device, entry: &str) -> &Kernel {
        let Some((name, cell)) = self.entries.iter().find(|(e, _)| *e == entry) else {
            panic!("{} has no entry point {entry}", self.label);
        };
        cell.get_or_init(|| {
            let module = self
                .module
                .get_or_init(|| module(device, self.label, &(self.source)()));
            Kernel::from_module(
                device,
                &format!("{}_{name}", self.label),
                module,
                name,
                MatmulBindings::LAYOUT,
            )
        })
    }
}

impl super::Gpu {
    /// A matmul launch covering `C [m, n]` (see `shaders/matmul.wgsl`).
    pub(crate) fn matmul(
        &self,
        dims: MatmulDims,
        a: Slice<'_>,
        b: Slice<'_>,
        bias: Slice<'_>,
        c: Slice<'_>,
    ) -> Dispatch {
        self.matmul_variant(dims, a, b, bias, c, None)
    }

    /// [`Gpu::matmul`] on a chosen kernel (`None`: the one this adapter prefers).
    pub(crate) fn matmul_variant(
        &self,
        dims: MatmulDims,
        a: Slice<'_>,
        b: Slice<'_>,
        bias: Slice<'_>,
        c: Slice<'_>,
        force: Option<MatmulVariant>,
    ) -> Dispatch {
        let uniform = self.uniform("matmul", &dims);
        let dims_slice = Slice::all(&uniform);
        let buffers = MatmulBindings {
            dims: dims_slice,
            a,
            b,
            bias,
            c,
        };
        self.kernels.matmul_dispatch(
            &self.device,
            self.uses_cpu_kernels(),
            &dims,
            &buffers,
            force,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::naga;

    /// wgpu does not check a kernel's workgroup memory against the device's limit, so
    /// `gpu_tiles_fit` must ask for what the shader really declares.
    #[test]
    fn gpu_tiles_check_asks_for_the_workgroup_memory_the_shader_declares() {
        let source = super::super::unroll::unroll(&matmul_source!("matmul_gpu.wgsl"));
        let module = naga::front::wgsl::parse_str(&source).expect("matmul_gpu.wgsl parses");
        let mut layouter = naga::proc::Layouter::default();
        layouter
            .update(module.to_ctx())
            .expect("its types have a layout");
        let bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
            .map(|(_, v)| layouter[v.ty].size)
            .sum();
        assert_eq!(bytes, GPU_TILES_WORKGROUP_BYTES);
        // WebGPU's default limits (16 KiB) do not fit it: such devices use other kernels.
        assert!(!gpu_tiles_fit(&wgpu::Limits::default()));
        assert!(gpu_tiles_fit(&wgpu::Limits {
            max_compute_workgroup_storage_size: bytes,
            ..wgpu::Limits::default()
        }));
    }
}
