//! Crash states of real commits, in the manner of ALICE (Pillai et al., OSDI 2014) and
//! CrashMonkey: the file-system operations of real `BackupDir` calls are recorded, every
//! state a crash may leave under POSIX is built from them on disk, and each must restore to
//! the state committed before the call or the one committed by it.
//!
//! The persistence model: a file's bytes are durable once it is fsynced, else a crash keeps
//! none, all, or a torn half of them; directory operations (create, rename, unlink) are
//! durable once the directory is fsynced, else any subset of them survives, in order.
//! SIGKILL never drops the page cache, so only this kind of test fails when an fsync is
//! missing or two renames are swapped: the mutation tests below prove that it does.

use super::dir::BackupDir;
use super::format::{EncodedFile, RawTensor};
use super::handle::DirHandle;
use super::place::Place;
use super::record::{self, Op};
use super::restore::{Decision, decide};
use crate::state::{EpochLogs, Fingerprint, HISTORY_CHUNK, History, Position, StateMeta};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

thread_local! {
    /// The sealed history chunks handed out so far: a run's history seals each chunk once.
    static SEALED: std::cell::RefCell<Vec<Arc<[EpochLogs]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The history of the state at `global_step`: half a chunk of epochs per step, so that
/// every second commit seals a chunk (written as a history chunk file).
fn history(global_step: u64) -> History {
    let epochs: Vec<EpochLogs> = (0..global_step as usize * HISTORY_CHUNK / 2)
        .map(|epoch| EpochLogs {
            epoch,
            logs: [("loss".to_string(), epoch as f64)].into(),
        })
        .collect();
    let chunks = epochs.chunks_exact(HISTORY_CHUNK);
    let tail = chunks.remainder().to_vec();
    let sealed = SEALED.with(|sealed| {
        let mut sealed = sealed.borrow_mut();
        for chunk in chunks.skip(sealed.len()) {
            sealed.push(chunk.into());
        }
        sealed[..epochs.len() / HISTORY_CHUNK].to_vec()
    });
    History::from_parts(sealed, tail)
}

fn fingerprint() -> Fingerprint {
    Fingerprint {
        layers: vec![(3, 2, "relu".into())],
        tensors: Vec::new(),
        model: None,
        loss: "mse".into(),
        optimizer: "sgd(lr=0.1)".into(),
        batch_size: 5,
        shuffle: true,
        data_len: 10,
        data_sha256: "0".repeat(64),
        seed: 7,
        ranks: Some(1),
        accumulation: Some(1),
    }
}

/// The parameters of the state at `global_step`: distinct for every step.
fn values(global_step: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let v = global_step as f32;
    (
        (0..6).map(|i| v + i as f32 / 8.0).collect(),
        vec![v, -v],
        vec![0.5; 2 * (global_step as usize % 2)],
    )
}

/// Commits the state at `global_step`.
fn commit(dir: &mut BackupDir, global_step: u64, double: bool) {
    try_commit(dir, global_step, double, 0).unwrap();
}

/// Commits the state at `global_step`, its position `epochs_ahead` epochs past the end of
/// its history (0 for a consistent state).
fn try_commit(
    dir: &mut BackupDir,
    global_step: u64,
    double: bool,
    epochs_ahead: usize,
) -> crate::Result<()> {
    let (w, b, stats) = values(global_step);
    let position = Position {
        // The history ends at the epoch before the position (as a restore checks).
        epoch: global_step as usize * HISTORY_CHUNK / 2 + epochs_ahead,
        step: global_step as usize % 2,
        global_step,
    };
    let tensors = [
        RawTensor {
            name: "model.layers.0.weight".into(),
            shape: vec![2, 3],
            data: &w,
        },
        RawTensor {
            name: "model.layers.0.bias".into(),
            shape: vec![2],
            data: &b,
        },
        RawTensor {
            name: crate::state::BATCH_STATS.into(),
            shape: vec![stats.len() / 2, 2],
            data: &stats,
        },
    ];
    let file = EncodedFile::new(&tensors, position, global_step, dir.id()).unwrap();
    let meta = StateMeta {
        position,
        seed: 7,
        optimizer_steps: global_step,
        learning_rate: 0.1,
        history: history(global_step),
        callbacks: Default::default(),
        events: Vec::new(),
        stop_training: false,
    };
    dir.commit(&file.pieces(), &meta, &fingerprint(), double, 0)
}

/// A directory as names of inodes and inodes' bytes.
#[derive(Clone, Default)]
struct Fs {
    names: BTreeMap<String, u64>,
    data: HashMap<u64, Vec<u8>>,
}

impl Fs {
    fn read(dir: &Path) -> Fs {
        let mut fs = Fs::default();
        for (i, entry) in std::fs::read_dir(dir).unwrap().enumerate() {
            let entry = entry.unwrap();
            let ino = u64::MAX - i as u64;
            fs.names
                .insert(entry.file_name().into_string().unwrap(), ino);
            fs.data.insert(ino, std::fs::read(entry.path()).unwrap());
        }
        fs
    }

    fn apply_dir_op(&mut self, op: &Op) {
        match op {
            Op::Create { name, ino } => {
                self.names.insert(name.clone(), *ino);
                self.data.entry(*ino).or_default();
            }
            Op::Rename { from, to } => {
                if let Some(ino) = self.names.remove(from) {
                    self.names.insert(to.clone(), ino);
                }
            }
            Op::Unlink { name } => {
                self.names.remove(name);
            }
            _ => {}
        }
    }

    fn write_to(&self, dir: &Path) {
        for (name, ino) in &self.names {
            let bytes = self.data.get(ino).cloned().unwrap_or_default();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

fn is_dir_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Create { .. } | Op::Rename { .. } | Op::Unlink { .. }
    )
}

/// Every crash state of `ops` run on `start`: for each prefix, each subset of the
/// directory operations not yet made durable, and each fate (none, torn, all) of the bytes
/// not yet fsynced. The flag marks the states where the whole sequence ran (the call
/// returned).
fn crash_states(start: &Fs, ops: &[Op]) -> Vec<(Fs, bool)> {
    let mut out = Vec::new();
    for k in 0..=ops.len() {
        let prefix = &ops[..k];
        let synced = prefix.iter().rposition(|op| *op == Op::SyncDir);
        let dir_ops = prefix.iter().enumerate().filter(|(_, op)| is_dir_op(op));
        let (durable, pending): (Vec<_>, Vec<_>) =
            dir_ops.partition(|(i, _)| synced.is_some_and(|s| *i < s));
        assert!(
            pending.len() <= 12,
            "too many unsynced operations to enumerate"
        );
        // Inodes whose last write is not followed by an fsync of them.
        let mut writes: Vec<(u64, Vec<u8>, bool)> = Vec::new();
        for (i, op) in prefix.iter().enumerate() {
            if let Op::Write { ino, bytes } = op {
                let fsynced = prefix[i..].contains(&Op::SyncFile { ino: *ino });
                writes.push((*ino, bytes.clone(), fsynced));
            }
        }
        let unsynced = writes.iter().filter(|w| !w.2).count();
        for subset in 0u32..(1 << pending.len()) {
            for fates in 0..3usize.pow(unsynced as u32) {
                let mut fs = start.clone();
                for (_, op) in &durable {
                    fs.apply_dir_op(op);
                }
                for (bit, (_, op)) in pending.iter().enumerate() {
                    if subset & (1 << bit) != 0 {
                        fs.apply_dir_op(op);
                    }
                }
                let mut fate = fates;
                for (ino, bytes, fsynced) in &writes {
                    let kept = if *fsynced {
                        bytes.len()
                    } else {
                        let f = fate % 3;
                        fate /= 3;
                        [0, bytes.len() / 2, bytes.len()][f]
                    };
                    fs.data.insert(*ino, bytes[..kept].to_vec());
                }
                out.push((fs, k == ops.len()));
            }
        }
    }
    out
}

/// What a restore makes of a crash state: the global step it resumes at, `None` for a
/// fresh start, or the error.
fn restored(fs: &Fs, double: bool) -> Result<Option<u64>, String> {
    let dir = tempfile::tempdir().unwrap();
    fs.write_to(dir.path());
    let handle = Place::Local(DirHandle::open(dir.path()).unwrap());
    let decision = decide(&handle, double, Some(&fingerprint())).map_err(|e| e.to_string())?;
    // The next run can take the directory (a removal never strands it unmarked).
    drop(BackupDir::take(dir.path()).map_err(|e| e.to_string())?);
    match decision {
        Decision::Fresh => Ok(None),
        Decision::Resume { loaded, .. } => {
            let step = loaded.sidecar.global_step;
            let (w, b, _) = values(step);
            let params = &loaded.state.params;
            let same = params.iter().any(|t| t.data == w) && params.iter().any(|t| t.data == b);
            if loaded.state.meta.history != history(step) {
                Err(format!("step {step} restored with another history"))
            } else if same {
                Ok(Some(step))
            } else {
                Err(format!("step {step} restored with other parameters"))
            }
        }
        Decision::Mismatch { differences, .. } => Err(differences.join("; ")),
        Decision::Refuse(e) => Err(e.to_string()),
    }
}

/// The crash states of `ops` from `start` that do not restore to one of `allowed` (and, for
/// the states where the whole sequence ran, to `durable`).
fn violations(
    start: &Fs,
    ops: &[Op],
    double: bool,
    allowed: &[Option<u64>],
    durable: Option<u64>,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (fs, complete) in crash_states(start, ops) {
        let got = restored(&fs, double);
        let ok = match &got {
            Ok(step) if complete => *step == durable,
            Ok(step) => allowed.contains(step),
            Err(_) => false,
        };
        if !ok {
            let names: Vec<&String> = fs.names.keys().collect();
            bad.push(format!("{names:?} restored {got:?}"));
        }
    }
    bad
}

/// A directory with the states `steps` committed, the ops of one more call, and the
/// directory as it was before that call.
fn recorded(
    steps: &[u64],
    double: bool,
    call: impl FnOnce(BackupDir),
) -> (tempfile::TempDir, Fs, Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("backup");
    let mut dir = BackupDir::take(&path).unwrap();
    for &s in steps {
        commit(&mut dir, s, double);
    }
    let start = Fs::read(&path);
    let ((), ops) = record::recording(|| call(dir));
    (tmp, start, ops)
}

#[test]
fn every_crash_state_of_a_commit_restores_the_old_or_the_new_state() {
    for double in [false, true] {
        let (_tmp, start, ops) = recorded(&[1], double, |mut dir| commit(&mut dir, 2, double));
        let bad = violations(&start, &ops, double, &[Some(1), Some(2)], Some(2));
        assert!(bad.is_empty(), "double {double}: {bad:#?}");
        let (_tmp, start, ops) = recorded(&[1, 2], double, |mut dir| commit(&mut dir, 3, double));
        let bad = violations(&start, &ops, double, &[Some(2), Some(3)], Some(3));
        assert!(bad.is_empty(), "double {double}: {bad:#?}");
    }
}

#[test]
fn every_crash_state_of_a_first_commit_starts_fresh_or_restores_it() {
    let (_tmp, start, ops) = recorded(&[], false, |mut dir| commit(&mut dir, 1, false));
    let bad = violations(&start, &ops, false, &[None, Some(1)], Some(1));
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn every_crash_state_of_a_removal_keeps_the_final_state_or_nothing() {
    // With double_checkpoint, a removal that lost latest.json but kept previous.json would
    // resume an older state than the run ended with.
    let (_tmp, start, ops) = recorded(&[1, 2], true, |dir| dir.remove().unwrap());
    let bad = violations(&start, &ops, true, &[Some(2), None], None);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn a_state_whose_history_does_not_end_before_its_position_is_not_committed() {
    // What a restore would refuse is refused when it is saved, before anything is written.
    for epochs_ahead in [1, 5] {
        let (_tmp, start, ops) = recorded(&[1], false, |mut dir| {
            let e = try_commit(&mut dir, 2, false, epochs_ahead).unwrap_err();
            assert!(
                matches!(&e, crate::Error::UnrestorableSidecar { reason, .. }
                    if reason.contains("its history ends at epoch")),
                "{e}"
            );
        });
        assert!(ops.is_empty(), "{ops:?}");
        assert_eq!(restored(&start, false), Ok(Some(1)));
    }
}

/// The positions in `ops` of the operations `pick` selects.
fn positions(ops: &[Op], pick: impl Fn(&Op) -> bool) -> Vec<usize> {
    (0..ops.len()).filter(|&i| pick(&ops[i])).collect()
}

#[test]
fn the_checker_finds_each_missing_fsync_and_swapped_renames() {
    // The commit of step 2 seals a history chunk: it writes a chunk file too.
    let (_tmp, start, ops) = recorded(&[1], false, |mut dir| commit(&mut dir, 2, false));
    let check = |ops: &[Op]| violations(&start, ops, false, &[Some(1), Some(2)], Some(2));
    assert!(check(&ops).is_empty());
    let syncs = positions(&ops, |op| matches!(op, Op::SyncFile { .. } | Op::SyncDir));
    assert_eq!(
        syncs.len(),
        5,
        "three file fsyncs (history chunk, weights, sidecar) and two directory fsyncs: {ops:#?}"
    );
    for i in syncs {
        let mut mutated = ops.clone();
        let dropped = mutated.remove(i);
        assert!(
            !check(&mutated).is_empty(),
            "a commit without {dropped:?} (operation {i}) must fail the checker"
        );
    }
    let renames = positions(&ops, |op| matches!(op, Op::Rename { .. }));
    assert_eq!(renames.len(), 3);
    // The history chunk's or the weights' rename moved after the sidecar's.
    for moved in [0, 1] {
        let mut swapped = ops.clone();
        let early = swapped.remove(renames[moved]);
        swapped.insert(renames[2], early.clone());
        assert!(
            !check(&swapped).is_empty(),
            "a commit that renames the sidecar before {early:?} must fail the checker"
        );
    }
}
