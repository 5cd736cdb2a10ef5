//! Rounds of callback hooks: every callback's hook for one moment of `fit`, then the
//! callback states a restore brought handed over, then the snapshots asked for delivered with
//! the callbacks' states (checked to be what a restore accepts).

use super::{Callback, Context};
use crate::error::{Error, Result};
use crate::state::{CALLBACK_TENSORS, Tensor};
use std::sync::Arc;

/// Runs `hook` on every callback in order; the first error ends the round, and then no
/// snapshot of the round is delivered: the callbacks after the failing one never saw this
/// moment, so a state saved now would resume as if they had (a rerun would skip their work).
pub(crate) fn each(
    callbacks: &mut [&mut dyn Callback],
    ctx: &mut Context<'_>,
    mut hook: impl FnMut(&mut dyn Callback, &mut Context<'_>) -> Result<()>,
) -> Result<()> {
    let mut result = Ok(());
    for (i, cb) in callbacks.iter_mut().enumerate() {
        ctx.set_current_callback(i);
        result = hook(&mut **cb, ctx);
        if result.is_err() {
            ctx.take_snapshot_requests();
            break;
        }
    }
    let delivered = after_round(callbacks, ctx, result.is_ok());
    result.and(delivered)
}

/// After a round of hooks: hand restored callback states over, then deliver snapshots.
/// `succeeded`: whether every hook of the round did (after a failure the ranks do not meet
/// again here: the failure is told at the next collective, `distributed::lockstep`).
fn after_round(
    callbacks: &mut [&mut dyn Callback],
    ctx: &mut Context<'_>,
    succeeded: bool,
) -> Result<()> {
    if let Some((states, mut tensors)) = ctx.take_pending_callback_states() {
        for cb in callbacks.iter_mut() {
            let prefix = format!("{CALLBACK_TENSORS}{}.", cb.name());
            let (own, rest) = tensors
                .into_iter()
                .partition(|t| t.name.starts_with(&prefix));
            tensors = rest;
            let own: Vec<Tensor> = own;
            if !own.is_empty() {
                cb.load_state_tensors(own)?;
            }
            if let Some(state) = states.get(cb.name()) {
                cb.load_state(state.clone())?;
            }
        }
    }
    let requests = ctx.take_snapshot_requests();
    if !succeeded {
        return Ok(());
    }
    // With the optimizer slots sharded over the ranks, a snapshot on any rank needs every
    // rank's shard: all learn whether one was asked for, and all send theirs.
    if !ctx.engine().end_round(!requests.is_empty())? {
        return Ok(());
    }
    let gathered = ctx.engine().gather_slots()?;
    if requests.is_empty() {
        return Ok(());
    }
    let owned: Vec<(&str, Arc<[Tensor]>)> = callbacks
        .iter()
        .filter_map(|cb| cb.state_tensors().map(|t| (cb.name(), t)))
        .collect();
    if !owned.is_empty() {
        // Checked at every save (a callback may change its tensors at any hook), and only
        // then: most runs keep none.
        let layout = ctx.engine().params().param_layout();
        let mut names = std::collections::BTreeSet::new();
        let mut values = 0u64;
        for (callback, t) in &owned {
            check_callback_tensors(callback, t, &layout, &mut names, &mut values)?;
        }
    }
    let tensors = owned.into_iter().map(|(_, t)| t).collect();
    ctx.set_callback_states(
        callbacks
            .iter()
            .filter_map(|cb| cb.state().map(|s| (cb.name().to_string(), s)))
            .collect(),
        tensors,
    );
    for (i, deferred) in requests {
        let snapshot = ctx.take_snapshot(&gathered, deferred)?;
        ctx.set_current_callback(i);
        callbacks[i].on_snapshot(ctx, snapshot)?;
    }
    Ok(())
}

/// Callbacks that save state are told theirs back by name: two of one name would mix them up.
pub(crate) fn check_callback_names(callbacks: &[&mut dyn Callback]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for cb in callbacks {
        let saves = cb.state().is_some() || cb.state_tensors().is_some();
        if saves && !seen.insert(cb.name().to_string()) {
            return Err(Error::Callback {
                callback: cb.name().into(),
                reason: "two callbacks of this name save state; a resume could not tell their states apart (give one another name)".into(),
            });
        }
    }
    Ok(())
}

/// A callback's tensors must be what a restore accepts (docs/FORMAT.md), or a state would be
/// committed that cannot be restored: named `callbacks.<its name>.<parameter name>` (so that a
/// restore hands them back to it), shaped as that parameter, each name once, and all
/// callbacks' together at most `MAX_CALLBACK_COPIES` copies of the parameters, in tensors and
/// in values (`values` counts them over the callbacks).
fn check_callback_tensors(
    callback: &str,
    tensors: &[Tensor],
    layout: &[(String, Vec<usize>, usize)],
    names: &mut std::collections::BTreeSet<String>,
    values: &mut u64,
) -> Result<()> {
    let fail = |reason: String| Error::Callback {
        callback: callback.into(),
        reason,
    };
    for t in tensors {
        let param = match crate::state::split_callback_tensor(&t.name) {
            Some((c, param)) if c == callback => param,
            _ => {
                return Err(fail(format!(
                    "its state tensor `{}` is not named `{CALLBACK_TENSORS}{callback}.<parameter name>`",
                    t.name
                )));
            }
        };
        match layout.iter().find(|(name, _, _)| name == param) {
            Some((_, shape, _))
                if *shape == t.shape && t.data.len() == t.shape.iter().product::<usize>() =>
            {
                *values += t.data.len() as u64;
            }
            Some((_, shape, _)) => {
                return Err(fail(format!(
                    "its state tensor `{}` has shape {:?} and {} values; its parameter has shape {shape:?}",
                    t.name,
                    t.shape,
                    t.data.len()
                )));
            }
            None => {
                return Err(fail(format!(
                    "its state tensor `{}` names no parameter of the model",
                    t.name
                )));
            }
        }
        if !names.insert(t.name.clone()) {
            return Err(fail(format!("its state tensor `{}` appears twice", t.name)));
        }
    }
    let all: u64 = layout
        .iter()
        .map(|(_, shape, _)| shape.iter().product::<usize>() as u64)
        .sum();
    if *values > all * crate::state::MAX_CALLBACK_COPIES {
        return Err(fail(format!(
            "the callbacks' state tensors hold {values} values, more than {} copies of the \
             parameters' {all}",
            crate::state::MAX_CALLBACK_COPIES
        )));
    }
    let most = layout.len() as u64 * crate::state::MAX_CALLBACK_COPIES;
    if names.len() as u64 > most {
        return Err(fail(format!(
            "the callbacks' state tensors number {}, more than {} copies of the parameters ({most} tensors)",
            names.len(),
            crate::state::MAX_CALLBACK_COPIES
        )));
    }
    Ok(())
}
