//! Backups on object storage when other runs or the network get in the way, against a real
//! S3-compatible server (`moto_server`, see `common/s3.rs`): two writers on one prefix, a
//! lease taken over from a frozen run, a lease left by a killed run, and the server lost in
//! the middle of a save, for good or for half a second. Every run is a real worker process.

mod common;

use common::s3::{Moto, Proxy, ends_exactly, run, start, with_env};
use common::worker::{self, EPOCHS, reference, training_from};
use std::sync::atomic::{AtomicBool, Ordering};
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
/// up, it stops with a clear error and writes nothing more: no weights, no `previous.json`,
/// no commit over the second run's state.
#[test]
fn a_writer_whose_lease_was_taken_over_stops_without_writing() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-takeover");
    let tmp = tempfile::tempdir().unwrap();
    let url = bucket.url("p");
    let slow = with_env(
        moto.port(),
        &[
            ("SLOW_MS", "300"),
            ("KEEP", "1"),
            ("FREQ", "epoch"),
            ("DOUBLE", "1"),
        ],
    );
    let mut a = start(&url, &tmp.path().join("a.bin"), &slow);
    assert!(training_from(&mut a).is_some());
    // Frozen between two saves (3.6 s apart), so that no request of a save is in flight: what
    // a paused run had already sent lands whenever it arrives, which no lease can fence.
    first_commit(&bucket, "p");
    std::thread::sleep(Duration::from_millis(500));
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
    let final_state = objects(&bucket, "p");
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
    // Nothing written or removed once it woke: no weights, no previous.json, no commit.
    let now = objects(&bucket, "p");
    let names = |objects: &[(String, Option<Vec<u8>>)]| -> Vec<String> {
        objects.iter().map(|(n, _)| n.clone()).collect()
    };
    assert!(
        now == final_state,
        "changed after the takeover: {:?} -> {:?}",
        names(&final_state),
        names(&now)
    );
    assert!(frozen_at.is_some());
}

/// A commit held in the network past its run's lease: run A's `PUT latest.json` (and every
/// request after it) reaches the store 8 s late; meanwhile A's lease expires, run B takes it
/// over and sweeps A's uploaded but uncommitted weights. When A's commit lands it must fail:
/// B fenced it by rewriting `latest.json` when it took over. `latest.json` never names
/// weights that are gone, and a later run resumes to the uninterrupted bits.
#[test]
fn a_commit_delivered_after_a_takeover_is_fenced_off() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-fence");
    let proxy = Proxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    let mut a = start(
        &url,
        &tmp.path().join("a.bin"),
        &with_env(proxy.port, &[("SLOW_MS", "100"), ("FREQ", "epoch")]),
    );
    assert!(training_from(&mut a).is_some());
    first_commit(&bucket, "p");
    proxy.hold_at(1, "PUT /wgfit-fence/p/latest.json", Duration::from_secs(8));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.is_holding() {
        assert!(Instant::now() < deadline, "A's second commit never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    // B, straight to the store, slow enough not to commit before A's commit lands.
    let mut b = start(
        &url,
        &out,
        &with_env(moto.port(), &[("SLOW_MS", "1000"), ("FREQ", "epoch")]),
    );
    let from = training_from(&mut b).expect("B trains");
    let output = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("lost its lease"), "{err}");
    let latest: serde_json::Value =
        serde_json::from_slice(&bucket.get("p/latest.json").unwrap()).unwrap();
    let weights = latest["weights"]["file"].as_str().unwrap().to_string();
    assert!(
        bucket.get(&format!("p/{weights}")).is_some(),
        "latest.json names {weights}, which is gone"
    );
    assert_eq!(
        latest["global_step"].as_u64(),
        Some(from),
        "B's state, not A's"
    );
    b.kill().unwrap();
    b.wait().unwrap();
    let mut c = start(&url, &out, &with_env(moto.port(), &[("FREQ", "epoch")]));
    assert_eq!(training_from(&mut c), Some(from), "resumes from the commit");
    ends_exactly(c, &out, &expected);
}

/// A `previous.json` another hand wrote while the run trains (a stale write of an earlier
/// owner, landing late): the run's next `previous.json` replaces it, on the condition of the
/// version it reads back, and trains on; `previous.json` is no commit, so this is no lost
/// lease. The run ends exactly, its `previous.json` an earlier commit whose weights are there.
#[test]
fn a_previous_json_written_by_another_hand_is_replaced() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-stale-previous");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let vars = [
        ("SLOW_MS", "100"),
        ("FREQ", "epoch"),
        ("DOUBLE", "1"),
        ("KEEP", "1"),
    ];
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    let mut child = start(&url, &out, &with_env(moto.port(), &vars));
    assert_eq!(training_from(&mut child), Some(0));
    first_commit(&bucket, "p");
    let stale = bucket.get("p/latest.json").unwrap();
    first_previous(&bucket, "p");
    bucket.put("p/previous.json", [&stale[..], b" "].concat());
    ends_exactly(child, &out, &expected);
    assert!(bucket.get("p/previous.json").is_some());
    bucket.check_previous("p", "replaced");
}

/// Run A's `previous.json` PUT held in the network until run B has taken the backup over and
/// finished: when it lands, its condition fails (B rewrote `previous.json`), and A, reading
/// back B's bytes, renews its lease before writing again. That fails: A stops naming the
/// lost lease, and B's `previous.json` stays, not A's older one (whose weights B removed).
#[test]
fn a_previous_json_delivered_after_a_takeover_does_not_replace_the_new_owners() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-held-previous");
    let proxy = Proxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("p");
    let vars = [("FREQ", "epoch"), ("DOUBLE", "1"), ("KEEP", "1")];
    let slow: Vec<_> = vars.iter().copied().chain([("SLOW_MS", "100")]).collect();
    // A's attempts outlast the hold: its held PUT is answered (a failed condition), not
    // abandoned as a timeout, so that A reaches the rewrite over B's previous.json.
    let mut a_env = with_env(proxy.port, &slow);
    a_env.push(("WGFIT_STORE_RETRY_SECONDS", "60".into()));
    let mut a = start(&url, &tmp.path().join("a.bin"), &a_env);
    assert!(training_from(&mut a).is_some());
    first_previous(&bucket, "p");
    let deadline = Instant::now() + Duration::from_secs(60);
    proxy.hold_at(
        1,
        "PUT /wgfit-held-previous/p/previous.json",
        Duration::from_secs(10),
    );
    while !proxy.is_holding() {
        assert!(
            Instant::now() < deadline,
            "A's next previous.json never came"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // B, straight to the store, takes over once A's lease (2 s) lapses, and ends.
    let out = tmp.path().join("out.bin");
    let mut b = start(&url, &out, &with_env(moto.port(), &vars));
    assert!(training_from(&mut b).is_some());
    ends_exactly(b, &out, &expected);
    let output = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("lost its lease"), "{err}");
    assert!(bucket.get("p/previous.json").is_some());
    bucket.check_previous("p", "after A's held PUT landed");
}

/// A store that accepts connections and never answers: the run gives up once its retry
/// budget is spent (here 12 s, attempts of 6 s), with an error naming the URL, and says on
/// stderr meanwhile what it waits for (after 5 s); it never hangs.
#[test]
fn a_store_that_never_answers_ends_the_run_within_its_budget() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = "s3://wgfit-silent/p";
    let vars = with_env(port, &[("WGFIT_STORE_RETRY_SECONDS", "12")]);
    let mut child = start(url, &tmp.path().join("out.bin"), &vars);
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("still waiting on a silent store after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("waiting for the object store") && err.contains(url),
        "it says what it waits for: {err}"
    );
    assert!(err.contains("giving up after 18 s"), "{err}");
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
    // The second weights upload finds no server. At least two go up however many save
    // points a writer slowed by a loaded machine supersedes: the first (the writer is idle)
    // and the last (fit waits for it); a third is not certain.
    proxy.cut_at(2, "PUT /wgfit-outage/out/ckpt-");
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

/// The global step of the first commit under `prefix`, waited for (at most a minute).
fn first_commit(bucket: &common::s3::Bucket, prefix: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(step) = bucket.committed_step(prefix) {
            return step;
        }
        assert!(
            Instant::now() < deadline,
            "no commit under {prefix} within a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most a minute) for the first `previous.json` under `prefix`.
fn first_previous(bucket: &common::s3::Bucket, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while bucket.get(&format!("{prefix}/previous.json")).is_none() {
        assert!(
            Instant::now() < deadline,
            "no previous.json under {prefix} within a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every object under `prefix` but the lease, with its bytes.
fn objects(bucket: &common::s3::Bucket, prefix: &str) -> Vec<(String, Option<Vec<u8>>)> {
    bucket
        .names(prefix)
        .into_iter()
        .filter(|n| n != ".wgfit-lease")
        .map(|n| {
            let bytes = bucket.get(&format!("{prefix}/{n}"));
            (n, bytes)
        })
        .collect()
}

/// A run killed while it holds the lease, with its last commit; the lease object it left.
fn killed_holding_the_lease(
    moto: &Moto,
    bucket: &common::s3::Bucket,
    url: &str,
    out: &std::path::Path,
) -> (u64, serde_json::Value) {
    let slow = with_env(moto.port(), &[("SLOW_MS", "10"), ("FREQ", "1")]);
    let mut a = start(url, out, &slow);
    assert!(training_from(&mut a).is_some());
    first_commit(bucket, "p");
    a.kill().unwrap();
    a.wait().unwrap();
    let committed = bucket
        .committed_step("p")
        .expect("a commit before the kill");
    let lease: serde_json::Value =
        serde_json::from_slice(&bucket.get("p/.wgfit-lease").expect("the lease stays")).unwrap();
    (committed, lease)
}

/// Milliseconds until a lease object expires.
fn left_ms(lease: &serde_json::Value) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    lease["expires_unix_ms"]
        .as_u64()
        .unwrap()
        .saturating_sub(now)
}

/// A run killed on this machine leaves its lease unexpired, but its process is certainly
/// gone (same host, boot and pid namespace; no process of that pid and start time): the
/// rerun takes the lease over at once, saying so, and resumes from the last commit.
#[test]
fn a_lease_left_by_a_run_killed_on_this_host_is_taken_over_at_once() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-lease-here");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    // A lease of 30 s: waiting it out would be plain.
    let vars = [("WGFIT_LEASE_SECONDS", "30")];
    let mut slow = with_env(moto.port(), &[("SLOW_MS", "10"), ("FREQ", "1")]);
    slow.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    let mut a = start(&url, &out, &slow);
    assert!(training_from(&mut a).is_some());
    first_commit(&bucket, "p");
    a.kill().unwrap();
    a.wait().unwrap();
    let committed = bucket
        .committed_step("p")
        .expect("a commit before the kill");
    let started = Instant::now();
    let mut rerun = with_env(moto.port(), &[]);
    rerun.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
    let mut b = start(&url, &out, &rerun);
    assert_eq!(
        training_from(&mut b),
        Some(committed),
        "resumes from the commit"
    );
    let output = b.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("which is no longer running; taking the lease over"),
        "{err}"
    );
    assert!(
        !err.contains("waiting for it to expire"),
        "it waited for the lease to expire: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}: it waited for the lease to expire",
        started.elapsed()
    );
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

/// A lease whose owner this machine cannot vouch for (another host's, here the killed run's
/// lease with its host changed) is waited out: the rerun watches it expire, takes it over and
/// resumes from the last commit.
#[test]
fn a_lease_of_another_host_is_taken_over_once_it_expires() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-lease");
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    let (committed, mut lease) = killed_holding_the_lease(&moto, &bucket, &url, &out);
    // Five seconds more: longer than the rerun takes to start, even on a loaded machine.
    lease["host"] = "another-host".into();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    lease["expires_unix_ms"] = (now + 5000).into();
    bucket.put("p/.wgfit-lease", serde_json::to_vec(&lease).unwrap());
    let left = left_ms(&lease);
    assert!(left > 0, "the killed run's lease is unexpired: {lease}");

    let started = Instant::now();
    let mut b = start(&url, &out, &with_env(moto.port(), &[]));
    assert_eq!(
        training_from(&mut b),
        Some(committed),
        "resumes from the commit"
    );
    // A lease's end is a wall-clock time: the run resumed (after taking the lease over) no
    // earlier than it, by the clock leases are read with (which may drift from Instant's).
    assert_eq!(
        left_ms(&lease),
        0,
        "it resumed {:?} after starting, before the lease {left} ms from expiring had expired",
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

/// The store unreachable for longer than the lease lasts (the relay cut): the renewals fail
/// and are retried, and the run stops before its lease expires, saying why, without writing
/// anything more; a rerun once the store is back resumes from the last commit and ends
/// exactly.
#[test]
fn a_run_that_cannot_renew_its_lease_stops_before_it_expires() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-renew");
    let proxy = Proxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    let vars = with_env(proxy.port, &[("SLOW_MS", "100"), ("FREQ", "epoch")]);
    let mut a = start(&url, &out, &vars);
    assert!(training_from(&mut a).is_some());
    first_commit(&bucket, "p");
    // Past the commit's clean-up (its DELETE), well before the next save: the cut then hits
    // the renewals alone (a cut save fails with its own error first).
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    let before = objects(&bucket, "p");
    let output = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lost its lease") && err.contains("could not be renewed before it expired"),
        "{err}"
    );
    assert!(
        objects(&bucket, "p") == before,
        "nothing written after the cut"
    );
    let committed = bucket.committed_step("p").expect("the last commit stays");
    proxy.restore();
    let mut b = start(&url, &out, &vars);
    assert_eq!(
        training_from(&mut b),
        Some(committed),
        "resumes from the commit"
    );
    ends_exactly(b, &out, &expected);
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
    // The second weights upload: always made (see the_server_lost_in_the_middle_of_a_save_then_back).
    proxy.cut_at(2, "PUT /wgfit-blip/blip/ckpt-");
    let (cut, ended) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !proxy.is_cut() {
                if ended.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            cut.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(500));
            proxy.restore();
        });
        // Set however the run ends (a panic too), so that the watcher never waits forever.
        let _ended = SetOnDrop(&ended);
        let vars = with_env(proxy.port, &[("FREQ", "epoch")]);
        let (code, err) = run(&bucket.url("blip"), &out, &vars);
        assert_eq!(code, 0, "{err}");
    });
    assert!(cut.load(Ordering::SeqCst), "the outage happened");
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The store lost for good in the middle of `wgfit train`: the run stops (exit 4) with what
/// it trained written to `--output` before it reports the backup's failure, and the bucket
/// keeps its last commit. Nothing trained is lost with the store.
#[test]
fn a_run_whose_store_goes_away_keeps_what_it_trained_in_its_output() {
    use common::cli::{BIN, LONG};
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-gone");
    let proxy = Proxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let url = bucket.url("gone");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(LONG)
        .args(["--backup-dir", &url, "--output", "out.safetensors"])
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in common::s3::env(proxy.port) {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let committed = first_commit(&bucket, "gone");
    proxy.cut();
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    let out = tmp.path().join("out.safetensors");
    assert!(
        err.contains(&url) && err.contains(&out.file_name().unwrap().to_string_lossy()[..]),
        "{err}"
    );
    assert!(err.contains("the same command resumes"), "{err}");
    // A weights file evaluate takes (it carries what it needs: the activation, the scale).
    let e = std::process::Command::new(BIN)
        .args(["evaluate", "--weights", "out.safetensors"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    assert!(bucket.committed_step("gone").unwrap() >= committed);
}
