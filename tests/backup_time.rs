//! Time-based saving: `SaveFreq::Every(d)` saves at the first batch end after `d` since the
//! last save; what is saved stays exact.

mod common;

use common::cli::{stderr, wgfit};
use common::{Interrupt, bits, data, model, options};
use std::time::Duration;
use wgfit::{BackupAndRestore, Callback, Context, SaveFreq};

/// Sleeps after each batch, so that time passes between batch ends.
struct Slow;

impl Callback for Slow {
    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        std::thread::sleep(Duration::from_millis(3));
        Ok(())
    }
}

/// The global step of the committed state after a run stopped at global step 17.
fn committed_after_stop(every: Duration) -> Option<u64> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Every(every))
        .unwrap();
    let mut stop = Interrupt {
        at_global_step: Some(17),
        at_epoch_begin: None,
    };
    model()
        .fit(
            &data(),
            options(3),
            // Slow first: its sleep falls between the last save and the next check, so
            // every batch end is 3 ms after the previous save, however fast the rest runs.
            &mut [&mut Slow, &mut backup, &mut stop],
        )
        .unwrap_err();
    let info = wgfit::checkpoint::inspect(&dir).unwrap();
    info.sidecars[0].state.as_ref().map(|s| s.global_step)
}

#[test]
fn saves_come_at_the_first_batch_end_after_the_interval() {
    // 3 ms a batch: with 1 ms, every batch end is past it.
    assert_eq!(committed_after_stop(Duration::from_millis(1)), Some(17));
    // With an hour, no batch end is.
    assert_eq!(committed_after_stop(Duration::from_secs(3600)), None);
}

#[test]
fn a_run_saving_by_time_resumes_exactly() {
    let mut reference = model();
    reference.fit(&data(), options(3), &mut []).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let backup = || {
        BackupAndRestore::new(&dir)
            .unwrap()
            .save_freq(SaveFreq::Every(Duration::from_millis(1)))
            .unwrap()
    };
    let mut stop = Interrupt {
        at_global_step: Some(17),
        at_epoch_begin: None,
    };
    model()
        .fit(
            &data(),
            options(3),
            &mut [&mut backup(), &mut Slow, &mut stop],
        )
        .unwrap_err();
    let mut resumed = model();
    resumed
        .fit(&data(), options(3), &mut [&mut backup(), &mut Slow])
        .unwrap();
    assert_eq!(bits(&resumed), bits(&reference));
}

#[test]
fn a_zero_interval_is_refused_and_the_cli_takes_durations() {
    let err = BackupAndRestore::new("b")
        .unwrap()
        .save_freq(SaveFreq::Every(Duration::ZERO))
        .unwrap_err();
    assert!(err.to_string().contains("Every(0)"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--save-freq",
            "10m",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = wgfit(dir.path(), &["train", "--save-freq", "0s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("a duration of 0"), "{}", stderr(&o));
}
