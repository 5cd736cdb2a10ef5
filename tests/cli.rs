//! The `wgfit` command line, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wgfit");

fn wgfit(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wgfit")
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wgfit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "wgfit failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// The value after `name:` in the summary.
fn summary_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no `{name}:` in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Waits until `path` exists (the child must still run), or panics after a minute.
fn wait_for(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("wgfit ended ({status}) before {} appeared", path.display());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Long enough to be interrupted, with a backup every 5 batches.
const LONG: &[&str] = &[
    "train",
    "--epochs",
    "40",
    "--save-freq",
    "5",
    "--verbose",
    "2",
];

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
fn sigkill_then_rerun_matches_an_uninterrupted_run_byte_for_byte() {
    let reference = tempfile::tempdir().unwrap();
    let resumed = tempfile::tempdir().unwrap();
    let mut child = spawn(resumed.path(), LONG);
    wait_for(
        &resumed.path().join("wgfit-model.backup/latest.json"),
        &mut child,
    );
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it was killed");
    assert!(!resumed.path().join("wgfit-model.safetensors").exists());

    let full = wgfit(reference.path(), LONG);
    assert_ok(&full);

    let o = wgfit(resumed.path(), LONG);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("resuming from the backup"),
        "{}",
        stderr(&o)
    );
    let a = std::fs::read(reference.path().join("wgfit-model.safetensors")).unwrap();
    let b = std::fs::read(resumed.path().join("wgfit-model.safetensors")).unwrap();
    assert!(
        a == b,
        "the resumed run's parameters differ from the uninterrupted run's"
    );
    assert!(!resumed.path().join("wgfit-model.backup").exists());
}

#[test]
fn sigterm_saves_exits_143_and_the_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("wgfit-model.backup");
    let mut child = spawn(dir.path(), LONG);
    wait_for(&backup.join("latest.json"), &mut child);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "stderr:\n{}", stderr(&o));
    assert!(
        stderr(&o).contains("wgfit: error: preempted by signal 15"),
        "{}",
        stderr(&o)
    );

    let i = wgfit(dir.path(), &["inspect", "wgfit-model.backup"]);
    assert_eq!(i.status.code(), Some(0), "{}", stdout(&i));
    assert!(
        stdout(&i).contains("committed: latest.json"),
        "{}",
        stdout(&i)
    );

    let o = wgfit(dir.path(), LONG);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("resuming from the backup"),
        "{}",
        stderr(&o)
    );
    assert_eq!(summary_value(&stdout(&o), "epochs"), 40.0);
    assert!(dir.path().join("wgfit-model.safetensors").is_file());
    assert!(!backup.exists());
}

/// Every file of a directory with its bytes.
fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn inspect_healthy_damaged_and_empty_directories() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "2",
            "--verbose",
            "0",
            "--keep-checkpoint",
            "--backup-dir",
            "bk",
        ],
    );
    assert_ok(&o);
    let bk = dir.path().join("bk");
    assert!(stdout(&o).contains("backup:        bk"), "{}", stdout(&o));

    let before = snapshot_dir(&bk);
    let o = wgfit(dir.path(), &["inspect", "bk"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    for key in [
        "committed: latest.json (epoch 2, step 0, global step 114)",
        "latest.json: verified",
        "global step:  114",
        "previous.json: absent",
        "model:        64->32 relu, 32->10 linear",
        "ckpt-114.safetensors",
        "weights, verified",
    ] {
        assert!(text.contains(key), "no {key:?} in\n{text}");
    }
    let o = wgfit(dir.path(), &["inspect", "--json", "bk"]);
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["usable"], "latest.json");
    assert_eq!(json["sidecars"][0]["state"]["global_step"], 114);
    assert_eq!(snapshot_dir(&bk), before, "inspect changed the directory");

    // Damaged: one byte of the weights flipped.
    let ckpt = bk.join("ckpt-114.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&ckpt, &bytes).unwrap();
    let before = snapshot_dir(&bk);
    let o = wgfit(dir.path(), &["inspect", "bk"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("committed: none"), "{text}");
    assert!(text.contains("latest.json: UNUSABLE"), "{text}");
    assert!(text.contains("NOT verified"), "{text}");
    let o = wgfit(dir.path(), &["inspect", "--json", "bk"]);
    assert_eq!(o.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(json["usable"].is_null());
    assert!(json["sidecars"][0]["error"].is_string());
    assert_eq!(snapshot_dir(&bk), before, "inspect changed the directory");

    // Empty, and missing.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let o = wgfit(dir.path(), &["inspect", "empty"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("committed: none"), "{}", stdout(&o));
    assert!(stdout(&o).contains("latest.json: absent"), "{}", stdout(&o));
    let o = wgfit(dir.path(), &["inspect", "missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wgfit: error:"), "{}", stderr(&o));
}

#[test]
fn usage_and_data_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(dir.path(), &["train", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--no-such-flag"), "{}", stderr(&o));
    let o = wgfit(dir.path(), &["train", "--save-freq", "often"]);
    assert_eq!(o.status.code(), Some(2));

    let o = wgfit(dir.path(), &["train", "--data", "nope.csv"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("wgfit: error: cannot read data file nope.csv"),
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
        err.contains("out of range: the model has 5 outputs"),
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
fn backup_of_another_model_and_locked_backup_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "train",
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--backup-dir",
        "bk",
        "--keep-checkpoint",
    ];
    assert_ok(&wgfit(dir.path(), &base));

    let mut other = base.to_vec();
    other.extend(["--layers", "16,10", "--lr", "0.05"]);
    let o = wgfit(dir.path(), &other);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("wgfit: error: the backup in bk belongs to a different run"),
        "{err}"
    );
    assert!(
        err.contains("layers: backup 64->32 relu, 32->10 linear, now 64->16 relu, 16->10 linear"),
        "{err}"
    );
    assert!(err.contains("optimizer: backup sgd(lr=0.1"), "{err}");
    assert!(err.contains("--discard-mismatched-backup"), "{err}");
    other.push("--discard-mismatched-backup");
    let o = wgfit(dir.path(), &other);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("discarding the backup"),
        "{}",
        stderr(&o)
    );

    // Another process holds the lock.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("bk/.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let o = wgfit(dir.path(), &base);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("wgfit: error: backup directory bk is in use by another run"),
        "{err}"
    );
    assert!(err.contains("--backup-dir"), "{err}");
    drop(lock);
    assert_ok(&wgfit(dir.path(), &other));
}

#[test]
fn evaluate_and_predict_on_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "3",
            "--layers",
            "24,10",
            "--activation",
            "tanh",
            "--verbose",
            "0",
            "--output",
            "m.safetensors",
        ],
    );
    assert_ok(&o);
    let trained = summary_value(&stdout(&o), "accuracy");

    // Widths from the tensor shapes, activation from the file's metadata.
    let o = wgfit(dir.path(), &["evaluate", "--weights", "m.safetensors"]);
    assert_ok(&o);
    let accuracy = summary_value(&stdout(&o), "accuracy");
    assert!(
        accuracy >= 0.9 && accuracy >= trained - 0.05,
        "{accuracy} vs {trained}"
    );
    assert!(summary_value(&stdout(&o), "samples") == 1797.0);
    let o = wgfit(
        dir.path(),
        &[
            "evaluate",
            "--weights",
            "m.safetensors",
            "--layers",
            "24,10",
        ],
    );
    assert_ok(&o);
    let o = wgfit(
        dir.path(),
        &[
            "evaluate",
            "--weights",
            "m.safetensors",
            "--layers",
            "32,10",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));

    let o = wgfit(
        dir.path(),
        &["predict", "--weights", "m.safetensors", "--output", "p.csv"],
    );
    assert_ok(&o);
    let csv = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,class"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1797);
    let first: Vec<f64> = rows[0].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(first.len(), 11);
    assert!((first[..10].iter().sum::<f64>() - 1.0).abs() < 1e-4);

    // A file without a label column: one row per input row.
    let row: Vec<String> = (0..64).map(|i| ((i * 7) % 17).to_string()).collect();
    let text = format!("{0}\n{0}\n{0}\n", row.join(","));
    std::fs::write(dir.path().join("x.csv"), text).unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "predict",
            "--weights",
            "m.safetensors",
            "--data",
            "x.csv",
            "--scale",
            "0.0625",
            "--output",
            "px.csv",
        ],
    );
    assert_ok(&o);
    let csv = std::fs::read_to_string(dir.path().join("px.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
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
    assert_eq!(lines[0], "epoch,loss,accuracy,val_loss,val_accuracy");
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
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["epoch"], i);
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert!(row[key].is_f64(), "{key} in {row}");
        }
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
