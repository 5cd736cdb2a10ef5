//! The ranks kept in lock step. Before every collective each rank all-gathers a small header
//! saying what it is about to do: this exchange (its kind and length), the end of its fit, or
//! its failure. A rank that fails alone (a callback's error, a full disk on rank 0) says so at
//! its next collective, which is the one every other rank is waiting in, so every `fit` ends
//! with an error naming it instead of waiting for ever; ranks that reach different exchanges
//! (one ran out of epochs, one stopped early) are told so instead of mismatching.
//!
//! Every path through a distributed `fit` ends with exactly one more header: [`finish`] at its
//! end, except where the error came from a header, which every rank has seen.

use super::Group;
use crate::error::{Error, Result};

/// Bytes of a header: a tag, the exchange's length, and the failure's message (truncated).
pub(super) const HEADER_BYTES: usize = 256;
const MESSAGE_AT: usize = 16;

/// What an all-gather carries: ranks at different exchanges of equal length are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gathered {
    /// A step's gradient shares: the reduce-scatter (each rank's shard of every rank's
    /// gradients, with the shares' statistics).
    Step = 1,
    /// The run every rank must share, before training.
    Agreement = 2,
    /// The parameters' digests, at the start and the end of training.
    Parameters = 3,
    /// A step's summed shards: the all-gather after the reduce-scatter.
    Sums = 4,
    /// A step's updated parameter shards: the all-gather after a sharded update.
    Params = 5,
    /// The optimizer slots' shards, gathered for a snapshot or at the end of training.
    Slots = 6,
    /// A step's sums of squared gradients per 64-element block: the all-gather that lets
    /// every rank clip its shard by whole tensors' norms.
    Norms = 7,
}

impl Gathered {
    fn from_code(code: u8) -> Option<Gathered> {
        [
            Gathered::Step,
            Gathered::Agreement,
            Gathered::Parameters,
            Gathered::Sums,
            Gathered::Params,
            Gathered::Slots,
            Gathered::Norms,
        ]
        .into_iter()
        .find(|g| *g as u8 == code)
    }

    /// Whether this exchange is part of a training step (counted by the step timings).
    pub(super) fn is_step(self) -> bool {
        matches!(
            self,
            Gathered::Step | Gathered::Sums | Gathered::Params | Gathered::Norms
        )
    }

    fn words(self) -> &'static str {
        match self {
            Gathered::Step => "a step's gradients",
            Gathered::Agreement => "what the ranks must share",
            Gathered::Parameters => "the parameters' digests",
            Gathered::Sums => "a step's summed gradients",
            Gathered::Params => "a step's updated parameters",
            Gathered::Slots => "the optimizer slots' shards",
            Gathered::Norms => "a step's squared gradient norms",
        }
    }
}

/// What a rank is about to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Announce {
    /// An all-gather of `len` bytes of this.
    Gather(Gathered, u64),
    /// A broadcast from rank 0.
    Broadcast,
    /// The end of its `fit`, which succeeded.
    Done,
    /// The end of its `fit`, which failed with this message.
    Failed(String),
    /// The end of a round of callback hooks in a fit with sharded optimizer slots, and
    /// whether a callback on this rank asked for a snapshot (which needs every rank's shard).
    Round { snapshot: bool },
}

impl Announce {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        let (tag, what, len) = match self {
            Announce::Gather(what, len) => (1u8, *what as u8, *len),
            Announce::Broadcast => (2, 0, 0),
            Announce::Done => (3, 0, 0),
            Announce::Failed(_) => (4, 0, 0),
            Announce::Round { snapshot } => (5, 0, u64::from(*snapshot)),
        };
        out[0] = tag;
        out[1] = what;
        out[8..16].copy_from_slice(&len.to_le_bytes());
        if let Announce::Failed(message) = self {
            let mut end = message.len().min(HEADER_BYTES - MESSAGE_AT);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            out[MESSAGE_AT..MESSAGE_AT + end].copy_from_slice(&message.as_bytes()[..end]);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Announce> {
        let len = bytes
            .get(8..16)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        let what = bytes.get(1).copied().and_then(Gathered::from_code);
        match (bytes.first(), len) {
            (Some(1), Some(len)) => match what {
                Some(what) => Ok(Announce::Gather(what, len)),
                None => Err(Error::internal("a rank sent a header wgfit does not know")),
            },
            (Some(2), Some(_)) => Ok(Announce::Broadcast),
            (Some(3), Some(_)) => Ok(Announce::Done),
            (Some(5), Some(wanted)) => Ok(Announce::Round {
                snapshot: wanted != 0,
            }),
            (Some(4), Some(_)) => {
                let text = &bytes[MESSAGE_AT..];
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                Ok(Announce::Failed(
                    String::from_utf8_lossy(&text[..end]).into_owned(),
                ))
            }
            _ => Err(Error::internal("a rank sent a header wgfit does not know")),
        }
    }

    /// For messages: "ended its fit", "exchanges 120 bytes", ...
    fn words(&self) -> String {
        match self {
            Announce::Gather(what, len) => format!("exchanges {} ({len} bytes)", what.words()),
            Announce::Broadcast => "takes rank 0's state".into(),
            Announce::Done => "ended its fit".into(),
            Announce::Failed(_) => "failed".into(),
            Announce::Round { .. } => "ends a round of callback hooks".into(),
        }
    }
}

/// Tells every rank what this one is about to do, and learns what they are. `Err` when
/// another rank failed ([`Error::RankFailed`], the lowest such rank) or is doing something
/// else ([`Error::RanksOutOfStep`]); the caller then leaves `fit` without another collective.
pub(crate) fn announce(group: &Group, mine: &Announce) -> Result<()> {
    announce_all(group, mine).map(|_| ())
}

/// Ends a round of callback hooks on every rank alike: whether any rank asked for a snapshot
/// (see [`Announce::Round`]). Errors as [`announce`]'s.
pub(crate) fn end_round(group: &Group, snapshot: bool) -> Result<bool> {
    let all = announce_all(group, &Announce::Round { snapshot })?;
    Ok(all
        .iter()
        .any(|a| matches!(a, Announce::Round { snapshot: true })))
}

/// [`announce`], returning every rank's announcement. Rounds agree whatever each asked.
fn announce_all(group: &Group, mine: &Announce) -> Result<Vec<Announce>> {
    let all = group.exchange.all_gather(&mine.encode())?;
    let me = group.rank();
    let theirs: Vec<Announce> = all
        .chunks_exact(HEADER_BYTES)
        .map(Announce::decode)
        .collect::<Result<_>>()?;
    for (rank, other) in theirs.iter().enumerate() {
        if let Announce::Failed(reason) = other
            && rank != me
        {
            return Err(Error::RankFailed {
                rank,
                reason: reason.clone(),
            });
        }
    }
    if matches!(mine, Announce::Failed(_)) {
        return Ok(theirs);
    }
    let same = |other: &Announce| match (other, mine) {
        (Announce::Round { .. }, Announce::Round { .. }) => true,
        _ => other == mine,
    };
    match theirs.iter().enumerate().find(|(_, other)| !same(other)) {
        Some((rank, other)) => Err(Error::RanksOutOfStep {
            rank,
            theirs: other.words(),
            mine: mine.words(),
        }),
        None => Ok(theirs),
    }
}

/// Ends a distributed `fit` with `result` on this rank: announces its end (or its failure) and
/// returns `result`, or the error of another rank that failed.
pub(crate) fn finish<T>(group: &Group, result: Result<T>) -> Result<T> {
    match result {
        // Learned from a header every rank took part in: nothing more to say.
        Err(e @ (Error::RankFailed { .. } | Error::RanksOutOfStep { .. })) => Err(e),
        Ok(value) => announce(group, &Announce::Done).map(|_| value),
        Err(e) => {
            // The others' failures, if any, are theirs to report: this rank reports its own.
            let _ = announce(group, &Announce::Failed(e.to_string()));
            Err(e)
        }
    }
}
