//! What `wgfit` prints and writes is true: weights files carry the model they belong to, the
//! summary describes the weights written, a backup past `--epochs` is refused, epochs are
//! 1-based in every message, and `inspect` prints dates and counts as a person reads them.

mod common;

use common::cli::{
    LONG, assert_ok, preempt, spawn, stderr, stdout, summary_value, wait_for, wgfit,
};
use common::cli_run::{epochs, metric, train};
use wgfit::callbacks::format_value;

/// `evaluate`'s loss on the bundled digits.
fn evaluate(dir: &std::path::Path, extra: &[&str]) -> f64 {
    let mut args = vec!["evaluate"];
    args.extend_from_slice(extra);
    let o = wgfit(dir, &args);
    assert_ok(&o);
    summary_value(&stdout(&o), "loss")
}

#[test]
fn a_checkpoint_file_evaluates_as_the_model_that_wrote_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "2",
            "--activation",
            "tanh",
            "--checkpoint",
            "ck-{epoch}.safetensors",
            "--output",
            "m.safetensors",
        ]),
    );
    assert_ok(&o);
    // The last checkpoint holds the output's weights: the same model, the same loss.
    let output = evaluate(d, &["--weights", "m.safetensors"]);
    let checkpoint = evaluate(d, &["--weights", "ck-2.safetensors"]);
    assert_eq!(checkpoint, output);
}

#[test]
fn a_weights_file_without_a_record_is_refused_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "1",
            "--activation",
            "tanh",
            "--output",
            "m.safetensors",
        ]),
    );
    assert_ok(&o);
    let tanh = evaluate(d, &["--weights", "m.safetensors"]);
    // The same tensors with no record of the model.
    let tensors = wgfit::checkpoint::read_tensors(&d.join("m.safetensors")).unwrap();
    wgfit::checkpoint::write_tensors(&d.join("bare.safetensors"), &tensors).unwrap();
    for command in ["evaluate", "predict"] {
        let mut args = vec![command, "--weights", "bare.safetensors"];
        if command == "predict" {
            args.extend(["--output", "p.csv"]);
        }
        let o = wgfit(d, &args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("does not record the model's activation and loss")
                && stderr(&o).contains("pass --activation and --loss"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!d.join("p.csv").exists());
    // Told what the model is, it evaluates as the recorded file does.
    let told = evaluate(
        d,
        &[
            "--weights",
            "bare.safetensors",
            "--activation",
            "tanh",
            "--loss",
            "crossentropy",
        ],
    );
    assert_eq!(told, tanh);
    // A flag that contradicts the record is refused.
    let o = wgfit(
        d,
        &[
            "evaluate",
            "--weights",
            "m.safetensors",
            "--activation",
            "relu",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--activation relu contradicts --weights m.safetensors")
            && stderr(&o).contains("tanh, linear"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fewer_epochs_than_the_backup_holds_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wgfit(d, &train(&["--epochs", "3", "--keep-checkpoint"]));
    assert_ok(&o);
    let output = std::fs::read(d.join("wgfit-model.safetensors")).unwrap();
    let o = wgfit(d, &train(&["--epochs", "2", "--keep-checkpoint"]));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the backup holds 3 finished epochs, past epoch 2")
            && err.contains("--epochs 3"),
        "{err}"
    );
    assert!(!err.contains("resuming"), "{err}");
    assert!(!stdout(&o).contains("epochs:"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read(d.join("wgfit-model.safetensors")).unwrap(),
        output,
        "the output was rewritten"
    );
    // The same epochs again: nothing is left to train, and it says so.
    let o = wgfit(d, &train(&["--epochs", "3", "--keep-checkpoint"]));
    assert_ok(&o);
    assert!(
        stderr(&o).contains("the backup holds all 3 epochs: nothing left to train"),
        "{}",
        stderr(&o)
    );
    assert_eq!(summary_value(&stdout(&o), "epochs"), 3.0);
}

#[test]
fn after_restore_best_weights_the_summary_shows_the_restored_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Nothing improves by 10: epoch 1 is the best, and patience 1 stops the run at epoch 2.
    let o = wgfit(
        d,
        &train(&[
            "--epochs",
            "5",
            "--validation-split",
            "0.2",
            "--early-stopping",
            "1",
            "--min-delta",
            "10",
            "--restore-best-weights",
            "--history",
            "h.json",
        ]),
    );
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("epochs:        2\n"), "{out}");
    assert!(
        out.contains(
            "weights:       epoch 1 (the best val_loss, put back by --restore-best-weights)"
        ),
        "{out}"
    );
    let rows = epochs(&d.join("h.json"));
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        let shown = summary_value(&out, key);
        assert_eq!(
            format_value(shown),
            format_value(metric(&rows[0], key)),
            "{key}: {out}"
        );
    }
    assert!(
        format_value(metric(&rows[0], "val_loss")) != format_value(metric(&rows[1], "val_loss")),
        "epochs 1 and 2 cannot be told apart: {rows:?}"
    );
}

/// The epoch and batch in "state saved in epoch E after batch B" (or "at the end of epoch E":
/// batch 0 of epoch E + 1), as the resume line would print them.
fn saved_position(stderr: &str) -> (usize, usize) {
    let words = stderr
        .split("state saved ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or_else(|| panic!("no saved position in {stderr}"));
    let numbers: Vec<usize> = words
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [e] if words.starts_with("at the end of epoch") => (e + 1, 0),
        [e, b] if words.starts_with("in epoch") => (e, b),
        _ => panic!("{words}"),
    }
}

#[test]
fn a_preemption_is_reported_in_the_epochs_the_resume_counts_and_not_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut child = spawn(d, LONG);
    wait_for(
        &d.join("wgfit-model.backup").join("latest.json"),
        &mut child,
    );
    let o = preempt(child);
    let err = stderr(&o);
    assert!(err.contains("wgfit: preempted by signal 15"), "{err}");
    assert!(!err.contains("wgfit: error"), "{err}");
    let (epoch, batch) = saved_position(&err);

    let o = wgfit(d, LONG);
    assert_ok(&o);
    let resumed = format!("resuming from the backup: epoch {epoch}/40, batch {batch}/57");
    assert!(stderr(&o).contains(&resumed), "{err}\n{}", stderr(&o));
    // The resumed epoch's line says which of its batches it timed.
    let first = if batch == 0 {
        format!("Epoch {epoch}/40  57 batches  ")
    } else {
        format!("Epoch {epoch}/40  batches {}-57 of 57  ", batch + 1)
    };
    assert!(stdout(&o).contains(&first), "{first:?} in\n{}", stdout(&o));
}

#[test]
fn counts_are_in_the_right_number() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The bundled digits are 1797 rows: one batch an epoch.
    let o = wgfit(
        d,
        &[
            "train",
            "--layers",
            "16,10",
            "--epochs",
            "1",
            "--batch-size",
            "1797",
            "--verbose",
            "2",
            "--no-backup",
        ],
    );
    assert_ok(&o);
    assert!(
        stdout(&o).contains("Epoch 1/1  1 batch  "),
        "{}",
        stdout(&o)
    );
    let row: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
    std::fs::write(d.join("x.csv"), format!("{}\n", row.join(","))).unwrap();
    let o = wgfit(
        d,
        &[
            "predict",
            "--weights",
            "wgfit-model.safetensors",
            "--data",
            "x.csv",
            "--output",
            "p.csv",
        ],
    );
    assert_ok(&o);
    assert!(
        stdout(&o).contains("wrote 1 row of 10 outputs to p.csv"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn inspect_prints_dates_counts_and_1_based_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = wgfit(d, &train(&["--epochs", "2", "--keep-checkpoint"]));
    assert_ok(&o);
    let o = wgfit(d, &["inspect", "wgfit-model.backup"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    for key in [
        "resumes from latest.json (at the end of epoch 2, global step 114)",
        "  epoch:        2 finished (the next is epoch 3)",
        "  step:         0 (batches done in epoch 3)",
        "  skipped:      0 save points superseded",
        "    start                      epoch 1 step 0/57",
    ] {
        assert!(text.contains(key), "no {key:?} in\n{text}");
    }
    assert!(!text.contains("Unix epoch"), "{text}");
    let saved = text
        .lines()
        .find_map(|l| l.strip_prefix("  saved:        "))
        .unwrap_or_else(|| panic!("{text}"));
    // `2026-12-05 04:58:07 UTC (3 s ago)`
    let (date, ago) = saved
        .split_once(" UTC (")
        .unwrap_or_else(|| panic!("{saved}"));
    let shape: String = date
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99 99:99:99", "{saved}");
    assert!(ago.ends_with(" ago)"), "{saved}");
    // The JSON report keeps its machine-readable fields.
    let o = wgfit(d, &["inspect", "--json", "wgfit-model.backup"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["sidecars"][0]["state"]["epoch"], 2);
    assert!(json["sidecars"][0]["state"]["saved_at_unix_ms"].is_u64());
}

#[test]
fn a_divergence_names_the_epoch_and_batch_as_the_progress_lines_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let diverging = ["--epochs", "2", "--lr", "1e30", "--loss", "mse"];
    let o = wgfit(d, &train(&diverging));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("became NaN in epoch 1 (by global step 57)"),
        "{}",
        stderr(&o)
    );
    let mut args = train(&diverging);
    args.push("--terminate-on-nan");
    let o = wgfit(d, &args);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    // In the first epoch the n-th batch (1-based) ends at global step n.
    let numbers: Vec<u64> = err
        .split("the loss of batch ")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"))
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .take(3)
        .collect();
    assert!(err.contains("became NaN in epoch 1 ("), "{err}");
    assert_eq!(numbers[1], 1, "{err}");
    assert_eq!(numbers[0], numbers[2], "batch and global step: {err}");
}

#[test]
fn a_small_learning_rate_is_not_printed_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--layers",
            "16,10",
            "--epochs",
            "1",
            "--optimizer",
            "adam",
            "--lr",
            "0.00001",
            "--verbose",
            "2",
            "--no-backup",
        ],
    );
    assert_ok(&o);
    let out = stdout(&o);
    assert!(out.contains("  learning_rate 1.0000e-5\n"), "{out}");
    assert!(out.contains("learning_rate: 1.0000e-5\n"), "{out}");
    assert_eq!(summary_value(&out, "learning_rate"), 1e-5);
}

#[test]
fn evaluate_and_predict_scale_inputs_as_training_did() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 120 rows of 4 features in 0..16 whose label is the largest of the first three.
    let mut csv = String::new();
    for i in 0..120u32 {
        let f: Vec<u32> = (0..4).map(|j| (i * 7 + j * 5 + i * j) % 17).collect();
        let label = (0..3).max_by_key(|&j| (f[j], j)).unwrap();
        csv.push_str(&format!("{},{},{},{},{label}\n", f[0], f[1], f[2], f[3]));
    }
    std::fs::write(d.join("d.csv"), csv).unwrap();
    let o = wgfit(
        d,
        &train(&[
            "--data",
            "d.csv",
            "--scale",
            "0.0625",
            "--layers",
            "8,3",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--checkpoint",
            "ck-{epoch}.safetensors",
            "--output",
            "m.safetensors",
        ]),
    );
    assert_ok(&o);
    let told = evaluate(
        d,
        &[
            "--weights",
            "m.safetensors",
            "--data",
            "d.csv",
            "--scale",
            "0.0625",
        ],
    );
    let unscaled = evaluate(
        d,
        &[
            "--weights",
            "m.safetensors",
            "--data",
            "d.csv",
            "--scale",
            "1",
        ],
    );
    assert!(told != unscaled, "the scale makes no difference: {told}");
    for weights in ["m.safetensors", "ck-3.safetensors"] {
        let recorded = evaluate(d, &["--weights", weights, "--data", "d.csv"]);
        assert_eq!(recorded, told, "{weights}");
    }
    // predict: the same inputs, scaled as recorded or as told, give the same rows.
    let predict = |extra: &[&str], out: &str| {
        let mut args = vec![
            "predict",
            "--weights",
            "m.safetensors",
            "--data",
            "d.csv",
            "--output",
            out,
        ];
        args.extend_from_slice(extra);
        assert_ok(&wgfit(d, &args));
        std::fs::read_to_string(d.join(out)).unwrap()
    };
    assert_eq!(
        predict(&[], "a.csv"),
        predict(&["--scale", "0.0625"], "b.csv")
    );
}
