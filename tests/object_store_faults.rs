//! Backups on object storage when other runs or the network get in the way, against a real
//! S3-compatible server (`moto_server`, see `common/s3.rs`): two writers on one prefix, a
//! lease taken over from a frozen run, a lease left by a killed run, and the server lost in
//! the middle of a save, for good or for half a second. Every run is a real worker process.

mod common;

use common::s3::{Moto, Proxy, ends_exactly, run, start, with_env};
use common::worker::{self, EPOCHS, reference, training_from};
use std::time::{Duration, Instant};

#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn worker() {
    worker::main();
}

/// Two runs started on one prefix at once: exactly one trains and commits, the other stops
/// with a clear error; the prefix then holds the winner's final state.
#[test]
fn two_writers_racing_for_one_prefix_exactly_one_commits() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-race");
    let tmp = tempfile::tempdir().unwrap();
    let url = bucket.url("race");
    let vars = with_env(
        moto.port(),
        &[("SLOW_MS", "10"), ("KEEP", "1"), ("FREQ", "3")],
    );
    let a = start(&url, &tmp.path().join("a.bin"), &vars);
    let b = start(&url, &tmp.path().join("b.bin"), &vars);
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "{codes:?}"
    );
    let loser = outs.iter().find(|o| o.status.code() == Some(1)).unwrap();
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("leased by another run"), "{err}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&bucket.get("race/latest.json").unwrap()).unwrap();
    assert_eq!(sidecar["epoch"].as_u64(), Some(EPOCHS as u64));
}

/// A run frozen (SIGSTOP) for longer than its lease lasts loses it to a second run; woken
/// up, it stops with a clear error instead of committing over the second run's state.
#[test]
fn a_writer_whose_lease_was_taken_over_stops_without_writing() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-takeover");
    let tmp = tempfile::tempdir().unwrap();
    let url = bucket.url("p");
    let slow = with_env(
        moto.port(),
        &[("SLOW_MS", "20"), ("KEEP", "1"), ("FREQ", "1")],
    );
    let mut a = start(&url, &tmp.path().join("a.bin"), &slow);
    assert!(training_from(&mut a).is_some());
    std::thread::sleep(Duration::from_millis(300));
    let pid = a.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let frozen_at = bucket.committed_step("p");
    // The second run waits out the lease (2 s), takes it over and trains to the end.
    let (code, err) = run(
        &url,
        &tmp.path().join("b.bin"),
        &with_env(moto.port(), &[("KEEP", "1")]),
    );
    assert_eq!(code, 0, "{err}");
    let final_state = bucket.get("p/latest.json").unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("lost its lease"), "{err}");
    assert_eq!(
        bucket.get("p/latest.json").unwrap(),
        final_state,
        "untouched"
    );
    assert!(frozen_at.is_some());
}

/// The server lost in the middle of a save (the connection cut as the weights go up): the
/// run ends with an error naming the URL, the last commit stays, and a rerun once the server
/// is back resumes from it and ends exactly.
#[test]
fn the_server_lost_in_the_middle_of_a_save_then_back() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-outage");
    let proxy = Proxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("out");
    let out = tmp.path().join("out.bin");
    // The third weights upload finds no server.
    proxy.cut_at(3, "PUT /wgfit-outage/out/ckpt-");
    let (code, err) = run(&url, &out, &with_env(proxy.port, &[("FREQ", "epoch")]));
    assert_eq!(code, 1, "{err}");
    assert!(proxy.is_cut());
    assert!(
        err.contains(&url) && err.contains("object store error"),
        "{err}"
    );
    let committed = bucket.committed_step("out").expect("the last commit stays");
    proxy.restore();
    let mut child = start(&url, &out, &with_env(proxy.port, &[("FREQ", "epoch")]));
    assert_eq!(
        training_from(&mut child),
        Some(committed),
        "resumes from the last commit"
    );
    ends_exactly(child, &out, &expected);
}

/// A run killed while it held the lease leaves it unexpired: the rerun waits for it to
/// expire (its owner no longer renews it), takes it over and resumes from the last commit.
#[test]
fn a_lease_left_by_a_killed_run_is_taken_over_once_it_expires() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-lease");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    let slow = with_env(moto.port(), &[("SLOW_MS", "10"), ("FREQ", "1")]);
    let mut a = start(&url, &out, &slow);
    assert!(training_from(&mut a).is_some());
    std::thread::sleep(Duration::from_millis(300));
    a.kill().unwrap();
    a.wait().unwrap();
    let committed = bucket
        .committed_step("p")
        .expect("a commit before the kill");
    let lease: serde_json::Value =
        serde_json::from_slice(&bucket.get("p/.wgfit-lease").expect("the lease stays")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left = lease["expires_unix_ms"]
        .as_u64()
        .unwrap()
        .saturating_sub(now);
    assert!(left > 0, "the killed run's lease is unexpired: {lease}");

    let started = Instant::now();
    let mut b = start(&url, &out, &with_env(moto.port(), &[]));
    assert_eq!(
        training_from(&mut b),
        Some(committed),
        "resumes from the commit"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(left),
        "it waited {:?} for a lease {left} ms from expiring",
        started.elapsed()
    );
    let output = b.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("is leased by run") && err.contains("waiting for it to expire"),
        "the rerun says what it waits for: {err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

/// A brief outage in the middle of a save (the server gone for half a second) is retried
/// with backoff: the run carries on and ends exactly.
#[test]
fn a_brief_outage_is_retried_and_the_run_ends_exactly() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-blip");
    let proxy = Proxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let out = tmp.path().join("out.bin");
    proxy.cut_at(3, "PUT /wgfit-blip/blip/ckpt-");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !proxy.is_cut() {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(500));
            proxy.restore();
        });
        let vars = with_env(proxy.port, &[("FREQ", "epoch")]);
        let (code, err) = run(&bucket.url("blip"), &out, &vars);
        assert_eq!(code, 0, "{err}");
    });
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}
