//! Where a distributed fit differs from a one-rank one, as the training loop and the backup
//! callback call it: the start (the ranks agree on the run), the state rank 0 restored handed
//! to the others, the stop every rank takes at the same batch, the end.

use super::{ACTIVE, AGREED_SIGNAL, Group, IN_FIT, agreed_signal, checks, wire};
use crate::callbacks::{Context, PreemptGuard};
use crate::error::{Error, Result};
use crate::state::Fingerprint;
use std::sync::atomic::Ordering;

/// A distributed fit in progress: while it lives the hooks below act, and SIGTERM and SIGINT
/// are caught on every rank (to be exchanged with the next step's gradients).
pub(crate) struct DistributedFit {
    _preempt: PreemptGuard,
}

impl Drop for DistributedFit {
    fn drop(&mut self) {
        if let Ok(mut active) = ACTIVE.lock() {
            *active = None;
        }
        IN_FIT.store(false, Ordering::SeqCst);
    }
}

/// Starts a distributed fit on `group` (the ranks were checked to agree on the run:
/// [`check_ranks_agree`]).
pub(crate) fn begin(group: &Group) -> Result<DistributedFit> {
    let preempt = PreemptGuard::new()?;
    let mut active = ACTIVE
        .lock()
        .map_err(|_| Error::internal("the distributed fit's lock was poisoned"))?;
    *active = Some(group.clone());
    AGREED_SIGNAL.store(0, Ordering::SeqCst);
    IN_FIT.store(true, Ordering::SeqCst);
    Ok(DistributedFit { _preempt: preempt })
}

/// Checks that every rank trains the same run (see `checks::check_ranks_agree`). Collective.
pub(crate) fn check_ranks_agree(
    group: &Group,
    fingerprint: &Fingerprint,
    run: &[(&str, String)],
) -> Result<()> {
    checks::check_ranks_agree(group, fingerprint, run)
}

/// In a distributed fit, checks that every rank holds the same parameters `when`, and keeps
/// their SHA-256 for [`parameters_sha256`]. Collective.
pub(crate) fn check_agree(ctx: &mut Context<'_>, when: &str) -> Result<()> {
    let Some(group) = super::active() else {
        return Ok(());
    };
    let params = ctx.read_params()?;
    let hash = checks::check_parameters_agree(&group, &params, when)?;
    if let Ok(mut last) = LAST_SHA256.lock() {
        *last = Some(hash);
    }
    Ok(())
}

/// The SHA-256 of the parameters, identical on every rank, at the last check of a distributed
/// fit (its end, after a completed fit).
pub fn parameters_sha256() -> Option<String> {
    LAST_SHA256.lock().ok().and_then(|h| h.clone())
}

static LAST_SHA256: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// On rank 0, after it restored (or not) from its backup: hands its whole state to the other
/// ranks, which [`receive_state`] it. Nothing outside a distributed fit. Collective.
pub(crate) fn send_state(ctx: &mut Context<'_>) -> Result<()> {
    let Some(group) = super::active() else {
        return Ok(());
    };
    let state = ctx.state_for_peers()?;
    group.broadcast(wire::encode_state(&state)?)?;
    Ok(())
}

/// On ranks above 0: takes the state rank 0 restored (see [`send_state`]), so that every rank
/// resumes from one backup read once, on one file system or none.
pub(crate) fn receive_state(ctx: &mut Context<'_>) -> Result<()> {
    let Some(group) = super::active() else {
        return Ok(());
    };
    let bytes = group.broadcast(Vec::new())?;
    ctx.set_state(wire::decode_state(&bytes)?)
}

/// After a batch's callbacks: stops this rank when the ranks agreed on a preemption signal at
/// the batch's exchange. (Rank 0's [`crate::BackupAndRestore`] has then already saved and
/// stopped with [`Error::Preempted`].)
pub(crate) fn check_stop(ctx: &Context<'_>) -> Result<()> {
    match agreed_signal() {
        Some(signal) => Err(Error::StoppedBySignal {
            signal,
            epoch: ctx.position().epoch,
            step: ctx.position().step,
        }),
        None => Ok(()),
    }
}
