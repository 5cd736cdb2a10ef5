//! Backups on object storage, against a real S3-compatible server (`moto_server`, see
//! `common/s3.rs`): the Keras example, SIGKILL storms (an MLP and a convnet), damaged and foreign objects, a missing
//! bucket, a multipart state and the command line. Every run is a real process reaching the
//! server over HTTP; `object_store_faults.rs` has the runs that race, freeze or lose the server.

mod common;

use common::s3::{self, Bucket, Moto, run, start, with_env};
use common::storm::{self, Backup};
use common::worker::{self, reference, training_from};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn worker() {
    worker::main();
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
        (Some(2), Some(u64::from(wgfit::checkpoint::VERSION)))
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

/// A storm of `kills` SIGKILLs on workers saving every batch to a fresh bucket.
fn storm_on_a_bucket(bucket_name: &str, description: &str, vars: &[(&str, &str)], kills: usize) {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket(bucket_name);
    let tmp = tempfile::tempdir().unwrap();
    let backup = Backup {
        location: bucket.url("storm").into(),
        committed_step: Box::new(|| bucket.committed_step("storm")),
        left: Box::new(|| bucket.names("storm")),
    };
    let vars = with_env(moto.port(), vars);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    storm::kill_storm(tmp.path(), &backup, description, &vars, kills);
}

#[test]
fn sigkill_storm_on_object_storage() {
    storm_on_a_bucket(
        "wgfit-storm",
        "saves every batch to S3, read ahead",
        &[("SLOW_MS", "3"), ("READ_AHEAD", "1")],
        8,
    );
}

/// The convnet with batch normalization and dropout (`common/worker.rs`): its moving
/// statistics and its masks come back from the bucket as from a local directory.
#[test]
fn sigkill_storm_with_a_convnet_on_object_storage() {
    storm_on_a_bucket(
        "wgfit-convnet",
        "a convnet saving every batch to S3",
        &[("CONVNET", "1"), ("SLOW_MS", "5")],
        6,
    );
}

/// The GPT of `common/worker.rs` (causal attention, Dropout, AdamW exempting normalizations
/// and biases, a schedule, clipping) saving every batch to a bucket.
#[test]
fn sigkill_storm_with_a_gpt_on_object_storage() {
    storm_on_a_bucket(
        "wgfit-gpt",
        "a GPT saving every batch to S3",
        &[("GPT", "1"), ("SLOW_MS", "5")],
        6,
    );
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
    args.extend(["--backup-dir", &url, "--history", "h.csv"]);
    let child = wgfit(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A commit, and an epoch ended (its history written, which `plot` reads below).
    let deadline = Instant::now() + Duration::from_secs(60);
    while bucket.committed_step("cli").is_none() || !tmp.path().join("h.csv").exists() {
        assert!(
            Instant::now() < deadline,
            "no commit in the bucket and epoch ended"
        );
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

    // A CSV history records no events: `wgfit plot` reads them from the bucket's sidecar.
    let p = wgfit(&["plot", "h.csv", "-o", "c.svg", "--backup-dir", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&p.stdout);
    assert!(
        p.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&p.stderr)
    );
    assert!(text.contains("1 preemption"), "{text}");

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

/// A history of two chunks and a few epochs goes up as chunk objects that the sidecar's
/// digest chain names, and restores exactly.
#[test]
fn a_long_history_goes_up_in_chunks_and_restores_exactly() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-long");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[("LONG", "1")]);
    let url = bucket.url("long");
    let out = tmp.path().join("out.bin");
    let stop = (2 * wgfit::HISTORY_CHUNK + 3).to_string();
    let vars = with_env(moto.port(), &[("LONG", "1"), ("STOP_EPOCH", &stop)]);
    let (code, err) = run(&url, &out, &vars);
    assert_eq!(code, 1, "{err}");
    let names = bucket.names("long");
    let chunks: Vec<&String> = names.iter().filter(|n| n.starts_with("history-")).collect();
    assert_eq!(chunks.len(), 2, "{names:?}");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&bucket.get("long/latest.json").unwrap()).unwrap();
    assert_eq!(sidecar["history"]["chunks"]["count"], 2);
    assert_eq!(sidecar["history"]["epochs"].as_array().unwrap().len(), 3);
    let (code, err) = run(&url, &out, &with_env(moto.port(), &[("LONG", "1")]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    assert!(
        bucket.names("long").is_empty(),
        "the finished run removed its backup, chunks included"
    );
}
