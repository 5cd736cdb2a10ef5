//! `wgfit train` with validation data and `--plot`, then `wgfit plot`; and a run with every
//! callback file preempted by SIGTERM and rerun, whose files end byte-identical to an
//! uninterrupted run's. Through the real binary on the bundled digits.

mod common;

use std::time::{Duration, Instant};

use common::cli::{assert_ok, spawn, stderr, stdout, wgfit};
use common::cli_run::*;

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
