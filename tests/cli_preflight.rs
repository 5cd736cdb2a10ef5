//! Mistakes `wgfit train` (and the other commands that write files) refuse before training:
//! output paths, the --checkpoint pattern, --monitor, flags that do not go together, outputs
//! that are inputs, environment variables. Each is a usage error (exit 2) that names the flag
//! or the variable, and nothing was trained or written.

mod common;

use common::cli::{BIN, stderr, wgfit};
use std::path::Path;
use std::process::Output;

/// A two-row data set with two features and class labels.
fn data(dir: &Path) {
    std::fs::write(dir.join("d.csv"), "1,2,0\n3,4,1\n").unwrap();
}

/// Asserts a usage error naming `names`, with no training started (no backup) and no model
/// written.
#[track_caller]
fn refused(o: &Output, dir: &Path, names: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for n in names {
        assert!(err.contains(n), "`{n}` not named in: {err}");
    }
    assert!(
        err.starts_with("wgfit: error:") || err.contains("error:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.join("wgfit-model.safetensors").exists());
    assert!(!dir.join("wgfit-model.backup").exists());
}

fn train<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["train", "--epochs", "1", "--verbose", "0"];
    all.extend_from_slice(args);
    all
}

#[test]
fn output_paths_are_checked_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::create_dir(d.join("out.csv")).unwrap();
    for (args, names) in [
        (
            &["--output", "out"][..],
            &["--output out", "is a directory"][..],
        ),
        (
            &["--output", "/proc/wgfit-model.safetensors"],
            &["--output /proc/wgfit-model.safetensors", "cannot write"],
        ),
        (
            &["--history", "out.csv"],
            &["--history out.csv", "is a directory"],
        ),
        (&["--csv-log", "out"], &["--csv-log out", "is a directory"]),
        (&["--plot", "p.png"], &["--plot p.png", "drawn as SVG"]),
        (
            &["--plot", "nowhere/p.svg"],
            &["--plot nowhere/p.svg", "does not exist"],
        ),
        (
            &["--history", "/proc/h.csv"],
            &["--history", "cannot write"],
        ),
        (
            &["--history", "a.csv", "--csv-log", "./a.csv"],
            &["--csv-log ./a.csv is also --history"],
        ),
    ] {
        // `a.csv` exists so that the two names can be seen to be one file.
        std::fs::write(d.join("a.csv"), "").unwrap();
        refused(&wgfit(d, &train(args)), d, names);
    }
}

#[test]
fn outputs_that_are_not_regular_files_are_refused_and_links_are_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    data(d);
    let made = std::process::Command::new("mkfifo")
        .arg(d.join("fifo"))
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("fifo", d.join("to-fifo")).unwrap();
    std::os::unix::fs::symlink("nowhere/x.csv", d.join("dangling.csv")).unwrap();
    for (args, names) in [
        (
            &["--output", "fifo"][..],
            &["--output fifo", "not a regular file"][..],
        ),
        (
            &["--csv-log", "to-fifo"],
            &[
                "--csv-log to-fifo",
                "a link to something other than a regular file",
            ],
        ),
        (
            &["--history", "dangling.csv"],
            &["--history dangling.csv", "a link to nothing"],
        ),
        (
            &[
                "--output",
                "o.safetensors",
                "--backup-dir",
                "./o.safetensors",
            ],
            &["--backup-dir ./o.safetensors is also --output"],
        ),
    ] {
        let mut all = vec!["--data", "d.csv"];
        all.extend_from_slice(args);
        refused(&wgfit(d, &train(&all)), d, names);
    }
    let o = wgfit(
        d,
        &train(&[
            "--data",
            "d.csv",
            "--history",
            "h.csv",
            "--backup-dir",
            "h.csv",
        ]),
    );
    refused(&o, d, &["--backup-dir h.csv is also --history"]);
    let o = wgfit(d, &train(&["--data", "d.csv", "--backup-dir", "d.csv"]));
    refused(&o, d, &["--backup-dir d.csv is a file"]);
    // An input that is a pipe is refused (it would be read twice), never waited on.
    for flag in ["--data", "--validation-data"] {
        let mut args = vec!["--data", "d.csv", flag, "fifo"];
        if flag == "--data" {
            args.drain(..2);
        }
        refused(
            &wgfit(d, &train(&args)),
            d,
            &[&format!("{flag} fifo"), "a pipe or a device"],
        );
    }
    // The pipe is still a pipe, the link a link.
    use std::os::unix::fs::FileTypeExt;
    let fifo = std::fs::symlink_metadata(d.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert!(
        std::fs::symlink_metadata(d.join("dangling.csv"))
            .unwrap()
            .is_symlink()
    );

    // A link to a regular file is written through: the link stays, its file gets the model.
    std::fs::create_dir(d.join("runs")).unwrap();
    std::fs::write(d.join("runs/m.safetensors"), "old").unwrap();
    std::os::unix::fs::symlink("runs/m.safetensors", d.join("m.safetensors")).unwrap();
    let o = wgfit(
        d,
        &train(&[
            "--data",
            "d.csv",
            "--batch-size",
            "2",
            "--no-backup",
            "--output",
            "m.safetensors",
        ]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::symlink_metadata(d.join("m.safetensors"))
            .unwrap()
            .is_symlink()
    );
    let written = std::fs::read(d.join("runs/m.safetensors")).unwrap();
    assert!(written.len() > 100, "the model went to the link's file");

    // export checks its output as train does, and never writes over its input.
    for (out, names) in [
        ("fifo", &["--output fifo", "not a regular file"][..]),
        (
            "runs/m.safetensors",
            &["--output runs/m.safetensors", "WEIGHTS reads"],
        ),
    ] {
        let o = wgfit(
            d,
            &[
                "export",
                "m.safetensors",
                "-o",
                out,
                "--format",
                "safetensors",
            ],
        );
        refused(&o, d, names);
    }
    assert_eq!(
        std::fs::read(d.join("runs/m.safetensors")).unwrap(),
        written
    );
}

#[test]
fn checkpoint_patterns_are_formatted_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (pattern, names) in [
        ("w-{unknown_key}.st", &["--checkpoint", "`unknown_key`"][..]),
        ("w-{val_loss:.3f}.st", &["--checkpoint", "`val_loss`"]),
        ("w-{epoch:q}.st", &["--checkpoint", "`q`"]),
        ("w-{epoch.st", &["--checkpoint", "not closed"]),
        ("w-{epoch:99999999999999}.st", &["--checkpoint", "255"]),
        ("w-{loss:.99999999999999f}.st", &["--checkpoint", "255"]),
        (
            "ck/{epoch}/",
            &["--checkpoint ck/{epoch}/", "names a directory"],
        ),
    ] {
        refused(&wgfit(d, &train(&["--checkpoint", pattern])), d, names);
    }
}

#[test]
fn monitor_and_rate_flags_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    data(d);
    for (args, names) in [
        (
            &["--monitor", "bogus"][..],
            &["--monitor bogus", "loss, accuracy"][..],
        ),
        (
            &["--monitor", "bogus", "--early-stopping", "2"],
            &["--monitor bogus"],
        ),
        (
            &["--monitor", "accuracy", "--loss", "mse", "--layers", "4,1"],
            &["--monitor accuracy"],
        ),
        (
            &[
                "--lr-schedule",
                "exponential",
                "--decay-steps",
                "5",
                "--decay-rate",
                "0.5",
                "--reduce-lr-on-plateau",
                "0.5",
            ],
            &["--reduce-lr-on-plateau", "--lr-schedule"],
        ),
        (
            &["--accumulate", "100000"],
            &["--accumulate 100000", "never"],
        ),
        (
            &["--data", "d.csv", "--batch-size", "3"],
            &["--batch-size 3", "at most 2"],
        ),
        (
            &["--validation-freq", "2"],
            &["--validation-freq 2", "--validation-split"],
        ),
        (
            &["--validation-split", "0.2", "--validation-freq", "2"],
            &[
                "--validation-freq 2 is above --epochs 1",
                "no epoch would validate",
            ],
        ),
        (
            &["--validation-batch-size", "8"],
            &["--validation-batch-size 8", "--validation-data"],
        ),
    ] {
        refused(&wgfit(d, &train(args)), d, names);
    }
}

#[test]
fn no_backup_refuses_every_backup_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for flag in [
        &["--save-freq", "3"][..],
        &["--double-checkpoint"],
        &["--keep-checkpoint"],
        &["--elastic"],
        &["--discard-mismatched-backup"],
        &["--save-before-preemption"],
        &["--no-save-before-preemption"],
        &["--backup-dir", "b"],
    ] {
        let mut args = vec!["--no-backup"];
        args.extend_from_slice(flag);
        refused(&wgfit(d, &train(&args)), d, &["--no-backup", flag[0]]);
    }
}

#[test]
fn outputs_never_overwrite_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    data(d);
    std::os::unix::fs::symlink("d.csv", d.join("link.csv")).unwrap();
    for out in ["--output", "--history", "--csv-log", "--plot"] {
        // By identity: another spelling, or a link, is the same file.
        for name in ["d.csv", "./d.csv", "link.csv"] {
            let o = wgfit(d, &train(&["--data", "d.csv", out, name]));
            refused(&o, d, &[out, "--data reads"]);
        }
    }
    let o = wgfit(
        d,
        &train(&[
            "--data",
            "d.csv",
            "--validation-data",
            "link.csv",
            "--history",
            "h.csv",
            "--csv-log",
            "./d.csv",
        ]),
    );
    refused(&o, d, &["--csv-log", "reads"]);
    let o = wgfit(
        d,
        &train(&[
            "--data",
            "d.csv",
            "--batch-size",
            "1",
            "--checkpoint",
            "./d.csv",
        ]),
    );
    refused(&o, d, &["--checkpoint ./d.csv", "--data reads"]);
    let o = wgfit(
        d,
        &[
            "predict",
            "--weights",
            "w.safetensors",
            "--data",
            "d.csv",
            "--output",
            "./d.csv",
        ],
    );
    refused(&o, d, &["--output ./d.csv", "--data reads"]);
    let o = wgfit(d, &["convert", "d.csv", "link.csv"]);
    refused(&o, d, &["link.csv", "INPUT reads"]);
    assert_eq!(
        std::fs::read_to_string(d.join("d.csv")).unwrap(),
        "1,2,0\n3,4,1\n"
    );
}

#[test]
fn environment_knobs_with_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, value) in [
        ("WGFIT_LEASE_SECONDS", "abc"),
        ("WGFIT_LEASE_SECONDS", "0"),
        ("WGFIT_GPU_TIMEOUT_MS", "-1"),
        ("WGFIT_MAX_BINDING_BYTES", "1e6"),
        ("WGFIT_RESIDENT_LIMIT_BYTES", "lots"),
        ("WGFIT_STORE_RETRY_SECONDS", "1.5"),
        ("WGPU_BACKEND", "bogus,cuda"),
    ] {
        for command in [&["train", "--epochs", "1"][..], &["devices"]] {
            let o = std::process::Command::new(BIN)
                .args(command)
                .env(name, value)
                .current_dir(d)
                .output()
                .unwrap();
            refused(&o, d, &[&format!("{name}=\"{value}\"")]);
        }
    }
}
