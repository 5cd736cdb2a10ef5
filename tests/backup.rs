//! BackupAndRestore: the Keras 3 test cases in wgfit's terms, exact resume, corruption with
//! and without double_checkpoint, fingerprint mismatch, the lock, and delete_checkpoint.

mod common;

use common::{
    Counter, Interrupt, backup_every_batch, bits, data, dir_contents, kept_backup, model, options,
    uninterrupted,
};
use wgfit::checkpoint;
use wgfit::{BackupAndRestore, Error, SaveFreq};

#[path = "../examples/backup_keras_doc.rs"]
mod keras_doc;

#[test]
fn keras_documentation_example() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backup");
    let (first, second, history) = keras_doc::run(&dir).unwrap();
    assert_eq!(
        first,
        vec![0, 1, 2, 3],
        "the first fit stops at the start of epoch 4"
    );
    assert_eq!(
        second,
        (4..10).collect::<Vec<_>>(),
        "the second fit runs only epochs 4-9"
    );
    assert_eq!(
        history,
        (0..10).collect::<Vec<_>>(),
        "the History covers all 10 epochs"
    );
    assert!(
        !dir.exists(),
        "a successful run removes the directory it created"
    );
}

#[test]
fn invalid_save_freq_is_refused_at_construction() {
    let e = BackupAndRestore::new("b")
        .unwrap()
        .save_freq(SaveFreq::Batches(0));
    let msg = e.unwrap_err().to_string();
    assert!(
        msg.contains("Batches(0)") && msg.contains("n >= 1"),
        "{msg}"
    );

    let e = BackupAndRestore::new("b")
        .unwrap()
        .save_freq(SaveFreq::Never);
    let msg = e.unwrap_err().to_string();
    assert!(msg.contains("save_before_preemption(true)"), "{msg}");

    // With preemption saving on, Never is valid; turning preemption off again is not.
    let b = BackupAndRestore::new("b")
        .unwrap()
        .save_before_preemption(true)
        .unwrap()
        .save_freq(SaveFreq::Never)
        .unwrap();
    assert!(b.save_before_preemption(false).is_err());
}

#[test]
fn empty_backup_dir_is_refused() {
    let msg = BackupAndRestore::new("").unwrap_err().to_string();
    assert!(msg.contains("backup_dir") && msg.contains("empty"), "{msg}");
}

#[test]
fn interruption_mid_epoch_with_batches_1_resumes_at_the_next_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let steps = 12; // 90 samples in batches of 8
    let (expected, expected_history) = uninterrupted(3);

    let mut first = Counter::default();
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(1))
        .unwrap();
    let mut stop = Interrupt {
        at_global_step: Some(17),
        at_epoch_begin: None,
    };
    let r = model().fit(
        &data(),
        options(3),
        &mut [&mut backup, &mut stop, &mut first],
    );
    assert!(matches!(r, Err(Error::Callback { .. })), "{r:?}");
    assert_eq!(first.batches.len(), 17);

    let mut second = Counter::default();
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(1))
        .unwrap();
    let mut m = model();
    let history = m
        .fit(&data(), options(3), &mut [&mut backup, &mut second])
        .unwrap();

    // Resumes at epoch 1, batch 5 (global step 17 = 12 + 5): no batch runs twice.
    assert_eq!(second.batches.first(), Some(&(1, 5)));
    let mut all = first.batches.clone();
    all.extend(&second.batches);
    let once: Vec<(usize, usize)> = (0..3)
        .flat_map(|e| (0..steps).map(move |b| (e, b)))
        .collect();
    assert_eq!(all, once, "every batch runs exactly once over the two fits");
    assert_eq!(
        bits(&m),
        expected,
        "resumed parameters equal the uninterrupted run's"
    );
    assert_eq!(
        history, expected_history,
        "the history covers the whole run, exactly"
    );
    assert!(!dir.exists());
}

/// Two backups saving every batch: each writer may hold a snapshot whose copy rides in the
/// loop's next submission while the loop asks for more staging buffers, and the failure
/// ends `fit` with both writers waiting for copies not submitted yet. Both commit the last
/// save point, and either resumes exactly.
#[test]
fn two_backups_saving_every_batch_both_keep_the_last_save_point() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [tmp.path().join("a"), tmp.path().join("b")];
    let (expected, _) = uninterrupted(3);
    let (mut a, mut b) = (backup_every_batch(&dirs[0]), backup_every_batch(&dirs[1]));
    let mut stop = Interrupt {
        at_global_step: Some(17),
        at_epoch_begin: None,
    };
    let r = model().fit(&data(), options(3), &mut [&mut a, &mut b, &mut stop]);
    assert!(matches!(r, Err(Error::Callback { .. })), "{r:?}");
    for dir in &dirs {
        let mut counter = Counter::default();
        let mut backup = backup_every_batch(dir);
        let mut m = model();
        m.fit(&data(), options(3), &mut [&mut backup, &mut counter])
            .unwrap();
        assert_eq!(counter.batches.first(), Some(&(1, 5)), "{}", dir.display());
        assert_eq!(bits(&m), expected, "{}", dir.display());
    }
}

#[test]
fn interruption_after_epoch_2_with_epoch_saves_resumes_at_epoch_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let (expected, expected_history) = uninterrupted(5);

    let mut first = Counter::default();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let mut stop = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(3),
    };
    let r = model().fit(
        &data(),
        options(5),
        &mut [&mut backup, &mut stop, &mut first],
    );
    assert!(r.is_err());
    assert_eq!(first.batches.len(), 3 * 12);

    let mut second = Counter::default();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let mut m = model();
    let history = m
        .fit(&data(), options(5), &mut [&mut backup, &mut second])
        .unwrap();
    assert_eq!(second.batches.len(), 2 * 12, "only epochs 3 and 4 run");
    assert_eq!(second.batches.first(), Some(&(3, 0)));
    assert_eq!(bits(&m), expected);
    assert_eq!(history, expected_history);
}

#[test]
fn exact_resume_with_batches_n_and_momentum_over_several_interruptions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let (expected, expected_history) = uninterrupted(4);
    // Saves every 5 batches; interruptions land between save points, so the batches since
    // the last save run again, from the same state, in the same order.
    for stop_at in [7u64, 19, 33] {
        let mut backup = BackupAndRestore::new(&dir)
            .unwrap()
            .save_freq(SaveFreq::Batches(5))
            .unwrap();
        let mut stop = Interrupt {
            at_global_step: Some(stop_at),
            at_epoch_begin: None,
        };
        assert!(
            model()
                .fit(&data(), options(4), &mut [&mut backup, &mut stop])
                .is_err()
        );
        let info = checkpoint::inspect(&dir).unwrap();
        let s = info.sidecars[0].state.as_ref().unwrap();
        assert_eq!(
            s.global_step,
            stop_at / 5 * 5,
            "the last save point is committed"
        );
    }
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(5))
        .unwrap();
    let mut m = model();
    let history = m.fit(&data(), options(4), &mut [&mut backup]).unwrap();
    assert_eq!(bits(&m), expected);
    assert_eq!(history, expected_history);
}

#[test]
fn clean_run_leaves_no_backup_directory_and_keep_leaves_the_final_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(1))
        .unwrap();
    model()
        .fit(&data(), options(2), &mut [&mut backup])
        .unwrap();
    assert!(!dir.exists());

    // delete_checkpoint(false) keeps the final state even when it is not a save point.
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(7))
        .unwrap()
        .delete_checkpoint(false);
    let mut m = model();
    m.fit(&data(), options(2), &mut [&mut backup]).unwrap();
    let info = checkpoint::inspect(&dir).unwrap();
    let s = info.sidecars[0].state.as_ref().unwrap();
    assert_eq!((s.epoch, s.step, s.global_step), (2, 0, 24));
    assert_eq!(s.epochs_done, 2);
    // An empty directory the user made is kept; only the callback's files go.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let mut backup = BackupAndRestore::new(&mine).unwrap();
    model()
        .fit(&data(), options(1), &mut [&mut backup])
        .unwrap();
    assert!(mine.exists());
    assert_eq!(
        std::fs::read_dir(&mine).unwrap().count(),
        0,
        "nothing is left"
    );
}

#[test]
fn a_backup_of_another_run_is_refused_with_the_differences_or_discarded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    let before = dir_contents(&dir);

    let mut other = options(4);
    other.batch_size = 10;
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(&data(), other.clone(), &mut [&mut backup])
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::FingerprintMismatch { .. }));
    assert!(msg.contains("batch size: backup 8, now 10"), "{msg}");
    assert!(msg.contains("discard_mismatched"), "{msg}");
    assert_eq!(
        dir_contents(&dir),
        before,
        "a refused backup is left untouched"
    );

    // Different data is a difference too.
    let mut x = data().x().to_vec();
    x[0] += 1.0;
    let changed = wgfit::Dataset::new(x, 6, data().targets().clone()).unwrap();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let msg = model()
        .fit(&changed, options(4), &mut [&mut backup])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("data set SHA-256"), "{msg}");

    // Asked to discard, it trains from scratch.
    let mut counter = Counter::default();
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .discard_mismatched(true);
    model()
        .fit(&data(), other, &mut [&mut backup, &mut counter])
        .unwrap();
    assert_eq!(counter.batches.first(), Some(&(0, 0)));
}

#[test]
fn a_locked_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let held = checkpoint::BackupDir::take(&dir).unwrap();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(&data(), options(1), &mut [&mut backup])
        .unwrap_err();
    assert!(matches!(err, Error::BackupLocked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another run"));
    drop(held);

    // Two callbacks on one directory in one fit: the second is refused.
    let mut a = BackupAndRestore::new(&dir).unwrap();
    let mut b = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(&data(), options(1), &mut [&mut a, &mut b])
        .unwrap_err();
    assert!(matches!(err, Error::BackupLocked { .. }), "{err}");
}
