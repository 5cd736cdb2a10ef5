//! The object-store protocol under injected faults, systematically: for each request of a run
//! on a bucket (the weights PUT of a save, the commit of `latest.json`, `previous.json` with
//! double_checkpoint, taking the lease, a lease renewal, the restore's GET, the removal's
//! delete), each fault of `common::fault_proxy` (delayed, dropped, landed with its response
//! dropped, replayed later, answered 503, reset) hits one request of that kind. After every case:
//!
//! - the run ended with its uninterrupted bits: one transient fault is within what the
//!   retries absorb (the lease lasts 6 s here, so a renewal delayed 1.5 s is transient);
//! - `latest.json`, where there is one, names a weights object that is there, and so does
//!   `previous.json`, an earlier commit (a replayed copy of an earlier write must
//!   not bring an older one back);
//! - a rerun without faults resumes from that commit (not from the start) and ends with the
//!   uninterrupted bits: the committed state verifies and is the run's.
//!
//! Every worker is a real process against `moto_server` (see `common/s3.rs`). The fault cases
//! with a second writer racing (a delayed commit after a takeover, a paused writer) are in
//! `object_store_faults.rs`.

mod common;

use common::fault_proxy::{Fault, FaultProxy, Target};
use common::s3::{Bucket, Moto, run, start, with_env};
use common::worker::{self, reference, training_from};
use std::time::Duration;

#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn worker() {
    worker::main();
}

const FAULTS: [Fault; 6] = [
    Fault::Delay(Duration::from_millis(1500)),
    Fault::DropRequest,
    Fault::DropResponse,
    Fault::Replay(Duration::from_millis(700)),
    Fault::Unavailable,
    Fault::Reset,
];

/// The worker's settings: an epoch save, the backup kept after the run (so that the final
/// commit can be checked) unless the case is the removal's.
fn settings(keep: bool, double: bool) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![("FREQ", "epoch"), ("SLOW_MS", "20")];
    if keep {
        vars.push(("KEEP", "1"));
    }
    if double {
        vars.push(("DOUBLE", "1"));
    }
    vars
}

/// Runs every fault on `target`, each on its own prefix, and checks the invariants. `before`
/// runs a first, faultless run on the prefix (for the restore's requests) and `keep` keeps
/// the backup after a successful run.
fn matrix(name: &str, target: Target, keep: bool, double: bool, before: bool) {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket(&format!("wgfit-{name}"));
    let proxy = FaultProxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let vars = settings(keep, double);
    let (expected, _) = reference(tmp.path(), &vars);
    for (i, fault) in FAULTS.into_iter().enumerate() {
        let case = format!(
            "{name}: {fault:?} on {} {}#{}",
            target.method, target.path, target.nth
        );
        let prefix = format!("case{i}");
        let url = bucket.url(&prefix);
        let out = tmp.path().join(format!("{prefix}.bin"));
        let mut env = with_env(proxy.port, &vars);
        env.push(("WGFIT_LEASE_SECONDS", "6".into()));
        if before {
            // A run stopped at its third epoch: a commit for the restore to read.
            let mut first = env.clone();
            first.push(("STOP_EPOCH", "3".into()));
            let (code, err) = run(&url, &out, &first);
            assert_eq!(code, 1, "{case}: the first run: {err}");
        }
        proxy.inject(target.clone(), fault);
        let (code, err) = run(&url, &out, &env);
        assert!(proxy.fired(), "{case}: the request never came");
        // One transient fault is within what the retries absorb: the run ends as if there
        // had been none.
        assert_eq!(code, 0, "{case}: {err}");
        // Nor does it take its own lease, whose answer was lost, for another run's.
        assert!(!err.contains("is leased by run"), "{case}: {err}");
        assert_eq!(std::fs::read(&out).unwrap(), expected, "{case}");
        proxy.clear();
        if !keep {
            let left = bucket.names(&prefix);
            assert!(left.is_empty(), "{case}: the removal left {left:?}");
        }
        let committed = check_commit(&bucket, &prefix, &case);
        // Replays land late: let them, before the rerun reads the bucket.
        std::thread::sleep(Duration::from_millis(800));
        bucket.check_previous(&prefix, &case);
        let mut child = start(&url, &out, &env);
        let from = training_from(&mut child);
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{case}: the rerun: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        if let Some(step) = committed {
            assert_eq!(
                from,
                Some(step),
                "{case}: the rerun resumes from the commit"
            );
        }
        assert_eq!(std::fs::read(&out).unwrap(), expected, "{case}: the rerun");
        eprintln!("{case}: commit {committed:?}, rerun from {from:?}: ok");
    }
}

/// The global step `latest.json` commits, after checking that it names weights that are in
/// the bucket with the length it records.
fn check_commit(bucket: &Bucket, prefix: &str, case: &str) -> Option<u64> {
    let bytes = bucket.get(&format!("{prefix}/latest.json"))?;
    let sidecar: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let file = sidecar["weights"]["file"].as_str().unwrap();
    let weights = bucket
        .get(&format!("{prefix}/{file}"))
        .unwrap_or_else(|| panic!("{case}: latest.json names {file}, which is not there"));
    assert_eq!(
        weights.len() as u64,
        sidecar["weights"]["bytes"].as_u64().unwrap(),
        "{case}: {file}"
    );
    sidecar["global_step"].as_u64()
}

fn put(path: &'static str, nth: usize) -> Target {
    Target {
        method: "PUT",
        path,
        body: "",
        nth,
    }
}

#[test]
fn faults_on_the_weights_of_a_save() {
    matrix("weights", put("/ckpt-", 2), true, false, false);
}

#[test]
fn faults_on_a_commit() {
    matrix("commit", put("/latest.json", 2), true, false, false);
}

#[test]
fn faults_on_previous_json_with_double_checkpoint() {
    // The first: every run with two commits makes it (a save that finds the writer busy is
    // merged into the next, so later ones may not come).
    matrix("previous", put("/previous.json", 1), true, true, false);
}

/// A copy of the run's first `previous.json` PUT replayed after the run has ended (its later
/// `previous.json` writes done): conditional on the version the run then knew, it fails when
/// it lands, and `previous.json` stays an earlier commit whose weights are there, not the
/// first one's (removed as superseded).
#[test]
fn a_previous_json_put_replayed_after_the_run_fails_its_condition() {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket("wgfit-replayed-previous");
    let proxy = FaultProxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let vars = settings(true, true);
    let (expected, _) = reference(tmp.path(), &vars);
    let url = bucket.url("p");
    let out = tmp.path().join("out.bin");
    // Slow epochs (1.2 s), so that the run makes several previous.json writes.
    let mut slow = with_env(proxy.port, &vars);
    slow.retain(|(k, _)| *k != "SLOW_MS");
    slow.push(("SLOW_MS", "100".into()));
    let replay_after = Duration::from_secs(10);
    proxy.inject(put("/previous.json", 1), Fault::Replay(replay_after));
    let (code, err) = run(&url, &out, &slow);
    assert_eq!(code, 0, "{err}");
    assert!(proxy.fired(), "the run wrote no previous.json");
    assert_eq!(std::fs::read(&out).unwrap(), expected);
    // The replay lands `replay_after` after the first previous.json PUT, which came before
    // the run ended (and, where the run took less than that, after its last write).
    std::thread::sleep(replay_after + Duration::from_secs(1));
    bucket.check_previous("p", "after the replay landed");
}

#[test]
fn faults_on_taking_the_lease() {
    matrix("take", put("/.wgfit-lease", 1), true, false, false);
}

#[test]
fn faults_on_a_lease_renewal() {
    matrix("lease", put("/.wgfit-lease", 3), true, false, false);
}

#[test]
fn faults_on_the_restore() {
    let get = Target {
        method: "GET",
        path: "/latest.json",
        body: "",
        nth: 1,
    };
    matrix("restore", get, true, false, true);
}

#[test]
fn faults_on_the_removal_after_a_finished_run() {
    // S3's delete is a bulk-delete POST naming the object; latest.json goes only at the end.
    let delete = Target {
        method: "POST",
        path: "?delete",
        body: "/latest.json",
        nth: 1,
    };
    matrix("removal", delete, false, false, false);
}

/// A second writer racing where it matters: run A is cut off from the store (every request it
/// makes waits, then lands) from one request of `target` on, for longer than its lease; run
/// B, straight to the store, takes the backup over, fences it and trains on. Then A's held
/// requests land: A stops with an error naming the backup, `latest.json` still names weights
/// that exist, and B ends with the uninterrupted bits (it resumed from A's last commit).
fn takeover(slug: &str, name: &str, target: Target, double: bool) {
    let Some(moto) = Moto::start() else { return };
    let bucket = moto.bucket(&format!("wgfit-take-{slug}"));
    let proxy = FaultProxy::start(moto.port());
    let tmp = tempfile::tempdir().unwrap();
    let mut vars = settings(true, double);
    let (expected, _) = reference(tmp.path(), &vars);
    let case = format!("takeover during {name}");
    let url = bucket.url("p");
    // A: slow (300 ms a batch), so that the partition falls in the middle of its run.
    vars.retain(|(k, _)| *k != "SLOW_MS");
    let mut slow = vars.clone();
    slow.push(("SLOW_MS", "300"));
    proxy.inject(target, Fault::Partition(Duration::from_secs(8)));
    let a = start(
        &url,
        &tmp.path().join("a.bin"),
        &with_env(proxy.port, &slow),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !proxy.fired() {
        assert!(std::time::Instant::now() < deadline, "{case}: never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = tmp.path().join("b.bin");
    let mut b = start(&url, &out, &with_env(moto.port(), &slow));
    let from = training_from(&mut b).expect("B trains");
    let a = a.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&a.stderr);
    assert_eq!(a.status.code(), Some(1), "{case}: A: {err}");
    assert!(err.contains(&url), "{case}: A: {err}");
    check_commit(&bucket, "p", &case);
    let b = b.wait_with_output().unwrap();
    assert!(
        b.status.success(),
        "{case}: B: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), expected, "{case}: B");
    let last = check_commit(&bucket, "p", &case);
    eprintln!("{case}: B resumed from {from}, committed {last:?}: ok; A: {err}");
}

#[test]
fn a_takeover_while_a_save_is_held_in_the_network() {
    takeover("weights", "the weights PUT", put("/ckpt-", 2), false);
    takeover("previous", "previous.json", put("/previous.json", 1), true);
}

#[test]
fn a_takeover_while_a_commit_is_held_in_the_network() {
    takeover("commit", "the commit", put("/latest.json", 2), false);
}

#[test]
fn a_takeover_while_a_renewal_or_a_clean_up_is_held_in_the_network() {
    takeover("lease", "a renewal", put("/.wgfit-lease", 3), false);
    let clean_up = Target {
        method: "POST",
        path: "?delete",
        body: "previous.json",
        nth: 2,
    };
    takeover("clean-up", "the clean-up", clean_up, false);
}
