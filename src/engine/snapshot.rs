//! Snapshots of the training state taken without stalling training.
//!
//! A snapshot is a GPU-side copy of the parameters, optimizer slots and the epoch's batch
//! statistics into a staging buffer, queued right after the batch it belongs to, and submitted
//! then or, for a backup's save point, with the loop's next submission (`submission.rs`). The
//! host copy is made later by [`Snapshot::wait`] (or, for a backup, none at all: the file
//! streams from the mapping to the disk), typically on another thread, while training goes on. A pool of three staging buffers bounds the memory:
//! one being written, one waiting, one being taken; the backup writer lets a new snapshot
//! supersede a waiting one, so taking a snapshot does not wait for the disk.

use super::submission::Submission;
use crate::checkpoint::{EncodedFile, RawTensor, WeightsCheck};
use crate::engine::GpuParams;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::state::{StateMeta, Tensor, TrainState};
use std::sync::{Arc, Condvar, Mutex};

/// Snapshots in flight at most: one being written, one waiting, one being taken (which then
/// supersedes the waiting one), so taking a snapshot never waits for the disk.
const STAGING_BUFFERS: usize = 3;

fn poisoned<T>(_: T) -> Error {
    Error::internal("a snapshot writer thread panicked")
}

/// Reusable staging buffers for snapshots.
pub(crate) struct StagingPool {
    inner: Mutex<PoolState>,
    returned: Condvar,
    bytes: u64,
}

struct PoolState {
    free: Vec<wgpu::Buffer>,
    created: usize,
}

impl StagingPool {
    pub fn new(bytes: u64) -> Arc<Self> {
        Arc::new(StagingPool {
            inner: Mutex::new(PoolState {
                free: Vec::new(),
                created: 0,
            }),
            returned: Condvar::new(),
            bytes,
        })
    }

    /// A free buffer; creates one while fewer than [`STAGING_BUFFERS`] exist, else waits.
    fn take(&self, gpu: &Gpu) -> Result<wgpu::Buffer> {
        let mut state = self.inner.lock().map_err(poisoned)?;
        loop {
            if let Some(b) = state.free.pop() {
                return Ok(b);
            }
            if state.created < STAGING_BUFFERS {
                state.created += 1;
                drop(state);
                return gpu.staging("snapshot staging", self.bytes);
            }
            let (s, timeout) = self
                .returned
                .wait_timeout(state, gpu.timeout())
                .map_err(poisoned)?;
            if timeout.timed_out() {
                return Err(
                    gpu.timed_out("waiting for an earlier save to release its staging buffer")
                );
            }
            state = s;
        }
    }

    /// Whether [`StagingPool::take`] would return without waiting.
    pub fn has_free(&self) -> bool {
        self.inner
            .lock()
            .is_ok_and(|s| !s.free.is_empty() || s.created < STAGING_BUFFERS)
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        if let Ok(mut state) = self.inner.lock() {
            state.free.push(buffer);
        }
        self.returned.notify_one();
    }
}

/// Where each part of a snapshot lies in its staging buffer.
struct Layout {
    params: Vec<(String, Vec<usize>, usize)>,
    /// Counted from the start of the first slot section.
    slots: Vec<(String, Vec<usize>, usize)>,
    /// Elements of the parameter section, and of each slot's.
    section: usize,
    /// The parameter section and one per kept slot.
    sections: usize,
    /// Batches of the current epoch whose statistics follow the sections.
    steps: usize,
}

impl Layout {
    /// First element of the batch statistics.
    fn stats_at(&self) -> usize {
        self.section * self.sections
    }

    /// Bytes of the snapshot in its staging buffer.
    fn bytes(&self) -> u64 {
        (self.stats_at() + 2 * self.steps) as u64 * 4
    }

    /// The slot sections laid end to end (empty without slots).
    fn slot_section<'a>(&self, all: &'a [f32]) -> &'a [f32] {
        &all[self.section..self.stats_at()]
    }
}

/// A training state on its way from the GPU to the host.
pub struct Snapshot {
    gpu: Arc<Gpu>,
    pool: Arc<StagingPool>,
    staging: Option<wgpu::Buffer>,
    submission: Arc<Submission>,
    layout: Layout,
    meta: StateMeta,
    /// Callbacks' tensors (host copies shared with the callbacks), written after the rest.
    callback_tensors: Vec<Arc<[Tensor]>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("position", &self.meta.position)
            .finish()
    }
}

/// Queues the copies of a snapshot into `encoder` and returns the staging buffer and layout.
/// The caller submits the encoder and then calls [`Snapshot::new`]. `gathered`: the whole
/// contents of the sharded optimizer slots, in order (see `Reducer::gather_slots`), whose
/// other ranks' parts are written to the staging buffer ahead of the copies.
pub(crate) fn record_copy(
    params: &GpuParams,
    stats: &wgpu::Buffer,
    steps: usize,
    pool: &StagingPool,
    encoder: &mut wgpu::CommandEncoder,
    gathered: &[Vec<f32>],
) -> Result<(wgpu::Buffer, SnapshotLayout)> {
    params.check_slots_complete()?;
    let staging = pool.take(&params.gpu)?;
    let section = params.len;
    let bytes = section as u64 * 4;
    encoder.copy_buffer_to_buffer(&params.params, 0, &staging, 0, bytes);
    let mut end = bytes;
    let mut sections = 1;
    let mut gathered = gathered.iter();
    for slot in params.kept_slots() {
        let (first, n) = slot.range;
        if slot.range != (0, section) {
            let whole = gathered
                .next()
                .filter(|w| w.len() == section)
                .ok_or_else(|| Error::internal("a sharded slot's snapshot without its shards"))?;
            let others = [(0, first), (first + n, section - first - n)];
            for (at, len) in others.into_iter().filter(|p| p.1 > 0) {
                let part = bytemuck::cast_slice(&whole[at..at + len]);
                params.gpu.write(&staging, end + at as u64 * 4, part);
            }
        }
        if n > 0 {
            let at = end + first as u64 * 4;
            encoder.copy_buffer_to_buffer(&slot.buffer, 0, &staging, at, n as u64 * 4);
        }
        end += bytes;
        sections += 1;
    }
    if steps > 0 {
        encoder.copy_buffer_to_buffer(stats, 0, &staging, end, steps as u64 * 8);
    }
    Ok((
        staging,
        SnapshotLayout(Layout {
            params: params.param_layout(),
            slots: params.slot_layout(),
            section,
            sections,
            steps,
        }),
    ))
}

/// Opaque layout handed from [`record_copy`] to [`Snapshot::new`].
pub(crate) struct SnapshotLayout(Layout);

/// Bytes of staging a model needs for a snapshot with up to `steps` batch statistics.
pub(crate) fn staging_bytes(params: &GpuParams, steps: usize) -> u64 {
    let sections = 1 + params.kept_slots().count();
    (params.len * sections) as u64 * 4 + steps as u64 * 8
}

impl Snapshot {
    pub(crate) fn new(
        gpu: Arc<Gpu>,
        pool: Arc<StagingPool>,
        staging: wgpu::Buffer,
        submission: Arc<Submission>,
        layout: SnapshotLayout,
        meta: StateMeta,
        callback_tensors: Vec<Arc<[Tensor]>>,
    ) -> Self {
        Snapshot {
            gpu,
            pool,
            staging: Some(staging),
            submission,
            layout: layout.0,
            meta,
            callback_tensors,
        }
    }

    /// The host-side part of the state (known without waiting).
    pub fn meta(&self) -> &StateMeta {
        &self.meta
    }

    /// Waits for the GPU copy and returns the full state. Safe to call from another thread.
    pub fn wait(self) -> Result<TrainState> {
        self.with_mapped(|snapshot, all| {
            let l = &snapshot.layout;
            let stats = &all[l.stats_at()..l.stats_at() + 2 * l.steps];
            Ok(TrainState {
                params: GpuParams::split(&all[..l.section], &l.params),
                slots: GpuParams::split(l.slot_section(all), &l.slots),
                meta: snapshot.meta.clone(),
                batch_stats: Tensor {
                    name: crate::state::BATCH_STATS.into(),
                    shape: vec![l.steps, 2],
                    data: stats.to_vec(),
                },
                callback_tensors: snapshot
                    .callback_tensors
                    .iter()
                    .flat_map(|t| t.iter().cloned())
                    .collect(),
            })
        })
    }

    /// Waits for the GPU copy and hands `write` the state as a safetensors file in pieces
    /// borrowed from the mapped staging buffer (see [`EncodedFile`]): the file streams from
    /// the mapping to the disk with no host copy. `write` also gets the check that refuses a
    /// state with non-finite parameters with [`Error::Diverged`], for the pass that hashes the
    /// file (one pass over the bytes instead of two).
    pub(crate) fn write_file<R>(
        self,
        backup_id: &str,
        write: impl FnOnce(&[&[u8]], &WeightsCheck<'_>, &StateMeta) -> Result<R>,
    ) -> Result<R> {
        self.with_mapped(|snapshot, all| {
            let l = &snapshot.layout;
            let p = snapshot.meta.position;
            let params: Vec<RawTensor<'_>> = l.params.iter().map(|t| raw_tensor(t, all)).collect();
            // Where each parameter tensor lies in the file: after the header, in this order.
            let mut ranges = Vec::with_capacity(params.len());
            let slots = l.slot_section(all);
            let mut tensors = params;
            tensors.extend(l.slots.iter().map(|t| raw_tensor(t, slots)));
            tensors.push(RawTensor {
                name: crate::state::BATCH_STATS.into(),
                shape: vec![l.steps, 2],
                data: &all[l.stats_at()..l.stats_at() + 2 * l.steps],
            });
            tensors.extend(snapshot.callback_tensors.iter().flat_map(|set| {
                set.iter().map(|t| RawTensor {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    data: &t.data,
                })
            }));
            let steps = snapshot.meta.optimizer_steps;
            let file = EncodedFile::new(&tensors, p, steps, backup_id)?;
            let pieces = file.pieces();
            let mut at = pieces[0].len() as u64;
            for t in &tensors[..l.params.len()] {
                let end = at + std::mem::size_of_val(t.data) as u64;
                ranges.push((at..end, t.name.as_str()));
                at = end;
            }
            let check = |offset: u64, bytes: &[u8]| -> Result<()> {
                let end = offset + bytes.len() as u64;
                for (range, name) in &ranges {
                    let (from, to) = (range.start.max(offset), range.end.min(end));
                    if from >= to {
                        continue;
                    }
                    let values = &bytes[(from - offset) as usize..(to - offset) as usize];
                    if let Some(bad) = first_non_finite(values) {
                        return Err(Error::Diverged {
                            what: format!("the parameters (`{name}`)"),
                            // A state taken at an epoch's end is past it: that epoch diverged.
                            epoch: if p.step == 0 {
                                p.epoch.saturating_sub(1)
                            } else {
                                p.epoch
                            },
                            global_step: p.global_step,
                            value: bad,
                        });
                    }
                }
                Ok(())
            };
            write(&pieces, &check, &snapshot.meta)
        })
    }

    /// Maps the staging buffer once the copy is done, runs `f` on its f32 values, unmaps,
    /// and returns the buffer to the pool.
    fn with_mapped<R>(mut self, f: impl FnOnce(&Snapshot, &[f32]) -> Result<R>) -> Result<R> {
        let staging = self
            .staging
            .take()
            .ok_or_else(|| Error::internal("a snapshot was read twice"))?;
        let result = self.map(&staging).and_then(|()| {
            let view = staging
                .get_mapped_range(0..self.layout.bytes())
                .map_err(|e| Error::gpu("reading a snapshot", e))?;
            f(&self, bytemuck::cast_slice(&view))
        });
        staging.unmap();
        self.pool.give_back(staging);
        result
    }

    fn map(&self, staging: &wgpu::Buffer) -> Result<()> {
        // Mapped only once the copy is submitted: a buffer waiting to be mapped cannot be
        // used by a submission.
        let submission = self.submission.wait()?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..self.layout.bytes(), move |r| {
            let _ = tx.send(r);
        });
        self.gpu
            .wait(Some(submission), "copying a snapshot to the host")?;
        match rx.recv_timeout(self.gpu.timeout()) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => self
                .gpu
                .check("mapping a snapshot")
                .and(Err(Error::gpu("mapping a snapshot", e))),
            Err(_) => Err(self.gpu.timed_out("mapping a snapshot")),
        }
    }
}

/// The first value of little-endian f32 `bytes` that is not finite (a fast pass first: a
/// fold the compiler vectorizes).
fn first_non_finite(bytes: &[u8]) -> Option<f32> {
    let values = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    match bytemuck::try_cast_slice::<u8, f32>(bytes) {
        Ok(floats) if floats.iter().fold(true, |ok, v| ok & v.is_finite()) => None,
        Ok(floats) => floats.iter().copied().find(|v| !v.is_finite()),
        Err(_) => values.clone().find(|v| !v.is_finite()),
    }
}

/// The tensor `(name, shape, first element)` of a flat section, borrowed.
fn raw_tensor<'a>(
    (name, shape, first): &(String, Vec<usize>, usize),
    section: &'a [f32],
) -> RawTensor<'a> {
    let n: usize = shape.iter().product();
    RawTensor {
        name: name.clone(),
        shape: shape.clone(),
        data: &section[*first..*first + n],
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            // Never waited for: the copy may still be pending, but a later map waits for it.
            self.pool.give_back(staging);
        }
    }
}
