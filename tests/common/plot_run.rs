//! The run the plot tests draw: six epochs of loss and accuracy (validation too, with a NaN),
//! a learning rate that changes at epoch 3, and its start, resumes and preemption; and that
//! run as each form of history file writes it.

use std::path::{Path, PathBuf};
use wgfit::plot::Curves;
use wgfit::{EpochLogs, EventKind, History, Logs, RunEvent};

/// Batches per epoch of the test run.
pub const STEPS: usize = 12;

pub fn event(kind: EventKind, epoch: usize, step: usize) -> RunEvent {
    RunEvent {
        kind,
        epoch,
        step,
        steps: STEPS,
        global_step: (epoch * STEPS + step) as u64,
        unix_ms: 1_700_000_000_000 + epoch as u64,
    }
}

/// Start, a resume a quarter into epoch 2, and a preemption at the end of epoch 3 followed by
/// its resume.
pub fn events() -> Vec<RunEvent> {
    vec![
        event(EventKind::Start, 0, 0),
        event(EventKind::Resume, 2, 3),
        event(EventKind::Preempted, 4, 0),
        event(EventKind::Resume, 4, 0),
    ]
}

pub const LOSS: [f64; 6] = [1.2, 0.9, 0.7, 0.5, 0.45, 0.42];
pub const VAL_LOSS: [f64; 6] = [1.3, 1.0, f64::NAN, 0.7, 0.66, 0.65];
pub const ACCURACY: [f64; 6] = [0.55, 0.68, 0.75, 0.82, 0.85, 0.86];
pub const VAL_ACCURACY: [f64; 6] = [0.5, 0.62, 0.7, 0.77, 0.8, 0.81];

/// The learning rate of epoch `e`: 0.01, then 0.001 from epoch 3 on (as an f32 logs it).
pub fn learning_rate(e: usize) -> f64 {
    f64::from(if e < 3 { 0.01f32 } else { 0.001f32 })
}

/// Six epochs, `val_loss` NaN in epoch 2.
pub fn history() -> History {
    (0..6)
        .map(|e| EpochLogs {
            epoch: e,
            logs: Logs::from([
                ("loss".to_string(), LOSS[e]),
                ("val_loss".to_string(), VAL_LOSS[e]),
                ("accuracy".to_string(), ACCURACY[e]),
                ("val_accuracy".to_string(), VAL_ACCURACY[e]),
                ("learning_rate".to_string(), learning_rate(e)),
            ]),
        })
        .collect()
}

pub fn curves() -> Curves {
    Curves::from_history(&history(), &events())
}

// ---- the run as files ----

/// Writes a value as JSON does in wgfit's history files.
pub fn json_value(v: f64) -> String {
    if v.is_nan() {
        "\"NaN\"".into()
    } else {
        format!("{v}")
    }
}

pub fn json_rows() -> String {
    let rows: Vec<String> = (0..6)
        .map(|e| {
            format!(
                r#"{{"epoch": {e}, "accuracy": {}, "learning_rate": {}, "loss": {}, "val_accuracy": {}, "val_loss": {}}}"#,
                json_value(ACCURACY[e]),
                json_value(learning_rate(e)),
                json_value(LOSS[e]),
                json_value(VAL_ACCURACY[e]),
                json_value(VAL_LOSS[e]),
            )
        })
        .collect();
    format!("[\n  {}\n]", rows.join(",\n  "))
}

pub fn events_json() -> String {
    serde_json::to_string(&events()).unwrap()
}

/// `wgfit train --history run.csv`: commas, Rust's float text (`NaN`).
pub fn wgfit_csv() -> String {
    let mut s = String::from("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n");
    for e in 0..6 {
        s += &format!(
            "{e},{},{},{},{},{}\n",
            ACCURACY[e],
            learning_rate(e),
            LOSS[e],
            VAL_ACCURACY[e],
            VAL_LOSS[e]
        );
    }
    s
}

/// Keras's CSVLogger with `separator=';'`: Python's float text (`nan`). (Keras writes `NA`
/// for a value missing from the logs, which is not a NaN: the table tests cover it.)
pub fn keras_csv() -> String {
    let mut s = String::from("epoch;accuracy;learning_rate;loss;val_accuracy;val_loss\r\n");
    for e in 0..6 {
        let val_loss = if VAL_LOSS[e].is_nan() {
            "nan".to_string()
        } else {
            format!("{}", VAL_LOSS[e])
        };
        s += &format!(
            "{e};{};{:e};{};{};{val_loss}\r\n",
            ACCURACY[e],
            learning_rate(e),
            LOSS[e],
            VAL_ACCURACY[e]
        );
    }
    s
}

/// A backup directory whose latest.json records the run's events (other fields as a real
/// sidecar has some, which the reader ignores).
pub fn backup_dir(root: &Path) -> PathBuf {
    let dir = root.join("run.backup");
    std::fs::create_dir(&dir).unwrap();
    let sidecar = format!(
        r#"{{"format": "wgfit-backup", "version": 2, "epoch": 4, "step": 0,
            "history": {{"epochs": []}}, "future_field": [1, 2], "events": {}}}"#,
        events_json()
    );
    std::fs::write(dir.join("latest.json"), sidecar).unwrap();
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `f` on a thread of its own and returns its result, or fails the test when it takes
/// longer than `seconds`: a regression that hangs (plotters' tick search on an infinite span)
/// then fails instead of stalling the suite. The stuck thread is left behind; the test
/// process ends with the run.
pub fn bounded<T: Send + 'static>(
    what: &str,
    seconds: u64,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    match result.recv_timeout(std::time::Duration::from_secs(seconds)) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done after {seconds} s, so it hangs")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A history of one metric, `loss`, with the given values at epochs `first..`, as the CSV of
/// `wgfit train --history` writes it.
pub fn loss_csv(first: usize, values: &[f64]) -> String {
    let mut s = String::from("epoch,loss\n");
    for (i, v) in values.iter().enumerate() {
        s += &format!("{},{v:e}\n", first + i);
    }
    s
}
