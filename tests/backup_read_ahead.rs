//! `BackupAndRestore::read_ahead`: the newest state read before `fit`, used only where the
//! ordinary restore would restore the very same state.

mod common;

use common::{Counter, Interrupt, bits, data, model, options, uninterrupted};
use std::path::Path;
use wgfit::{BackupAndRestore, Error};

/// Trains the first `epochs` epochs of a 4-epoch run and stops, keeping the backup.
fn backup_after(dir: &Path, epochs: usize) {
    let mut backup = BackupAndRestore::new(dir).unwrap();
    let mut stop = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(epochs),
    };
    let r = model().fit(&data(), options(4), &mut [&mut backup, &mut stop]);
    assert!(matches!(r, Err(Error::Callback { .. })), "{r:?}");
}

/// A callback on `dir` whose read ahead has ended.
fn read_ahead(dir: &Path) -> BackupAndRestore {
    let backup = BackupAndRestore::new(dir).unwrap().read_ahead();
    while !backup.read_ahead_done() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    backup
}

/// Flips a byte in the middle of every weights file in `dir`.
fn corrupt_weights(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            std::fs::write(&path, bytes).unwrap();
        }
    }
}

#[test]
fn a_resume_from_the_read_ahead_ends_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let (expected, expected_history) = uninterrupted(4);
    backup_after(&dir, 2);

    let mut backup = read_ahead(&dir);
    // What was read and verified is what is restored: damage done to the file afterwards is
    // not read again (the ordinary restore would refuse it).
    corrupt_weights(&dir);
    let mut counter = Counter::default();
    let mut m = model();
    let history = m
        .fit(&data(), options(4), &mut [&mut backup, &mut counter])
        .unwrap();
    assert_eq!(counter.batches.first(), Some(&(2, 0)), "resumes at epoch 2");
    assert_eq!(bits(&m), expected, "the resumed run ends as the whole run");
    assert_eq!(history, expected_history);
}

#[test]
fn a_commit_after_the_read_ahead_is_restored_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let (expected, _) = uninterrupted(4);
    backup_after(&dir, 2);
    let mut backup = read_ahead(&dir);

    // Another run goes on from epoch 2 and commits epoch 3 after the read.
    let mut other = BackupAndRestore::new(&dir).unwrap();
    let mut stop = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(3),
    };
    assert!(
        model()
            .fit(&data(), options(4), &mut [&mut other, &mut stop])
            .is_err()
    );

    let mut counter = Counter::default();
    let mut m = model();
    m.fit(&data(), options(4), &mut [&mut backup, &mut counter])
        .unwrap();
    assert_eq!(
        counter.batches.first(),
        Some(&(3, 0)),
        "the newer commit is restored, not the state read ahead"
    );
    assert_eq!(bits(&m), expected);
}

#[test]
fn a_read_ahead_of_another_runs_backup_is_refused_as_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    backup_after(&dir, 2);
    let mut backup = read_ahead(&dir);
    let mut other_seed = options(4);
    other_seed.seed += 1;
    let r = model().fit(&data(), other_seed, &mut [&mut backup]);
    match r {
        Err(Error::FingerprintMismatch { differences, .. }) => {
            assert!(
                differences.iter().any(|d| d.contains("seed")),
                "{differences:?}"
            )
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
}

#[test]
fn a_read_ahead_of_damage_leaves_the_verdict_to_the_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    backup_after(&dir, 2);
    corrupt_weights(&dir);
    let mut backup = read_ahead(&dir);
    let r = model().fit(&data(), options(4), &mut [&mut backup]);
    assert!(
        matches!(&r, Err(Error::CorruptCheckpoint { .. })),
        "the restore refuses the damaged backup: {r:?}"
    );
}

#[test]
fn a_read_ahead_of_a_missing_directory_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    let mut backup = read_ahead(&dir);
    assert!(!dir.exists(), "the read ahead only reads");
    let (expected, _) = uninterrupted(2);
    let mut m = model();
    m.fit(&data(), options(2), &mut [&mut backup]).unwrap();
    assert_eq!(bits(&m), expected, "a fresh start");
}
