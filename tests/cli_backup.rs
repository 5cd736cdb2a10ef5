//! `wgfit train` backups through the real binary: resuming after SIGKILL and SIGTERM, refusing
//! another run's or a locked backup, and `wgfit inspect` on backup directories.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{
    LONG, assert_ok, preempt, spawn, stderr, stdout, summary_value, wait_for, wgfit,
};

#[test]
fn sigkill_then_rerun_matches_an_uninterrupted_run_byte_for_byte() {
    let reference = tempfile::tempdir().unwrap();
    let resumed = tempfile::tempdir().unwrap();
    let mut child = spawn(resumed.path(), LONG);
    wait_for(
        &resumed.path().join("wgfit-model.backup/latest.json"),
        &mut child,
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it was killed");
    assert!(!resumed.path().join("wgfit-model.safetensors").exists());

    let full = wgfit(reference.path(), LONG);
    assert_ok(&full);

    let o = wgfit(resumed.path(), LONG);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("resuming from the backup"),
        "{}",
        stderr(&o)
    );
    let a = std::fs::read(reference.path().join("wgfit-model.safetensors")).unwrap();
    let b = std::fs::read(resumed.path().join("wgfit-model.safetensors")).unwrap();
    assert!(
        a == b,
        "the resumed run's parameters differ from the uninterrupted run's"
    );
    assert!(!resumed.path().join("wgfit-model.backup").exists());
}

/// Sends `signal` to a training `wgfit train`: it saves, exits 128 + the signal's number,
/// and a rerun resumes and finishes.
fn preempted_cli_saves_and_the_rerun_finishes(signal: &str, number: i32) {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("wgfit-model.backup");
    let mut child = spawn(dir.path(), LONG);
    wait_for(&backup.join("latest.json"), &mut child);
    let kill = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(128 + number),
        "stderr:\n{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!(
            "wgfit: preempted by signal {number}: state saved "
        )) && !stderr(&o).contains("wgfit: error"),
        "{}",
        stderr(&o)
    );

    let i = wgfit(dir.path(), &["inspect", "wgfit-model.backup"]);
    assert_eq!(i.status.code(), Some(0), "{}", stdout(&i));
    assert!(
        stdout(&i).contains("a rerun without --double-checkpoint resumes from latest.json"),
        "{}",
        stdout(&i)
    );

    let o = wgfit(dir.path(), LONG);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("resuming from the backup"),
        "{}",
        stderr(&o)
    );
    assert_eq!(summary_value(&stdout(&o), "epochs"), 40.0);
    assert!(dir.path().join("wgfit-model.safetensors").is_file());
    assert!(!backup.exists());
}

#[test]
fn sigterm_saves_exits_143_and_the_rerun_finishes() {
    preempted_cli_saves_and_the_rerun_finishes("-TERM", 15);
}

#[test]
fn sigint_saves_exits_130_and_the_rerun_finishes() {
    preempted_cli_saves_and_the_rerun_finishes("-INT", 2);
}

/// Every file of a directory with its bytes.
fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn inspect_healthy_damaged_and_empty_directories() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--keep-checkpoint",
            "--backup-dir",
            "bk",
        ],
    );
    assert_ok(&o);
    let bk = dir.path().join("bk");
    assert!(stdout(&o).contains("backup:        bk"), "{}", stdout(&o));

    let before = snapshot_dir(&bk);
    let o = wgfit(dir.path(), &["inspect", "bk"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    for key in [
        "a rerun without --double-checkpoint resumes from latest.json (at the end of epoch 2, global step 114)",
        "latest.json: verified",
        "global step:  114",
        "previous.json: absent",
        "model:        64->32 relu, 32->10 linear",
        "ckpt-114.safetensors",
        "weights, verified",
    ] {
        assert!(text.contains(key), "no {key:?} in\n{text}");
    }
    let o = wgfit(dir.path(), &["inspect", "--json", "bk"]);
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["rerun"]["action"], "resume");
    assert_eq!(json["rerun"]["sidecar"], "latest.json");
    assert_eq!(json["sidecars"][0]["state"]["global_step"], 114);
    assert_eq!(snapshot_dir(&bk), before, "inspect changed the directory");

    // Damaged: one byte of the weights flipped.
    let ckpt = bk.join("ckpt-114.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&ckpt, &bytes).unwrap();
    let before = snapshot_dir(&bk);
    let o = wgfit(dir.path(), &["inspect", "bk"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("a rerun without --double-checkpoint refuses to start: checkpoint"),
        "{text}"
    );
    assert!(text.contains("latest.json: UNUSABLE"), "{text}");
    assert!(text.contains("NOT verified"), "{text}");
    let o = wgfit(dir.path(), &["inspect", "--json", "bk"]);
    assert_eq!(o.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["rerun"]["action"], "refuse");
    assert!(json["sidecars"][0]["error"].is_string());
    assert_eq!(snapshot_dir(&bk), before, "inspect changed the directory");

    // Empty, and missing.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    for name in ["empty", "missing"] {
        let o = wgfit(dir.path(), &["inspect", name]);
        assert_eq!(o.status.code(), Some(3), "{name}: a rerun starts fresh");
        assert!(
            stdout(&o).contains("starts from the beginning"),
            "{}",
            stdout(&o)
        );
    }
    // A file (a weights file, given by mistake): a usage error that says what reads it.
    std::fs::write(dir.path().join("model.safetensors"), b"not a directory").unwrap();
    let o = wgfit(dir.path(), &["inspect", "model.safetensors"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is a file") && stderr(&o).contains("evaluate --weights"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn backup_of_another_model_and_locked_backup_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "train",
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--backup-dir",
        "bk",
        "--keep-checkpoint",
    ];
    assert_ok(&wgfit(dir.path(), &base));

    let mut other = base.to_vec();
    other.extend(["--layers", "16,10", "--lr", "0.05"]);
    let o = wgfit(dir.path(), &other);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("wgfit: error: the backup in bk belongs to a different run"),
        "{err}"
    );
    assert!(
        err.contains("layers: backup 64->32 relu, 32->10 linear, now 64->16 relu, 16->10 linear"),
        "{err}"
    );
    assert!(err.contains("optimizer: backup sgd(lr=0.1"), "{err}");
    assert!(err.contains("--discard-mismatched-backup"), "{err}");
    other.push("--discard-mismatched-backup");
    let o = wgfit(dir.path(), &other);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("discarding the backup"),
        "{}",
        stderr(&o)
    );

    // Another process holds the lock.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("bk/.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let o = wgfit(dir.path(), &base);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("wgfit: error: backup directory bk is in use by another run"),
        "{err}"
    );
    assert!(err.contains("--backup-dir"), "{err}");
    // Unlocked, not only closed: a child another test thread forked may share the descriptor
    // until it execs.
    lock.unlock().unwrap();
    drop(lock);
    assert_ok(&wgfit(dir.path(), &other));
}

#[test]
fn skipped_saves_are_reported_in_the_summary_and_by_inspect() {
    let dir = tempfile::tempdir().unwrap();
    // 34 MB saves after every batch of a model that trains faster than they are written.
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--layers",
            "2048,2048,10",
            "--save-freq",
            "1",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--keep-checkpoint",
            "--backup-dir",
            "bk",
        ],
    );
    assert_ok(&o);
    // How many are skipped depends on the machine; the summary (which names them when
    // there are any) and inspect agree on the count.
    let text = stdout(&o);
    let skipped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("saves skipped:"))
        .map_or(0, |rest| {
            let n = rest.split_whitespace().next().unwrap_or_default();
            n.parse().unwrap_or_else(|_| panic!("a count in {rest:?}"))
        });
    let i = wgfit(dir.path(), &["inspect", "bk"]);
    let points = if skipped == 1 {
        "save point"
    } else {
        "save points"
    };
    let line = format!("skipped:      {skipped} {points} superseded");
    assert!(stdout(&i).contains(&line), "{text}\n{}", stdout(&i));
}

#[test]
fn the_history_file_is_written_as_the_run_goes_and_ends_as_an_uninterrupted_runs() {
    let args: Vec<&str> = LONG.iter().copied().chain(["--history", "h.csv"]).collect();
    let reference = tempfile::tempdir().unwrap();
    assert_ok(&wgfit(reference.path(), &args));
    let want = std::fs::read(reference.path().join("h.csv")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path(), &args);
    let history = dir.path().join("h.csv");
    // The file appears after the first epoch, while training goes on.
    wait_for(&history, &mut child);
    wait_for(
        &dir.path().join("wgfit-model.backup/latest.json"),
        &mut child,
    );
    preempt(child);
    let partial = std::fs::read_to_string(&history).unwrap();
    assert!(partial.lines().count() >= 2, "{partial}");
    assert_ok(&wgfit(dir.path(), &args));
    assert_eq!(
        std::fs::read(&history).unwrap(),
        want,
        "each epoch once, with the uninterrupted run's values"
    );
}

/// Epochs of one batch of iris are short against a durable rewrite of the history file, so
/// rewrites are paced and skipped; a run preempted (SIGTERM) between two rewrites must still
/// leave in the file every epoch its backup holds.
#[test]
fn a_preempted_run_of_short_epochs_leaves_every_finished_epoch_in_its_history_file() {
    let iris = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");
    let args = [
        "train",
        "--data",
        iris,
        "--epochs",
        "100000",
        "--batch-size",
        "150",
        "--history",
        "h.csv",
    ];
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("h.csv");
    let mut child = spawn(dir.path(), &args);
    wait_for(
        &dir.path().join("wgfit-model.backup/latest.json"),
        &mut child,
    );
    let rows = || {
        std::fs::read_to_string(&history)
            .unwrap_or_default()
            .lines()
            .count()
            .saturating_sub(1)
    };
    while rows() < 200 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = preempt(child);
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("wgfit-model.backup/latest.json")).unwrap(),
    )
    .unwrap();
    let record = &sidecar["history"];
    let chunks = record["chunks"]["count"].as_u64().unwrap_or(0) as usize;
    let finished = chunks * wgfit::HISTORY_CHUNK + record["epochs"].as_array().unwrap().len();
    assert_eq!(rows(), finished, "{}", stderr(&o));
}
