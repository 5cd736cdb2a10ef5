//! A read-only report on a backup directory, for `wgfit inspect`.

use super::dir::{LATEST, PREVIOUS, load_sidecar};
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// What a backup directory holds.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The directory.
    pub dir: String,
    /// `latest.json` then `previous.json`.
    pub sidecars: Vec<SidecarReport>,
    /// The sidecar a restore would use (`latest.json`, or `previous.json` as the fallback
    /// with double_checkpoint), or `None` when nothing verifies.
    pub usable: Option<String>,
    /// Every file in the directory, sorted.
    pub files: Vec<String>,
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
    /// Its SHA-256.
    pub weights_sha256: String,
    /// Finished epochs in the history.
    pub epochs_done: usize,
    /// Last epoch's logs.
    pub last_logs: Option<crate::state::Logs>,
    /// Save time, ms since the Unix epoch.
    pub saved_at_unix_ms: u64,
    /// Model layers as `in->out activation`.
    pub layers: Vec<String>,
}

/// Reports on `dir` without changing anything in it.
pub fn inspect(dir: &Path) -> Result<Inspection> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::ckpt_io(dir, e))?;
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let sidecars: Vec<SidecarReport> = [LATEST, PREVIOUS]
        .iter()
        .map(|&name| {
            let present = dir.join(name).exists();
            let (state, error) = match present.then(|| load_sidecar(dir, name)) {
                None => (None, None),
                Some(Ok(l)) => (
                    Some(StateSummary {
                        epoch: l.sidecar.epoch,
                        step: l.sidecar.step,
                        global_step: l.sidecar.global_step,
                        weights_file: l.sidecar.weights.file.clone(),
                        weights_bytes: l.sidecar.weights.bytes,
                        weights_sha256: l.sidecar.weights.sha256.clone(),
                        epochs_done: l.sidecar.history.len(),
                        last_logs: l.sidecar.history.last().cloned(),
                        saved_at_unix_ms: l.sidecar.saved_at_unix_ms,
                        layers: l
                            .sidecar
                            .fingerprint
                            .layers
                            .iter()
                            .map(|(i, o, a)| format!("{i}->{o} {a}"))
                            .collect(),
                    }),
                    None,
                ),
                Some(Err(e)) => (None, Some(e.to_string())),
            };
            SidecarReport {
                name: name.to_string(),
                present,
                state,
                error,
            }
        })
        .collect();
    let usable = sidecars
        .iter()
        .find(|s| s.state.is_some())
        .map(|s| s.name.clone());
    Ok(Inspection {
        dir: dir.display().to_string(),
        sidecars,
        usable,
        files,
    })
}
