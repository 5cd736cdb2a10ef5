//! A long run's history in a backup (format version 5, docs/FORMAT.md "History chunks"):
//! sealed chunks of 64 epochs are written once as chunk files and the sidecar keeps only the
//! epochs after them, so its size does not grow with the run; the chain of digests is
//! verified on restore, a damaged or missing chunk is refused naming the file (or falls
//! back to `previous.json`), and chunk files no sidecar references are swept.

mod common;

use common::{Interrupt, bits, dir_contents, model};
use std::path::Path;
use wgfit::checkpoint::{self, LATEST, PREVIOUS};
use wgfit::{BackupAndRestore, Dataset, Error, FitOptions, HISTORY_CHUNK, History};

/// 16 samples in two batches: an epoch is two steps, so a run of a few chunks is quick.
fn data() -> Dataset {
    let x: Vec<f32> = (0..16 * 6).map(|i| ((i * 37) % 23) as f32 / 23.0).collect();
    let y: Vec<u32> = (0..16).map(|i| (i % 3) as u32).collect();
    Dataset::classification(x, 6, y).unwrap()
}

fn options(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 8,
        seed: 5,
        ..Default::default()
    }
}

/// Two chunks and a tail.
const EPOCHS: usize = 2 * HISTORY_CHUNK + 9;

fn uninterrupted() -> (common::Bits, History) {
    let mut m = model();
    let h = m.fit(&data(), options(EPOCHS), &mut []).unwrap();
    (bits(&m), h)
}

/// Trains until the start of `epoch` with a backup every epoch, then stops with an error,
/// keeping the backup.
fn stopped_at(dir: &Path, epoch: usize, double: bool) {
    let mut backup = BackupAndRestore::new(dir)
        .unwrap()
        .double_checkpoint(double);
    let mut stop = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(epoch),
    };
    let err = model()
        .fit(&data(), options(EPOCHS), &mut [&mut backup, &mut stop])
        .unwrap_err();
    assert!(matches!(err, Error::Callback { .. }), "{err}");
}

fn resumed(dir: &Path, double: bool) -> wgfit::Result<(common::Bits, History)> {
    let mut backup = BackupAndRestore::new(dir)
        .unwrap()
        .double_checkpoint(double);
    let mut m = model();
    let h = m.fit(&data(), options(EPOCHS), &mut [&mut backup])?;
    Ok((bits(&m), h))
}

fn chunk_files(dir: &Path) -> Vec<String> {
    dir_contents(dir)
        .into_keys()
        .filter(|n| n.starts_with("history-"))
        .collect()
}

fn sidecar(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn a_long_run_writes_each_chunk_once_and_resumes_exactly() {
    let (expected, expected_history) = uninterrupted();
    assert_eq!(expected_history.len(), EPOCHS);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let stop = 2 * HISTORY_CHUNK + 3;
    stopped_at(&dir, stop, false);
    // Two sealed chunks on disk, the sidecar holding the three epochs after them.
    let chunks = chunk_files(&dir);
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    assert!(chunks[0].starts_with("history-0-") && chunks[1].starts_with("history-1-"));
    let v = sidecar(&dir, LATEST);
    assert_eq!(v["version"], 6);
    assert_eq!(v["history"]["epochs"].as_array().unwrap().len(), 3);
    assert_eq!(v["history"]["chunks"]["count"], 2);
    assert_eq!(v["history"]["chunks"]["file"], chunks[1].as_str());
    // The whole history comes back from the chain: the chunks' epochs, then the sidecar's.
    let loaded = checkpoint::load_sidecar(&dir, LATEST).unwrap();
    assert_eq!(loaded.state.meta.history.len(), stop);
    for (got, want) in loaded
        .state
        .meta
        .history
        .iter()
        .zip(expected_history.iter())
    {
        assert_eq!(got.epoch, want.epoch);
        assert_eq!(got.logs["loss"].to_bits(), want.logs["loss"].to_bits());
    }
    let report = checkpoint::inspect(&dir).unwrap();
    let latest = report.sidecars[0]
        .state
        .clone()
        .expect("a readable latest.json");
    assert_eq!(report.sidecars[0].name, LATEST);
    assert_eq!(latest.history_chunks, chunks);
    for chunk in &chunks {
        let file = report.files.iter().find(|f| &f.name == chunk).unwrap();
        assert!(
            file.role.starts_with("history chunk, verified"),
            "{}",
            file.role
        );
    }
    assert_eq!(latest.epochs_done, stop);
    assert_eq!(
        latest.last_logs.as_ref().map(|l| l["loss"].to_bits()),
        Some(expected_history[stop - 1].logs["loss"].to_bits())
    );
    let (got, history) = resumed(&dir, false).unwrap();
    assert_eq!(got, expected);
    assert_eq!(history, expected_history);
    assert!(
        !dir.exists(),
        "the finished run removed its backup, chunks included"
    );
}

#[test]
fn the_sidecar_stays_small_however_long_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let size_at = |epoch: usize| {
        let dir = tmp.path().join(format!("b{epoch}"));
        stopped_at(&dir, epoch, false);
        std::fs::metadata(dir.join(LATEST)).unwrap().len()
    };
    // The same number of epochs inline (5) at epoch 5 and after two chunks: the same size,
    // but for the digits of the numbers and the chunk reference.
    let early = size_at(5);
    let late = size_at(2 * HISTORY_CHUNK + 5);
    assert!(
        late < early + 400,
        "latest.json grew from {early} bytes at epoch 5 to {late} at epoch {}",
        2 * HISTORY_CHUNK + 5
    );
}

#[test]
fn a_damaged_or_missing_chunk_is_refused_naming_it() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("one flipped bit", |p| {
            let mut b = std::fs::read(p).unwrap();
            let i = b.len() / 2;
            b[i] ^= 0x04;
            std::fs::write(p, b).unwrap();
        }),
        ("cut short", |p| {
            let b = std::fs::read(p).unwrap();
            std::fs::write(p, &b[..b.len() - 10]).unwrap();
        }),
        ("missing", |p| std::fs::remove_file(p).unwrap()),
    ];
    for (what, damage) in damages {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        stopped_at(&dir, HISTORY_CHUNK + 2, false);
        let chunk = chunk_files(&dir).remove(0);
        damage(&dir.join(&chunk));
        let before = dir_contents(&dir);
        let err = resumed(&dir, false).expect_err(what);
        assert!(
            matches!(err, Error::CorruptCheckpoint { .. }),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains(&chunk),
            "{what}: names {chunk}: {err}"
        );
        assert_eq!(dir_contents(&dir), before, "{what}: nothing changed");
    }
}

#[test]
fn a_damaged_chunk_falls_back_to_a_previous_state_that_does_not_need_it() {
    let (expected, expected_history) = uninterrupted();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    // latest.json at the start of epoch 64 names the first chunk; previous.json, an epoch
    // or two earlier, holds its epochs inline.
    stopped_at(&dir, HISTORY_CHUNK, true);
    assert_eq!(sidecar(&dir, LATEST)["history"]["chunks"]["count"], 1);
    assert!(sidecar(&dir, PREVIOUS)["history"].get("chunks").is_none());
    let chunk = dir.join(chunk_files(&dir).remove(0));
    let mut b = std::fs::read(&chunk).unwrap();
    b[20] ^= 0x01;
    std::fs::write(&chunk, b).unwrap();
    let (got, history) = resumed(&dir, true).unwrap();
    assert_eq!(got, expected);
    assert_eq!(history, expected_history);
}

#[test]
fn chunk_files_no_sidecar_references_are_swept_and_others_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    stopped_at(&dir, HISTORY_CHUNK + 2, false);
    let chunk = chunk_files(&dir).remove(0);
    // A chunk of this backup that no sidecar names (as a crash before a commit leaves it),
    // and a file of the same form that is not wgfit's.
    let ours = "history-7-0123456789abcdef.json";
    let foreign = "history-8-fedcba9876543210.json";
    std::fs::copy(dir.join(&chunk), dir.join(ours)).unwrap();
    std::fs::write(dir.join(foreign), b"{\"not\": \"wgfit's\"}").unwrap();
    // Resume and stop again a few epochs on: the first commit sweeps.
    stopped_at(&dir, HISTORY_CHUNK + 5, false);
    let left = chunk_files(&dir);
    assert!(!left.contains(&ours.to_string()), "{left:?}");
    assert!(left.contains(&foreign.to_string()), "{left:?}");
    assert!(
        left.contains(&chunk),
        "the referenced chunk stays: {left:?}"
    );
}
