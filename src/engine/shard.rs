//! The optimizer state sharded over the ranks of a distributed fit (ZeRO stage 1).
//!
//! The optimizer's update is element-wise, so rank `s` can update its shard of the trainable
//! elements alone, with only its shard of each optimizer slot: every element is still updated
//! by the same launch, on the same bytes, as one rank updating the whole model, and the slots'
//! memory per rank falls by N. The ranks then all-gather the updated parameters (`reduce.rs`).
//! The accumulator of `--accumulate` stays whole (every rank keeps the running sums, which a
//! backup saves). The whole slots are gathered from the ranks only where they are read: at a
//! snapshot, by `Context::read_state`, and at the end of training.

use super::GpuParams;
use super::params::update_uniforms;
use crate::error::{Error, Result};

/// The parts of `pieces` (the model's binding pieces) inside `first..first + len`.
pub(crate) fn within(
    pieces: &[(usize, usize)],
    (first, len): (usize, usize),
) -> Vec<(usize, usize)> {
    pieces
        .iter()
        .filter_map(|&(p, n)| {
            let (start, end) = (p.max(first), (p + n).min(first + len));
            (start < end).then(|| (start, end - start))
        })
        .collect()
}

impl GpuParams {
    /// The pieces `(first element, elements)` the optimizer's update covers: the binding
    /// pieces of the trainable elements, cut to this rank's shard when sharded.
    pub fn update_pieces(&self) -> Vec<(usize, usize)> {
        match self.shard {
            Some(shard) => within(&self.chunks, shard),
            None => self.chunks.clone(),
        }
    }

    /// Keeps only `shard` of each optimizer slot (its contents copied, the whole buffers
    /// freed) and restricts the update to it. The accumulator stays whole.
    pub fn shard_slots(&mut self, shard: (usize, usize)) -> Result<()> {
        if self.shard.is_some() {
            return Err(Error::internal("optimizer slots sharded twice"));
        }
        let gpu = self.gpu.clone();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let mut old = Vec::new();
        for slot in self.slots.iter_mut().filter(|s| s.kept) {
            // At least one alignment unit: an empty shard still binds its buffer.
            let bytes = shard.1.max(64) as u64 * 4;
            let buffer = gpu.storage_in_pieces(slot.name, bytes)?;
            if shard.1 > 0 {
                let (at, n) = (shard.0 as u64 * 4, shard.1 as u64 * 4);
                encoder.copy_buffer_to_buffer(&slot.buffer, at, &buffer, 0, n);
            }
            old.push(std::mem::replace(&mut slot.buffer, buffer));
            slot.range = shard;
        }
        let copied = gpu.queue.submit([encoder.finish()]);
        gpu.wait(Some(copied), "sharding the optimizer slots")?;
        self.replaced(old, Some(shard));
        Ok(())
    }

    /// Makes each sharded optimizer slot whole again with `whole` (each slot's every element,
    /// in order; zeros for none), and the update cover the whole model.
    pub fn unshard_slots(&mut self, whole: Option<&[Vec<f32>]>) -> Result<()> {
        let gpu = self.gpu.clone();
        let len = self.len;
        let mut old = Vec::new();
        let sharded = self
            .slots
            .iter_mut()
            .filter(|s| s.kept && s.range != (0, len));
        for (k, slot) in sharded.enumerate() {
            let buffer = gpu.storage_in_pieces(slot.name, len as u64 * 4)?;
            if let Some(whole) = whole {
                let data = whole
                    .get(k)
                    .filter(|w| w.len() == len)
                    .ok_or_else(|| Error::internal("a slot made whole without its contents"))?;
                gpu.write(&buffer, 0, bytemuck::cast_slice(data));
            }
            old.push(std::mem::replace(&mut slot.buffer, buffer));
            slot.range = (0, len);
        }
        let written = gpu.queue.submit([]);
        gpu.wait(Some(written), "gathering the optimizer slots")?;
        self.replaced(old, None);
        Ok(())
    }

    /// After the slot buffers were replaced: frees the old ones now (launches made before,
    /// such as a workspace's update, still hold them, and are never run again: see
    /// [`GpuParams::slot_generation`]), and makes the update's uniforms for the new pieces.
    fn replaced(&mut self, old: Vec<wgpu::Buffer>, shard: Option<(usize, usize)>) {
        old.iter().for_each(wgpu::Buffer::destroy);
        self.shard = shard;
        self.slot_generation += 1;
        self.update_uniforms =
            update_uniforms(&self.gpu, self.optimizer.as_ref(), &self.update_pieces());
    }

    /// After a failure that ends a fit of `ranks` ranks with the slots sharded: keeps zeros in
    /// place of the shards this process never held and refuses the slots until a whole set is
    /// written (`Error::OptimizerStateIncomplete`). Judged by the buffers, so that sharding
    /// or unsharding that failed part-way (some slots whole, others not) is caught too.
    pub fn abandon_shards(&mut self, ranks: usize) -> Result<()> {
        if self.shard.is_none() && self.slots_whole() {
            return Ok(());
        }
        self.slots_incomplete = Some(ranks);
        self.unshard_slots(None)
    }

    /// Whether every optimizer slot holds all its elements (none is a shard).
    pub fn slots_whole(&self) -> bool {
        self.slots
            .iter()
            .all(|s| !s.kept || s.range == (0, self.len))
    }

    /// Bytes of the optimizer slots' buffers on this device (not the accumulator).
    pub fn optimizer_slot_bytes(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.kept)
            .map(|s| s.buffer.size())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::InitialWeights;
    use crate::{Dense, Sequential, Sgd};

    /// 8 → 130 → 3 with momentum: 1 170 + 130 + 390 + 3 elements, 1 856 once aligned.
    fn params() -> GpuParams {
        let specs = Sequential::new(8)
            .add(Dense::new(130))
            .add(Dense::new(3))
            .specs()
            .unwrap();
        let gpu = crate::gpu::Gpu::shared().unwrap();
        let optimizer = Box::new(Sgd::new(0.1).momentum(0.9));
        GpuParams::new(gpu, &specs, InitialWeights::Glorot { seed: 1 }, optimizer).unwrap()
    }

    #[test]
    fn slots_left_sharded_by_a_failure_are_refused_whole_or_part_way() {
        // Sharded, then the fit failed.
        let mut p = params();
        p.shard_slots((128, 256)).unwrap();
        assert!(!p.slots_whole() && p.update_pieces() == vec![(128, 256)]);
        p.abandon_shards(2).unwrap();
        assert!(p.slots_whole() && p.shard.is_none());
        assert!(matches!(
            p.check_slots_complete(),
            Err(Error::OptimizerStateIncomplete { ranks: 2 })
        ));
        assert!(matches!(
            p.read_slots(),
            Err(Error::OptimizerStateIncomplete { ranks: 2 })
        ));

        // Sharding that failed part-way: a slot holds its shard, yet the model is not marked
        // sharded.
        let mut p = params();
        let kept = p.slots.iter_mut().find(|s| s.kept).unwrap();
        kept.range = (128, 256);
        assert!(p.shard.is_none());
        p.abandon_shards(2).unwrap();
        assert!(p.slots_whole());
        assert!(p.check_slots_complete().is_err());

        // Never sharded (one rank, or a failure before sharding): nothing to refuse.
        let mut p = params();
        p.abandon_shards(2).unwrap();
        assert!(p.check_slots_complete().is_ok());
        assert_eq!(p.read_slots().unwrap().len(), 4);
    }

    #[test]
    fn pieces_within_a_shard_are_cut_at_its_ends() {
        let pieces = [(0, 128), (128, 256), (384, 64)];
        assert_eq!(within(&pieces, (64, 128)), vec![(64, 64), (128, 64)]);
        assert_eq!(within(&pieces, (0, 448)), pieces.to_vec());
        assert_eq!(within(&pieces, (448, 0)), vec![]);
    }
}
