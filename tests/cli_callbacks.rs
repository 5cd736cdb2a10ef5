//! The callback flags of `wgfit train` (early stopping, checkpoints, learning-rate plateaus,
//! CSV log) through the real binary on the bundled digits. (Validation data, the plot and a
//! preempted and resumed run: `cli_callbacks_resume.rs`.)

mod common;

use common::cli::{assert_ok, stderr, stdout, wgfit};
use common::cli_run::*;

#[test]
fn early_stopping_stops_reports_and_restores_the_best_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Nothing improves by 10: epoch 1 sets the best (anything beats infinity), epoch 2 does
    // not improve on it, and patience 1 stops the run there.
    let stop = [
        "--epochs",
        "5",
        "--validation-split",
        "0.2",
        "--early-stopping",
        "1",
        "--min-delta",
        "10",
    ];
    let mut plain = train(&stop);
    plain.extend(["--history", "h.json", "--output", "last.safetensors"]);
    let o = wgfit(d, &plain);
    assert_ok(&o);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("stopped early"))
        .unwrap_or_else(|| panic!("no stop line in\n{out}"));
    assert!(
        line.starts_with("stopped early at epoch 2: val_loss did not improve; best ")
            && line.ends_with(" at epoch 1"),
        "{line}"
    );
    assert!(out.contains("epochs:        2\n"), "{out}");
    let rows = epochs(&d.join("h.json"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The reported best is epoch 1's val_loss.
    let best: f64 = line
        .split("best ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((best - metric(&rows[0], "val_loss")).abs() < 1e-4, "{line}");
    assert!(
        !d.join("last.backup").exists(),
        "the backup was left behind"
    );

    // With --restore-best-weights the output holds epoch 1's weights: those of a 1-epoch run
    // with the same seed. Without it, epoch 2's: those of a 2-epoch run.
    let mut restore = train(&stop);
    restore.extend([
        "--restore-best-weights",
        "--output",
        "best.safetensors",
        "--keep-checkpoint",
    ]);
    let o = wgfit(d, &restore);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("stopped early at epoch 2: val_loss did not improve"),
        "{}",
        stdout(&o)
    );
    for (epochs, name) in [("1", "one.safetensors"), ("2", "two.safetensors")] {
        let args = train(&[
            "--epochs",
            epochs,
            "--validation-split",
            "0.2",
            "--no-backup",
            "--output",
            name,
        ]);
        assert_ok(&wgfit(d, &args));
    }
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    assert!(read("best.safetensors") != read("last.safetensors"));
    assert!(
        read("best.safetensors") == read("one.safetensors"),
        "--restore-best-weights did not end with epoch 1's weights"
    );
    assert!(
        read("last.safetensors") == read("two.safetensors"),
        "without --restore-best-weights the output is not epoch 2's weights"
    );

    // The kept backup records the stop; a rerun only ends the run, with the same result.
    let o = wgfit(d, &["inspect", "best.backup"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("  callbacks:    EarlyStopping"), "{text}");
    assert!(text.contains("  stopped:      "), "{text}");
    std::fs::remove_file(d.join("best.safetensors")).unwrap();
    let o = wgfit(d, &restore);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("stopped early at epoch 2: val_loss did not improve"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("epochs:        2\n"), "{}", stdout(&o));
    assert!(
        read("best.safetensors") == read("one.safetensors"),
        "a rerun on the stopped backup lost the best weights"
    );
}

#[test]
fn checkpoint_writes_one_file_per_epoch_and_the_last_is_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "3",
            "--checkpoint",
            "ck/w-{epoch:02d}.safetensors",
        ]),
    );
    assert_ok(&o);
    let ck = d.join("ck");
    assert_eq!(
        names(&ck),
        ["w-01.safetensors", "w-02.safetensors", "w-03.safetensors"]
    );
    let output = tensors(&d.join("wgfit-model.safetensors"));
    assert!(!output.is_empty());
    assert_eq!(tensors(&ck.join("w-03.safetensors")), output);
    assert_ne!(tensors(&ck.join("w-02.safetensors")), output);
    assert_ne!(
        tensors(&ck.join("w-01.safetensors")),
        tensors(&ck.join("w-02.safetensors"))
    );

    // A metric in the name, formatted as Python would.
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "2",
            "--no-backup",
            "--checkpoint",
            "m/{epoch}-{loss:.3f}.safetensors",
            "--history",
            "m.json",
        ]),
    );
    assert_ok(&o);
    let rows = epochs(&d.join("m.json"));
    let expected: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}-{:.3}.safetensors", i + 1, metric(r, "loss")))
        .collect();
    assert_eq!(names(&d.join("m")), expected);
}

#[test]
fn save_best_only_and_reduce_lr_on_plateau_follow_the_monitored_loss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A learning rate this high makes the training loss rise after epoch 1, so some epochs
    // do not improve: those save no checkpoint and halve the rate (down to --min-lr).
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "5",
            "--no-backup",
            "--lr",
            "0.5",
            "--monitor",
            "loss",
            "--checkpoint",
            "ck/w-{epoch:02d}.safetensors",
            "--save-best-only",
            "--reduce-lr-on-plateau",
            "0.5",
            "--plateau-patience",
            "1",
            "--min-lr",
            "0.2",
            "--history",
            "h.json",
        ]),
    );
    assert_ok(&o);
    let rows = epochs(&d.join("h.json"));
    assert_eq!(rows.len(), 5);
    let losses: Vec<f64> = rows.iter().map(|r| metric(r, "loss")).collect();
    let rates: Vec<f64> = rows.iter().map(|r| metric(r, "learning_rate")).collect();

    // ModelCheckpoint(save_best_only): saved when the loss beats the best so far.
    let mut best = f64::INFINITY;
    let mut saved = Vec::new();
    for (i, &loss) in losses.iter().enumerate() {
        if loss < best {
            best = loss;
            saved.push(format!("w-{:02}.safetensors", i + 1));
        }
    }
    assert!(
        saved.len() < losses.len(),
        "every epoch improved ({losses:?}): the test no longer tests --save-best-only"
    );
    assert_eq!(names(&d.join("ck")), saved, "losses {losses:?}");

    // ReduceLROnPlateau(factor 0.5, patience 1, min_delta 1e-4, min_lr 0.2): the rate an
    // epoch logs is the one its updates used, so a reduction shows in the next epoch's.
    let mut expected = vec![f64::from(0.5f32)];
    let mut best = f64::INFINITY;
    for &loss in &losses[..losses.len() - 1] {
        let lr = *expected.last().unwrap();
        if loss + 1e-4 < best {
            best = loss;
            expected.push(lr);
        } else if lr > f64::from(0.2f32) {
            expected.push(f64::from((lr * 0.5).max(0.2) as f32));
        } else {
            expected.push(lr);
        }
    }
    assert_eq!(rates, expected, "losses {losses:?}");
    assert!(
        rates.contains(&f64::from(0.25f32)) && rates.contains(&f64::from(0.2f32)),
        "the rate was not halved and then held at --min-lr: {rates:?} (losses {losses:?})"
    );
}

#[test]
fn bad_checkpoint_pattern_and_monitor_without_validation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "2",
            "--no-backup",
            "--checkpoint",
            "ck/{nope}.safetensors",
        ]),
    );
    // A bad value of a flag: a usage error, before any training.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("wgfit: error: --checkpoint"), "{err}");
    assert!(err.contains("`nope`"), "{err}");
    assert!(!d.join("wgfit-model.safetensors").exists());

    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "2",
            "--monitor",
            "val_loss",
            "--early-stopping",
            "2",
        ]),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--monitor val_loss needs validation data"),
        "{err}"
    );
    // Refused before anything was trained or written.
    assert!(!d.join("wgfit-model.backup").exists());
    assert!(!d.join("wgfit-model.safetensors").exists());

    // The default monitor without validation data is `loss`, which works.
    let o = wgfit(
        d,
        &train(&["--epochs", "1", "--no-backup", "--early-stopping", "2"]),
    );
    assert_ok(&o);

    for args in [
        &["--reduce-lr-on-plateau", "1.5"][..],
        &["--min-delta", "0.1"][..],
        &["--save-best-only"][..],
        &["--csv-append"][..],
    ] {
        let mut all = train(&["--epochs", "1", "--no-backup"]);
        all.extend_from_slice(args);
        let o = wgfit(d, &all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn csv_log_is_keras_csvlogger_format_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |extra: &[&str]| {
        let mut args = train(&[
            "--epochs",
            "2",
            "--no-backup",
            "--csv-log",
            "log.csv",
            "--history",
            "h.json",
        ]);
        args.extend_from_slice(extra);
        assert_ok(&wgfit(d, &args));
    };
    run(&[]);
    let lines = csv_lines(&d.join("log.csv"));
    assert_eq!(lines[0], "epoch,accuracy,learning_rate,loss", "{lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    let rows = epochs(&d.join("h.json"));
    for (i, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "{line}");
        assert_eq!(fields[0], i.to_string(), "{line}");
        // Python's repr of the f32 rate widened to a double.
        assert_eq!(fields[2], "0.10000000149011612", "{line}");
        for (field, name) in fields[1..]
            .iter()
            .zip(["accuracy", "learning_rate", "loss"])
        {
            let v: f64 = field
                .parse()
                .unwrap_or_else(|_| panic!("{field:?} in {line}"));
            assert_eq!(v, metric(&rows[i], name), "{name} in {line}");
        }
    }
    let first = std::fs::read(d.join("log.csv")).unwrap();

    // --csv-append keeps what is there and adds rows, without a second header.
    run(&["--csv-append"]);
    run(&["--csv-append"]);
    let text = std::fs::read(d.join("log.csv")).unwrap();
    assert!(text.starts_with(&first));
    let lines = csv_lines(&d.join("log.csv"));
    assert_eq!(lines.len(), 1 + 3 * 2, "{lines:?}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("epoch")).count(), 1);
    let epochs: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["0", "1", "0", "1", "0", "1"]);
    // The same seed gives the same rows.
    assert_eq!(lines[1..3], lines[3..5]);

    // Without --csv-append the file starts over.
    run(&[]);
    assert_eq!(std::fs::read(d.join("log.csv")).unwrap(), first);

    // --csv-append to a file that is not there yet writes the header.
    let args = train(&[
        "--epochs",
        "1",
        "--no-backup",
        "--csv-log",
        "new.csv",
        "--csv-append",
    ]);
    assert_ok(&wgfit(d, &args));
    let lines = csv_lines(&d.join("new.csv"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "epoch,accuracy,learning_rate,loss");
}
