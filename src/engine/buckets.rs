//! The gradients of a distributed step in buckets, exchanged while the backward pass runs.
//!
//! The backward pass finishes the layers' gradients last layer first, and the layers' tensors
//! lie in the flat buffers in layer order: once the backward launches of layers `i..` have
//! run, the gradients from layer `i`'s first tensor to the end are final. (A shared layer's
//! tensors are its first call's, and that call's launches, the last of its calls to run, add
//! the later calls' gradients in.) So a step is submitted in buckets, cut at such layer
//! boundaries once a bucket holds `WGFIT_BUCKET_BYTES` of gradients (256 KiB by default): each submission ends with
//! the copy of its bucket's gradients to the bucket's own staging buffer, and the host reads
//! back and exchanges bucket `b` while the GPU still runs the backward launches of the buckets
//! after it. The contributions that reach each rank's ordered sum are the same bytes as with
//! one bucket, so the bits are too.

use super::params::{LayerLayout, owners};
use crate::distributed::{Gathered, Group, STEP_HEADER as HEADER, StepMessage};
use crate::env_knobs::BUCKET_BYTES;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// [`BUCKET_BYTES`] when the variable is unset. Each bucket costs one more exchange (a 256-byte
/// announcement and MPI's latency) and one more submission, so buckets much smaller than a
/// layer buy nothing; figures in bench/NOTES.md ("Overlap (Step 19)").
const DEFAULT_BUCKET_BYTES: u64 = 256 * 1024;

/// One bucket of a step's gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketPlan {
    /// The first layer whose backward launches the bucket's submission records: it records
    /// those of layers `first_layer..` up to the previous bucket's `first_layer`.
    pub first_layer: usize,
    /// The gradient elements it finishes: `(first, len)`.
    pub range: (usize, usize),
}

/// The buckets of a model whose trainable elements end at `trainable_len`, in the order the
/// backward pass finishes them (last layers first), each at least `bytes` of gradients but the
/// last; together they cover `0..trainable_len` and every layer once.
pub(crate) fn plan(layers: &[LayerLayout], trainable_len: usize, bytes: u64) -> Vec<BucketPlan> {
    // Where each layer's own tensors start (shared calls and layers without tensors: none).
    let mut starts = vec![None; layers.len()];
    for (i, l) in owners(layers) {
        starts[i] = l.tensors.iter().map(|t| t.2).min();
    }
    let mut buckets = Vec::new();
    let mut end = trainable_len;
    for i in (1..layers.len()).rev() {
        let Some(start) = starts[i] else { continue };
        if start < end && (end - start) as u64 * 4 >= bytes {
            buckets.push(BucketPlan {
                first_layer: i,
                range: (start, end - start),
            });
            end = start;
        }
    }
    match buckets.last_mut() {
        // Nothing left below the last cut (only layers without tensors): its submission
        // records their launches too.
        Some(last) if end == 0 => last.first_layer = 0,
        _ => buckets.push(BucketPlan {
            first_layer: 0,
            range: (0, end),
        }),
    }
    buckets
}

/// The bucket size in bytes: [`BUCKET_BYTES`], or its default.
pub(crate) fn bucket_bytes() -> Result<u64> {
    Ok(BUCKET_BYTES.read()?.unwrap_or(DEFAULT_BUCKET_BYTES))
}

/// A distributed step's buckets, each with the staging buffer its gradients are read back to.
pub(crate) struct Buckets {
    /// In the order the backward pass finishes them.
    pub plans: Vec<BucketPlan>,
    /// Bucket `b`'s gradients; the first bucket's also the step's statistics (8 bytes after).
    staging: Vec<wgpu::Buffer>,
}

/// What the exchange of a step's buckets brought this rank.
pub(crate) struct Exchanged {
    /// Each rank's message for this rank's shard: its share's header, then its gradients for
    /// the shard, padded to the widest shard (what `Reducer::reduce` takes).
    pub received: Vec<u8>,
    /// When the last bucket's gradients were on the host: the end of the step's compute.
    pub computed: std::time::Instant,
    /// Nanoseconds of exchanges made before then, while the GPU still had backward launches
    /// of later buckets to run.
    pub overlapped: u64,
}

/// The part `(first, len)` of `range` inside `shard` (`len` 0 when none).
fn inside((lo, n): (usize, usize), (first, len): (usize, usize)) -> (usize, usize) {
    let (start, end) = (lo.max(first), (lo + n).min(first + len));
    (start, end.saturating_sub(start))
}

impl Buckets {
    pub fn new(gpu: &Gpu, layers: &[LayerLayout], trainable_len: usize) -> Result<Self> {
        let plans = plan(layers, trainable_len, bucket_bytes()?);
        let staging = plans
            .iter()
            .enumerate()
            .map(|(b, p)| {
                let stats = if b == 0 { 8 } else { 0 };
                gpu.staging("gradient readback", p.range.1 as u64 * 4 + stats)
            })
            .collect::<Result<_>>()?;
        Ok(Buckets { plans, staging })
    }

    /// Records the copy of bucket `b`'s gradients (from `grads`) for the host, and with the
    /// first bucket the statistics of `step` (from `stats`).
    pub fn record_readback(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        (grads, stats): (&wgpu::Buffer, &wgpu::Buffer),
        step: usize,
        b: usize,
    ) {
        let (first, len) = self.plans[b].range;
        let bytes = len as u64 * 4;
        if len > 0 {
            encoder.copy_buffer_to_buffer(grads, first as u64 * 4, &self.staging[b], 0, bytes);
        }
        if b == 0 {
            encoder.copy_buffer_to_buffer(stats, step as u64 * 8, &self.staging[b], bytes, 8);
        }
    }

    /// Reads back and exchanges the buckets in order, bucket `b` once `submitted[b]` is done
    /// (while the GPU runs the later buckets' backward launches): each rank sends each other
    /// rank the part of the bucket inside that rank's shard, unpadded (an all-to-all of raw
    /// bytes, the first bucket's with the share's header). `shards`: every rank's shard; `width`: the
    /// widest, in elements; `rows`: this rank's share of the batch.
    pub fn exchange(
        &self,
        gpu: &Gpu,
        group: &Group,
        (shards, width): (&[(usize, usize)], usize),
        submitted: &[wgpu::SubmissionIndex],
        rows: usize,
    ) -> Result<Exchanged> {
        let (ranks, me) = (group.size(), group.rank());
        let message = HEADER + width * 4;
        let mut received = vec![0u8; ranks * message];
        let comm_before = crate::distributed::comm_nanos();
        let (mut computed, mut overlapped) = (std::time::Instant::now(), 0);
        for (b, (plan, staging)) in self.plans.iter().zip(&self.staging).enumerate() {
            let (lo, n) = plan.range;
            if b + 1 == self.plans.len() {
                overlapped = crate::distributed::comm_nanos() - comm_before;
            }
            let bytes = n as u64 * 4 + if b == 0 { 8 } else { 0 };
            let after = submitted.get(b).cloned();
            let raw = gpu.map_read_after(staging, bytes, after, "reading gradients")?;
            computed = std::time::Instant::now();
            let header = (b == 0).then(|| header(&raw[n * 4..], rows));
            let parts: Vec<_> = shards.iter().map(|&s| inside(plan.range, s)).collect();
            let mut send = Vec::with_capacity(n * 4 + ranks * HEADER);
            for &(start, m) in &parts {
                let data = match m {
                    0 => &[][..],
                    _ => &raw[(start - lo) * 4..][..m * 4],
                };
                match &header {
                    Some(h) => send.extend_from_slice(&h.encode(data)),
                    None => send.extend_from_slice(data),
                }
            }
            let skip = if b == 0 { HEADER } else { 0 };
            let counts: Vec<usize> = parts.iter().map(|p| skip + p.1 * 4).collect();
            let got = group.all_to_all_v(Gathered::Step, &send, &counts)?;
            let (start, m) = parts[me];
            if got.len() != ranks * (skip + m * 4) {
                return Err(Error::internal(format!(
                    "a gradient bucket's exchange brought {} bytes, not {}",
                    got.len(),
                    ranks * (skip + m * 4)
                )));
            }
            let at = HEADER + start.saturating_sub(shards[me].0) * 4;
            for (r, from) in got.chunks_exact((skip + m * 4).max(1)).enumerate() {
                let to = &mut received[r * message..][..message];
                to[..skip].copy_from_slice(&from[..skip]);
                if m > 0 {
                    to[at..at + m * 4].copy_from_slice(&from[skip..]);
                }
            }
        }
        Ok(Exchanged {
            received,
            computed,
            overlapped,
        })
    }
}

/// This rank's header of a step: the signal it caught, its rows and its share's statistics
/// (`stats`: the loss and the correct count, as the GPU wrote them).
fn header(stats: &[u8], rows: usize) -> StepMessage {
    let stat = |i: usize| {
        f32::from_le_bytes([
            stats[4 * i],
            stats[4 * i + 1],
            stats[4 * i + 2],
            stats[4 * i + 3],
        ])
    };
    StepMessage {
        signal: crate::callbacks::caught_signal().unwrap_or(0) as u32,
        rows: rows as u32,
        loss: stat(0),
        correct: stat(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Activation, LayerKind, LayerSpec};

    fn dense(first: usize, weights: usize, bias: usize) -> LayerLayout {
        LayerLayout {
            spec: LayerSpec::new(LayerKind::Dense, &[1], Activation::Linear, 1).unwrap(),
            inputs: 1,
            outputs: 1,
            activation: Activation::Linear,
            tensors: vec![
                ("kernel", vec![weights], first),
                ("bias", vec![bias], first + weights.next_multiple_of(64)),
            ],
            state: Vec::new(),
        }
    }

    #[test]
    fn buckets_cut_at_layer_starts_last_layers_first() {
        // Layers of 128 + 64, 64 + 64 and 64 + 64 elements; a layer without tensors between.
        let mut none = dense(0, 1, 1);
        none.tensors.clear();
        let layers = [
            dense(0, 128, 10),
            none,
            dense(192, 64, 3),
            dense(320, 64, 5),
        ];
        let len = 320 + 64 + 5;
        // Every layer boundary (0 bytes): one bucket per layer with tensors, the first
        // bucket's submission recording the layer without tensors too.
        let every = plan(&layers, len, 0);
        let want = [(3, (320, 69)), (2, (192, 128)), (0, (0, 192))];
        let got: Vec<_> = every.iter().map(|b| (b.first_layer, b.range)).collect();
        assert_eq!(got, want);
        // At least 512 bytes (128 elements): the last two layers, then the rest.
        let got: Vec<_> = plan(&layers, len, 512)
            .iter()
            .map(|b| (b.first_layer, b.range))
            .collect();
        assert_eq!(got, [(2, (192, 197)), (0, (0, 192))]);
        // More than the whole: one bucket.
        assert_eq!(
            plan(&layers, len, 1 << 20),
            [BucketPlan {
                first_layer: 0,
                range: (0, len)
            }]
        );
    }
}
