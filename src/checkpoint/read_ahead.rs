//! A restore read ahead: the newest committed state of a backup, read and verified on its
//! own thread while the process opens the GPU context and builds the model, so that a
//! resume costs about the longer of the two instead of their sum (bench/NOTES.md, "A resume
//! beside the GPU's opening").
//!
//! The read takes no lock and decides nothing. `fit` takes the directory as always, then
//! uses what was read only where [`decide`] would restore the very same state: `latest.json`
//! is byte for byte the sidecar that was read (a sidecar names its weights by digest, and
//! those were verified against it), the state restores cleanly from it, and its fingerprint
//! is the run's. Anything else (no backup, damage, a fallback, another run's backup, a commit
//! since) is left to the ordinary decision, which then reads the directory itself.

use super::dir::{BackupDir, LATEST};
use super::format::MAX_SIDECAR_BYTES;
use super::place::Place;
use super::restore::{Decision, Loaded, decide};
use crate::state::Fingerprint;
use std::path::Path;
use std::thread::JoinHandle;

/// A read of a backup's newest state, running or done.
#[derive(Debug)]
pub struct ReadAhead {
    job: JoinHandle<Option<Box<Loaded>>>,
}

impl ReadAhead {
    /// Starts reading the state `latest.json` in `dir` (a directory or an object-store URL)
    /// names. `None` when no thread can be started: the restore then reads as usual.
    pub fn start(dir: &Path) -> Option<ReadAhead> {
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("wgfit-read-ahead".into())
            .spawn(move || read(&dir))
            .ok()
            .map(|job| ReadAhead { job })
    }

    /// Whether the read has ended (with a state or without).
    pub fn is_done(&self) -> bool {
        self.job.is_finished()
    }

    /// Waits for the read to end, and drops what it read.
    pub fn wait(self) {
        let _ = self.job.join();
    }

    /// Waits for the read, and returns its state if it is what [`decide`] would restore from
    /// `dir` (held by this run) for a run of fingerprint `now`.
    pub(crate) fn take(self, dir: &BackupDir, now: &Fingerprint) -> Option<Box<Loaded>> {
        let loaded = self.job.join().ok()??;
        if !loaded.sidecar.fingerprint.differences(now).is_empty() {
            return None;
        }
        // Read through the held directory: on object storage this also records the version
        // of `latest.json` that the next commit is conditional on, as `decide`'s read does.
        let current = dir.place().read(LATEST, MAX_SIDECAR_BYTES).ok()??;
        (current == loaded.sidecar_bytes).then_some(loaded)
    }
}

/// The state `latest.json` names, verified, when it restores without a fallback.
fn read(dir: &Path) -> Option<Box<Loaded>> {
    let place = Place::open(dir).ok()?;
    match decide(&place, false, None).ok()? {
        Decision::Resume {
            loaded,
            fallback_from: None,
        } => Some(loaded),
        _ => None,
    }
}
