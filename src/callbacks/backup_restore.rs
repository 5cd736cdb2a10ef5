//! The restore at the start of `fit`: the decision `checkpoint::decide` makes (or the state
//! read ahead, where the decision would restore that very state), carried out on the run.

use crate::callbacks::Context;
use crate::checkpoint::{BackupDir, Decision, Loaded, ReadAhead, Sidecar, decide};
use crate::error::{Error, Result};
use crate::state::{EventKind, TrainState, rank_count};
use std::path::Path;

/// Restores the last committed state into `ctx` by the decision `inspect` reports
/// (`checkpoint::decide`), or from `read` where that is the state the decision would restore.
/// Changes nothing in the directory when it fails.
pub(super) fn restore(
    dir: &mut BackupDir,
    ctx: &mut Context<'_>,
    read: Option<ReadAhead>,
    double_checkpoint: bool,
    discard_mismatched: bool,
) -> Result<()> {
    let decision = match read.and_then(|r| r.take(dir, ctx.fingerprint())) {
        Some(loaded) => Decision::Resume {
            loaded,
            fallback_from: None,
        },
        None => decide(dir.place(), double_checkpoint, Some(ctx.fingerprint()))?,
    };
    match decision {
        Decision::Fresh => ctx.record_event(EventKind::Start),
        Decision::Resume {
            mut loaded,
            fallback_from,
        } => {
            let fell_back = fallback_from.is_some();
            if let Some(e) = fallback_from {
                eprintln!(
                    "wgfit: {e}\nwgfit: restored the previous checkpoint ({}) instead",
                    loaded.sidecar_path.display()
                );
            }
            dir.adopt(&mut loaded);
            let Loaded {
                sidecar,
                sidecar_path: path,
                state,
                ..
            } = *loaded;
            // Saved on another rank count: the same state, in steps of this one.
            let state = restate_for_ranks(state, &sidecar, &path, ctx)?;
            // A state that matches the fingerprint but not the model is damaged or crafted;
            // the device failing during the upload says nothing about the backup.
            ctx.set_state(state).map_err(|e| match e {
                Error::Gpu { .. } | Error::GpuTimeout { .. } | Error::DeviceLost { .. } => e,
                other => Error::corrupt(&path, other.to_string()),
            })?;
            ctx.record_event(if fell_back {
                EventKind::Fallback
            } else {
                EventKind::Resume
            });
        }
        Decision::Mismatch { differences, .. } if discard_mismatched => {
            eprintln!(
                "wgfit: discarding the backup in {} of a different run ({})",
                dir.path().display(),
                differences.join("; ")
            );
            return dir.discard();
        }
        Decision::Mismatch { differences, .. } => {
            return Err(Error::FingerprintMismatch {
                dir: dir.path().to_path_buf(),
                differences,
            });
        }
        Decision::Refuse(e) => return Err(e),
    }
    // The strays of earlier runs are removed by the writer thread as it starts.
    Ok(())
}

/// The loaded state as this run's rank count continues it (unchanged on the rank count that
/// saved it, or for a backup that did not record its count).
fn restate_for_ranks(
    state: TrainState,
    sidecar: &Sidecar,
    path: &Path,
    ctx: &mut Context<'_>,
) -> Result<TrainState> {
    let (then, now) = (&sidecar.fingerprint, ctx.fingerprint());
    let (Some(from), Some(run)) = (then.one_rank_run(), now.one_rank_run()) else {
        return Ok(state);
    };
    let accumulators: Vec<(String, Vec<usize>)> = ctx
        .engine()
        .params()
        .slot_layout()
        .into_iter()
        .filter(|(name, _, _)| name.ends_with(rank_count::ACCUMULATOR))
        .map(|(name, shape, _)| (name, shape))
        .collect();
    rank_count::restate(state, from.ranks, run, &accumulators, path)
}
