//! What a run finds in a backup directory, decided once for both `fit` and `wgfit inspect`:
//! resume from `latest.json`, fall back to `previous.json` (only with double_checkpoint),
//! refuse (a backup of another run, or damage with no fallback), or start fresh.
//!
//! Cheap checks come first: a sidecar is parsed and its fingerprint compared before its
//! weights file is opened, so a backup of another run is reported as such even when it is
//! damaged too, and a weights file is sized against the sidecar, and the sidecar against
//! what a state of that run can hold, before anything is allocated.

use super::dir::{LATEST, PREVIOUS};
use super::format::{self, Sidecar};
use super::history_chunks::{self, ChunkRef};
use super::place::{Place, Weights};
use super::stream_read;
use crate::error::{Error, Result};
use crate::state::{Fingerprint, History, TrainState};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A verified state read back from disk, with where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The sidecar it was read from (`latest.json` or `previous.json`).
    pub sidecar_path: PathBuf,
    /// Its sidecar.
    pub sidecar: Sidecar,
    /// Its sidecar's bytes.
    pub sidecar_bytes: Vec<u8>,
    /// The state.
    pub state: TrainState,
    /// The history chunk files of its history, oldest first (the state's sealed history
    /// chunks, in order).
    pub history_chunks: Vec<ChunkRef>,
}

/// What a run given these options does with the backup directory.
#[derive(Debug)]
pub enum Decision {
    /// Nothing committed: it starts from the beginning.
    Fresh,
    /// It resumes from this state. `fallback_from` says why `latest.json` was not used when
    /// the state is `previous.json`'s.
    Resume {
        /// The state.
        loaded: Box<Loaded>,
        /// Why `latest.json` was passed over.
        fallback_from: Option<Error>,
    },
    /// The backup belongs to another run (model, data, options or seed differ).
    Mismatch {
        /// The sidecar that showed it.
        sidecar: &'static str,
        /// One line per difference.
        differences: Vec<String>,
    },
    /// Nothing committed can be restored, and nothing is changed: the error says why.
    Refuse(Error),
}

/// Why one sidecar's state cannot be used.
enum Unusable {
    Mismatch(Vec<String>),
    Damaged(Error),
}

/// Decides what a run does with the directory. `double_checkpoint` allows the fallback to
/// `previous.json`; `now` is the fingerprint of the run asking (None: not known, as for
/// `inspect`, which then cannot tell a backup of another run). Reads, never changes.
pub(crate) fn decide(
    dir: &Place,
    double_checkpoint: bool,
    now: Option<&Fingerprint>,
) -> Result<Decision> {
    let previous = double_checkpoint && dir.exists(PREVIOUS)?;
    let latest = if dir.exists(LATEST)? {
        load(dir, LATEST, now)
    } else if previous {
        Err(Unusable::Damaged(Error::corrupt(
            dir.join(LATEST),
            "it is missing",
        )))
    } else {
        return Ok(Decision::Fresh);
    };
    let latest_error = match latest {
        Ok(loaded) => return Ok(resume(loaded, None)),
        Err(Unusable::Mismatch(differences)) => {
            return Ok(Decision::Mismatch {
                sidecar: LATEST,
                differences,
            });
        }
        Err(Unusable::Damaged(e)) => e,
    };
    if !previous {
        return Ok(Decision::Refuse(latest_error));
    }
    Ok(match load(dir, PREVIOUS, now) {
        Ok(loaded) => resume(loaded, Some(latest_error)),
        Err(Unusable::Mismatch(differences)) => Decision::Mismatch {
            sidecar: PREVIOUS,
            differences,
        },
        Err(Unusable::Damaged(e)) => Decision::Refuse(both_unusable(latest_error, e)),
    })
}

fn resume(loaded: Loaded, fallback_from: Option<Error>) -> Decision {
    Decision::Resume {
        loaded: Box::new(loaded),
        fallback_from,
    }
}

fn both_unusable(latest: Error, previous: Error) -> Error {
    match latest {
        Error::CorruptCheckpoint { path, reason } => Error::CorruptCheckpoint {
            path,
            reason: format!("{reason}; the fallback is unusable too: {previous}"),
        },
        other => Error::CorruptCheckpoint {
            path: PathBuf::from(PREVIOUS),
            reason: format!("{previous}, and latest.json is unusable too: {other}"),
        },
    }
}

/// Reads and verifies one sidecar's state: parse, fingerprint, sizes, weights, checksum.
fn load(dir: &Place, name: &str, now: Option<&Fingerprint>) -> Result<Loaded, Unusable> {
    let damaged = Unusable::Damaged;
    let path = dir.join(name);
    let bytes = dir
        .read(name, format::MAX_SIDECAR_BYTES)
        .map_err(damaged)?
        .ok_or_else(|| Unusable::Damaged(Error::corrupt(&path, "it vanished")))?;
    let sidecar = Sidecar::parse(&bytes, &path).map_err(damaged)?;
    if let Some(now) = now {
        let differences = sidecar.fingerprint.differences(now);
        if !differences.is_empty() {
            return Err(Unusable::Mismatch(differences));
        }
    }
    let (history, history_chunks) =
        history_chunks::read_history(dir, &sidecar.history).map_err(damaged)?;
    check_history_ends(&sidecar, &history)
        .map_err(|reason| damaged(Error::corrupt(&path, reason)))?;
    let (state, written_at) = read_state(dir, &sidecar, history).map_err(damaged)?;
    check_written_at(&sidecar, &written_at)
        .map_err(|reason| damaged(Error::corrupt(&path, reason)))?;
    Ok(Loaded {
        sidecar_path: path,
        sidecar,
        sidecar_bytes: bytes,
        state,
        history_chunks,
    })
}

/// Reads a sidecar's weights file, checked against the sidecar before it is read; with the
/// `__metadata__` of its header (where it was written).
fn read_state(
    dir: &Place,
    sidecar: &Sidecar,
    history: History,
) -> Result<(TrainState, HashMap<String, String>)> {
    let expected = &sidecar.weights;
    let path = dir.join(&expected.file);
    let limit = sidecar.fingerprint.max_state_bytes();
    if expected.bytes > limit {
        return Err(Error::corrupt(
            &path,
            format!(
                "the sidecar records {} bytes, more than the {limit} a state of its model can have",
                expected.bytes
            ),
        ));
    }
    expected
        .check_part_count()
        .map_err(|reason| Error::corrupt(&path, reason))?;
    let (state, written_at) = match dir.open_weights(&expected.file, expected.bytes)? {
        Weights::File(file) => match stream_read::read(&file, expected, &path)? {
            Some(read) => (
                format::state_of_decoded(
                    sidecar,
                    history,
                    format::classify(read.tensors, &path, !read.finite)?,
                ),
                read.metadata,
            ),
            None => match dir {
                Place::Local(handle) => {
                    let weights = handle.read_len(&expected.file, file, expected.bytes)?;
                    let state = verify_and_decode(sidecar, history, &weights, &path)?;
                    (state, format::header_metadata(&weights))
                }
                Place::Remote(_) => unreachable!("an object store opened a local file"),
            },
        },
        Weights::Bytes(weights) => {
            let state = verify_and_decode(sidecar, history, &weights, &path)?;
            (state, format::header_metadata(&weights))
        }
    };
    check_shapes(sidecar, &state).map_err(|reason| Error::corrupt(&path, reason))?;
    Ok((state, written_at))
}

/// The sidecar, which carries no digest of its own, must agree with what its verified weights
/// file recorded when it was written (epoch, step, global step, optimizer updates): a changed
/// digit would otherwise resume the run elsewhere.
fn check_written_at(
    sidecar: &Sidecar,
    written_at: &HashMap<String, String>,
) -> std::result::Result<(), String> {
    for (key, recorded) in [
        ("epoch", sidecar.epoch as u64),
        ("step", sidecar.step as u64),
        ("global_step", sidecar.global_step),
        ("optimizer_steps", sidecar.optimizer_steps),
    ] {
        // Files of earlier versions may lack a key; those that have it must agree.
        if let Some(written) = written_at.get(key)
            && written.parse::<u64>().ok() != Some(recorded)
        {
            return Err(format!(
                "it records {key} {recorded}, but its weights file was written at {key} {written}"
            ));
        }
    }
    Ok(())
}

/// A history numbers its epochs one after another and ends at the epoch before the
/// sidecar's position (it may start later: `initial_epoch`).
fn check_history_ends(sidecar: &Sidecar, history: &History) -> std::result::Result<(), String> {
    let mut last: Option<usize> = None;
    for e in history.iter() {
        if let Some(l) = last
            && l.checked_add(1) != Some(e.epoch)
        {
            return Err(format!(
                "its history numbers epoch {} after epoch {l}",
                e.epoch
            ));
        }
        last = Some(e.epoch);
    }
    match last {
        Some(l) if l.checked_add(1) != Some(sidecar.epoch) => Err(format!(
            "its history ends at epoch {l}, but its position is epoch {} ({})",
            sidecar.epoch,
            match sidecar.epoch.checked_sub(1) {
                Some(before) => format!("the history should end at epoch {before}"),
                None => "no epoch has finished there".to_string(),
            }
        )),
        _ => Ok(()),
    }
}

/// Verifies a weights file's bytes and decodes them side by side; the digests' verdict comes
/// first. Decoding unverified bytes is safe: the decoder treats its input as hostile (and is
/// fuzzed as such).
fn verify_and_decode(
    sidecar: &Sidecar,
    history: History,
    weights: &[u8],
    path: &std::path::Path,
) -> Result<TrainState> {
    let (verified, state) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| sidecar.weights.verify(weights));
        let state = format::state_of(sidecar, history, weights, path);
        (hashing.join(), state)
    });
    verified
        .map_err(|_| Error::internal("the checksum thread panicked"))?
        .map_err(|reason| Error::corrupt(path, reason))?;
    state
}

/// A state must be the one its sidecar describes: the parameters of its fingerprint's
/// layers, slots shaped as their parameters, and a pair of statistics per batch done.
fn check_shapes(sidecar: &Sidecar, state: &TrainState) -> std::result::Result<(), String> {
    let mut expected = sidecar.fingerprint.parameter_shapes();
    expected.sort();
    let mut got: Vec<(String, Vec<usize>)> = state
        .params
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    got.sort();
    if got != expected {
        let show = |v: &[(String, Vec<usize>)]| {
            v.iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "its parameter shapes {} do not match its model's {}",
            show(&got),
            show(&expected)
        ));
    }
    for slot in &state.slots {
        let param = slot
            .name
            .strip_prefix("optimizer.")
            .and_then(|rest| rest.rsplit_once('.'))
            .map(|(param, _)| param);
        match param.and_then(|p| expected.iter().find(|(n, _)| n == p)) {
            Some((_, shape)) if *shape == slot.shape => {}
            Some((_, shape)) => {
                return Err(format!(
                    "optimizer slot `{}` has shape {:?}, its parameter {shape:?}",
                    slot.name, slot.shape
                ));
            }
            None => {
                return Err(format!(
                    "optimizer slot `{}` names no parameter of the model",
                    slot.name
                ));
            }
        }
    }
    let mut copies = BTreeMap::<&str, u64>::new();
    for t in &state.callback_tensors {
        let Some((callback, param)) = crate::state::split_callback_tensor(&t.name) else {
            return Err(format!("callback tensor `{}` names no parameter", t.name));
        };
        match expected.iter().find(|(n, _)| n == param) {
            Some((_, shape)) if *shape == t.shape => {}
            Some((_, shape)) => {
                return Err(format!(
                    "callback tensor `{}` has shape {:?}, its parameter {shape:?}",
                    t.name, t.shape
                ));
            }
            None => {
                return Err(format!(
                    "callback tensor `{}` names no parameter of the model",
                    t.name
                ));
            }
        }
        *copies.entry(callback).or_default() += 1;
    }
    let per_copy = expected.len() as u64;
    let total: u64 = copies.values().sum();
    if total > per_copy * crate::state::MAX_CALLBACK_COPIES {
        return Err(format!(
            "its callback tensors hold {total} tensors, more than {} copies of the parameters",
            crate::state::MAX_CALLBACK_COPIES
        ));
    }
    let stats = &state.batch_stats;
    if stats.shape != [sidecar.step, 2] {
        return Err(format!(
            "`{}` has shape {:?}, but step {} needs [{}, 2]",
            stats.name, stats.shape, sidecar.step, sidecar.step
        ));
    }
    Ok(())
}

/// Verifies `name` in `dir` and reads its state, whatever the fingerprint. Never modifies
/// anything.
pub fn load_sidecar(dir: &std::path::Path, name: &str) -> Result<Loaded> {
    verify(&Place::open(dir)?, name)
}

/// [`load_sidecar`] in an open directory.
pub(crate) fn verify(dir: &Place, name: &str) -> Result<Loaded> {
    match load(dir, name, None) {
        Ok(loaded) => Ok(loaded),
        Err(Unusable::Damaged(e)) => Err(e),
        Err(Unusable::Mismatch(_)) => panic!("a mismatch without a fingerprint to compare"),
    }
}
