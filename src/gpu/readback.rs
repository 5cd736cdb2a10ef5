//! Reading GPU buffers back to the host: staging buffers, mapped after the copies into them.

use super::Gpu;
use crate::error::{Error, Result};

impl Gpu {
    /// A host-visible buffer that GPU buffers can be copied into and then mapped for reading.
    pub(crate) fn staging(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        // Mapped, never bound: only the buffer size limit applies.
        self.check_limit(label, bytes, self.max_buffer_bytes())?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::gpu(format!("allocating {label} ({bytes} bytes)"), e));
        }
        Ok(buffer)
    }

    /// Maps `staging` (already filled by a submitted copy) and returns its first `bytes` bytes.
    pub(crate) fn map_read(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        self.map_read_after(staging, bytes, None, what)
    }

    /// [`Gpu::map_read`], waiting only for the submission `after` (and those before it), not
    /// for later ones: the caller knows that no later submission uses `staging`.
    pub(crate) fn map_read_after(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        after: Option<wgpu::SubmissionIndex>,
        what: &str,
    ) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            // The receiver lives until after the wait below; a send error cannot happen.
            let _ = tx.send(r);
        });
        self.wait(after, what)?;
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return self.check(what).and(Err(Error::gpu(what, e))),
            Err(_) => return Err(self.timed_out(what)),
        }
        let out = {
            let view = staging
                .get_mapped_range(0..bytes)
                .map_err(|e| Error::gpu(what, e))?;
            view.to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// Copies `bytes` bytes of `buffer` from `offset` to the host (blocking).
    pub(crate) fn read(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.staging(what, bytes)?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        self.map_read(&staging, bytes, what)
    }

    /// Reads `len` f32 values of `buffer` starting at element `first`.
    pub(crate) fn read_f32(
        &self,
        buffer: &wgpu::Buffer,
        first: usize,
        len: usize,
        what: &str,
    ) -> Result<Vec<f32>> {
        let bytes = self.read(buffer, first as u64 * 4, len as u64 * 4, what)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}
