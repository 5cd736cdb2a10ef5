//! A read-only report on a backup directory, for `wgfit inspect`: what each file is, whether
//! each sidecar verifies, and what a rerun will do, by the same decision `fit` makes.

use super::dir::{LATEST, LEASE, LOCK, MARKER, PREVIOUS, TMP_PREFIX};
use super::format::check_file_name;
use super::history_chunks::check_chunk_name;
use super::place::Place;
use super::restore::{Decision, Loaded, decide, verify};
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// What a backup directory holds and what a rerun will do with it.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The directory.
    pub dir: String,
    /// Whether it exists and carries wgfit's marker.
    pub marked: bool,
    /// `latest.json` then `previous.json`.
    pub sidecars: Vec<SidecarReport>,
    /// What a rerun without `--double-checkpoint` does.
    pub rerun: Outlook,
    /// What a rerun with `--double-checkpoint` does.
    pub rerun_with_double_checkpoint: Outlook,
    /// Every file in the directory, sorted, with what it is.
    pub files: Vec<FileReport>,
}

/// What a rerun of the same training does with the directory (assuming the same model, data
/// and options: only `fit` knows those, and refuses a backup of another run).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outlook {
    /// It resumes from `sidecar` at this position.
    Resume {
        /// `latest.json` or `previous.json`.
        sidecar: String,
        /// Epoch in progress or next.
        epoch: usize,
        /// Batches of it done.
        step: usize,
        /// Batches done in the run.
        global_step: u64,
        /// Why `latest.json` is passed over, when `sidecar` is `previous.json`.
        fallback_reason: Option<String>,
    },
    /// It stops with this error and changes nothing.
    Refuse {
        /// The error it stops with.
        reason: String,
    },
    /// Nothing is committed: it starts from the beginning.
    Fresh,
}

/// One sidecar and whether its state verifies.
#[derive(Debug, Clone, Serialize)]
pub struct SidecarReport {
    /// `latest.json` or `previous.json`.
    pub name: String,
    /// Whether the file exists.
    pub present: bool,
    /// The verified state's summary.
    pub state: Option<StateSummary>,
    /// Why it does not verify.
    pub error: Option<String>,
}

/// The facts of one verified state.
#[derive(Debug, Clone, Serialize)]
pub struct StateSummary {
    /// Epoch in progress or next.
    pub epoch: usize,
    /// Batches of it done.
    pub step: usize,
    /// Batches done in the run.
    pub global_step: u64,
    /// Weights file name.
    pub weights_file: String,
    /// Its length.
    pub weights_bytes: u64,
    /// Its digest, in words (one SHA-256, or one per part).
    pub weights_digest: String,
    /// The history chunk files its history was read from, oldest first (version 5).
    pub history_chunks: Vec<String>,
    /// Finished epochs in the history.
    pub epochs_done: usize,
    /// Last epoch's logs.
    pub last_logs: Option<crate::state::Logs>,
    /// Save time, ms since the Unix epoch.
    pub saved_at_unix_ms: u64,
    /// Model layers as `in->out activation`.
    pub layers: Vec<String>,
    /// Save points superseded before they reached the disk, up to this state.
    pub superseded_saves: u64,
    /// The run's starts, resumes and preemptions up to this state.
    pub events: Vec<crate::state::RunEvent>,
    /// Whether a callback had asked to stop training (a rerun only ends it).
    pub stop_training: bool,
    /// The callbacks whose state this state holds.
    pub callbacks: Vec<String>,
}

/// One file of the directory.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Its name.
    pub name: String,
    /// What it is, in words.
    pub role: String,
}

/// Reports on `dir` without changing anything in it.
pub fn inspect(dir: &Path) -> Result<Inspection> {
    let handle = match Place::open(dir) {
        Ok(h) => h,
        Err(Error::CheckpointIo { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Inspection {
                dir: dir.display().to_string(),
                marked: false,
                sidecars: Vec::new(),
                rerun: Outlook::Fresh,
                rerun_with_double_checkpoint: Outlook::Fresh,
                files: Vec::new(),
            });
        }
        Err(e) => return Err(e),
    };
    let names = handle.names()?;
    let marked = names.iter().any(|n| n == MARKER);
    let sidecars: Vec<SidecarReport> = [LATEST, PREVIOUS]
        .iter()
        .map(|&name| report(&handle, name))
        .collect::<Result<_>>()?;
    // What `take` would refuse before any restore: a marker or lock file that is not a regular
    // file, or a lock another run holds.
    let marker = match &handle {
        Place::Local(h) => h.open_regular(MARKER).map(|_| ()),
        Place::Remote(_) => Ok(()),
    };
    let held = match &handle {
        Place::Local(_) => handle.is_held(LOCK),
        Place::Remote(_) => handle.is_held(LEASE),
    };
    let refusal = match (marker, held) {
        (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
        (_, Ok(true)) => Some(match &handle {
            Place::Local(_) => Error::BackupLocked {
                dir: dir.to_path_buf(),
            }
            .to_string(),
            Place::Remote(_) => format!(
                "{} is leased by a run that is still renewing it",
                dir.display()
            ),
        }),
        _ => None,
    };
    let (rerun, rerun_with_double_checkpoint) = if let Some(reason) = refusal {
        let refuse = Outlook::Refuse { reason };
        (refuse.clone(), refuse)
    } else if !marked && !names.iter().all(|n| n == LOCK || n == LEASE) {
        let refuse = Outlook::Refuse {
            reason: Error::NotABackupDir {
                dir: dir.to_path_buf(),
                entries: names.len(),
                examples: names.iter().take(3).cloned().collect(),
            }
            .to_string(),
        };
        (refuse.clone(), refuse)
    } else {
        (
            outlook(decide(&handle, false, None)?),
            outlook(decide(&handle, true, None)?),
        )
    };
    let files = names
        .iter()
        .map(|name| FileReport {
            name: name.clone(),
            role: role(name, marked, &sidecars),
        })
        .collect();
    Ok(Inspection {
        dir: dir.display().to_string(),
        marked,
        sidecars,
        rerun,
        rerun_with_double_checkpoint,
        files,
    })
}

fn report(handle: &Place, name: &str) -> Result<SidecarReport> {
    let present = handle.exists(name)?;
    let (state, error) = match present.then(|| verify(handle, name)) {
        None => (None, None),
        Some(Ok(l)) => (Some(summary(&l)), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    Ok(SidecarReport {
        name: name.to_string(),
        present,
        state,
        error,
    })
}

fn summary(l: &Loaded) -> StateSummary {
    let s = &l.sidecar;
    StateSummary {
        epoch: s.epoch,
        step: s.step,
        global_step: s.global_step,
        weights_file: s.weights.file.clone(),
        weights_bytes: s.weights.bytes,
        weights_digest: s.weights.describe_digest(),
        history_chunks: l.history_chunks.iter().map(|c| c.file.clone()).collect(),
        epochs_done: l.state.meta.history.len(),
        last_logs: l.state.meta.history.last().cloned(),
        saved_at_unix_ms: s.saved_at_unix_ms,
        layers: s.fingerprint.layer_lines(),
        superseded_saves: s.superseded_saves,
        events: s.events.clone(),
        stop_training: s.stop_training,
        callbacks: s.callbacks.keys().cloned().collect(),
    }
}

fn outlook(decision: Decision) -> Outlook {
    match decision {
        Decision::Fresh => Outlook::Fresh,
        Decision::Resume {
            loaded,
            fallback_from,
        } => Outlook::Resume {
            sidecar: loaded
                .sidecar_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            epoch: loaded.sidecar.epoch,
            step: loaded.sidecar.step,
            global_step: loaded.sidecar.global_step,
            fallback_reason: fallback_from.map(|e| e.to_string()),
        },
        // Not reached without a fingerprint to compare; said plainly all the same.
        Decision::Mismatch { differences, .. } => Outlook::Refuse {
            reason: format!("a backup of another run: {}", differences.join("; ")),
        },
        Decision::Refuse(e) => Outlook::Refuse {
            reason: e.to_string(),
        },
    }
}

/// What one file of the directory is, and whether it verifies.
fn role(name: &str, marked: bool, sidecars: &[SidecarReport]) -> String {
    if !marked {
        return "not a wgfit file (the directory has no wgfit marker)".into();
    }
    if let Some(s) = sidecars.iter().find(|s| s.name == name) {
        return match &s.state {
            Some(_) => "sidecar, verified".into(),
            None => "sidecar, UNUSABLE (see above)".into(),
        };
    }
    let users: Vec<&str> = sidecars
        .iter()
        .filter(|s| s.state.as_ref().is_some_and(|st| st.weights_file == name))
        .map(|s| s.name.as_str())
        .collect();
    if !users.is_empty() {
        return format!("weights, verified (SHA-256 matches {})", users.join(", "));
    }
    let users: Vec<&str> = sidecars
        .iter()
        .filter(|s| {
            s.state
                .as_ref()
                .is_some_and(|st| st.history_chunks.iter().any(|c| c == name))
        })
        .map(|s| s.name.as_str())
        .collect();
    if !users.is_empty() {
        return format!(
            "history chunk, verified (SHA-256 chain from {})",
            users.join(", ")
        );
    }
    match name {
        MARKER => return "marker (this is a wgfit backup directory)".into(),
        LOCK => return "lock file".into(),
        LEASE => return "lease (who writes this backup, until when)".into(),
        _ => {}
    }
    if name.starts_with(TMP_PREFIX) {
        return "unfinished write (removed by the next run)".into();
    }
    let kind = if check_file_name(name).is_ok() {
        "weights"
    } else if check_chunk_name(name).is_ok() {
        "history chunk"
    } else {
        return "not a wgfit file".into();
    };
    // A file of wgfit's form that no verified sidecar references.
    if sidecars.iter().any(|s| s.present && s.state.is_none()) {
        format!("{kind}, NOT verified (see the unusable sidecar above)")
    } else {
        format!("{kind}, unreferenced (removed by the next run if wgfit wrote it)")
    }
}
