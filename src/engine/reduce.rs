//! The GPU side of a distributed step: an ordered reduce-scatter, then an all-gather.
//!
//! The trainable elements are cut into N shards (at multiples of 64 elements, balanced).
//! Each rank reads its gradients back and sends shard `s` of them to rank `s` (an all-to-all
//! of raw bytes: MPI does no arithmetic), in buckets of layers while the backward pass still
//! runs (`buckets.rs`). Rank `s` then sums the N
//! contributions to its shard in rank order with the gradient accumulation kernels, and the
//! ranks all-gather the summed shards, so each holds the whole sum. Each rank sends and
//! receives 2(N−1)/N of the gradients' bytes per step, as a ring all-reduce does, where an
//! all-gather of every rank's gradients moves N−1 times them.
//!
//! Share r of global step s is micro-batch `j = (s-1)·N + r + 1` of the one-rank run with
//! `--accumulate N·K`: on each element, the same launch (`acc += g`, or `g = (g + acc) /
//! (N·K)`) on the same bytes in the same order, so the same bits. A step that does not update
//! gathers the running sums (the accumulator, which a backup saves whole). One that does
//! updates this rank's shard of the parameters with its shard of the optimizer slots
//! (`shard.rs`), and the ranks all-gather the updated parameters. Clipping needs whole
//! tensors' norms: each rank sums the squares of its shard's 64-element blocks, the ranks
//! all-gather those block sums (1/64 of the gradients' bytes), and every rank sums each
//! tensor's norm from them in the one-rank order (`clip.wgsl`) before it clips its shard.

use super::buckets::{Buckets, Exchanged};
use super::shard::within;
use super::update::{Accumulate, accumulate_launches};
use super::{GpuParams, Workspace};
use crate::distributed::{Gathered, Group, decode_steps};
use crate::error::{Error, Result};
use crate::gpu::{CLIP_BLOCK, ClipLaunches, Gpu};

/// Shards start and end at multiples of this many elements (256 bytes: a storage binding's
/// offset alignment, and the parameters' own alignment).
const SHARD_ALIGN: usize = 64;

/// What a distributed run keeps on the GPU besides the model.
pub(crate) struct Reducer {
    pub group: Group,
    /// Each rank's shard of the trainable elements: `(first, len)`.
    shards: Vec<(usize, usize)>,
    /// Elements of the longest shard: what each shard travels as (shorter ones padded).
    width: usize,
    /// The N contributions to this rank's shard, rank after rank, `width` apart (copied from,
    /// never bound).
    received: wgpu::Buffer,
    /// The buckets this rank's gradients are read back and exchanged in, while the backward
    /// pass runs (`buckets.rs`).
    pub buckets: Buckets,
    /// This rank's summed shard, read back for the all-gather.
    sum_staging: wgpu::Buffer,
    /// `acc += g` and `g = (g + acc) / (N·K)` over this rank's shard of the gradients and of
    /// the model's accumulator (`--accumulate K` above 1) or of the reducer's own (left zero
    /// at every step's end, so not saved).
    launches: Accumulate,
    /// The reducer's own accumulator, when the model has none.
    own: Option<wgpu::Buffer>,
    /// Once the optimizer slots are sharded ([`Reducer::shard`]): the update of this rank's
    /// shard, which replaces the workspace's update of the whole model.
    update: Option<Vec<crate::gpu::Dispatch>>,
    /// Once sharded, with clipping: the clipping of this rank's shard, which replaces the
    /// model's clipping of the whole gradients.
    clip: Option<ClipLaunches>,
    /// K, the optimizer's accumulation steps.
    accumulation: u64,
    // Kept alive for the launches' bind groups.
    _buffers: Vec<wgpu::Buffer>,
}

/// `len` elements cut into `ranks` shards at multiples of [`SHARD_ALIGN`], balanced (their
/// lengths differ by at most `SHARD_ALIGN`; some may be empty when `len` is small).
pub(crate) fn shards(len: usize, ranks: usize) -> Vec<(usize, usize)> {
    let units = len.div_ceil(SHARD_ALIGN);
    let cut = |r: usize| (r * units / ranks * SHARD_ALIGN).min(len);
    (0..ranks).map(|r| (cut(r), cut(r + 1) - cut(r))).collect()
}

impl Reducer {
    pub fn new(params: &GpuParams, group: Group) -> Result<Self> {
        let gpu = &params.gpu;
        let ranks = group.size();
        let shards = shards(params.trainable_len, ranks);
        let width = shards.iter().map(|s| s.1).max().unwrap_or(0).max(1);
        let received =
            gpu.storage_in_pieces("received gradient shards", (width * ranks * 4) as u64)?;
        let buckets = Buckets::new(gpu, &params.layers, params.trainable_len)?;
        let sum_staging = gpu.staging("summed shard readback", width as u64 * 4)?;
        let accumulation = u64::from(params.optimizer.accumulation_steps());
        let own = match &params.accumulator {
            Some(_) => None,
            None => Some(gpu.storage_in_pieces("rank gradient sum", params.len as u64 * 4)?),
        };
        let acc = accumulator(params, &own)?;
        let divisor = u32::try_from(ranks as u64 * accumulation)
            .map_err(|_| Error::config("ranks", "ranks × accumulation steps is too large"))?;
        let mine = within(&params.chunks, shards[group.rank()]);
        let (launches, buffers) = accumulate_launches(gpu, &params.grads, acc, &mine, divisor);
        Ok(Reducer {
            group,
            shards,
            width,
            received,
            buckets,
            sum_staging,
            launches,
            own,
            update: None,
            clip: None,
            accumulation,
            _buffers: buffers,
        })
    }

    /// Reads back and exchanges the gradients of a step's buckets (`submitted`: each
    /// bucket's submission), while the GPU runs the later buckets' backward launches.
    pub fn exchange(
        &self,
        gpu: &Gpu,
        submitted: &[wgpu::SubmissionIndex],
        rows: usize,
    ) -> Result<Exchanged> {
        let shards = (&self.shards[..], self.width);
        self.buckets
            .exchange(gpu, &self.group, shards, submitted, rows)
    }

    /// After the reduce-scatter (`received`: every rank's block for this one): the agreed
    /// signal, the batch's statistics (the shares' losses weighted by rows, summed in f64 in
    /// rank order), the ordered sum of this rank's shard, the all-gather of the sums, and the
    /// update when this global step completes one. `done` is the global steps before this
    /// one.
    pub fn reduce(
        &self,
        params: &GpuParams,
        work: &Workspace,
        step: usize,
        done: u64,
        received: &[u8],
    ) -> Result<()> {
        let gpu = &params.gpu;
        let ranks = self.group.size();
        let messages = decode_steps(received, ranks)?;
        let signal = messages.iter().map(|(m, _)| m.signal).find(|&s| s != 0);
        crate::distributed::set_agreed_signal(signal.unwrap_or(0) as i32);
        let (first, len) = self.shards[self.group.rank()];
        let width = self.width as u64 * 4;
        let (mut loss, mut correct, mut rows) = (0f64, 0f32, 0f64);
        for (r, (m, shard)) in messages.iter().enumerate() {
            if shard.len() as u64 != width {
                return Err(Error::internal(format!(
                    "rank {r} sent a shard of {} bytes, not {width}",
                    shard.len()
                )));
            }
            gpu.write(&self.received, r as u64 * width, &shard[..len * 4]);
            loss += f64::from(m.loss) * f64::from(m.rows);
            correct += m.correct;
            rows += f64::from(m.rows);
        }
        let stats = [(loss / rows.max(1.0)) as f32, correct];
        gpu.write(&work.stats, step as u64 * 8, bytemuck::cast_slice(&stats));

        let group = ranks as u64 * self.accumulation;
        let update = ((done + 1) * ranks as u64).is_multiple_of(group);
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for r in 0..ranks {
            if len > 0 {
                let from = r as u64 * width;
                let (to, n) = (first as u64 * 4, len as u64 * 4);
                encoder.copy_buffer_to_buffer(&self.received, from, &params.grads, to, n);
            }
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let micro = done * ranks as u64 + r as u64 + 1;
            let launches = match micro.is_multiple_of(group) {
                // g ← (g_r + acc) / (N·K), acc ← 0
                true => &self.launches.average,
                // acc ← acc + g_r
                false => &self.launches.add,
            };
            launches
                .iter()
                .for_each(|a| a.record(&mut pass, step as u32));
        }
        // The sums all ranks need: the running sums of a step that does not update, or the
        // mean gradients of one that does when the update is not sharded.
        let acc = accumulator(params, &self.own)?;
        let sums = if update { &params.grads } else { acc };
        let gather_sums = !update || self.update.is_none();
        if gather_sums && len > 0 {
            let (at, n) = (first as u64 * 4, len as u64 * 4);
            encoder.copy_buffer_to_buffer(sums, at, &self.sum_staging, 0, n);
        }
        // A sharded update with clipping: the squares of this rank's blocks, for the others.
        let norms = self.clip.as_ref().filter(|_| update && !gather_sums);
        if let Some(clip) = norms {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            clip.blocks
                .iter()
                .for_each(|b| b.record(&mut pass, step as u32));
            drop(pass);
            let (at, n) = (first / CLIP_BLOCK, len.div_ceil(CLIP_BLOCK));
            if n > 0 {
                let (at, n) = (at as u64 * 4, n as u64 * 4);
                encoder.copy_buffer_to_buffer(&clip.block_sums, at, &self.sum_staging, 0, n);
            }
        }
        gpu.queue.submit([encoder.finish()]);
        if gather_sums {
            self.all_gather_shards(gpu, Gathered::Sums, sums, 1)?;
        }
        if let Some(clip) = norms {
            self.all_gather_shards(gpu, Gathered::Norms, &clip.block_sums, CLIP_BLOCK)?;
        }
        if !update {
            return Ok(());
        }
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        // The other shards of this rank's accumulator still hold the running sums that
        // their owners zeroed.
        encoder.clear_buffer(acc, 0, None);
        let mut pass = encoder.begin_compute_pass(&Default::default());
        // Clipping, then the update: of this rank's shard once the slots are sharded (the
        // tensors' norms from every rank's blocks), else of the whole model.
        let update = self.update.as_deref().unwrap_or(&work.update);
        let clip = self.clip.as_ref().map_or(&params.clip[..], |c| &c.scale);
        for launch in clip.iter().chain(update) {
            launch.record(&mut pass, step as u32);
        }
        drop(pass);
        if self.update.is_some() && len > 0 {
            let (at, n) = (first as u64 * 4, len as u64 * 4);
            encoder.copy_buffer_to_buffer(&params.params, at, &self.sum_staging, 0, n);
        }
        gpu.queue.submit([encoder.finish()]);
        if self.update.is_some() {
            self.all_gather_shards(gpu, Gathered::Params, &params.params, 1)?;
        }
        Ok(())
    }

    /// All-gathers this rank's shard of `buffer` (copied to `sum_staging` by the last
    /// submission) and writes the other ranks' shards into `buffer`. `unit`: the elements
    /// of the shards that one f32 of `buffer` stands for (1, or 64 for block sums).
    fn all_gather_shards(
        &self,
        gpu: &Gpu,
        what: Gathered,
        buffer: &wgpu::Buffer,
        unit: usize,
    ) -> Result<()> {
        let units = |(first, len): (usize, usize)| (first / unit, len.div_ceil(unit));
        let width = self.width.div_ceil(unit);
        let len = units(self.shards[self.group.rank()]).1;
        let mut mine = gpu.map_read(
            &self.sum_staging,
            len as u64 * 4,
            "reading this rank's shard",
        )?;
        mine.resize(width * 4, 0);
        let all = self.group.all_gather(what, &mine)?;
        for (r, &shard) in self.shards.iter().enumerate() {
            let (at, n) = units(shard);
            if r != self.group.rank() && n > 0 {
                let shard = &all[r * width * 4..][..n * 4];
                gpu.write(buffer, at as u64 * 4, shard);
            }
        }
        Ok(())
    }

    /// Shards the optimizer slots over the ranks (ZeRO stage 1, `shard.rs`): from now on this
    /// rank keeps and updates its shard only. `step_values`: the workspace's per-step values,
    /// which the update reads. After the ranks agreed on the state they start from.
    pub fn shard(&mut self, params: &mut GpuParams, step_values: &wgpu::Buffer) -> Result<()> {
        // One rank's shard is the whole: sharding would only add the gathers of a save.
        if self.group.size() > 1 && params.slots.iter().any(|s| s.kept) {
            let shard = self.shards[self.group.rank()];
            params.shard_slots(shard)?;
            self.clip = params.clip_launches(&within(&params.chunks, shard))?;
            self.update = Some(params.update_dispatch(step_values));
        }
        // Without slots (plain SGD) there is nothing to shard: every rank updates the whole
        // model from the gathered mean gradients, which saves the parameters' all-gather.
        crate::distributed::record_slot_bytes(params.optimizer_slot_bytes());
        Ok(())
    }

    /// Whether the optimizer slots are sharded (then reading them is collective).
    pub fn sharded(&self) -> bool {
        self.update.is_some()
    }

    /// Makes the optimizer slots whole on every rank again (at the end of training).
    /// Collective.
    pub fn unshard(&mut self, params: &mut GpuParams) -> Result<()> {
        if self.update.is_none() {
            return Ok(());
        }
        let whole = self.gather_slots(params)?;
        params.unshard_slots(Some(&whole))?;
        // Only now: should the gather or the new buffers fail, `abandon` still sees the
        // slots as sharded.
        self.update = None;
        self.clip = None;
        Ok(())
    }

    /// After a failure that ends the fit with the slots sharded: each process keeps zeros in
    /// place of the shards it never held, and the model refuses them until a whole set is
    /// written (`Error::OptimizerStateIncomplete`). No collective.
    pub fn abandon(&mut self, params: &mut GpuParams) -> Result<()> {
        self.update = None;
        self.clip = None;
        params.abandon_shards(self.group.size())
    }

    /// Every sharded optimizer slot's whole contents, gathered from the ranks (each slot's
    /// elements in order). Collective.
    pub fn gather_slots(&self, params: &GpuParams) -> Result<Vec<Vec<f32>>> {
        let started = std::time::Instant::now();
        let gpu = &params.gpu;
        let (ranks, width) = (self.group.size(), self.width);
        let sharded: Vec<_> = params.slots.iter().filter(|s| s.kept).collect();
        let mut mine = Vec::with_capacity(sharded.len() * width * 4);
        for slot in &sharded {
            let n = slot.range.1;
            let shard = gpu.read_f32(&slot.buffer, 0, n, "reading this rank's optimizer slots")?;
            mine.extend_from_slice(bytemuck::cast_slice(&shard));
            mine.resize(mine.len() + (width - n) * 4, 0);
        }
        let all = self.group.all_gather(Gathered::Slots, &mine)?;
        let block = sharded.len() * width * 4;
        if all.len() != ranks * block {
            return Err(Error::internal(
                "the ranks sent optimizer slots of other sizes",
            ));
        }
        let mut whole = vec![vec![0f32; params.len]; sharded.len()];
        for (r, &(at, n)) in self.shards.iter().enumerate() {
            for (k, slot) in whole.iter_mut().enumerate() {
                let bytes = &all[r * block + k * width * 4..][..n * 4];
                slot[at..at + n].copy_from_slice(&bytemuck::pod_collect_to_vec::<u8, f32>(bytes));
            }
        }
        crate::distributed::record_slot_gather(started.elapsed());
        Ok(whole)
    }
}

/// The accumulator the ranks' sums run in: the model's, or the reducer's `own`.
fn accumulator<'a>(
    params: &'a GpuParams,
    own: &'a Option<wgpu::Buffer>,
) -> Result<&'a wgpu::Buffer> {
    match (&params.accumulator, own) {
        (Some(slot), _) => Ok(&slot.buffer),
        (None, Some(own)) => Ok(own),
        (None, None) => Err(Error::internal("no accumulator for the rank sum")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_element_once_balanced_at_multiples_of_64() {
        for (len, ranks) in [(64, 1), (64, 4), (5248, 3), (5248, 4), (6400, 7), (128, 3)] {
            let s = shards(len, ranks);
            assert_eq!(s.len(), ranks);
            let mut next = 0;
            for &(first, n) in &s {
                assert_eq!(first, next, "{len} over {ranks}: {s:?}");
                assert_eq!(first % SHARD_ALIGN, 0);
                next = first + n;
            }
            assert_eq!(next, len);
            let (most, least) = (s.iter().map(|x| x.1).max(), s.iter().map(|x| x.1).min());
            assert!(most.unwrap() - least.unwrap() <= SHARD_ALIGN, "{s:?}");
        }
    }
}
