//! EarlyStopping with Keras 3's rules, and its counters surviving a resume: a run killed before
//! the epoch it stops at stops there all the same. Also the checks of a monitored metric that
//! EarlyStopping, ReduceLROnPlateau and ModelCheckpoint's `save_best_only` share.

mod common;

use common::{Interrupt, bits, data, model, options};
use wgfit::callbacks::Mode;
use wgfit::{BackupAndRestore, EarlyStopping};

/// Improvement needs the loss to drop by 1, which it never does after the first epoch: with
/// patience 2 the run stops at epoch 2.
fn stopper() -> EarlyStopping {
    EarlyStopping::new("loss").patience(2).min_delta(1.0)
}

#[test]
fn it_stops_when_the_metric_stops_improving() {
    let mut stop = stopper();
    let history = model().fit(&data(), options(10), &mut [&mut stop]).unwrap();
    assert_eq!(stop.stopped_epoch(), Some(2));
    assert_eq!(history.len(), 3);
    assert_eq!(stop.best().map(|b| b.1), Some(0));

    // Accuracy goes up: with mode auto a rising accuracy keeps training.
    let mut keep = EarlyStopping::new("accuracy").patience(3);
    model().fit(&data(), options(4), &mut [&mut keep]).unwrap();
    assert_eq!(keep.stopped_epoch(), None);

    // A metric whose direction is unknown needs a mode.
    let mut unknown = EarlyStopping::new("something");
    let err = model()
        .fit(&data(), options(2), &mut [&mut unknown])
        .unwrap_err();
    assert!(err.to_string().contains("give mode Min or Max"), "{err}");
    let mut known = EarlyStopping::new("loss").mode(Mode::Max).patience(1);
    model().fit(&data(), options(3), &mut [&mut known]).unwrap();
    assert_eq!(
        known.stopped_epoch(),
        Some(1),
        "a falling loss never improves in max mode"
    );
}

#[test]
fn a_resumed_run_stops_at_the_same_epoch() {
    let mut reference = model();
    let mut stop = stopper();
    let expected = reference
        .fit(&data(), options(10), &mut [&mut stop])
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    // Killed at the start of epoch 2, after the save at the end of epoch 1 (wait = 1).
    let mut kill = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(2),
    };
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    model()
        .fit(
            &data(),
            options(10),
            &mut [&mut backup, &mut stopper(), &mut kill],
        )
        .unwrap_err();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let mut resumed_stop = stopper();
    let mut resumed = model();
    let history = resumed
        .fit(&data(), options(10), &mut [&mut backup, &mut resumed_stop])
        .unwrap();
    assert_eq!(resumed_stop.stopped_epoch(), Some(2));
    assert_eq!(history, expected);
    assert_eq!(bits(&resumed), bits(&reference));
}

/// Keras warns of a monitored metric the logs lack, and its callback then does nothing for
/// the whole run; here the first epoch that should have logged it ends the run, naming it.
#[test]
fn a_metric_the_run_does_not_log_is_named_not_silently_ignored() {
    use wgfit::{FitOptions, ReduceLROnPlateau};
    refused_before_training(&mut EarlyStopping::new("val_loss"));
    // Keras logs val_accuracy, not val_acc.
    let validated = FitOptions {
        validation_split: Some(0.25),
        ..options(3)
    };
    let mut plateau = ReduceLROnPlateau::new("val_acc").mode(Mode::Max);
    let e = model()
        .fit(&data(), validated.clone(), &mut [&mut plateau])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("monitors `val_acc`") && e.contains("val_accuracy"),
        "{e}"
    );
    // Validating every second epoch: the epochs between are skipped, as Keras skips them.
    let every_second = FitOptions {
        validation_freq: 2,
        ..validated
    };
    let mut early = EarlyStopping::new("val_loss").patience(5);
    model()
        .fit(&data(), every_second, &mut [&mut early])
        .unwrap();
    // An epoch stopped as it begins trains no batch and logs no loss: skipped, not refused.
    let mut stop = StopAtEpochBegin(1);
    let mut early = EarlyStopping::new("loss");
    model()
        .fit(&data(), options(3), &mut [&mut stop, &mut early])
        .unwrap();
}

/// ModelCheckpoint's `save_best_only` on a value the run does not log: Keras warns and saves
/// every time, so the "best" file is the last; here it is refused by name, and an epoch that
/// did not validate is no candidate.
#[test]
fn save_best_only_on_a_metric_the_run_does_not_log_is_refused() {
    use wgfit::callbacks::CheckpointFreq;
    use wgfit::{FitOptions, ModelCheckpoint};
    let tmp = tempfile::tempdir().unwrap();
    let pattern = |p: &str| tmp.path().join(p).to_string_lossy().into_owned();
    let best = |p: &str| ModelCheckpoint::new(pattern(p)).save_best_only(true);
    let mut ck = best("a/{epoch}.safetensors");
    refused_before_training(&mut ck);
    assert!(ck.saved().is_empty());
    let validated = FitOptions {
        validation_split: Some(0.25),
        ..options(3)
    };
    let mut ck = best("b/{epoch}.safetensors")
        .monitor("val_acc")
        .mode(Mode::Max);
    let e = model()
        .fit(&data(), validated.clone(), &mut [&mut ck])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("monitors `val_acc`") && e.contains("val_accuracy"),
        "{e}"
    );
    assert!(ck.saved().is_empty(), "saved {:?}", ck.saved());
    // Batch saves see the epoch's training means: no validation value.
    let mut ck = best("c/{epoch}-{batch}.safetensors").save_freq(CheckpointFreq::Batches(4));
    let e = model()
        .fit(&data(), validated.clone(), &mut [&mut ck])
        .unwrap_err()
        .to_string();
    assert!(e.contains("saves every n batches"), "{e}");
    let mut ck = best("c/{epoch}-{batch}.safetensors")
        .monitor("learning_rate")
        .mode(Mode::Min)
        .save_freq(CheckpointFreq::Batches(4));
    refused_before_training_with(&mut ck, "saves every n batches");
    // Validating every second epoch: only those epochs are candidates (the first always
    // saves).
    let every_second = FitOptions {
        validation_freq: 2,
        ..FitOptions {
            epochs: 4,
            ..validated
        }
    };
    let mut ck = best("d/{epoch}.safetensors");
    model().fit(&data(), every_second, &mut [&mut ck]).unwrap();
    let saved: Vec<String> = ck
        .saved()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(saved.first().map(String::as_str), Some("2"), "{saved:?}");
    assert!(saved.iter().all(|s| s == "2" || s == "4"), "{saved:?}");
}

/// A `val_` monitor in a run whose `validation_freq` is above its epochs would never see a
/// value (`save_best_only` would save nothing, without a word): refused before training, by
/// each of the three callbacks. A run that validates only at its last epoch is accepted.
#[test]
fn a_val_monitor_in_a_run_that_never_validates_is_refused() {
    use wgfit::{FitOptions, ModelCheckpoint, ReduceLROnPlateau};
    let tmp = tempfile::tempdir().unwrap();
    let pattern = tmp.path().join("{epoch}.safetensors");
    let never = FitOptions {
        validation_split: Some(0.25),
        validation_freq: 4,
        ..options(3)
    };
    let mut best = ModelCheckpoint::new(pattern.to_string_lossy()).save_best_only(true);
    let mut early = EarlyStopping::new("val_loss");
    let mut plateau = ReduceLROnPlateau::new("val_loss");
    let callbacks: [&mut dyn wgfit::Callback; 3] = [&mut best, &mut early, &mut plateau];
    for callback in callbacks {
        let mut probe = common::training::Probe::default();
        let e = model()
            .fit(&data(), never.clone(), &mut [callback, &mut probe])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("monitors `val_loss`, which is never logged")
                && e.contains("validation_freq 4 is above the run's 3 epochs"),
            "{e}"
        );
        assert!(probe.batch_ends.is_empty(), "trained before refusing");
    }
    assert!(best.saved().is_empty());
    let at_the_last = FitOptions {
        validation_freq: 3,
        ..never
    };
    let mut best = ModelCheckpoint::new(pattern.to_string_lossy()).save_best_only(true);
    model().fit(&data(), at_the_last, &mut [&mut best]).unwrap();
    assert_eq!(best.saved().len(), 1, "{:?}", best.saved());
}

/// That `callback`, monitoring `val_loss` in a run without validation data, refuses it
/// before the first batch.
fn refused_before_training(callback: &mut dyn wgfit::Callback) {
    let e = refused_before_training_with(callback, "needs validation data");
    assert!(e.contains("monitors `val_loss`"), "{e}");
}

/// That `callback` refuses the run before its first batch, saying `why`; the message.
fn refused_before_training_with(callback: &mut dyn wgfit::Callback, why: &str) -> String {
    let mut probe = common::training::Probe::default();
    let e = model()
        .fit(&data(), options(3), &mut [callback, &mut probe])
        .unwrap_err()
        .to_string();
    assert!(e.contains(why), "{e}");
    assert!(probe.batch_ends.is_empty(), "trained before refusing");
    e
}

/// Stops training as epoch `.0` begins.
struct StopAtEpochBegin(usize);

impl wgfit::Callback for StopAtEpochBegin {
    fn name(&self) -> &str {
        "stop-at-epoch-begin"
    }

    fn on_epoch_begin(&mut self, ctx: &mut wgfit::Context<'_>, epoch: usize) -> wgfit::Result<()> {
        if epoch == self.0 {
            ctx.stop_training();
        }
        Ok(())
    }
}

#[test]
fn reducing_a_scheduled_learning_rate_is_refused_before_training() {
    use wgfit::{Configured, LearningRateSchedule, Loss, ReduceLROnPlateau, Sgd};
    let mut scheduled = wgfit::Sequential::new(6).add(wgfit::Dense::new(3));
    let schedule = LearningRateSchedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        decay_rate: 0.5,
        staircase: false,
    };
    scheduled
        .compile(
            Loss::CrossEntropy,
            Configured::new(Sgd::new(0.1)).schedule(schedule),
        )
        .unwrap();
    let mut probe = common::training::Probe::default();
    let mut plateau = ReduceLROnPlateau::new("loss");
    let e = scheduled
        .fit(&data(), options(3), &mut [&mut plateau, &mut probe])
        .unwrap_err()
        .to_string();
    assert!(e.contains("follows the optimizer's schedule"), "{e}");
    assert!(probe.batch_ends.is_empty(), "trained before refusing");
}
