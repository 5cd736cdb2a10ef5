//! Which adapter wgfit runs on: `WGPU_ADAPTER_NAME` and `WGPU_BACKEND` first, then a discrete
//! GPU, an integrated one, any other, and a CPU adapter (lavapipe) last.

use crate::error::{Error, Result};

/// What wgfit says about an adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The driver's name for it, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// The graphics API, e.g. `Vulkan`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...
    pub device_type: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

impl AdapterSummary {
    pub(super) fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
        }
    }
}

/// Keeps a headless run's stderr wgfit's own. Mesa's Vulkan device-selection layer connects to
/// a Wayland display to rank GPUs; with no display session (a server, CI, a container)
/// libwayland prints two `error: XDG_RUNTIME_DIR is invalid…` lines per Vulkan instance that
/// are not wgfit's. wgpu ranks the adapters itself, so a headless process turns the layer off
/// (`NODEVICE_SELECT=1`, the layer's own switch) unless told otherwise. Done once per process,
/// before its first Vulkan instance; `instance` calls it, and the `wgfit` program calls it
/// first thing in `main`.
pub fn quiet_headless_vulkan() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let headless = [
            "WAYLAND_DISPLAY",
            "DISPLAY",
            "XDG_RUNTIME_DIR",
            "NODEVICE_SELECT",
        ]
        .iter()
        .all(|v| std::env::var_os(v).is_none());
        if headless {
            // SAFETY: the only reader of this variable is the Vulkan loader, inside
            // `wgpu::Instance::new`, and every instance wgfit creates is created after this
            // `Once` has completed; Rust's own environment access is locked by std.
            unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
        }
    });
}

/// The names `WGPU_BACKEND` takes (a comma-separated list of them), as wgpu reads it.
const BACKEND_NAMES: [&str; 11] = [
    "vulkan", "vk", "dx12", "d3d12", "metal", "mtl", "opengl", "gles", "gl", "webgpu", "noop",
];

/// Refuses a `WGPU_BACKEND` naming no backend: wgpu skips unknown names with a log line
/// nobody sees, and with none left finds no adapter, which would be blamed on the drivers.
pub(crate) fn check_backend_env() -> Result<()> {
    // As wgpu reads it: a value that is not UTF-8 counts as unset.
    let Ok(value) = std::env::var("WGPU_BACKEND") else {
        return Ok(());
    };
    let lower = value.to_lowercase();
    if lower.split(',').any(|n| BACKEND_NAMES.contains(&n.trim())) {
        return Ok(());
    }
    Err(Error::Environment {
        variable: "WGPU_BACKEND".into(),
        value,
        reason: "it names no backend; give one or more of vulkan, gl, dx12, metal, separated \
                 by commas"
            .into(),
    })
}

pub(super) fn instance() -> wgpu::Instance {
    quiet_headless_vulkan();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    wgpu::Instance::new(desc)
}

/// Lists every adapter wgpu sees (honouring `WGPU_BACKEND`), with the one [`crate::Gpu::new`] would
/// pick marked by its index.
pub fn list_adapters() -> (Vec<AdapterSummary>, Option<usize>) {
    let adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
    let chosen = choose(&infos).ok();
    (infos.iter().map(AdapterSummary::of).collect(), chosen)
}

/// Picks an adapter: the one `WGPU_ADAPTER_NAME` names (a case-insensitive substring), else a
/// discrete GPU, else an integrated one, else any other, else a CPU adapter such as lavapipe.
pub(super) fn choose(infos: &[wgpu::AdapterInfo]) -> Result<usize> {
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = wanted.to_lowercase();
        return infos
            .iter()
            .position(|i| i.name.to_lowercase().contains(&wanted))
            .ok_or_else(|| Error::NoAdapter {
                detail: format!(
                    " matching WGPU_ADAPTER_NAME={wanted:?} (adapters seen: {})",
                    infos
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
    }
    let rank = |t: wgpu::DeviceType| match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 3,
    };
    let best = (0..infos.len())
        .min_by_key(|&i| rank(infos[i].device_type))
        .ok_or_else(|| Error::NoAdapter {
            detail: String::new(),
        })?;
    match crate::distributed::local_adapter_index() {
        Some(local) => adapter_of_local_rank(infos, best, local),
        None => Ok(best),
    }
}

/// Under MPI, the `local`-th adapter of the best type on this node, so that the ranks of a
/// node each take their own GPU. A CPU adapter (lavapipe) is shared: it is the machine's cores.
fn adapter_of_local_rank(infos: &[wgpu::AdapterInfo], best: usize, local: usize) -> Result<usize> {
    let kind = infos[best].device_type;
    let same: Vec<usize> = (0..infos.len())
        .filter(|&i| infos[i].device_type == kind)
        .collect();
    match same.get(local) {
        Some(&i) => Ok(i),
        None if kind == wgpu::DeviceType::Cpu => Ok(best),
        None => Err(Error::NoAdapter {
            detail: format!(
                " for local rank {local}: this node has {} {kind:?} adapter(s) and more ranks than that; start at most {} ranks per node, or set WGPU_ADAPTER_NAME to share one",
                same.len(),
                same.len()
            ),
        }),
    }
}
