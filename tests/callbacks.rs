//! The Keras callbacks' rules, one callback at a time: ReduceLROnPlateau's rates (and its
//! cooldown across a resume), EarlyStopping's best weights, ModelCheckpoint's file names and
//! batch counting, CSVLogger's format, LearningRateScheduler across a mid-epoch resume,
//! TerminateOnNaN, LambdaCallback, and validation every n epochs. (What the backup keeps of
//! callbacks: `callbacks_state.rs`.)

mod common;

use common::{Interrupt, bits, data, interrupted, model, options};
use std::cell::RefCell;
use wgfit::callbacks::Mode;
use wgfit::{
    BackupAndRestore, CheckpointFreq, Context, CsvLogger, EarlyStopping, Error, FitOptions,
    LambdaCallback, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, SaveFreq,
    TerminateOnNaN,
};

fn rates(history: &wgfit::History) -> Vec<f32> {
    history
        .metric("learning_rate")
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// In max mode a falling loss never improves after the first epoch: with patience 1 and
/// cooldown 3 the rate halves at the end of epoch 1, waits out epochs 2 and 3 (the counter is
/// counted down before the test, as Keras), halves at the end of epoch 4, then stays at min_lr.
fn plateau() -> ReduceLROnPlateau {
    ReduceLROnPlateau::new("loss")
        .mode(Mode::Max)
        .factor(0.5)
        .patience(1)
        .cooldown(3)
        .min_lr(0.0125)
}

#[test]
fn reduce_lr_on_plateau_follows_keras_and_resumes_its_cooldown() {
    let mut p = plateau();
    let history = model().fit(&data(), options(11), &mut [&mut p]).unwrap();
    let (a, b, c) = (0.05f32, 0.025f32, 0.0125f32);
    // The logged rate is the epoch's own; a reduction at an epoch's end shows in the next.
    assert_eq!(rates(&history), [a, a, b, b, b, c, c, c, c, c, c]);
    assert_eq!(p.reductions(), [(1, b), (4, c)]);

    // Interrupted inside the cooldown (its counter is 2 after epoch 2): the resumed run
    // waits out the same cooldown.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut kill = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(3),
    };
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    model()
        .fit(
            &data(),
            options(11),
            &mut [&mut backup, &mut plateau(), &mut kill],
        )
        .unwrap_err();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let resumed = model()
        .fit(&data(), options(11), &mut [&mut backup, &mut plateau()])
        .unwrap();
    assert_eq!(rates(&resumed), rates(&history));

    let err = model()
        .fit(
            &data(),
            options(1),
            &mut [&mut ReduceLROnPlateau::new("loss").factor(1.0)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("below 1"), "{err}");
}

#[test]
fn early_stopping_puts_back_the_best_weights() {
    // In max mode the first epoch is the best; patience 2 stops at epoch 2.
    let stopper = || {
        EarlyStopping::new("loss")
            .mode(Mode::Max)
            .patience(2)
            .restore_best_weights(true)
    };
    let mut first = model();
    first.fit(&data(), options(1), &mut []).unwrap();
    let mut m = model();
    let mut es = stopper();
    let history = m.fit(&data(), options(10), &mut [&mut es]).unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(es.best().map(|b| b.1), Some(0));
    assert_eq!(m.parameters().unwrap(), first.parameters().unwrap());
    // Only the weights go back: the optimizer's momentum is that of the last epoch.
    assert_ne!(bits(&m), bits(&first));

    // Without restore_best_weights the last weights stay.
    let mut last = model();
    last.fit(
        &data(),
        options(10),
        &mut [&mut EarlyStopping::new("loss").mode(Mode::Max).patience(2)],
    )
    .unwrap();
    assert_ne!(last.parameters().unwrap(), first.parameters().unwrap());
}

#[test]
fn model_checkpoint_names_files_as_keras_and_counts_batches_across_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let pattern = |p: &str| tmp.path().join(p).to_string_lossy().into_owned();
    let mut m = model();
    let mut ck = ModelCheckpoint::new(pattern("e/w-{epoch:02d}-{loss:.3f}.safetensors"));
    let history = m.fit(&data(), options(3), &mut [&mut ck]).unwrap();
    let names: Vec<String> = history
        .iter()
        .map(|e| format!("w-{:02}-{:.3}.safetensors", e.epoch + 1, e.logs["loss"]))
        .collect();
    let saved: Vec<String> = ck
        .saved()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(saved, names);
    let mut last = wgfit::checkpoint::read_tensors(&ck.saved()[2]).unwrap();
    let mut params = m.parameters().unwrap();
    last.sort_by(|a, b| a.name.cmp(&b.name));
    params.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(last, params);

    // save_best_only in max mode on a falling loss: only the first epoch is saved.
    let mut best = ModelCheckpoint::new(pattern("b/{epoch}.safetensors"))
        .monitor("loss")
        .mode(Mode::Max)
        .save_best_only(true);
    model().fit(&data(), options(3), &mut [&mut best]).unwrap();
    assert_eq!(best.saved().len(), 1);
    assert!(best.saved()[0].ends_with("b/1.safetensors"));

    // Every 5 batches over epochs of 12: the count runs on across epoch ends, as Keras.
    let mut batches = ModelCheckpoint::new(pattern("n/{epoch}-{batch}.safetensors"))
        .save_freq(CheckpointFreq::Batches(5));
    model()
        .fit(&data(), options(2), &mut [&mut batches])
        .unwrap();
    let saved: Vec<String> = batches
        .saved()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(saved, ["1-5", "1-10", "2-3", "2-8"]);

    // A field the logs do not have is named.
    let mut bad = ModelCheckpoint::new(pattern("{val_loss:.2f}.safetensors"));
    let err = model()
        .fit(&data(), options(1), &mut [&mut bad])
        .unwrap_err();
    assert!(
        err.to_string().contains("no value named `val_loss`"),
        "{err}"
    );
}

#[test]
fn csv_logger_writes_keras_rows_and_appends_after_what_was_there() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log.csv");
    let history = model()
        .fit(
            &data(),
            options(2),
            &mut [&mut CsvLogger::new(&path).separator(';')],
        )
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines[0], "epoch;accuracy;learning_rate;loss");
    assert_eq!(lines.len(), 3, "{text:?}");
    let e1 = &history[1].logs;
    assert_eq!(
        lines[2],
        format!(
            "1;{};0.05000000074505806;{}",
            python(e1["accuracy"]),
            python(e1["loss"])
        )
    );

    // Appending: the old bytes stay first, and no second header.
    let before = std::fs::read(&path).unwrap();
    model()
        .fit(
            &data(),
            options(1),
            &mut [&mut CsvLogger::new(&path).separator(';').append(true)],
        )
        .unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(&before));
    let added = String::from_utf8(after[before.len()..].to_vec()).unwrap();
    assert!(
        added.starts_with("0;") && added.ends_with("\r\n"),
        "{added:?}"
    );
    assert_eq!(added.matches("\r\n").count(), 1);
}

/// Epochs of one batch are short against a durable rewrite of the log, so some epoch's rewrite
/// is skipped (RewritePace); a callback after the logger stops the run at the first epoch the
/// file lacks. The run's end must still leave every finished epoch in the file, as an
/// uninterrupted run's log begins.
#[test]
fn csv_logger_paces_its_rewrites_and_a_stopped_run_leaves_every_finished_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("log.csv");
    let short = || FitOptions {
        batch_size: 90,
        ..options(400)
    };
    let skipped = RefCell::new(None);
    let mut stop_at_a_skip = LambdaCallback::new().on_epoch_end(|_, epoch, _| {
        let rows = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .count()
            .saturating_sub(1);
        if rows > epoch {
            return Ok(());
        }
        *skipped.borrow_mut() = Some(epoch);
        Err(Error::Callback {
            callback: "test".into(),
            reason: format!("the log has {rows} rows at the end of epoch {epoch}"),
        })
    });
    let err = model()
        .fit(
            &data(),
            short(),
            &mut [&mut CsvLogger::new(&path), &mut stop_at_a_skip],
        )
        .unwrap_err();
    let epoch = skipped
        .borrow()
        .unwrap_or_else(|| panic!("no rewrite was skipped in 400 short epochs: {err}"));
    assert!(epoch >= 1, "the first epoch's rewrite is due");
    let stopped = std::fs::read_to_string(&path).unwrap();
    assert_eq!(stopped.lines().count(), epoch + 2, "{err}\n{stopped}");

    let whole = tmp.path().join("whole.csv");
    model()
        .fit(&data(), short(), &mut [&mut CsvLogger::new(&whole)])
        .unwrap();
    let whole = std::fs::read_to_string(&whole).unwrap();
    assert_eq!(whole.lines().count(), 401);
    assert!(whole.starts_with(&stopped), "{stopped}");
}

/// Python's repr for the values these tests meet (17 significant digits trimmed).
fn python(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

#[test]
fn a_resumed_csv_log_refuses_a_file_changed_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, path) = (tmp.path().join("b"), tmp.path().join("log.csv"));
    std::fs::write(&path, "earlier run\r\n").unwrap();
    let mut kill = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(1),
    };
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    model()
        .fit(
            &data(),
            options(2),
            &mut [
                &mut backup,
                &mut CsvLogger::new(&path).append(true),
                &mut kill,
            ],
        )
        .unwrap_err();
    // Someone rewrites the lines that were there before the run.
    std::fs::write(&path, "EARLIER RUN\r\nepoch,x\r\n").unwrap();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(
            &data(),
            options(2),
            &mut [&mut backup, &mut CsvLogger::new(&path).append(true)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("have changed since"), "{err}");
    assert!(dir.join("latest.json").exists(), "the backup stays");
}

#[test]
fn learning_rate_scheduler_is_not_applied_twice_to_a_resumed_epoch() {
    let halve =
        || LearningRateScheduler::new(|epoch, rate| if epoch == 0 { rate } else { rate * 0.5 });
    let expected = model()
        .fit(&data(), options(4), &mut [&mut halve()])
        .unwrap();
    assert_eq!(rates(&expected), [0.05, 0.025, 0.0125, 0.00625]);

    // Interrupted in the middle of epoch 2 (saves every batch), then resumed.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let backup = || common::backup_every_batch(&dir);
    let mut kill = Interrupt {
        at_global_step: Some(2 * 12 + 5),
        at_epoch_begin: None,
    };
    let mut reference = model();
    reference
        .fit(&data(), options(4), &mut [&mut halve()])
        .unwrap();
    model()
        .fit(
            &data(),
            options(4),
            &mut [&mut backup(), &mut halve(), &mut kill],
        )
        .unwrap_err();
    let mut resumed = model();
    let history = resumed
        .fit(&data(), options(4), &mut [&mut backup(), &mut halve()])
        .unwrap();
    assert_eq!(history, expected);
    assert_eq!(bits(&resumed), bits(&reference));
}

#[test]
fn terminate_on_nan_ends_the_run_at_the_batch_and_keeps_the_last_finite_backup() {
    // A rate this large makes the loss overflow within a few batches.
    let mut m = wgfit::Sequential::new(6)
        .add(wgfit::Dense::new(8).activation(wgfit::Activation::Relu))
        .add(wgfit::Dense::new(3))
        .seed(3);
    m.compile(wgfit::Loss::MeanSquaredError, wgfit::Sgd::new(1e6))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(1))
        .unwrap();
    let mut stop = TerminateOnNaN;
    let err = m
        .fit(&data(), options(3), &mut [&mut stop, &mut backup])
        .unwrap_err();
    let Error::Diverged {
        what, global_step, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert!(what.starts_with("the loss of batch"), "{err}");
    assert!(*global_step < 12, "stopped within the first epoch: {err}");
    // The backup holds a state before the divergence, and it restores.
    let report = wgfit::checkpoint::inspect(&dir).unwrap();
    let latest = report.sidecars[0].state.as_ref().expect("a verified state");
    assert!(latest.global_step < *global_step);
}

#[test]
fn lambda_callback_runs_its_closures_at_keras_hooks() {
    let seen = RefCell::new(Vec::new());
    let mut lambda = LambdaCallback::new()
        .on_train_begin(|_| {
            seen.borrow_mut().push("begin".to_string());
            Ok(())
        })
        .on_epoch_end(|_, epoch, logs| {
            seen.borrow_mut()
                .push(format!("epoch {epoch} {}", logs.contains_key("loss")));
            Ok(())
        })
        .on_train_batch_end(|ctx: &mut Context<'_>, batch| {
            if batch == 0 {
                seen.borrow_mut()
                    .push(format!("batch 0 of epoch {}", ctx.position().epoch));
            }
            Ok(())
        })
        .on_train_end(|_, _| {
            seen.borrow_mut().push("end".to_string());
            Ok(())
        });
    model()
        .fit(&data(), options(2), &mut [&mut lambda])
        .unwrap();
    drop(lambda);
    assert_eq!(
        seen.into_inner(),
        [
            "begin",
            "batch 0 of epoch 0",
            "epoch 0 true",
            "batch 0 of epoch 1",
            "epoch 1 true",
            "end"
        ]
    );
    // An error from a closure ends fit with it.
    let mut failing = LambdaCallback::new().on_epoch_begin(|_, _| Err(interrupted()));
    let err = model()
        .fit(&data(), options(1), &mut [&mut failing])
        .unwrap_err();
    assert!(err.to_string().contains("interrupted"), "{err}");
}

#[test]
fn validation_every_n_epochs_and_in_batches_of_its_own() {
    let (train, validation) = data().split_tail(0.2).unwrap();
    let with = |o: FitOptions| model().fit(&train, o, &mut []).unwrap();
    let base = FitOptions {
        validation_data: Some(validation.clone()),
        ..options(4)
    };
    let every = with(base.clone());
    let second = with(FitOptions {
        validation_freq: 2,
        ..base.clone()
    });
    let has_val: Vec<bool> = second
        .iter()
        .map(|e| e.logs.contains_key("val_loss"))
        .collect();
    assert_eq!(has_val, [false, true, false, true]);
    assert_eq!(second[3].logs["val_loss"], every[3].logs["val_loss"]);

    // Another validation batch size: the same mean, to rounding.
    let big = with(FitOptions {
        validation_batch_size: Some(18),
        ..base.clone()
    });
    let (a, b) = (every[3].logs["val_loss"], big[3].logs["val_loss"]);
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");

    // validation_split holds out the same tail.
    let split = model()
        .fit(
            &data(),
            FitOptions {
                validation_split: Some(0.2),
                ..options(4)
            },
            &mut [],
        )
        .unwrap();
    assert_eq!(split, every);

    for (bad, what) in [
        (
            FitOptions {
                validation_freq: 0,
                ..base.clone()
            },
            "validation frequency",
        ),
        (
            FitOptions {
                validation_split: Some(0.2),
                ..base.clone()
            },
            "not both",
        ),
    ] {
        let err = model().fit(&train, bad, &mut []).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    }
}
