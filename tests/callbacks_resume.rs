//! The stateful callbacks across interruptions: a run interrupted again and again (at batch
//! ends, and at the very epoch ends where a callback acts) and resumed each time ends with the
//! uninterrupted run's parameters, history (learning rates included), stopped epoch,
//! checkpoint files and CSV bytes, whether it saved every batch or every epoch.

mod common;

use common::callback_suite::{Outcome, run};
use common::interrupted;
use wgfit::{BackupAndRestore, Callback, Context, SaveFreq};

/// Where to interrupt a run.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// At the end of the batch that makes this global step.
    AtStep(u64),
    /// At the end of an epoch, after every callback's hook (the backup's save included).
    AtEpochEnd(usize),
}

impl Callback for Kill {
    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        match *self {
            Kill::AtStep(s) if ctx.position().global_step == s => Err(interrupted()),
            _ => Ok(()),
        }
    }

    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        epoch: usize,
        _logs: &wgfit::Logs,
    ) -> wgfit::Result<()> {
        match *self {
            Kill::AtEpochEnd(e) if e == epoch => Err(interrupted()),
            _ => Ok(()),
        }
    }
}

/// Nine batches an epoch. In the uninterrupted run the plateau waits at the ends of epochs 2
/// and 4 and halves the rate at the end of epoch 5; the checkpoint saves at epochs 0, 1, 3, 5
/// and 6; early stopping stops at the end of epoch 6 and puts back epoch 3's weights.
const KILLS: [Kill; 8] = [
    Kill::AtStep(5),
    Kill::AtEpochEnd(1),
    Kill::AtStep(31),
    Kill::AtEpochEnd(4),
    Kill::AtStep(48),
    Kill::AtEpochEnd(5),
    Kill::AtStep(63),
    Kill::AtEpochEnd(6),
];

fn interrupted_and_resumed(freq: SaveFreq) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, artifacts) = (tmp.path().join("b"), tmp.path().join("out"));
    let backup = || {
        BackupAndRestore::new(&dir)
            .unwrap()
            .save_freq(freq)
            .unwrap()
    };
    for kill in KILLS {
        let mut kill_cb = kill;
        let err = run(&artifacts, &mut [&mut backup()], &mut [&mut kill_cb])
            .expect_err("the run is interrupted");
        assert!(err.to_string().contains("interrupted"), "{kill:?}: {err}");
    }
    run(&artifacts, &mut [&mut backup()], &mut []).unwrap()
}

#[test]
fn an_interrupted_run_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = run(tmp.path(), &mut [], &mut []).unwrap();
    // The run exercises every callback: otherwise the comparison would prove little.
    assert_eq!(expected.stopped_epoch, Some(6));
    let rates: Vec<f64> = expected.history.metric("learning_rate");
    assert_eq!(rates[6], rates[5] / 2.0, "{rates:?}");
    assert_eq!(expected.files.len(), 6, "{:?}", expected.files.keys());
    assert!(expected.files.contains_key("log.csv"));

    for freq in [SaveFreq::Batches(1), SaveFreq::Epoch] {
        let resumed = interrupted_and_resumed(freq);
        assert_eq!(resumed.history, expected.history, "{freq:?}: history");
        assert_eq!(resumed.stopped_epoch, expected.stopped_epoch, "{freq:?}");
        assert_eq!(
            resumed.files.keys().collect::<Vec<_>>(),
            expected.files.keys().collect::<Vec<_>>(),
            "{freq:?}: the checkpoint files"
        );
        for (name, bytes) in &expected.files {
            assert!(
                resumed.files[name] == *bytes,
                "{freq:?}: the bytes of {name}"
            );
        }
        assert!(resumed.bits == expected.bits, "{freq:?}: final parameters");
    }
}

#[test]
fn a_failure_inside_a_round_of_hooks_saves_nothing_of_that_round() {
    // The failure comes after the backup asked for its epoch-end save but before the plateau,
    // the checkpoint, early stopping and the CSV log saw the end of epoch 5 (where the plateau
    // halves the rate). Were that save committed, the rerun would go on from epoch 6 without
    // the reduction and without epoch 5's checkpoint.
    let tmp = tempfile::tempdir().unwrap();
    let expected = run(&tmp.path().join("reference"), &mut [], &mut []).unwrap();
    let (dir, artifacts) = (tmp.path().join("b"), tmp.path().join("out"));
    let backup = || BackupAndRestore::new(&dir).unwrap();
    run(
        &artifacts,
        &mut [&mut backup(), &mut Kill::AtEpochEnd(5)],
        &mut [],
    )
    .expect_err("the run fails at the end of epoch 5");
    let resumed = run(&artifacts, &mut [&mut backup()], &mut []).unwrap();
    assert_eq!(resumed.history, expected.history);
    assert!(
        resumed.files == expected.files,
        "the checkpoint files and the CSV log"
    );
    assert!(resumed.bits == expected.bits, "final parameters");
}
