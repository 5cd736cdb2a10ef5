//! The optimizer slots as named tensors: read and written whole, or, while they are sharded
//! over the ranks (`shard.rs`), this rank's part of each with the rest gathered from the others.

use super::GpuParams;
use super::params::{Slot, place};
use crate::error::{Error, Result};
use crate::state::Tensor;

impl GpuParams {
    /// Reads the optimizer slots as named tensors (blocking). Sharded slots (see
    /// [`GpuParams::shard`]) are read with [`GpuParams::read_slots_with`].
    pub fn read_slots(&self) -> Result<Vec<Tensor>> {
        self.read_slots_with(&[])
    }

    /// Reads the optimizer slots as named tensors (blocking), taking each sharded slot's
    /// whole contents from `gathered`, in order (gathered from the ranks by
    /// `Reducer::gather_slots`).
    pub fn read_slots_with(&self, gathered: &[Vec<f32>]) -> Result<Vec<Tensor>> {
        self.check_slots_complete()?;
        let mut flat = Vec::new();
        let mut gathered = gathered.iter();
        for slot in self.kept_slots() {
            if slot.range == (0, self.len) {
                let what = "reading optimizer slots";
                flat.extend(self.gpu.read_f32(&slot.buffer, 0, self.len, what)?);
                continue;
            }
            match gathered.next() {
                Some(whole) if whole.len() == self.len => flat.extend_from_slice(whole),
                _ => return Err(Error::internal("a sharded slot read without its shards")),
            }
        }
        Ok(Self::split(&flat, &self.slot_layout()))
    }

    /// Refuses optimizer slots of which this process holds only a shard (see
    /// [`GpuParams::slots_incomplete`]).
    pub fn check_slots_complete(&self) -> Result<()> {
        match self.slots_incomplete {
            Some(ranks) => Err(Error::OptimizerStateIncomplete { ranks }),
            None => Ok(()),
        }
    }

    /// Checks that `tensors` would replace every optimizer slot (see
    /// [`GpuParams::write_slots`]).
    pub fn check_slots(&self, tensors: &[Tensor], context: &str) -> Result<()> {
        match (self.slot_layout().is_empty(), tensors.first()) {
            (true, Some(t)) => Err(Error::config(
                "optimizer state",
                format!(
                    "`{}`{context} is a slot, but this optimizer keeps none",
                    t.name
                ),
            )),
            (true, None) => Ok(()),
            (false, _) => place(&self.slot_layout(), tensors, context).map(|_| ()),
        }
    }

    /// Replaces every optimizer slot (an empty list when the optimizer keeps none).
    pub fn write_slots(&self, tensors: &[Tensor], context: &str) -> Result<()> {
        self.check_slots(tensors, context)?;
        let layout = self.slot_layout();
        if layout.is_empty() {
            return Ok(());
        }
        let kept: Vec<&Slot> = self.kept_slots().collect();
        for (t, first) in place(&layout, tensors, context)? {
            let (slot, at) = (&kept[first / self.len], first % self.len);
            // The part of the tensor this process keeps (all of it unless sharded).
            let (start, end) = (
                at.max(slot.range.0),
                (at + t.data.len()).min(slot.range.0 + slot.range.1),
            );
            if start < end {
                self.gpu.write(
                    &slot.buffer,
                    (start - slot.range.0) as u64 * 4,
                    bytemuck::cast_slice(&t.data[start - at..end - at]),
                );
            }
        }
        Ok(())
    }
}
