//! The bytes ranks exchange: one message per rank per step (its share's gradients, statistics
//! and the preemption signal it caught), and the training state rank 0 hands the others when
//! a fit starts.

use crate::error::{Error, Result};
use crate::state::{StateMeta, Tensor, TrainState};

/// The fixed part of a step message: signal, rows, mean loss, correct.
pub(crate) const HEADER: usize = 16;

/// What one rank contributes to a step besides its gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepMessage {
    /// The preemption signal this rank caught (0: none).
    pub signal: u32,
    /// Rows of this rank's share of the batch.
    pub rows: u32,
    /// Mean loss over the share.
    pub loss: f32,
    /// Correctly classified rows of the share.
    pub correct: f32,
}

impl StepMessage {
    /// The message: the header, then the gradients' bytes as they are on the GPU.
    pub fn encode(&self, grads: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + grads.len());
        out.extend_from_slice(&self.signal.to_le_bytes());
        out.extend_from_slice(&self.rows.to_le_bytes());
        out.extend_from_slice(&self.loss.to_le_bytes());
        out.extend_from_slice(&self.correct.to_le_bytes());
        out.extend_from_slice(grads);
        out
    }
}

/// Splits an all-gather of `ranks` step messages into each rank's header and gradients.
pub(crate) fn decode_steps(all: &[u8], ranks: usize) -> Result<Vec<(StepMessage, &[u8])>> {
    if ranks == 0 || !all.len().is_multiple_of(ranks) || all.len() / ranks < HEADER {
        return Err(Error::internal(format!(
            "a gradient exchange of {} bytes does not split into {ranks} messages",
            all.len()
        )));
    }
    let word = |m: &[u8], i: usize| [m[4 * i], m[4 * i + 1], m[4 * i + 2], m[4 * i + 3]];
    Ok(all
        .chunks_exact(all.len() / ranks)
        .map(|m| {
            let header = StepMessage {
                signal: u32::from_le_bytes(word(m, 0)),
                rows: u32::from_le_bytes(word(m, 1)),
                loss: f32::from_le_bytes(word(m, 2)),
                correct: f32::from_le_bytes(word(m, 3)),
            };
            (header, &m[HEADER..])
        })
        .collect())
}

/// The JSON head of an encoded state: the meta and each tensor's name and shape, in order.
#[derive(serde::Serialize, serde::Deserialize)]
struct StateHead {
    meta: StateMeta,
    groups: [Vec<(String, Vec<usize>)>; 4],
}

/// A training state as bytes: a little-endian u64 length, the JSON head, the tensors' f32s.
pub(crate) fn encode_state(state: &TrainState) -> Result<Vec<u8>> {
    let groups: [&[Tensor]; 4] = [
        &state.params,
        &state.slots,
        std::slice::from_ref(&state.batch_stats),
        &state.callback_tensors,
    ];
    let head = StateHead {
        meta: state.meta.clone(),
        groups: groups.map(|g| {
            g.iter()
                .map(|t| (t.name.clone(), t.shape.clone()))
                .collect()
        }),
    };
    let head = serde_json::to_vec(&head).map_err(|e| Error::encoding("the shared state", e))?;
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&head);
    for t in groups.iter().flat_map(|g| g.iter()) {
        out.extend_from_slice(bytemuck::cast_slice(&t.data));
    }
    Ok(out)
}

/// The state [`encode_state`] encoded.
pub(crate) fn decode_state(bytes: &[u8]) -> Result<TrainState> {
    let bad = |why: &str| Error::internal(format!("the state rank 0 sent is malformed: {why}"));
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("shorter than its length"))?;
    let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| bad("length"))?;
    let head = bytes.get(8..8 + len).ok_or_else(|| bad("head cut short"))?;
    let head: StateHead =
        serde_json::from_slice(head).map_err(|e| Error::encoding("the shared state", e))?;
    let mut data = &bytes[8 + len..];
    let mut take = |(name, shape): (String, Vec<usize>)| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let raw = data
            .get(..n * 4)
            .ok_or_else(|| bad("tensor data cut short"))?;
        data = &data[n * 4..];
        Ok(Tensor {
            name,
            shape,
            data: bytemuck::pod_collect_to_vec(raw),
        })
    };
    let [params, slots, stats, callback] = head.groups;
    let params = params.into_iter().map(&mut take).collect::<Result<_>>()?;
    let slots = slots.into_iter().map(&mut take).collect::<Result<_>>()?;
    let batch_stats = stats
        .into_iter()
        .map(&mut take)
        .next()
        .ok_or_else(|| bad("no batch statistics"))??;
    let callback_tensors = callback.into_iter().map(&mut take).collect::<Result<_>>()?;
    Ok(TrainState {
        params,
        slots,
        meta: head.meta,
        batch_stats,
        callback_tensors,
    })
}
