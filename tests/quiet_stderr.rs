//! A library run prints nothing of its own accord: on a headless machine (no display, no
//! `XDG_RUNTIME_DIR`, as CI is) Mesa's Vulkan layers must not fill stderr with lines that are
//! not wgfit's, in a user's program as in `wgfit`.

mod common;

use common::{data, model, options};
use std::process::Command;

/// The child process: trains a small model with the library and returns.
#[test]
#[ignore = "the child process of a_headless_library_run_prints_nothing_on_stderr"]
fn worker_trains_quietly() {
    model().fit(&data(), options(1), &mut []).unwrap();
}

#[test]
fn a_headless_library_run_prints_nothing_on_stderr() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "worker_trains_quietly",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1", "-q"])
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("NODEVICE_SELECT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "", "a library run wrote to stderr");
}
