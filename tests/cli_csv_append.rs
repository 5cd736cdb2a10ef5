//! `--csv-append` after the bytes it kept changed: the refusal says how to go on, and moving
//! the file aside (which keeps everything) is a rerun that works and loses nothing.

mod common;

use common::cli::{assert_ok, stderr, wgfit};

#[test]
fn a_changed_appended_log_has_a_way_out_that_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = [
        "train",
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--csv-log",
        "log.csv",
        "--csv-append",
        "--keep-checkpoint",
    ];
    std::fs::write(d.join("log.csv"), "old,rows\r\n").unwrap();
    assert_ok(&wgfit(d, &run));
    let whole = std::fs::read_to_string(d.join("log.csv")).unwrap();
    let rows: Vec<&str> = whole.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{whole}");

    // The kept bytes changed: refused, saying how to go on.
    std::fs::write(d.join("log.csv"), "edited\r\n").unwrap();
    let o = wgfit(d, &run);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("move the file aside"), "{}", stderr(&o));

    // Moved aside: the rerun works and writes the run's epochs under a header.
    std::fs::rename(d.join("log.csv"), d.join("log.old.csv")).unwrap();
    assert_ok(&wgfit(d, &run));
    let log = std::fs::read_to_string(d.join("log.csv")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[0].starts_with("epoch,"), "{log}");
    assert_eq!(&lines[1..], &rows[..], "{log}");
}
