//! Running the real `wgfit` binary and reading what it prints.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wgfit");

pub fn wgfit(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wgfit")
}

pub fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        // The tests interrupt a run once its first commit is there. At the default nice 19
        // the writer, starved by a loaded machine (tests side by side on 2 cores), could
        // make its first commit only at the run's end: interrupted, the run had finished.
        // The priority itself is tested in backup_writer_priority.rs.
        .env("WGFIT_WRITER_NICE", "0")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wgfit")
}

/// Sends SIGTERM to a running `wgfit` and waits for it: it must exit preempted (143).
pub fn preempt(child: Child) -> Output {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let o = child.wait_with_output().expect("wait for wgfit");
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    o
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "wgfit failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// The value after `name:` in the summary.
pub fn summary_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no `{name}:` in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Waits until `path` exists (the child must still run), or panics after a minute.
pub fn wait_for(path: &Path, child: &mut Child) {
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
pub const LONG: &[&str] = &[
    "train",
    "--epochs",
    "40",
    "--save-freq",
    "5",
    "--verbose",
    "2",
];
