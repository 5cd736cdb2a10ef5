//! A data set's inputs: in memory, a region of a memory-mapped file that the OS pages in
//! as training reads it (data larger than host memory), or memory another owner lends (a
//! NumPy array the Python package reads in place).

/// f32 values that another owner keeps alive and unchanged for as long as this value lives:
/// [`crate::Dataset::from_shared`] reads them in place, without a copy.
pub trait SharedValues: Send + Sync {
    /// The values, `samples × features`, row-major.
    fn values(&self) -> &[f32];
}

/// The inputs, `samples × features` f32 values, row-major.
pub(crate) enum Rows {
    /// Owned values.
    Owned(Vec<f32>),
    /// `len` little-endian f32 values at byte `start` of a mapped file (4-byte aligned).
    Mapped {
        map: memmap2::Mmap,
        start: usize,
        len: usize,
    },
    /// Values lent by their owner.
    Shared(Box<dyn SharedValues>),
}

impl Rows {
    /// The region `start..start + 4 len` of `map` as f32 values, if it lies in the map and is
    /// aligned for f32 (on a little-endian machine, where the bytes are the values); else the
    /// map back.
    pub fn mapped(
        map: memmap2::Mmap,
        start: usize,
        len: usize,
    ) -> std::result::Result<Rows, memmap2::Mmap> {
        let end = len.checked_mul(4).and_then(|b| b.checked_add(start));
        let aligned = (map.as_ptr() as usize + start).is_multiple_of(4);
        match end {
            Some(end) if end <= map.len() && aligned && cfg!(target_endian = "little") => {
                Ok(Rows::Mapped { map, start, len })
            }
            _ => Err(map),
        }
    }

    /// Tells the OS that training reads the mapped rows in random order (shuffled batches), so
    /// that a page fault reads the page it needs, not a readahead window: with less memory
    /// than the file, readahead evicts the rows the next batches need.
    pub fn expect_random_reads(&self) {
        if let Rows::Mapped { map, .. } = self {
            // Only advice: a kernel that ignores it still reads correctly.
            let _ = map.advise(memmap2::Advice::Random);
        }
    }

    /// Whether the values are a mapped file's.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Rows::Mapped { .. })
    }
}

impl std::ops::Deref for Rows {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match self {
            Rows::Owned(v) => v,
            Rows::Mapped { map, start, len } => {
                bytemuck::cast_slice(&map[*start..*start + *len * 4])
            }
            Rows::Shared(values) => values.values(),
        }
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rows::Owned(v) => write!(f, "Owned({} values)", v.len()),
            Rows::Mapped { start, len, .. } => write!(f, "Mapped({len} values at byte {start})"),
            Rows::Shared(values) => write!(f, "Shared({} values)", values.values().len()),
        }
    }
}
