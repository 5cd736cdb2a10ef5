//! Data-parallel training over MPI, exact by construction (docs/MPI.md).
//!
//! Under N ranks with global batch B every global batch is split by sample index: rank r
//! trains on positions `[r·B/N, (r+1)·B/N)` of it, in the epoch order of the one-rank run.
//! Each rank computes the gradient of its share; the shares are exchanged as raw bytes (an
//! all-gather: MPI does no arithmetic on them) and every rank sums them in rank order with
//! the gradient accumulation kernels of `--accumulate`. An N-rank run with batch B therefore
//! performs, operation for operation, the one-rank run with batch B/N and `--accumulate N`.
//!
//! Without the `mpi` feature only [`launcher_world`] is useful: it lets a binary refuse to run
//! as one of N independent copies.

mod checks;
mod hooks;
mod launcher;
mod lockstep;
#[cfg(feature = "mpi")]
mod mpi_world;
mod wire;

pub(crate) use checks::{check_split, parameters_sha256 as parameters_digest, ranks_must_share};
pub use hooks::parameters_sha256;
pub(crate) use hooks::{
    begin, check_agree, check_ranks_agree, check_stop, receive_state, send_state,
};
pub use launcher::{LauncherWorld, launcher_world, launcher_world_in, local_rank};
pub(crate) use lockstep::Gathered;
#[cfg(feature = "mpi")]
pub use mpi_world::Mpi;
pub(crate) use wire::{HEADER as STEP_HEADER, StepMessage, decode_steps};

use crate::error::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// The collective operations a distributed fit needs. Implemented over MPI (`Mpi`, with the
/// `mpi` feature); every call is collective: each rank makes the same calls in the same order.
pub trait Exchange: Send + Sync {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Every rank's `send` (all of the same length), concatenated in rank order.
    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>>;
    /// `send` is one block per rank, all of the same length (block `s` for rank `s`); returns
    /// the block each rank sent this one, in rank order.
    fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>>;
    /// `send` is one block per rank, block `s` of `counts[s]` bytes for rank `s` (every rank
    /// passes the same `counts`); returns the `counts[rank]` bytes each rank sent this one, in
    /// rank order. By default every block travels padded to the largest through
    /// [`Exchange::all_to_all`].
    fn all_to_all_v(&self, send: &[u8], counts: &[usize]) -> Result<Vec<u8>> {
        let widest = counts.iter().copied().max().unwrap_or(0);
        let mut padded = Vec::with_capacity(widest * counts.len());
        let mut at = 0;
        for &n in counts {
            padded.extend_from_slice(&send[at..at + n]);
            padded.resize(padded.len() + widest - n, 0);
            at += n;
        }
        let mine = counts[self.rank()];
        let all = self.all_to_all(&padded)?;
        Ok(all
            .chunks_exact(widest.max(1))
            .flat_map(|block| &block[..mine])
            .copied()
            .collect())
    }
    /// Rank 0's `bytes` on every rank (the others' `bytes` are ignored).
    fn broadcast(&self, bytes: Vec<u8>) -> Result<Vec<u8>>;
}

/// The ranks a [`crate::FitOptions::distributed`] fit trains over.
#[derive(Clone)]
pub struct Group {
    exchange: Arc<dyn Exchange>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Group(rank {} of {})", self.rank(), self.size())
    }
}

impl Group {
    /// A group over `exchange`. This process becomes rank `exchange.rank()` for
    /// [`is_writer`].
    pub fn new(exchange: Arc<dyn Exchange>) -> Self {
        PROCESS_RANK.store(exchange.rank(), Ordering::SeqCst);
        Group { exchange }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.exchange.rank()
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.exchange.size()
    }

    /// Every rank's `send`, in rank order (after the ranks said they all do this: see
    /// `lockstep`).
    pub(crate) fn all_gather(&self, what: Gathered, send: &[u8]) -> Result<Vec<u8>> {
        let started = std::time::Instant::now();
        lockstep::announce(self, &lockstep::Announce::Gather(what, send.len() as u64))?;
        let out = self.exchange.all_gather(send)?;
        // This rank's bytes go to each other rank; theirs come back beside its own.
        let others = self.size() - 1;
        self.count(what, started, others * send.len(), out.len() - send.len());
        Ok(out)
    }

    /// The blocks the ranks sent this one (`send`: block `s` of `counts[s]` bytes for rank
    /// `s`, the same `counts` on every rank), in rank order (after the ranks said they all do
    /// this).
    pub(crate) fn all_to_all_v(
        &self,
        what: Gathered,
        send: &[u8],
        counts: &[usize],
    ) -> Result<Vec<u8>> {
        let started = std::time::Instant::now();
        lockstep::announce(self, &lockstep::Announce::Gather(what, send.len() as u64))?;
        let out = self.exchange.all_to_all_v(send, counts)?;
        // Every block but its own to the others, and one from each of them.
        let kept = counts[self.rank()];
        self.count(what, started, send.len() - kept, out.len() - kept);
        Ok(out)
    }

    /// Adds a step's exchange to the timings: its time, and the bytes this rank sent to the
    /// other ranks and received from them, with the announcement before it (a header to and
    /// from each).
    fn count(&self, what: Gathered, started: std::time::Instant, sent: usize, received: usize) {
        if !what.is_step() {
            return;
        }
        COMM_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let headers = (self.size() - 1) * lockstep::HEADER_BYTES;
        SENT_BYTES.fetch_add((sent + headers) as u64, Ordering::Relaxed);
        RECEIVED_BYTES.fetch_add((received + headers) as u64, Ordering::Relaxed);
    }

    /// Ends a round of callback hooks in a fit with sharded optimizer slots: whether any rank
    /// asked for a snapshot, so that every rank then sends its shard of the slots. Collective;
    /// counted with the steps' traffic (one header to and from each rank).
    pub(crate) fn end_round(&self, snapshot: bool) -> Result<bool> {
        let started = std::time::Instant::now();
        let any = lockstep::end_round(self, snapshot)?;
        self.count(Gathered::Params, started, 0, 0);
        Ok(any)
    }

    /// Rank 0's `bytes` on every rank (the others' are ignored), after the ranks said they
    /// all do this. Collective: e.g. for a decision only rank 0 can take before `fit`.
    pub fn broadcast(&self, bytes: Vec<u8>) -> Result<Vec<u8>> {
        lockstep::announce(self, &lockstep::Announce::Broadcast)?;
        self.exchange.broadcast(bytes)
    }

    /// Ends a distributed `fit` on this rank with `result`: every rank's `fit` ends with an
    /// error when any rank's does (see `lockstep`). Collective.
    pub(crate) fn finish<T>(&self, result: Result<T>) -> Result<T> {
        lockstep::finish(self, result)
    }
}

/// The rank of this process in its [`Group`] (0 when there is none).
static PROCESS_RANK: AtomicUsize = AtomicUsize::new(0);
/// This process's rank on its node when MPI started it among others (`usize::MAX`: not).
pub(crate) static LOCAL_RANK: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The group of the distributed fit in progress, for the hooks that have no other way to it.
static ACTIVE: std::sync::Mutex<Option<Group>> = std::sync::Mutex::new(None);
/// Whether a distributed fit is in progress (a cheap copy of `ACTIVE.is_some()`).
static IN_FIT: AtomicBool = AtomicBool::new(false);
/// The preemption signal the ranks agreed on at the last exchange (0: none).
static AGREED_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Time and bytes of the steps' exchanges and of the steps, for `bench dp`.
static COMM_NANOS: AtomicU64 = AtomicU64::new(0);
static SENT_BYTES: AtomicU64 = AtomicU64::new(0);
static RECEIVED_BYTES: AtomicU64 = AtomicU64::new(0);
static COMPUTE_NANOS: AtomicU64 = AtomicU64::new(0);
static REDUCE_NANOS: AtomicU64 = AtomicU64::new(0);
static OVERLAP_NANOS: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);
static SLOT_BYTES: AtomicU64 = AtomicU64::new(0);
static SLOT_GATHERS: AtomicU64 = AtomicU64::new(0);
static SLOT_GATHER_NANOS: AtomicU64 = AtomicU64::new(0);

/// Whether this process writes files shared by the run (backups, the output): true unless
/// it is a rank above 0 of an MPI group. [`crate::BackupAndRestore`] saves only where true.
pub fn is_writer() -> bool {
    PROCESS_RANK.load(Ordering::SeqCst) == 0
}

/// The adapter index among those of the best type that this process should take: its local
/// rank, when MPI started it among several processes (see `Mpi::init`, with the `mpi`
/// feature).
pub fn local_adapter_index() -> Option<usize> {
    match LOCAL_RANK.load(Ordering::SeqCst) {
        usize::MAX => None,
        r => Some(r),
    }
}

/// The preemption signal a callback should act on: under a distributed fit the signal every
/// rank agreed on at the last exchange (so that all stop at the same batch, whichever rank
/// was signalled and whenever), otherwise `local` (the signal this process caught).
pub fn preempt_signal(local: Option<i32>) -> Option<i32> {
    if !IN_FIT.load(Ordering::SeqCst) {
        return local;
    }
    match AGREED_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Where a distributed fit's steps spent their time, summed since [`reset_timings`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Steps (global batches) done.
    pub steps: u64,
    /// Seconds of forward and backward on the rank's share, with the gradients' readback,
    /// less the exchanges made meanwhile (`overlap_s`).
    pub compute_s: f64,
    /// Seconds inside the step's exchanges (the reduce-scatter and the all-gather).
    pub comm_s: f64,
    /// Seconds of the upload and the ordered sum of this rank's shard, the readback of the
    /// sum, and the update.
    pub reduce_s: f64,
    /// Seconds of `comm_s` spent exchanging buckets of gradients before the step's last
    /// bucket was read back: while the GPU still had backward launches of later buckets to run
    /// (the exchange overlapping the backward pass, at most).
    pub overlap_s: f64,
    /// Bytes the steps' exchanges sent from this rank to the others, as handed to MPI: each
    /// exchange's announcement header, the reduce-scatter's blocks (each with the share's
    /// 16-byte statistics) and the all-gather's shard.
    pub sent_bytes: u64,
    /// Bytes the steps' exchanges brought this rank from the others, as MPI returned them.
    pub received_bytes: u64,
    /// Bytes of the optimizer slots this rank kept on its GPU during the last distributed fit:
    /// its shard of each (docs/MPI.md, "Sharded optimizer state").
    pub optimizer_slot_bytes: u64,
    /// Gathers of the sharded optimizer slots for a snapshot (a save, or
    /// `Context::read_state`), each collective.
    pub slot_gathers: u64,
    /// Seconds this rank spent in them: reading its shards back, the all-gather, and
    /// assembling the whole slots.
    pub slot_gather_s: f64,
}

/// The step timings so far.
pub fn timings() -> Timings {
    let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
    Timings {
        steps: STEPS.load(Ordering::Relaxed),
        compute_s: s(&COMPUTE_NANOS),
        comm_s: s(&COMM_NANOS),
        reduce_s: s(&REDUCE_NANOS),
        overlap_s: s(&OVERLAP_NANOS),
        sent_bytes: SENT_BYTES.load(Ordering::Relaxed),
        received_bytes: RECEIVED_BYTES.load(Ordering::Relaxed),
        optimizer_slot_bytes: SLOT_BYTES.load(Ordering::Relaxed),
        slot_gathers: SLOT_GATHERS.load(Ordering::Relaxed),
        slot_gather_s: s(&SLOT_GATHER_NANOS),
    }
}

/// Sets the step timings to zero.
pub fn reset_timings() {
    for a in [
        &COMM_NANOS,
        &SENT_BYTES,
        &RECEIVED_BYTES,
        &COMPUTE_NANOS,
        &REDUCE_NANOS,
        &OVERLAP_NANOS,
        &STEPS,
        &SLOT_GATHERS,
        &SLOT_GATHER_NANOS,
    ] {
        a.store(0, Ordering::Relaxed);
    }
}

/// Records the bytes of optimizer slots this rank keeps (called when a fit shards them).
pub(crate) fn record_slot_bytes(bytes: u64) {
    SLOT_BYTES.store(bytes, Ordering::Relaxed);
}

/// Adds one gather of the sharded optimizer slots, which took `took`.
pub(crate) fn record_slot_gather(took: std::time::Duration) {
    SLOT_GATHERS.fetch_add(1, Ordering::Relaxed);
    SLOT_GATHER_NANOS.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
}

/// Nanoseconds spent in the steps' exchanges so far.
pub(crate) fn comm_nanos() -> u64 {
    COMM_NANOS.load(Ordering::Relaxed)
}

/// Adds one step's compute and reduction time (called by the engine): `compute` less the
/// exchanges made during it (`overlapped` nanoseconds), `reduce` less the exchanges inside
/// it, `comm_in_reduce` nanoseconds.
pub(crate) fn record_step_times(
    (compute, overlapped): (std::time::Duration, u64),
    reduce: std::time::Duration,
    comm_in_reduce: u64,
) {
    let compute = (compute.as_nanos() as u64).saturating_sub(overlapped);
    COMPUTE_NANOS.fetch_add(compute, Ordering::Relaxed);
    OVERLAP_NANOS.fetch_add(overlapped, Ordering::Relaxed);
    let reduce = (reduce.as_nanos() as u64).saturating_sub(comm_in_reduce);
    REDUCE_NANOS.fetch_add(reduce, Ordering::Relaxed);
    STEPS.fetch_add(1, Ordering::Relaxed);
}

/// Records the preemption signal the ranks agreed on (called by the engine after each
/// exchange).
pub(crate) fn set_agreed_signal(signal: i32) {
    AGREED_SIGNAL.store(signal, Ordering::SeqCst);
}

/// The agreed signal, if any.
pub(crate) fn agreed_signal() -> Option<i32> {
    preempt_signal(None)
}

/// The group of the distributed fit in progress.
pub(crate) fn active() -> Option<Group> {
    ACTIVE.lock().ok().and_then(|g| g.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rank 0 of 3 ranks that all send the same blocks: `all_to_all` returns block 0 of `send`
    /// from each rank, as MPI would.
    struct SameEverywhere;

    impl Exchange for SameEverywhere {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            3
        }
        fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>> {
            Ok(send.repeat(3))
        }
        fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>> {
            let block = send.len() / 3;
            Ok(send[..block].repeat(3))
        }
        fn broadcast(&self, bytes: Vec<u8>) -> Result<Vec<u8>> {
            Ok(bytes)
        }
    }

    #[test]
    fn the_default_all_to_all_v_pads_to_the_widest_block_and_strips_the_padding() {
        // Blocks of 2, 0 and 3 bytes for ranks 0, 1 and 2: rank 0's travel padded to 3.
        let got = SameEverywhere
            .all_to_all_v(&[1, 2, 7, 8, 9], &[2, 0, 3])
            .unwrap();
        assert_eq!(got, [1, 2, 1, 2, 1, 2]);
    }
}
