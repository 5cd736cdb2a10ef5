//! Streamed input: for a data set the GPU cannot or should not hold, each batch is gathered
//! on the host, in the epoch's order, and written into a ring of batch slots on the GPU while
//! the GPU trains on the batches before it.
//!
//! The gather kernel is the resident path's: it reads rows through the position → row map,
//! which here maps position `p` to row `p % batch` of slot `p / batch % RING`. The same values
//! reach the same kernels in the same order, so both paths give the same bits.
//!
//! A batch's rows are written with `queue.write_buffer`, which lands before the next
//! submission and after every earlier one. The training loop submits at least every `RING`
//! batches (`BATCHES_PER_SUBMIT`) and at the start of every epoch (whose order it writes), so
//! the batches of one submission have distinct slots and
//! a slot is rewritten only after the submission that read it; with at most two submissions
//! in flight, the host gathers one group of batches while the GPU trains on the previous.

use crate::data::Dataset;
use crate::error::Result;
use crate::gpu::Gpu;
use std::sync::{Arc, Mutex};

/// Batch slots in the ring: the most batches one submission holds.
pub(crate) const RING: usize = super::recorder::BATCHES_PER_SUBMIT;

/// A data set kept in host memory and fed to the GPU a batch at a time.
pub(crate) struct Stream {
    x: Arc<crate::data::Rows>,
    targets: Vec<f32>,
    features: usize,
    t_cols: usize,
    batch_size: usize,
    /// The epoch's order, `order[p]` the sample at position `p`.
    order: Mutex<Vec<u32>>,
    /// `RING` batches of inputs and of targets.
    pub x_ring: wgpu::Buffer,
    pub t_ring: wgpu::Buffer,
}

impl Stream {
    pub fn new(gpu: &Gpu, data: &Dataset, batch_size: usize) -> Result<Self> {
        let (features, t_cols) = (data.features(), data.target_cols());
        let x_ring = gpu.storage(
            "streamed batches x",
            (RING * batch_size * features) as u64 * 4,
        )?;
        let t_ring = gpu.storage(
            "streamed batches targets",
            (RING * batch_size * t_cols) as u64 * 4,
        )?;
        Ok(Stream {
            x: data.shared_x(),
            targets: data.targets_f32(),
            features,
            t_cols,
            batch_size,
            order: Mutex::new((0..data.len() as u32).collect()),
            x_ring,
            t_ring,
        })
    }

    /// The position → ring row map the gather reads through, for every position of an epoch.
    pub fn ring_rows(&self, samples: usize) -> Vec<u32> {
        (0..samples)
            .map(|p| ((p / self.batch_size % RING) * self.batch_size + p % self.batch_size) as u32)
            .collect()
    }

    /// The order of the coming batches.
    pub fn set_order(&self, order: &[u32]) {
        let mut o = self.order.lock().unwrap_or_else(|p| p.into_inner());
        o.clear();
        o.extend_from_slice(order);
    }

    /// Writes the rows of batch `step` into its slot; they land before the next submission.
    /// The input rows are gathered straight into wgpu's staging memory (no host copy first).
    pub fn stage(&self, gpu: &Gpu, step: usize) {
        let order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let first = step * self.batch_size;
        let rows = &order[first..(first + self.batch_size).min(order.len())];
        let (f, c) = (self.features, self.t_cols);
        let slot = (step % RING * self.batch_size) as u64;
        let row_bytes = f * 4;
        let size = std::num::NonZeroU64::new((rows.len() * row_bytes) as u64);
        let view = size.and_then(|size| {
            gpu.queue
                .write_buffer_with(&self.x_ring, slot * row_bytes as u64, size)
        });
        match view {
            Some(mut view) => {
                for (k, &r) in rows.iter().enumerate() {
                    let r = r as usize;
                    view.slice(k * row_bytes..(k + 1) * row_bytes)
                        .copy_from_slice(bytemuck::cast_slice(&self.x[r * f..(r + 1) * f]));
                }
            }
            // wgpu refuses the write only for a broken invariant (bounds, alignment), which
            // its validation reports as an error at the next submission.
            None => panic!("streamed batch {step} does not fit its ring slot"),
        }
        let mut t = Vec::with_capacity(rows.len() * c);
        for &r in rows {
            let r = r as usize;
            t.extend_from_slice(&self.targets[r * c..(r + 1) * c]);
        }
        gpu.write(&self.t_ring, slot * c as u64 * 4, bytemuck::cast_slice(&t));
    }
}
