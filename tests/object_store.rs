//! Backups on object storage, against a real S3-compatible server (`moto_server`, see
//! `common/s3.rs`): the Keras example, a SIGKILL storm, damaged and foreign objects, two
//! writers on one prefix, a lease left by a killed run, and the server lost in the middle
//! of a save. Every run is a real worker process reaching the server over HTTP.

mod common;

use common::s3::{self, Bucket, Moto, Proxy};
use common::storm::{self, Backup};
use common::worker::{self, EPOCHS, reference, run_to_end, spawn, training_from};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn worker() {
    worker::main();
}

/// The worker's settings plus the environment that reaches the server at `port`.
fn with_env<'a>(port: u16, vars: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
    let mut all: Vec<(&str, String)> = s3::env(port);
    all.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    all
}

fn run(url: &str, out: &Path, vars: &[(&str, String)]) -> (i32, String) {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_to_end(Path::new(url), out, &vars, None)
}

fn start(url: &str, out: &Path, vars: &[(&str, String)]) -> std::process::Child {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn(Path::new(url), out, &vars, None)
}

/// The Keras documentation's example: a run interrupted at epoch 2 leaves its state in the
/// bucket under the names a local backup has; the rerun resumes there, ends with the
/// uninterrupted run's bits, and removes every object it wrote.
#[test]
fn an_interrupted_run_resumes_from_the_bucket_exactly() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-keras");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("runs/keras");
    let out = tmp.path().join("out.bin");

    let (code, err) = run(&url, &out, &with_env(moto.port(), &[("STOP_EPOCH", "2")]));
    assert_eq!(code, 1, "{err}");
    let names = bucket.names("runs/keras");
    assert!(
        names.contains(&"latest.json".to_string())
            && names.contains(&".wgfit-backup".to_string())
            && names
                .iter()
                .any(|n| n.starts_with("ckpt-") && n.ends_with(".safetensors")),
        "{names:?}"
    );
    let sidecar: serde_json::Value =
        serde_json::from_slice(&bucket.get("runs/keras/latest.json").unwrap()).unwrap();
    assert_eq!(
        (sidecar["epoch"].as_u64(), sidecar["version"].as_u64()),
        (Some(2), Some(4))
    );
    // The lease was released: the rerun takes it at once.
    let started = Instant::now();
    let (code, err) = run(&url, &out, &with_env(moto.port(), &[]));
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        expected,
        "the uninterrupted run's bits"
    );
    assert_eq!(
        bucket.names("runs/keras"),
        Vec::<String>::new(),
        "all removed"
    );
}

#[test]
fn sigkill_storm_on_object_storage() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-storm");
    let tmp = tempfile::tempdir().unwrap();
    let backup = Backup {
        location: bucket.url("storm").into(),
        committed_step: Box::new(|| bucket.committed_step("storm")),
        gone: Box::new(|| bucket.names("storm").is_empty()),
    };
    let vars = with_env(moto.port(), &[("SLOW_MS", "3")]);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    storm::kill_storm(tmp.path(), &backup, "saves every batch to S3", &vars, 8);
}

/// A bucket with a committed state of epochs 0-1 (and, with double_checkpoint, the state
/// before it in previous.json): the prefix, the sidecar's weights key, the expected bits.
fn committed(moto: &Moto, bucket: &Bucket, prefix: &str, tmp: &Path) -> (String, Vec<u8>) {
    let (expected, _) = reference(tmp, &[("DOUBLE", "1")]);
    let vars = with_env(moto.port(), &[("STOP_EPOCH", "2"), ("DOUBLE", "1")]);
    let (code, err) = run(&bucket.url(prefix), &tmp.join("out.bin"), &vars);
    assert_eq!(code, 1, "{err}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&bucket.get(&format!("{prefix}/latest.json")).unwrap()).unwrap();
    (
        sidecar["weights"]["file"].as_str().unwrap().to_string(),
        expected,
    )
}

/// Damaged weights objects (truncated, a flipped byte, missing) and a pointer naming a key
/// that does not exist: without double_checkpoint the run refuses, naming the object and
/// changing nothing; with it, the run falls back to previous.json and ends exactly.
#[test]
fn damaged_objects_are_refused_or_fall_back_and_nothing_is_lost() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-damage");
    let tmp = tempfile::tempdir().unwrap();
    type Damage = fn(&Bucket, &str, &str);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "truncated",
            |b, p, w| {
                let key = format!("{p}/{w}");
                let mut bytes = b.get(&key).unwrap();
                bytes.truncate(bytes.len() - 9);
                b.put(&key, bytes);
            },
            "bytes, the sidecar recorded",
        ),
        (
            "flipped",
            |b, p, w| {
                let key = format!("{p}/{w}");
                let mut bytes = b.get(&key).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 0x40;
                b.put(&key, bytes);
            },
            "part 0 (bytes 0..",
        ),
        (
            "missing",
            |b, p, w| b.delete(&format!("{p}/{w}")),
            "it is missing",
        ),
        (
            "pointer to a missing key",
            |b, p, _| {
                let key = format!("{p}/latest.json");
                let mut v: serde_json::Value =
                    serde_json::from_slice(&b.get(&key).unwrap()).unwrap();
                v["weights"]["file"] = "ckpt-999999.safetensors".into();
                b.put(&key, serde_json::to_vec(&v).unwrap());
            },
            "ckpt-999999.safetensors",
        ),
    ];
    for (i, (what, damage, says)) in cases.into_iter().enumerate() {
        let prefix = format!("case{i}");
        let (weights, expected) = committed(&moto, &bucket, &prefix, tmp.path());
        damage(&bucket, &prefix, &weights);
        let before: Vec<(String, Option<Vec<u8>>)> = bucket
            .names(&prefix)
            .into_iter()
            .filter(|n| n != ".wgfit-lease")
            .map(|n| (n.clone(), bucket.get(&format!("{prefix}/{n}"))))
            .collect();
        let out = tmp.path().join("out.bin");
        let (code, err) = run(&bucket.url(&prefix), &out, &with_env(moto.port(), &[]));
        assert_eq!(code, 1, "{what}: {err}");
        assert!(
            err.contains(&bucket.url(&prefix)) && err.contains(says),
            "{what}: {err}"
        );
        let after: Vec<(String, Option<Vec<u8>>)> = bucket
            .names(&prefix)
            .into_iter()
            .filter(|n| n != ".wgfit-lease")
            .map(|n| (n.clone(), bucket.get(&format!("{prefix}/{n}"))))
            .collect();
        assert_eq!(before, after, "{what}: a refusal changes nothing");
        let (code, err) = run(
            &bucket.url(&prefix),
            &out,
            &with_env(moto.port(), &[("DOUBLE", "1")]),
        );
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            expected,
            "{what}: exact after the fallback"
        );
    }
}

/// A prefix holding objects that are not wgfit's is refused, and they stay; a missing bucket
/// is an error before any training.
#[test]
fn foreign_objects_and_a_missing_bucket_are_clear_errors() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-foreign");
    bucket.put("data/results.csv", b"a,b\n1,2\n".to_vec());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.bin");
    let (code, err) = run(&bucket.url("data"), &out, &with_env(moto.port(), &[]));
    assert_eq!(code, 1);
    assert!(
        err.contains("not a wgfit backup") || err.contains("not empty"),
        "{err}"
    );
    assert_eq!(bucket.names("data"), ["results.csv"]);

    let mut child = start("s3://no-such-bucket/x", &out, &with_env(moto.port(), &[]));
    assert_eq!(training_from(&mut child), None, "no training starts");
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        err.contains("s3://no-such-bucket/x") && err.contains("NoSuchBucket"),
        "{err}"
    );
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
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), expected);
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
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

/// `wgfit train --backup-dir s3://…` preempted by SIGTERM saves there and exits 143;
/// `wgfit inspect s3://…` reads the state; the rerun ends with an uninterrupted run's bytes.
#[test]
fn the_command_line_backs_up_to_a_bucket_and_inspects_it() {
    use common::cli::{BIN, LONG};
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-cli");
    let url = bucket.url("cli");
    let tmp = tempfile::tempdir().unwrap();
    let wgfit = |args: &[&str]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(args).current_dir(tmp.path());
        for (k, v) in s3::env(moto.port()) {
            cmd.env(k, v);
        }
        cmd
    };
    let reference = tempfile::tempdir().unwrap();
    let full = std::process::Command::new(BIN)
        .args(LONG)
        .current_dir(reference.path())
        .output()
        .unwrap();
    assert!(full.status.success());

    let mut args: Vec<&str> = LONG.to_vec();
    args.extend(["--backup-dir", &url]);
    let mut child = wgfit(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while bucket.committed_step("cli").is_none() {
        assert!(Instant::now() < deadline, "no commit in the bucket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let i = wgfit(&["inspect", &url]).output().unwrap();
    let text = String::from_utf8_lossy(&i.stdout);
    assert_eq!(
        i.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&i.stderr)
    );
    assert!(
        text.contains("preempted") && text.contains("SHA-256 parts"),
        "{text}"
    );
    assert!(text.contains("resumes from latest.json"), "{text}");

    let o = wgfit(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(tmp.path().join("wgfit-model.safetensors")).unwrap(),
        std::fs::read(reference.path().join("wgfit-model.safetensors")).unwrap()
    );
    assert!(
        bucket.names("cli").is_empty(),
        "the finished run removed its backup"
    );
}

/// A 34 MB state goes up as a multipart upload of 8 MiB parts and restores exactly.
#[test]
fn a_large_state_goes_up_in_parts_and_restores_exactly() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-large");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[("WIDE", "1")]);
    let url = bucket.url("wide");
    let out = tmp.path().join("out.bin");
    let vars = with_env(moto.port(), &[("WIDE", "1"), ("STOP_EPOCH", "2")]);
    let (code, err) = run(&url, &out, &vars);
    assert_eq!(code, 1, "{err}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&bucket.get("wide/latest.json").unwrap()).unwrap();
    let bytes = sidecar["weights"]["bytes"].as_u64().unwrap();
    assert!(bytes > 32 << 20, "{bytes} bytes: past the single-PUT size");
    assert_eq!(
        sidecar["weights"]["parts"].as_array().unwrap().len() as u64,
        bytes.div_ceil(8 << 20)
    );
    let (code, err) = run(&url, &out, &with_env(moto.port(), &[("WIDE", "1")]));
    assert_eq!(code, 0, "{err}");
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
