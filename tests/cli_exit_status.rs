//! The README's exit-status table, flag by flag: every flag of every subcommand, as `--help`
//! lists them (so that a new flag without a case here fails the test), given a bad value, is
//! a usage error (exit 2) whose message names the flag, and no training starts (no backup or
//! model is written). And a reader
//! that closes wgfit's stdout or stderr ends it by SIGPIPE, never a panic.

mod common;

use common::cli::{BIN, stderr, wgfit};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// `wgfit export` of weights `w.safetensors` (which the test does not make: each case is
/// refused before they are read) to `output` with `more`.
macro_rules! export {
    ($flag:literal, $output:literal $(, $more:literal)*) => {
        ("export", $flag, &["w.safetensors", "--output", $output $(, $more)*])
    };
}

/// Bad values for each flag: (subcommand, flag, the arguments after the subcommand). A flag
/// may have several cases: one clap refuses by type, others only wgfit can judge.
const BAD: &[(&str, &str, &[&str])] = &[
    // train: data
    ("train", "--data", &["--data", "nope.csv"]),
    ("train", "--model", &["--model", "nope.json"]),
    ("train", "--model", &["--model", "dir"]),
    ("train", "--model", &["--model", "file.txt"]),
    ("train", "--data", &["--data", ""]),
    ("train", "--scale", &["--scale", "abc"]),
    ("train", "--scale", &["--scale", "NaN"]),
    ("train", "--scale", &["--scale", "0"]),
    (
        "train",
        "--validation-split",
        &["--validation-split", "1.5"],
    ),
    ("train", "--validation-split", &["--validation-split", "0"]),
    (
        "train",
        "--validation-split",
        &["--validation-split", "NaN"],
    ),
    ("train", "--data-on", &["--data-on", "disk"]),
    (
        "train",
        "--validation-data",
        &["--validation-data", "nope.csv"],
    ),
    ("train", "--validation-freq", &["--validation-freq", "0"]),
    (
        "train",
        "--validation-freq",
        &[
            "--validation-split",
            "0.2",
            "--validation-freq",
            "9",
            "--epochs",
            "8",
        ],
    ),
    (
        "train",
        "--validation-batch-size",
        &["--validation-batch-size", "0"],
    ),
    // train: model
    ("train", "--layers", &["--layers", "64,0"]),
    ("train", "--layers", &["--layers", "a"]),
    // A list flag given twice is refused, as any other flag given twice (it joined the lists).
    ("train", "--layers", &["--layers", "4,2", "--layers", "3,2"]),
    (
        "train",
        "--values",
        &[
            "--lr-schedule",
            "piecewise",
            "--boundaries",
            "5",
            "--values",
            "0.1",
            "--values",
            "0.01",
        ],
    ),
    ("train", "--activation", &["--activation", "swish"]),
    ("train", "--loss", &["--loss", "hinge"]),
    ("train", "--init", &["--init", "nope.safetensors"]),
    ("train", "--init", &["--init", "nope.weights.h5"]),
    ("train", "--model", &["--model", "nope.keras"]),
    ("train", "--output-format", &["--output-format", "h5"]),
    // train: optimizer
    ("train", "--optimizer", &["--optimizer", "lbfgs"]),
    ("train", "--lr", &["--lr", "NaN"]),
    ("train", "--lr", &["--lr", "0"]),
    ("train", "--lr", &["--lr=-1"]),
    ("train", "--lr", &["--lr", "inf"]),
    // A negative value after a space is the flag's value, judged by wgfit (clap took `-0`
    // for an unknown flag, naming neither).
    ("train", "--lr", &["--lr", "-0.01"]),
    ("train", "--momentum", &["--momentum", "-0.5"]),
    ("train", "--momentum", &["--momentum", "1.5"]),
    ("train", "--momentum", &["--momentum=-0.1"]),
    ("train", "--nesterov", &["--nesterov=yes"]),
    ("train", "--nesterov", &["--nesterov", "--momentum", "0"]),
    ("train", "--beta1", &["--optimizer", "adam", "--beta1", "1"]),
    (
        "train",
        "--beta2",
        &["--optimizer", "adam", "--beta2", "1.5"],
    ),
    (
        "train",
        "--epsilon",
        &["--optimizer", "adam", "--epsilon", "0"],
    ),
    ("train", "--amsgrad", &["--amsgrad=no"]),
    ("train", "--rho", &["--optimizer", "rmsprop", "--rho", "1"]),
    ("train", "--centered", &["--centered=no"]),
    ("train", "--weight-decay", &["--weight-decay=-1"]),
    ("train", "--weight-decay", &["--weight-decay", "NaN"]),
    (
        "train",
        "--exclude-from-weight-decay",
        &["--exclude-from-weight-decay", "bias"],
    ),
    (
        "train",
        "--exclude-from-weight-decay",
        &[
            "--optimizer",
            "adamw",
            "--exclude-from-weight-decay",
            "bias,",
        ],
    ),
    ("train", "--clipnorm", &["--clipnorm", "0"]),
    ("train", "--global-clipnorm", &["--global-clipnorm", "NaN"]),
    ("train", "--clipvalue", &["--clipvalue=-1"]),
    ("train", "--accumulate", &["--accumulate", "0"]),
    ("train", "--accumulate", &["--accumulate", "100000"]),
    // train: learning-rate schedule
    ("train", "--lr-schedule", &["--lr-schedule", "step"]),
    (
        "train",
        "--decay-steps",
        &[
            "--lr-schedule",
            "exponential",
            "--decay-rate",
            "0.5",
            "--decay-steps",
            "0",
        ],
    ),
    (
        "train",
        "--decay-rate",
        &[
            "--lr-schedule",
            "exponential",
            "--decay-steps",
            "5",
            "--decay-rate",
            "NaN",
        ],
    ),
    ("train", "--staircase", &["--staircase=no"]),
    (
        "train",
        "--end-lr",
        &[
            "--lr-schedule",
            "polynomial",
            "--decay-steps",
            "5",
            "--end-lr=-1",
        ],
    ),
    (
        "train",
        "--power",
        &[
            "--lr-schedule",
            "polynomial",
            "--decay-steps",
            "5",
            "--power",
            "NaN",
        ],
    ),
    (
        "train",
        "--alpha",
        &[
            "--lr-schedule",
            "cosine",
            "--decay-steps",
            "5",
            "--alpha",
            "NaN",
        ],
    ),
    (
        "train",
        "--warmup-steps",
        &[
            "--lr-schedule",
            "cosine",
            "--decay-steps",
            "5",
            "--warmup-target",
            "0.1",
            "--warmup-steps",
            "0",
        ],
    ),
    (
        "train",
        "--warmup-target",
        &[
            "--lr-schedule",
            "cosine",
            "--decay-steps",
            "5",
            "--warmup-steps",
            "2",
            "--warmup-target",
            "inf",
        ],
    ),
    (
        "train",
        "--boundaries",
        &[
            "--lr-schedule",
            "piecewise",
            "--values",
            "0.1,0.2,0.3",
            "--boundaries",
            "5,3",
        ],
    ),
    (
        "train",
        "--values",
        &[
            "--lr-schedule",
            "piecewise",
            "--boundaries",
            "5",
            "--values",
            "0.1",
        ],
    ),
    (
        "train",
        "--values",
        &[
            "--lr-schedule",
            "piecewise",
            "--boundaries",
            "5",
            "--values",
            "0.1,NaN",
        ],
    ),
    // train: loop
    ("train", "--epochs", &["--epochs", "0"]),
    ("train", "--batch-size", &["--batch-size", "0"]),
    ("train", "--seed", &["--seed", "-"]),
    ("train", "--no-shuffle", &["--no-shuffle=yes"]),
    ("train", "--verbose", &["--verbose", "3"]),
    // train: backup
    ("train", "--backup-dir", &["--backup-dir", "file.txt"]),
    ("train", "--no-backup", &["--no-backup=yes"]),
    ("train", "--save-freq", &["--save-freq", "often"]),
    ("train", "--double-checkpoint", &["--double-checkpoint=yes"]),
    ("train", "--keep-checkpoint", &["--keep-checkpoint=yes"]),
    ("train", "--elastic", &["--elastic=yes"]),
    (
        "train",
        "--save-before-preemption",
        &["--save-before-preemption=yes"],
    ),
    (
        "train",
        "--no-save-before-preemption",
        &["--no-save-before-preemption=yes"],
    ),
    (
        "train",
        "--discard-mismatched-backup",
        &["--discard-mismatched-backup=yes"],
    ),
    // train: output
    ("train", "--output", &["--output", "dir"]),
    ("train", "--history", &["--history", "h.txt"]),
    // train: callbacks
    ("train", "--monitor", &["--monitor", "bogus"]),
    ("train", "--early-stopping", &["--early-stopping", "-"]),
    (
        "train",
        "--min-delta",
        &["--early-stopping", "2", "--min-delta", "NaN"],
    ),
    (
        "train",
        "--restore-best-weights",
        &["--restore-best-weights=yes"],
    ),
    ("train", "--checkpoint", &["--checkpoint", "w-{nope}.st"]),
    ("train", "--save-best-only", &["--save-best-only=yes"]),
    (
        "train",
        "--reduce-lr-on-plateau",
        &["--reduce-lr-on-plateau", "1.5"],
    ),
    (
        "train",
        "--plateau-patience",
        &["--reduce-lr-on-plateau", "0.5", "--plateau-patience", "-"],
    ),
    (
        "train",
        "--min-lr",
        &["--reduce-lr-on-plateau", "0.5", "--min-lr=-1"],
    ),
    ("train", "--terminate-on-nan", &["--terminate-on-nan=yes"]),
    ("train", "--csv-log", &["--csv-log", "dir"]),
    ("train", "--csv-append", &["--csv-append=yes"]),
    ("train", "--plot", &["--plot", "dir"]),
    // inspect
    (
        "inspect",
        "--double-checkpoint",
        &["--double-checkpoint=yes"],
    ),
    ("inspect", "--json", &["--json=yes"]),
    // evaluate and predict
    ("evaluate", "--weights", &["--weights", ""]),
    ("evaluate", "--weights", &["--weights", "nope.safetensors"]),
    (
        "evaluate",
        "--data",
        &["--weights", "file.txt", "--data", "nope.csv"],
    ),
    ("evaluate", "--data", &["--data", ""]),
    ("evaluate", "--scale", &["--scale", "abc"]),
    ("evaluate", "--layers", &["--layers", "a"]),
    ("evaluate", "--layers", &["--layers", "4", "--layers", "2"]),
    ("evaluate", "--activation", &["--activation", "swish"]),
    ("evaluate", "--loss", &["--loss", "hinge"]),
    ("evaluate", "--batch-size", &["--batch-size", "-"]),
    (
        "evaluate",
        "--batch-size",
        &["--weights", "file.txt", "--batch-size", "0"],
    ),
    (
        "evaluate",
        "--scale",
        &["--weights", "file.txt", "--scale", "NaN"],
    ),
    ("predict", "--weights", &["--weights", ""]),
    ("predict", "--data", &["--data", ""]),
    ("predict", "--scale", &["--scale", "abc"]),
    ("predict", "--layers", &["--layers", "a"]),
    ("predict", "--activation", &["--activation", "swish"]),
    ("predict", "--loss", &["--loss", "hinge"]),
    ("predict", "--batch-size", &["--batch-size", "-"]),
    (
        "predict",
        "--batch-size",
        &[
            "--weights",
            "file.txt",
            "--output",
            "p.csv",
            "--batch-size",
            "0",
        ],
    ),
    ("predict", "--output", &["--output", ""]),
    (
        "predict",
        "--output",
        &["--weights", "file.txt", "--output", "dir"],
    ),
    (
        "predict",
        "--weights",
        &["--weights", "nope.safetensors", "--output", "p.csv"],
    ),
    // plot and convert
    ("plot", "--output", &["--output", ""]),
    ("plot", "--output", &["file.txt", "--output", "dir"]),
    (
        "plot",
        "--width",
        &["h.csv", "--output", "p.svg", "--width", "0"],
    ),
    (
        "plot",
        "--height-per-panel",
        &["h.csv", "--output", "p.svg", "--height-per-panel", "0"],
    ),
    ("plot", "--backup-dir", &["--backup-dir", ""]),
    ("plot", "--width", &["--width", "wide"]),
    (
        "plot",
        "--height-per-panel",
        &["--height-per-panel", "tall"],
    ),
    ("convert", "--scale", &["--scale", "abc"]),
    (
        "convert",
        "--scale",
        &["h.csv", "o.safetensors", "--scale", "NaN"],
    ),
    ("convert", "--targets", &["--targets", "-"]),
    (
        "convert",
        "--targets",
        &["h.csv", "o.safetensors", "--targets", "0"],
    ),
    (
        "convert",
        "--targets",
        &[
            "dir",
            "o.safetensors",
            "--image-size",
            "4,4",
            "--targets",
            "1",
        ],
    ),
    ("convert", "--image-size", &["--image-size", "4"]),
    ("convert", "--image-size", &["--image-size", "0,4"]),
    (
        "convert",
        "--image-size",
        &["h.csv", "o.safetensors", "--image-size", "4,4"],
    ),
    ("convert", "--color-mode", &["--color-mode", "cmyk"]),
    (
        "convert",
        "--color-mode",
        &["h.csv", "o.safetensors", "--color-mode", "rgb"],
    ),
    ("convert", "--seed", &["--seed", "abc"]),
    (
        "convert",
        "--seed",
        &["h.csv", "o.safetensors", "--seed", "3"],
    ),
    ("convert", "--no-shuffle", &["--no-shuffle=yes"]),
    (
        "convert",
        "--no-shuffle",
        &["h.csv", "o.safetensors", "--no-shuffle"],
    ),
    ("convert", "--seq-len", &["--seq-len", "abc"]),
    ("convert", "--stride", &["--stride", "x"]),
    (
        "convert",
        "--stride",
        &[
            "file.txt",
            "o.safetensors",
            "--seq-len",
            "4",
            "--stride",
            "0",
        ],
    ),
    (
        "convert",
        "--stride",
        &["h.csv", "o.safetensors", "--stride", "2"],
    ),
    ("convert", "--seq-len", &["file.txt", "o.safetensors"]),
    (
        "convert",
        "--seq-len",
        &["file.txt", "o.safetensors", "--seq-len", "0"],
    ),
    (
        "convert",
        "--scale",
        &[
            "file.txt",
            "o.safetensors",
            "--seq-len",
            "4",
            "--scale",
            "2",
        ],
    ),
    (
        "generate",
        "--weights",
        &[
            "--weights",
            "missing",
            "--data",
            "file.txt",
            "--prompt",
            "a",
        ],
    ),
    (
        "generate",
        "--data",
        &["--weights", "file.txt", "--data", "dir", "--prompt", "a"],
    ),
    (
        "generate",
        "--prompt",
        &[
            "--weights",
            "file.txt",
            "--data",
            "file.txt",
            "--prompt",
            "",
        ],
    ),
    (
        "generate",
        "--prompt",
        &["--weights", "file.txt", "--data", "file.txt"],
    ),
    ("generate", "--tokens", &["--tokens", "many"]),
    (
        "generate",
        "--temperature",
        &[
            "--weights",
            "file.txt",
            "--data",
            "file.txt",
            "--prompt",
            "a",
            "--temperature",
            "0",
        ],
    ),
    ("generate", "--temperature", &["--temperature", "warm"]),
    ("generate", "--seed", &["--seed", "abc"]),
    // export
    export!("--output", "model.h5"),
    export!("--output", "model.pt.safetensors"),
    export!("--format", "m.bin", "--format", "pickle"),
    export!("--names", "m.safetensors", "--names", "tf"),
    export!("--names", "m.onnx", "--names", "torch"),
    export!("--model", "m.keras", "--model", "nope.json"),
    export!("--model", "m.onnx", "--model", "file.txt"),
];

/// The long flags `wgfit SUBCOMMAND --help` lists, but --help and --version.
fn flags(subcommand: &str) -> BTreeSet<String> {
    let help = Command::new(BIN)
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&help.stdout)
        .lines()
        .filter_map(|l| {
            // `--epochs <EPOCHS>` or `-o, --output <OUT>`
            let l = l.trim_start();
            let long = l.strip_prefix("--").or_else(|| {
                let short = l.strip_prefix('-')?;
                short.get(1..)?.strip_prefix(", --")
            })?;
            let name: String = long
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(format!("--{name}"))
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The subcommands `wgfit --help` lists.
fn subcommands() -> Vec<String> {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_flag_with_a_bad_value_is_a_usage_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("dir")).unwrap();
    std::fs::write(d.join("file.txt"), "").unwrap();
    std::fs::write(d.join("h.csv"), "epoch,loss\n0,1.0\n").unwrap();
    let subs = subcommands();
    assert!(subs.len() >= 7, "{subs:?}");
    let mut missing = Vec::new();
    for sub in &subs {
        for flag in flags(sub) {
            if !BAD.iter().any(|(s, f, _)| s == sub && *f == flag) {
                missing.push(format!("{sub} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags without a bad-value case here: {missing:?}"
    );
    let mut wrong = Vec::new();
    for (sub, flag, args) in BAD {
        let mut all = vec![*sub];
        all.extend_from_slice(args);
        let o = wgfit(d, &all);
        let err = stderr(&o);
        if o.status.code() != Some(2) || !err.contains(flag) {
            wrong.push(format!("{all:?}: {:?}: {err}", o.status.code()));
        }
        assert!(!d.join("wgfit-model.safetensors").exists(), "{all:?}");
        assert!(!d.join("wgfit-model.backup").exists(), "{all:?}");
    }
    assert!(
        wrong.is_empty(),
        "not a usage error naming the flag:\n{}",
        wrong.join("\n")
    );
}

/// Runs wgfit with stdout (or stderr) a pipe whose reader is already gone.
fn with_closed_pipe(dir: &Path, args: &[&str], close_stderr: bool) -> std::process::ExitStatus {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    if close_stderr {
        cmd.stdout(Stdio::null()).stderr(writer);
    } else {
        cmd.stdout(writer).stderr(Stdio::null());
    }
    cmd.status().unwrap()
}

#[test]
fn a_closed_stdout_or_stderr_ends_wgfit_by_sigpipe_not_a_panic() {
    for (args, close_stderr) in [
        (&["inspect", "empty"][..], false),
        (&["inspect", "--json", "empty"], false),
        (&[], false),
        (&["devices"], false),
        (&["train", "--epochs", "1", "--verbose", "2"], false),
        (&["train", "--lr", "NaN"], true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let status = with_closed_pipe(dir.path(), args, close_stderr);
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "{args:?} (closed {}): {status:?}",
            if close_stderr { "stderr" } else { "stdout" }
        );
    }
}

#[test]
fn a_closed_stderr_during_training_ends_it_by_sigpipe_and_the_backup_stays() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let once = [
        "train",
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--keep-checkpoint",
    ];
    common::cli::assert_ok(&wgfit(d, &once));
    // The library's "resuming from the backup" line meets the closed stderr.
    let twice = [
        "train",
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--keep-checkpoint",
    ];
    let status = with_closed_pipe(d, &twice, true);
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
    assert!(d.join("wgfit-model.backup/latest.json").exists());
    common::cli::assert_ok(&wgfit(d, &twice));
}
