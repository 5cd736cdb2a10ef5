//! The callback flags of `wgfit train` (early stopping, checkpoints, learning-rate plateaus,
//! CSV log, plot, validation data) and `wgfit plot`, through the real binary on the bundled
//! digits.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cli::{assert_ok, spawn, stderr, stdout, wgfit};
use serde_json::Value;

/// `wgfit train` of a small, fast model, silent but for the summary, followed by `extra`.
fn train<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--layers", "16,10", "--verbose", "0"];
    args.extend_from_slice(extra);
    args
}

/// A `--history` JSON file.
fn json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The epoch rows of a `--history` JSON file.
fn epochs(path: &Path) -> Vec<Value> {
    json(path)["epochs"]
        .as_array()
        .expect("an epochs array")
        .clone()
}

/// The kinds of the events of a `--history` JSON file, in order.
fn event_kinds(path: &Path) -> Vec<String> {
    json(path)["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| e["kind"].as_str().expect("a kind").to_string())
        .collect()
}

/// A metric of one epoch row.
fn metric(row: &Value, name: &str) -> f64 {
    row[name]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{name}` in {row}"))
}

/// The tensors of a safetensors file by name, as raw bits (metadata ignored).
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out: Vec<_> = wgfit::checkpoint::read_tensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|t| {
            (
                t.name,
                t.shape,
                t.data.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The file names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The lines of a Keras CSVLogger file, each checked to end in `\r\n`.
fn csv_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with("\r\n"), "{text:?}");
    let lines: Vec<String> = text
        .strip_suffix("\r\n")
        .unwrap()
        .split("\r\n")
        .map(str::to_string)
        .collect();
    assert!(
        lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')),
        "a line not ended by \\r\\n in {text:?}"
    );
    lines
}

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
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("wgfit: error:"), "{err}");
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

/// Data rows in the bundled digits' format: 64 pixel values 0..16, then the label.
fn digits_like_csv(rows: usize) -> String {
    let mut state = 2024u64;
    let mut text = String::new();
    for i in 0..rows {
        let mut fields: Vec<String> = (0..64)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % 17).to_string()
            })
            .collect();
        fields.push((i % 10).to_string());
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

#[test]
fn validation_data_freq_and_batch_size_then_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("val.csv"), digits_like_csv(50)).unwrap();
    let base = train(&[
        "--epochs",
        "4",
        "--no-backup",
        "--validation-data",
        "val.csv",
        "--validation-freq",
        "2",
    ]);
    let mut args = base.clone();
    args.extend(["--history", "h.json", "--csv-log", "log.csv"]);
    let o = wgfit(d, &args);
    assert_ok(&o);
    assert!(stdout(&o).contains("val_loss:"), "{}", stdout(&o));
    let rows = epochs(&d.join("h.json"));
    assert_eq!(rows.len(), 4);
    for (i, row) in rows.iter().enumerate() {
        // Keras validates when (epoch + 1) % validation_freq == 0: epochs 1 and 3 (0-based).
        let validated = i % 2 == 1;
        for key in ["val_loss", "val_accuracy"] {
            assert_eq!(row[key].is_f64(), validated, "{key} in epoch {i}: {row}");
        }
        assert!(row["loss"].is_f64(), "{row}");
    }
    // The CSV log names the val_ columns from the start and fills unvalidated epochs with NA.
    let lines = csv_lines(&d.join("log.csv"));
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "val_loss").unwrap();
    let cell = |row: usize| lines[row + 1].split(',').nth(col).unwrap().to_string();
    assert_eq!(cell(0), "NA", "{lines:?}");
    assert_eq!(
        cell(3).parse::<f64>().unwrap(),
        metric(&rows[3], "val_loss"),
        "{lines:?}"
    );

    // The validation file is scaled as the bundled digits are: the last val_loss is the loss
    // `wgfit evaluate` gives the output on that file scaled by 1/16.
    let o = wgfit(
        d,
        &[
            "evaluate",
            "--weights",
            "wgfit-model.safetensors",
            "--data",
            "val.csv",
            "--scale",
            "0.0625",
        ],
    );
    assert_ok(&o);
    let evaluated = common::cli::summary_value(&stdout(&o), "loss");
    let last = metric(&rows[3], "val_loss");
    assert!(
        (evaluated - last).abs() < 1e-4,
        "evaluate: {evaluated}, history: {last}"
    );

    // Another --validation-batch-size gives the same losses (up to rounding of the sums).
    let mut args = base.clone();
    args.extend([
        "--validation-batch-size",
        "7",
        "--history",
        "h7.json",
        "--output",
        "o7.safetensors",
    ]);
    assert_ok(&wgfit(d, &args));
    let rows7 = epochs(&d.join("h7.json"));
    for i in [1, 3] {
        let (a, b) = (metric(&rows[i], "val_loss"), metric(&rows7[i], "val_loss"));
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        assert_eq!(
            metric(&rows[i], "val_accuracy"),
            metric(&rows7[i], "val_accuracy")
        );
    }

    // `wgfit plot`: a loss and an accuracy panel, each with its training and validation
    // series (the learning rate has no panel of its own).
    let o = wgfit(d, &["plot", "h.json", "-o", "curves.svg"]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("wrote curves.svg: 2 panels, 4 series, 0 resumes"),
        "{}",
        stdout(&o)
    );
    let svg = std::fs::read_to_string(d.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    assert_eq!(svg.matches("class=\"wgfit-panel\"").count(), 2, "{svg}");
    let loss = svg.find("data-metric=\"loss\"").expect("a loss panel");
    let accuracy = svg
        .find("data-metric=\"accuracy\"")
        .expect("an accuracy panel");
    assert!(loss < accuracy, "loss is drawn first");
    for name in ["loss", "val_loss", "accuracy", "val_accuracy"] {
        assert!(
            svg.contains(&format!("class=\"wgfit-series\" data-name=\"{name}\"")),
            "no series {name}"
        );
    }
    assert!(!svg.contains("data-metric=\"learning_rate\""));
    assert!(!svg.contains("class=\"wgfit-mark\""), "no run events here");
}

/// The command of the preemption test: every file-writing callback at once.
const RESUMABLE: &[&str] = &[
    "train",
    "--layers",
    "16,10",
    "--verbose",
    "0",
    "--epochs",
    "16",
    "--validation-split",
    "0.2",
    "--save-freq",
    "1",
    "--csv-log",
    "log.csv",
    "--history",
    "h.json",
    "--plot",
    "c.svg",
    "--checkpoint",
    "ck/w-{epoch:02d}.safetensors",
];

#[test]
fn sigterm_then_rerun_writes_every_file_as_an_uninterrupted_run() {
    let reference = tempfile::tempdir().unwrap();
    let resumed = tempfile::tempdir().unwrap();
    let (r, d) = (reference.path(), resumed.path());

    let mut child = spawn(d, RESUMABLE);
    // Preempted once the CSV log holds a row: after epoch 1, in the middle of the run.
    let log = d.join("log.csv");
    let start = Instant::now();
    loop {
        let rows = std::fs::read(&log)
            .map(|b| b.windows(2).filter(|w| w == b"\r\n").count())
            .unwrap_or(0);
        if rows >= 2 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("wgfit ended ({status}) before the first epoch was logged");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no CSV row");
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill(2) on the child's pid, which is not reaped until wait below.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(143),
        "the run was not preempted (did it finish first?)\nstderr:\n{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("preempted by signal 15"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("wgfit-model.safetensors").exists());
    let done = csv_lines(&log).len() - 1;
    assert!(
        (1..16).contains(&done),
        "{done} epochs logged at the preemption"
    );

    // The backup's timeline: the start, then the preemption.
    let i = wgfit(d, &["inspect", "wgfit-model.backup"]);
    assert_eq!(i.status.code(), Some(0), "{}", stdout(&i));
    let text = stdout(&i);
    let events: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "events:")
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(events, ["start", "preempted"], "{text}");
    assert!(text.contains("CSVLogger"), "{text}");
    assert!(text.contains("ModelCheckpoint"), "{text}");

    let o = wgfit(d, RESUMABLE);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("resuming from the backup"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("wgfit-model.backup").exists());
    assert_ok(&wgfit(r, RESUMABLE));

    let same = |name: &str| {
        let a = std::fs::read(r.join(name)).unwrap();
        let b = std::fs::read(d.join(name)).unwrap();
        assert!(a == b, "{name} differs from the uninterrupted run's");
    };
    same("log.csv");
    same("wgfit-model.safetensors");
    let files = names(&r.join("ck"));
    assert_eq!(files.len(), 16, "{files:?}");
    assert_eq!(names(&d.join("ck")), files);
    for f in &files {
        same(&format!("ck/{f}"));
    }
    assert_eq!(csv_lines(&log).len(), 17);

    // The history holds each epoch once, as the reference does, and the run's events.
    assert_eq!(epochs(&d.join("h.json")), epochs(&r.join("h.json")));
    assert_eq!(
        event_kinds(&d.join("h.json")),
        ["start", "preempted", "resume"]
    );
    assert_eq!(event_kinds(&r.join("h.json")), ["start"]);
    let events = json(&d.join("h.json"))["events"].clone();
    assert_eq!(
        events[1]["global_step"], events[2]["global_step"],
        "{events}"
    );

    // The picture marks where the run was preempted and resumed.
    let svg = std::fs::read_to_string(d.join("c.svg")).unwrap();
    assert!(svg.contains("data-kind=\"resumed\""), "no resume mark");
    assert!(
        svg.contains("data-kind=\"preempted\""),
        "no preemption mark"
    );
    let svg = std::fs::read_to_string(r.join("c.svg")).unwrap();
    assert!(!svg.contains("data-kind=\"resumed\""));
}
