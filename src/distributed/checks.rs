//! The checks that make a distributed fit refuse rather than train something else: the ranks
//! agree on the run, the batch splits into equal shares, and the parameters stay identical.

use super::{Gathered, Group};
use crate::error::{Error, Result};
use crate::state::{Fingerprint, Tensor};
use sha2::{Digest, Sha256};

/// Checks that a global batch of `batch` rows over `samples` samples splits into `ranks`
/// shares that make the one-rank accumulation run: equal shares, and a last batch that gives
/// every rank at least one row (an empty share has no counterpart in that run).
pub(crate) fn check_split(batch: usize, ranks: usize, samples: usize) -> Result<()> {
    let err = |reason: String| Error::BatchSplit {
        batch,
        ranks,
        reason,
    };
    if !batch.is_multiple_of(ranks) {
        let lower = batch - batch % ranks;
        return Err(err(format!(
            "the batch is global and each rank takes an equal share; use a multiple of {ranks}, e.g. {}",
            if lower > 0 { lower } else { ranks }
        )));
    }
    let share = batch / ranks;
    let tail = samples % batch;
    if tail != 0 && tail <= (ranks - 1) * share {
        return Err(err(format!(
            "the last batch of each epoch has {tail} of the {samples} samples, which leaves rank {} without rows (the last batch must have more than {} rows); pick a batch size whose last batch does, or drop {tail} samples",
            tail.div_ceil(share),
            (ranks - 1) * share
        )));
    }
    Ok(())
}

/// Checks that every rank trains the same run: the fingerprint (model, loss, optimizer,
/// batch, data and its hash, seed) and the device type, whose kernels make the bits.
pub(crate) fn check_ranks_agree(
    group: &Group,
    fingerprint: &Fingerprint,
    run: &[(&str, String)],
) -> Result<()> {
    let mut mine = serde_json::to_value(fingerprint)
        .map_err(|e| Error::encoding("the run's fingerprint", e))?;
    if let Some(map) = mine.as_object_mut() {
        for (what, value) in run {
            map.insert((*what).into(), value.clone().into());
        }
        map.insert("ranks".into(), group.size().into());
    }
    let bytes =
        serde_json::to_vec(&mine).map_err(|e| Error::encoding("the run's fingerprint", e))?;
    // All-gather needs equal lengths: first the lengths, then each padded to the longest.
    let lengths = group.all_gather(Gathered::Agreement, &(bytes.len() as u64).to_le_bytes())?;
    let longest = lengths
        .chunks_exact(8)
        .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
        .max()
        .unwrap_or(0) as usize;
    let mut padded = bytes.clone();
    padded.resize(longest, b' ');
    let all = group.all_gather(Gathered::Agreement, &padded)?;
    let parse = |b: &[u8]| -> Result<serde_json::Value> {
        serde_json::from_slice(b).map_err(|e| Error::encoding("a rank's fingerprint", e))
    };
    let chunks: Vec<&[u8]> = all.chunks(longest.max(1)).collect();
    let first = parse(chunks.first().copied().unwrap_or_default())?;
    for (rank, chunk) in chunks.iter().enumerate().skip(1) {
        let other = parse(chunk)?;
        let differences = differences(&first, &other, rank);
        if !differences.is_empty() {
            return Err(Error::RankDisagreement { rank, differences });
        }
    }
    Ok(())
}

/// What every rank of a distributed fit must run alike besides the fingerprint: the device
/// type (whose kernels make the bits), the epochs, the validation (its data decides plateaus
/// and early stops), and the settings of the callbacks that change the training or its end.
pub(crate) fn ranks_must_share(
    options: &crate::FitOptions,
    callbacks: &[&mut dyn crate::Callback],
    adapter: &str,
) -> Vec<(&'static str, String)> {
    let validation = match &options.validation_data {
        Some(v) => format!(
            "{} rows, sha256 {}",
            v.len(),
            v.content_hash()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        None => "none".into(),
    };
    let settings: Vec<String> = callbacks
        .iter()
        .filter_map(|cb| cb.settings().map(|s| format!("{} ({s})", cb.name())))
        .collect();
    vec![
        ("adapter", adapter.to_string()),
        ("epochs", options.epochs.to_string()),
        ("initial epoch", options.initial_epoch.to_string()),
        ("validation data", validation),
        (
            "validation frequency and batch size",
            format!(
                "{} {:?}",
                options.validation_freq, options.validation_batch_size
            ),
        ),
        ("callbacks", settings.join("; ")),
    ]
}

/// "field: rank 0 X, rank r Y" for each top-level field that differs.
fn differences(first: &serde_json::Value, other: &serde_json::Value, rank: usize) -> Vec<String> {
    let (Some(a), Some(b)) = (first.as_object(), other.as_object()) else {
        return vec![format!("rank 0 {first}, rank {rank} {other}")];
    };
    a.keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show =
                |v: Option<&serde_json::Value>| v.map_or("nothing".into(), |v| v.to_string());
            format!(
                "{k}: rank 0 {}, rank {rank} {}",
                show(a.get(k)),
                show(b.get(k))
            )
        })
        .collect()
}

/// Checks that every rank holds the same parameters, bit for bit (SHA-256 of their bytes),
/// and returns that hash in hex.
pub(crate) fn check_parameters_agree(
    group: &Group,
    params: &[Tensor],
    when: &str,
) -> Result<String> {
    let mine = parameters_sha256(params);
    let all = group.all_gather(Gathered::Parameters, &mine)?;
    let ranks: Vec<usize> = all
        .chunks_exact(32)
        .enumerate()
        .filter(|(_, h)| *h != &all[..32])
        .map(|(r, _)| r)
        .collect();
    if !ranks.is_empty() {
        return Err(Error::RanksDiverged {
            ranks,
            when: when.to_string(),
        });
    }
    Ok(mine.iter().map(|b| format!("{b:02x}")).collect())
}

/// SHA-256 over the parameters' names and little-endian f32 bytes, in order.
pub(crate) fn parameters_sha256(params: &[Tensor]) -> [u8; 32] {
    let mut h = Sha256::new();
    for t in params {
        h.update(t.name.as_bytes());
        for v in &t.data {
            h.update(v.to_le_bytes());
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::check_split;

    #[test]
    fn splits() {
        assert!(check_split(64, 2, 1792).is_ok());
        // 150 = 2·64 + 22: the last batch leaves rank 1 nothing.
        assert!(check_split(64, 2, 150).is_err());
        // 150 = 2·50 + 50... no tail at all at 50; at 60, 30 rows > 30? no: rank 1 empty.
        assert!(check_split(50, 2, 150).is_ok());
        assert!(check_split(60, 2, 150).is_err());
        assert!(check_split(63, 2, 1792).is_err());
    }
}
