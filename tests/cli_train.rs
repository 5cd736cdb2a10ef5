//! `wgfit train` (learning, usage and data errors, history) and the informational commands,
//! through the real binary.

mod common;

use common::cli::{assert_ok, stderr, stdout, summary_value, wgfit};

#[test]
fn default_train_on_digits_reaches_high_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(dir.path(), &["train", "--epochs", "5"]);
    assert_ok(&o);
    let out = stdout(&o);
    // Not a terminal: one line per epoch, then the summary.
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Epoch ")).count(),
        5,
        "{out}"
    );
    assert!(out.contains("Epoch 5/5"), "{out}");
    assert_eq!(summary_value(&out, "epochs"), 5.0);
    let accuracy = summary_value(&out, "accuracy");
    assert!(
        accuracy >= 0.95,
        "accuracy {accuracy} after 5 epochs\n{out}"
    );
    assert!(summary_value(&out, "loss") < 0.2, "{out}");
    assert!(
        out.contains("output:        wgfit-model.safetensors"),
        "{out}"
    );
    assert!(out.contains("adapter:"), "{out}");
    assert!(dir.path().join("wgfit-model.safetensors").is_file());
    // The backup is removed once the output is written.
    assert!(!dir.path().join("wgfit-model.backup").exists());

    // --verbose 0: nothing but the summary on stdout.
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--output",
            "q.safetensors",
        ],
    );
    assert_ok(&o);
    let out = stdout(&o);
    assert!(!out.contains("Epoch"), "{out}");
    assert!(out.starts_with("epochs:"), "{out}");
}

#[test]
fn usage_and_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(dir.path(), &["train", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));
    let o = wgfit(dir.path(), &["train", "--save-freq", "often"]);
    assert_eq!(o.status.code(), Some(2));

    // A --data that is not there is a bad value of the flag.
    let o = wgfit(dir.path(), &["train", "--data", "nope.csv"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("wgfit: error: --data nope.csv: does not exist"),
        "{err}"
    );

    std::fs::write(dir.path().join("bad.csv"), "a,b,label\n1,2,0\n3,x,1\n").unwrap();
    let o = wgfit(dir.path(), &["train", "--data", "bad.csv"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("bad.csv: row 3, column 2: not a number"),
        "{err}"
    );

    let o = wgfit(dir.path(), &["train", "--layers", "16,5"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("out of range: the model has 5 outputs, so labels must be 0 to 4"),
        "{err}"
    );
    assert!(
        err.contains("use --layers ending in 10, e.g. --layers 16,10"),
        "{err}"
    );
    // Nothing was trained or written.
    assert!(!dir.path().join("wgfit-model.safetensors").exists());
    assert!(!dir.path().join("wgfit-model.backup").exists());

    let o = wgfit(dir.path(), &["train", "--history", "h.txt"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(".csv or .json"), "{}", stderr(&o));
}

#[test]
fn history_as_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--validation-split",
        "0.2",
        "--no-backup",
    ];
    let mut csv_args = args.to_vec();
    csv_args.extend(["--history", "h.csv"]);
    let o = wgfit(dir.path(), &csv_args);
    assert_ok(&o);
    assert!(stdout(&o).contains("val_accuracy:"), "{}", stdout(&o));
    let csv = std::fs::read_to_string(dir.path().join("h.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,loss,accuracy,learning_rate,val_loss,val_accuracy"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with("0,") && lines[2].starts_with("1,"),
        "{csv}"
    );
    assert!(
        lines[2]
            .split(',')
            .skip(1)
            .all(|v| v.parse::<f64>().is_ok()),
        "{csv}"
    );

    let mut json_args = args.to_vec();
    json_args.extend(["--history", "h.json"]);
    assert_ok(&wgfit(dir.path(), &json_args));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("h.json")).unwrap()).unwrap();
    let rows = json["epochs"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // Events (starts, resumes) are the backup's: a run without one records none.
    assert_eq!(json["events"], serde_json::json!([]), "{json}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["epoch"], i);
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert!(row[key].is_f64(), "{key} in {row}");
        }
        // The learning rate of each epoch (the CLI's SGD default, no schedule).
        assert_eq!(
            row["learning_rate"].as_f64(),
            Some(f64::from(0.1f32)),
            "{row}"
        );
    }
    // The same run gives the same metrics in both files.
    let csv_loss: f64 = lines[2].split(',').nth(1).unwrap().parse().unwrap();
    assert_eq!(rows[1]["loss"].as_f64().unwrap(), csv_loss);
}

#[test]
fn devices_version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(dir.path(), &["devices"]);
    assert_ok(&o);
    let out = stdout(&o);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("* ")).count(),
        1,
        "{out}"
    );

    let o = wgfit(dir.path(), &[]);
    assert_ok(&o);
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
    let o = wgfit(dir.path(), &["--version"]);
    assert_ok(&o);
    assert_eq!(
        stdout(&o).trim(),
        format!("wgfit {}", env!("CARGO_PKG_VERSION"))
    );

    let o = wgfit(dir.path(), &["--help"]);
    assert_ok(&o);
    for cmd in ["train", "inspect", "evaluate", "predict", "devices"] {
        assert!(
            stdout(&o).contains(cmd),
            "{cmd} missing from\n{}",
            stdout(&o)
        );
    }
    for cmd in ["train", "inspect", "evaluate", "predict", "devices"] {
        let o = wgfit(dir.path(), &[cmd, "--help"]);
        assert_ok(&o);
        assert!(
            stdout(&o).contains("Example"),
            "no example in `{cmd} --help`"
        );
    }
}

#[test]
fn a_headless_run_prints_no_errors_that_are_not_wgfits() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(common::cli::BIN)
        .args(["train", "--epochs", "1", "--verbose", "0", "--no-backup"])
        .current_dir(dir.path())
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("error"), "stderr:\n{err}");
}

#[test]
fn optimizers_and_schedules_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "3",
            "--verbose",
            "0",
            "--optimizer",
            "adamw",
            "--lr",
            "0.01",
            "--lr-schedule",
            "cosine",
            "--decay-steps",
            "150",
            "--warmup-steps",
            "20",
            "--warmup-target",
            "0.02",
        ],
    );
    assert_ok(&o);
    assert!(
        summary_value(&stdout(&o), "accuracy") > 0.8,
        "{}",
        stdout(&o)
    );

    // A flag of another optimizer or schedule is a usage error naming the flags that apply.
    for (args, says) in [
        (
            &["--optimizer", "adam", "--momentum", "0.9"][..],
            "--momentum does not apply to --optimizer adam; its flags are --beta1, --beta2, --epsilon, --amsgrad",
        ),
        (
            &["--optimizer", "sgd", "--rho", "0.8"][..],
            "--rho does not apply to --optimizer sgd; its flags are --momentum, --nesterov",
        ),
        (
            &["--lr-schedule", "exponential", "--decay-steps", "10"][..],
            "--lr-schedule exponential needs --decay-rate",
        ),
        (
            &[
                "--lr-schedule",
                "piecewise",
                "--boundaries",
                "10",
                "--values",
                "0.1",
            ][..],
            "--values 0.1: 1 rates for 1 --boundaries; give one more rate than boundaries",
        ),
    ] {
        let mut all = vec!["train", "--no-backup", "--epochs", "1"];
        all.extend(args);
        let o = wgfit(dir.path(), &all);
        // Every bad flag value is a usage error (the README's exit-status table).
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}
