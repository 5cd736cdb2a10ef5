//! The GPU context: device, buffers, waiting with a timeout, and readback (the adapter it
//! runs on is chosen in `adapter.rs`).
//!
//! One [`Gpu`] is shared by every model in a process ([`Gpu::shared`]); its kernels are
//! compiled once, when it is created.

/// `shaders/matmul_common.wgsl` in front of a matmul kernel file.
macro_rules! matmul_source {
    ($file:literal) => {
        $crate::gpu::with_activations(concat!(
            include_str!("../../shaders/matmul_common.wgsl"),
            include_str!(concat!("../../shaders/", $file))
        ))
    };
}

/// `source` after the activations it applies or differentiates: their codes, generated from
/// [`crate::Activation`], and `shaders/activation_fns.wgsl`.
pub(crate) fn with_activations(source: &str) -> String {
    let mut out = crate::layer::Activation::wgsl_codes();
    out.push_str(include_str!("../../shaders/activation_fns.wgsl"));
    out.push_str(source);
    out
}

mod adapter;
pub(crate) mod bindings;
mod clip;
mod kernels;
mod layer_dims;
pub(crate) mod layer_kernels;
mod matmul;
pub mod ops;
mod params;
mod readback;
mod small_kernels;
mod unroll;

pub(crate) use adapter::check_backend_env;
pub use adapter::{AdapterSummary, list_adapters, quiet_headless_vulkan};
use adapter::{choose, instance};
pub(crate) use clip::{CLIP_BLOCK, ClipLaunches, clip_launches};
pub(crate) use kernels::{Dispatch, Kernels, Slice, grid};
pub use matmul::MatmulVariant;
pub use params::MAX_LOSS_COLS;
pub(crate) use params::{
    ActDims, Batch, FUSED_LOSS_ROWS, GatherDims, LossDims, MatmulDims, WIDE_LOSS_COLS,
};

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Writes larger than this go to the device in pieces of this size: an S model's 400 MB
/// upload took 0.36 s as one write and 0.17 s in 8 MiB pieces on lavapipe (bench/NOTES.md,
/// "A resume at one read").
const UPLOAD_PIECE: usize = 8 << 20;

/// How long any wait on the GPU may take before it is reported as a hang, unless the
/// environment variable `WGFIT_GPU_TIMEOUT_MS` says otherwise when the context is made.
/// Large enough for the biggest benchmark batch on lavapipe, small enough that CI notices.
pub const GPU_TIMEOUT: Duration = Duration::from_secs(120);

/// The wait limit: `WGFIT_GPU_TIMEOUT_MS` when set, else [`GPU_TIMEOUT`]; a value that is not
/// a number of milliseconds is an error.
fn timeout_from_env() -> Result<Duration> {
    Ok(crate::env_knobs::GPU_TIMEOUT_MS
        .read()?
        .map_or(GPU_TIMEOUT, Duration::from_millis))
}

/// A device and queue with wgfit's kernels compiled for them.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
    /// How long a wait may take (see [`GPU_TIMEOUT`]).
    timeout: Duration,
    /// `WGFIT_MAX_BINDING_BYTES` and `WGFIT_RESIDENT_LIMIT_BYTES`, read (and checked) with the
    /// timeout when the context is made, so that a bad value fails there.
    max_binding_bytes: Option<u64>,
    resident_limit_bytes: Option<u64>,
    /// The first error wgpu reported outside an error scope (validation, out of memory, lost
    /// device); checked after every wait so that it surfaces as an [`Error`], never a panic.
    uncaptured: Arc<Mutex<Option<String>>>,
    /// Why the device was lost, once it is; every later check fails with
    /// [`Error::DeviceLost`].
    lost: Arc<Mutex<Option<String>>>,
    /// Whether kernels are chosen as for a CPU adapter (see [`Gpu::uses_cpu_kernels`]).
    cpu_kernels: bool,
}

/// Device objects a [`Gpu`] context holds at one moment (see [`Gpu::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuMemory {
    /// Live buffers.
    pub buffers: u64,
    /// Device memory bound to them, in bytes (allocation sizes, so rounded up).
    pub buffer_bytes: u64,
    /// Live bind groups.
    pub bind_groups: u64,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.adapter)
            .finish()
    }
}

static SHARED: OnceLock<std::result::Result<Arc<Gpu>, String>> = OnceLock::new();

impl Gpu {
    /// The process-wide context, created on first use. Models compiled without an explicit
    /// context use it, so kernels compile once per process.
    pub fn shared() -> Result<Arc<Gpu>> {
        // Said as it is, not as an adapter not found.
        adapter::check_backend_env()?;
        SHARED
            .get_or_init(|| {
                Gpu::new().map(Arc::new).map_err(|e| match e {
                    // Its message carries the hint already: not twice.
                    Error::NoAdapter { detail } => detail,
                    other => format!(" ({other})"),
                })
            })
            .clone()
            .map_err(|detail| Error::NoAdapter { detail })
    }

    /// Opens the adapter [`list_adapters`] marks and compiles the kernels.
    pub fn new() -> Result<Gpu> {
        Self::open(true)
    }

    /// [`Gpu::new`], but choosing every kernel as on a GPU even on a CPU adapter (no subgroup
    /// or vec4 matmul kernels, implicit convolutions on tiles, the fused loss): for testing
    /// the GPU paths on lavapipe. Slower there, never different in what it computes.
    #[doc(hidden)]
    pub fn with_gpu_kernels() -> Result<Gpu> {
        Self::open(false)
    }

    /// Opens the adapter; `cpu_kernels`: choose kernels for a CPU adapter where it is one.
    fn open(cpu_kernels: bool) -> Result<Gpu> {
        let timeout = timeout_from_env()?;
        adapter::check_backend_env()?;
        let max_binding_bytes = crate::env_knobs::MAX_BINDING_BYTES.read()?;
        let resident_limit_bytes = crate::env_knobs::RESIDENT_LIMIT_BYTES.read()?;
        let instance = instance();
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(|a| a.get_info()).collect();
        let adapter = &adapters[choose(&infos)?];
        let summary = AdapterSummary::of(&adapter.get_info());
        // Take everything the adapter offers: data sets and big layers need large bindings.
        let limits = adapter.limits();
        let cpu_kernels = cpu_kernels && summary.device_type == "Cpu";
        let subgroup_matmul = cpu_kernels && matmul::subgroup_kernels_apply(adapter);
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgfit"),
            required_features: if subgroup_matmul {
                wgpu::Features::SUBGROUP
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            Error::DeviceRequest {
                adapter: summary.name.clone(),
                reason: e.to_string(),
            }
        })?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut slot) = sink.lock() {
                slot.get_or_insert_with(|| e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_sink.lock() {
                slot.get_or_insert_with(|| match (reason, message.is_empty()) {
                    (wgpu::DeviceLostReason::Destroyed, _) => "the program destroyed it".into(),
                    (_, true) => "the driver gave no reason".into(),
                    (_, false) => format!("the driver says: {message}"),
                });
            }
        });
        let kernels = Kernels::new(&device, subgroup_matmul, matmul::gpu_tiles_fit(&limits));
        Ok(Gpu {
            device,
            queue,
            kernels,
            adapter: summary,
            limits,
            timeout,
            max_binding_bytes,
            resident_limit_bytes,
            uncaptured,
            lost,
            cpu_kernels,
        })
    }

    /// What this context holds on the device now, from wgpu's internal counters: for
    /// checking that a long run holds steady (nothing leaks across epochs).
    pub fn memory(&self) -> GpuMemory {
        let hal = self.device.get_internal_counters().hal;
        let count = |c: &wgpu::wgt::InternalCounter| c.read().max(0) as u64;
        GpuMemory {
            buffers: count(&hal.buffers),
            buffer_bytes: count(&hal.buffer_memory),
            bind_groups: count(&hal.bind_groups),
        }
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// True for a CPU adapter (lavapipe), where kernels run as loops on the host's cores.
    pub fn is_cpu(&self) -> bool {
        self.adapter.device_type == "Cpu"
    }

    /// Whether kernels are chosen for a CPU adapter: on one, unless the context was made by
    /// [`Gpu::with_gpu_kernels`].
    pub(crate) fn uses_cpu_kernels(&self) -> bool {
        self.cpu_kernels
    }

    /// Destroys the device now (wgpu's `Device::destroy`): its memory is released at once
    /// and every later use of this context fails with [`Error::DeviceLost`], exactly as after
    /// a driver reset. For giving GPU memory back before the context is dropped, and for
    /// testing that a run survives a lost device.
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// Turns an error wgpu reported asynchronously into an [`Error`]; a lost device wins
    /// over whatever validation errors its loss caused.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost {
                what: what.to_string(),
                reason,
            });
        }
        let taken = self.uncaptured.lock().ok().and_then(|mut e| e.take());
        match taken {
            Some(reason) => Err(Error::gpu(what, reason)),
            None => Ok(()),
        }
    }

    /// How long a wait on this context may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The error for a wait on `what` that ran out of time.
    pub(crate) fn timed_out(&self, what: &str) -> Error {
        Error::GpuTimeout {
            what: what.to_string(),
            millis: self.timeout.as_millis() as u64,
        }
    }

    /// Waits for a submission (or all work) for at most [`Gpu::timeout`].
    pub(crate) fn wait(&self, submission: Option<wgpu::SubmissionIndex>, what: &str) -> Result<()> {
        let poll = wgpu::PollType::Wait {
            submission_index: submission,
            timeout: Some(self.timeout),
        };
        match self.device.poll(poll) {
            Ok(_) => self.check(what),
            Err(wgpu::PollError::Timeout) => Err(self.timed_out(what)),
            Err(e) => self.check(what).and(Err(Error::gpu(what, e))),
        }
    }

    /// Checks a buffer size against the adapter's limits before asking for it.
    ///
    /// # Errors
    /// [`Error::TooLargeForAdapter`] when `bytes` exceeds the largest buffer or binding.
    pub fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        self.check_limit(
            what,
            bytes,
            self.max_buffer_bytes().min(self.binding_limit()),
        )
    }

    /// The most bytes one storage binding may cover (the adapter's limit).
    pub fn binding_limit(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// The most bytes one piece of the parameters, gradients and optimizer slots may cover:
    /// [`Gpu::binding_limit`], or less with the environment variable `WGFIT_MAX_BINDING_BYTES`
    /// (so that tests bind a small model in pieces, as a model past one binding is).
    pub(crate) fn parameter_piece_limit(&self) -> u64 {
        self.max_binding_bytes
            .map_or(self.binding_limit(), |limit| {
                limit.min(self.binding_limit())
            })
    }

    /// `WGFIT_RESIDENT_LIMIT_BYTES`, if set: the most bytes a data set may have to stay on
    /// the GPU (read when the context was made).
    pub(crate) fn resident_limit_override(&self) -> Option<u64> {
        self.resident_limit_bytes
    }

    /// The largest buffer the adapter allows (buffers bound in pieces may be this large).
    pub fn max_buffer_bytes(&self) -> u64 {
        self.limits.max_buffer_size
    }

    /// [`Gpu::check_size`] for a buffer bound in pieces: only the largest buffer limits it.
    pub(crate) fn check_size_in_pieces(&self, what: &str, bytes: u64) -> Result<()> {
        self.check_limit(what, bytes, self.max_buffer_bytes())
    }

    /// [`Error::TooLargeForAdapter`] when `bytes` of `what` exceed `limit`.
    pub(crate) fn check_limit(&self, what: &str, bytes: u64, limit: u64) -> Result<()> {
        if bytes > limit {
            return Err(Error::TooLargeForAdapter {
                what: what.to_string(),
                requested: bytes,
                limit,
                adapter: self.adapter.name.clone(),
            });
        }
        Ok(())
    }

    /// A storage buffer that is only ever bound in pieces of at most [`Gpu::binding_limit`]
    /// bytes (the model's parameters, gradients and optimizer slots), so it may be as large as
    /// the adapter's largest buffer.
    pub(crate) fn storage_in_pieces(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_size_in_pieces(label, bytes)?;
        self.create_storage(label, bytes)
    }

    /// A storage buffer of `bytes` (at least 16) that can be copied from and to.
    pub(crate) fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_size(label, bytes)?;
        self.create_storage(label, bytes)
    }

    fn create_storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::gpu(format!("allocating {label} ({bytes} bytes)"), e));
        }
        Ok(buffer)
    }

    /// A storage buffer holding `data`.
    pub(crate) fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.storage(label, bytes.len() as u64)?;
        self.write(&buffer, 0, bytes);
        Ok(buffer)
    }

    /// Queues a write of `bytes` into `buffer` at `offset`; it lands before the next submission
    /// (a large one is submitted in pieces of [`UPLOAD_PIECE`] on its way, ahead of any
    /// command buffer not yet submitted, as one write would be).
    pub(crate) fn write(&self, buffer: &wgpu::Buffer, offset: u64, bytes: &[u8]) {
        // Copies must be multiples of 4 bytes; all wgfit data is f32 or u32 (and the pieces
        // are whole multiples of 4).
        if bytes.len() <= UPLOAD_PIECE {
            if !bytes.is_empty() {
                self.queue.write_buffer(buffer, offset, bytes);
            }
            return;
        }
        // Each piece is submitted at once: the device copies it while the next is staged, and
        // the staging memory of finished pieces (freed by the submission's own poll of the
        // device) is reused instead of a fresh allocation the size of the whole write.
        for (k, piece) in bytes.chunks(UPLOAD_PIECE).enumerate() {
            let at = offset + (k * UPLOAD_PIECE) as u64;
            self.queue.write_buffer(buffer, at, piece);
            self.queue.submit([]);
        }
    }

    /// A uniform buffer holding `value`.
    pub(crate) fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.uniform_bytes(label, bytemuck::bytes_of(value))
    }

    /// A uniform buffer holding `bytes`.
    pub(crate) fn uniform_bytes(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, bytes);
        buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write of more than one piece lands whole at its offset, the bytes around it untouched.
    #[test]
    fn a_write_in_pieces_lands_whole_at_its_offset() {
        let gpu = Gpu::shared().unwrap();
        let n = 2 * UPLOAD_PIECE + 12;
        let buffer = gpu.storage("pieces", (n + 512) as u64).unwrap();
        gpu.write(&buffer, 0, &vec![0xAB; n + 512]);
        let bytes: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        gpu.write(&buffer, 256, &bytes);
        let back = gpu.read(&buffer, 0, (n + 512) as u64, "pieces").unwrap();
        assert!(back[..256].iter().all(|&b| b == 0xAB));
        assert!(
            back[256..256 + n] == bytes[..],
            "the pieces landed elsewhere"
        );
        assert!(back[256 + n..].iter().all(|&b| b == 0xAB));
    }
}
