//! [`super::Exchange`] over MPI's world communicator (rsmpi).

use super::{Exchange, Group};
use crate::error::{Error, Result};
use mpi::Count;
use mpi::collective::{CommunicatorCollectives, Root};
use mpi::datatype::{Partition, PartitionMut};
use mpi::topology::{Communicator, SimpleCommunicator};
use std::sync::Arc;

/// MPI, initialized for this process; finalized when dropped. Make one at the start of the
/// program, before any GPU is opened (the adapter a rank takes depends on its local rank).
pub struct Mpi {
    _universe: mpi::environment::Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mpi")
    }
}

impl Mpi {
    /// Initializes MPI (a process started without a launcher is a world of one).
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize().ok_or_else(|| Error::Mpi {
            what: "initialization".into(),
            reason: "MPI was already initialized in this process".into(),
        })?;
        let mpi = Mpi {
            _universe: universe,
        };
        super::PROCESS_RANK.store(World.rank(), std::sync::atomic::Ordering::SeqCst);
        if World.size() > 1 {
            super::LOCAL_RANK.store(super::local_rank(), std::sync::atomic::Ordering::SeqCst);
        }
        Ok(mpi)
    }

    /// The world's ranks, for [`crate::FitOptions::distributed`].
    pub fn group(&self) -> Group {
        Group::new(Arc::new(World))
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        World.size()
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        World.rank()
    }

    /// Waits until every rank has called it.
    pub fn barrier(&self) {
        SimpleCommunicator::world().barrier();
    }

    /// Ends every rank of the job with `code`: what a rank does on an error its peers cannot
    /// know of (they would wait for it at the next exchange for ever).
    pub fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }
}

/// The world communicator (made on each use: it is a handle to MPI's own).
struct World;

impl Exchange for World {
    fn rank(&self) -> usize {
        SimpleCommunicator::world().rank() as usize
    }

    fn size(&self) -> usize {
        SimpleCommunicator::world().size() as usize
    }

    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>> {
        let world = SimpleCommunicator::world();
        let mut out = vec![0u8; send.len() * world.size() as usize];
        // MPI's default error handler aborts the job on failure: no error comes back here.
        world.all_gather_into(send, &mut out[..]);
        Ok(out)
    }

    fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>> {
        let world = SimpleCommunicator::world();
        let mut out = vec![0u8; send.len()];
        // MPI moves the bytes only: no arithmetic, so no reduction algorithm can change a bit.
        world.all_to_all_into(send, &mut out[..]);
        Ok(out)
    }

    fn all_to_all_v(&self, send: &[u8], counts: &[usize]) -> Result<Vec<u8>> {
        let world = SimpleCommunicator::world();
        let ranks = world.size() as usize;
        let me = world.rank() as usize;
        let count = |n: usize| {
            Count::try_from(n).map_err(|_| Error::Mpi {
                what: "all-to-all".into(),
                reason: format!("a block of {n} bytes is past MPI's count of bytes"),
            })
        };
        let offsets = |sizes: &[usize]| -> Result<Vec<Count>> {
            let mut at = 0;
            sizes
                .iter()
                .map(|&n| {
                    let here = count(at);
                    at += n;
                    here
                })
                .collect()
        };
        let send_counts: Vec<Count> = counts.iter().map(|&n| count(n)).collect::<Result<_>>()?;
        let mine = vec![counts[me]; ranks];
        let recv_counts: Vec<Count> = mine.iter().map(|&n| count(n)).collect::<Result<_>>()?;
        let (send_at, recv_at) = (offsets(counts)?, offsets(&mine)?);
        // Open MPI refuses an empty buffer's pointer even where every count is 0: one byte,
        // never sent, where a side has none.
        let mut out = vec![0u8; counts[me] * ranks + 1];
        let send = if send.is_empty() { &[0u8][..] } else { send };
        let sent = Partition::new(send, &send_counts[..], &send_at[..]);
        let mut got = PartitionMut::new(&mut out[..], &recv_counts[..], &recv_at[..]);
        // Bytes only, as all_to_all.
        world.all_to_all_varcount_into(&sent, &mut got);
        out.pop();
        Ok(out)
    }

    fn broadcast(&self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        let world = SimpleCommunicator::world();
        let root = world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        let len = usize::try_from(len).map_err(|_| Error::Mpi {
            what: "broadcast".into(),
            reason: format!("{len} bytes do not fit this machine's memory"),
        })?;
        let mut buf = if world.rank() == 0 {
            bytes
        } else {
            vec![0u8; len]
        };
        root.broadcast_into(&mut buf[..]);
        Ok(buf)
    }
}
