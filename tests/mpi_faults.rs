//! Faults of a 2-rank job (`--features mpi`; needs `mpirun`): a rank killed at random moments
//! ends the whole job (no rank waits for it for ever) and the rerun resumes exactly; SIGTERM
//! to either rank stops both at the same batch, rank 0 saves, all exit 143, and the rerun ends
//! with the uninterrupted run's bytes.
#![cfg(feature = "mpi")]

mod mpi_support;

use mpi_support::*;
use std::path::Path;
use std::time::Duration;

/// About 3 s of training on 2 ranks on lavapipe, saving every 3 batches, the history after every epoch.
const LONG: &[&str] = &[
    "--layers",
    "128,10",
    "--epochs",
    "150",
    "--batch-size",
    "64",
    "--save-freq",
    "3",
    "--output",
    "out.safetensors",
    "--verbose",
    "0",
    "--history",
    "history.csv",
];

fn args() -> Vec<&'static str> {
    TRAIN.iter().chain(LONG).copied().collect()
}

/// The uninterrupted 2-rank run's output bytes.
fn uninterrupted() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    digits_1792(dir.path());
    let out = mpirun(dir.path(), 2, &args()).output().expect("run mpirun");
    assert_ok(&out);
    std::fs::read(dir.path().join("out.safetensors")).expect("output")
}

/// A small deterministic generator for the kill times (no dependency for it).
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// The global step of the state committed in `dir`'s backup.
fn committed_step(dir: &Path) -> u64 {
    committed(dir).expect("a committed state").0
}

/// How many kills a storm makes: `WGFIT_MPI_KILLS`, 4 by default.
fn kills() -> usize {
    std::env::var("WGFIT_MPI_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// What a resumed run says of the batches done before it: `(12 batches done)`.
fn batches_done(step: u64) -> String {
    match step {
        1 => "(1 batch done)".to_string(),
        n => format!("({n} batches done)"),
    }
}

/// Reruns the job in `dir` to completion and checks it resumed from the committed state (a
/// rerun that ignored the backup would end with the same bytes) and ends with `expected`'s.
fn rerun_matches(dir: &Path, expected: &[u8]) {
    let step = committed_step(dir);
    let out = wait_at_most(
        mpirun(dir, 2, &args()).spawn().expect("mpirun"),
        Duration::from_secs(300),
    );
    assert_ok(&out);
    let done = batches_done(step);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&done),
        "the rerun did not resume from global step {step}: {}",
        text(&out)
    );
    let hashes = rank_hashes(&out, 2);
    assert_eq!(hashes[0], hashes[1]);
    let got = std::fs::read(dir.join("out.safetensors")).expect("output");
    assert!(
        got == expected,
        "the resumed 2-rank run differs from the uninterrupted one"
    );
}

#[test]
fn sigkill_storm_on_one_rank_ends_the_job_and_the_rerun_is_exact() {
    let _one = one_test_at_a_time();
    let expected = uninterrupted();
    let dir = tempfile::tempdir().expect("temp dir");
    digits_1792(dir.path());
    let kills = kills();
    let mut seed = 2026u64;
    let mut killed = 0;
    for _ in 0..kills {
        let mut job = mpirun(dir.path(), 2, &args()).spawn().expect("mpirun");
        let pids = rank_pids(&mut job, 2);
        wait_for_epochs(
            &dir.path().join("history.csv"),
            1 + (next(&mut seed) % 10) as usize,
            &mut job,
        );
        std::thread::sleep(Duration::from_millis(next(&mut seed) % 300));
        let rank = (next(&mut seed) % 2) as usize;
        signal(pids[rank], libc::SIGKILL);
        // The other rank must not wait for the dead one for ever: every rank ends.
        let out = wait_for_ranks(job, &pids, Duration::from_secs(60));
        if !out.status.success() {
            killed += 1;
        }
        if dir.path().join("out.safetensors").exists() {
            break; // it finished before the kill landed
        }
    }
    assert!(killed > 0, "no kill landed during training");
    rerun_matches(dir.path(), &expected);
}

/// The job script of the storm: the 4-rank run with global batch 64 (micro-batches of 16 rows,
/// 4 per update), continued by `--elastic` on whatever ranks a rerun gets.
fn elastic_args() -> Vec<&'static str> {
    // Saves every 2 batches: a commit of 2 ranks then ends a step of 4 too (4 micro-batches).
    // 40 epochs: 4 ranks on 2 cores are slow under MPICH, whose ranks poll while they wait.
    let mut out: Vec<&str> = args()
        .into_iter()
        .map(|a| match a {
            "3" => "2",
            "150" => "40",
            a => a,
        })
        .collect();
    out.push("--elastic");
    out
}

/// The committed state's global step and the ranks that saved it, if any.
fn committed(dir: &Path) -> Option<(u64, u64)> {
    let latest = std::fs::read(dir.join("out.backup/latest.json")).ok()?;
    let sidecar: serde_json::Value = serde_json::from_slice(&latest).expect("a sidecar");
    let ranks = sidecar["fingerprint"]["ranks"].as_u64().expect("ranks");
    Some((sidecar["global_step"].as_u64().expect("global_step"), ranks))
}

/// Waits until the history at `path` has more than `epochs` epochs (true) or the job ended
/// (false: it finished training first).
fn epochs_or_end(path: &Path, epochs: usize, job: &mut std::process::Child) -> bool {
    let start = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(path).map_or(0, |t| t.lines().count());
        if lines > epochs {
            return true;
        }
        if job.try_wait().expect("the job's status").is_some() {
            return false;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "epoch {epochs} never came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILL to random ranks of a job script with `--elastic` rerun on 4 ranks or on 2 (the other
/// count than the last run's where the committed state ends a step of it; 4 until there is
/// one), killed at random moments: every
/// rerun resumes from the commit (its step restated for its rank count), and the last ends
/// with the uninterrupted 4-rank run's bytes.
#[test]
fn sigkill_storm_across_4_and_2_ranks_ends_exact() {
    let _one = one_test_at_a_time();
    let reference = tempfile::tempdir().expect("temp dir");
    digits_1792(reference.path());
    let out = mpirun(reference.path(), 4, &elastic_args())
        .output()
        .expect("mpirun");
    assert_ok(&out);
    let expected = std::fs::read(reference.path().join("out.safetensors")).expect("output");

    let dir = tempfile::tempdir().expect("temp dir");
    digits_1792(dir.path());
    let kills = kills();
    let mut seed = 7u64;
    let (mut killed, mut counts) = (0, Vec::new());
    for round in 0..=kills {
        let saved = committed(dir.path());
        // 4 ranks only where the commit ends one of their steps (a multiple of 4 micro-batches).
        // The other count than the last run's where the commit allows it.
        let ranks = match saved {
            None => 4,
            Some((step, from)) if (step * from) % 4 != 0 => 2,
            Some(_) if counts.last() == Some(&4) => 2,
            Some(_) => 4,
        };
        counts.push(ranks);
        let mut job = mpirun(dir.path(), ranks, &elastic_args())
            .spawn()
            .expect("mpirun");
        let last = round == kills;
        let mut pids = Vec::new();
        if !last {
            // Killed 1 to 4 epochs into this run (the history has a line per epoch and its
            // header), at a random moment of that epoch.
            pids = rank_pids(&mut job, ranks);
            let history = dir.path().join("history.csv");
            let lines = std::fs::read_to_string(&history).map_or(1, |t| t.lines().count());
            let epochs = lines.max(1) + (next(&mut seed) % 4) as usize;
            if epochs_or_end(&history, epochs, &mut job) {
                std::thread::sleep(Duration::from_millis(next(&mut seed) % 300));
                signal(
                    pids[(next(&mut seed) % ranks as u64) as usize],
                    libc::SIGKILL,
                );
            }
        }
        let out = if last {
            wait_at_most(job, Duration::from_secs(300))
        } else {
            wait_for_ranks(job, &pids, Duration::from_secs(60))
        };
        if let Some((step, from)) = saved {
            let at = step * from / ranks as u64;
            let done = batches_done(at);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&done),
                "round {round} on {ranks} ranks did not resume from {step} steps of {from}: {}",
                text(&out)
            );
            // --elastic speaks only where the backup's rank count differs.
            let (batch, accumulate) = if ranks == 4 { (64, 1) } else { (32, 2) };
            let line = format!("--batch-size {batch} --accumulate {accumulate}");
            assert_eq!(
                stderr.contains(&line),
                from != ranks as u64,
                "{}",
                text(&out)
            );
        }
        if last {
            assert_ok(&out);
        } else if !out.status.success() {
            killed += 1;
        }
        if dir.path().join("out.safetensors").exists() {
            break; // it finished before the kill landed
        }
    }
    assert!(killed > 0, "no kill landed during training");
    eprintln!("storm: runs on {counts:?} ranks, {killed} killed");
    let got = std::fs::read(dir.path().join("out.safetensors")).expect("output");
    assert!(
        got == expected,
        "the run killed on ranks {counts:?} differs from the uninterrupted 4-rank run"
    );
}

fn sigterm_to(rank: usize) {
    let expected = uninterrupted();
    let dir = tempfile::tempdir().expect("temp dir");
    digits_1792(dir.path());
    let mut job = mpirun(dir.path(), 2, &args()).spawn().expect("mpirun");
    let pids = rank_pids(&mut job, 2);
    wait_for_epochs(&dir.path().join("history.csv"), 5, &mut job);
    signal(pids[rank], libc::SIGTERM);
    let out = wait_at_most(job, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // Rank 0 saved and says where; rank 1 stopped at the same batch.
    let saved = err
        .split("preempted by signal 15: state saved ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or_else(|| panic!("rank 0 did not save: {}", text(&out)));
    assert!(
        err.contains(&format!(
            "stopped by signal 15 {saved}, together with every rank"
        )),
        "the ranks did not stop at the same batch ({saved}): {}",
        text(&out)
    );
    assert!(!dir.path().join("out.safetensors").exists());
    rerun_matches(dir.path(), &expected);
}

#[test]
fn sigterm_to_rank_1_stops_every_rank_and_the_rerun_is_exact() {
    let _one = one_test_at_a_time();
    sigterm_to(1);
}

#[test]
fn sigterm_to_rank_0_stops_every_rank_and_the_rerun_is_exact() {
    let _one = one_test_at_a_time();
    sigterm_to(0);
}

/// A 2-rank job preempted and resumed as one process: with the same global batch it is
/// refused (one process would sum one share of 64, not two of 32), naming the arguments of the
/// same one-rank run, with nothing changed; with those (`--batch-size 32 --accumulate 2`) it
/// resumes and ends with the uninterrupted 2-rank run's bytes.
#[test]
fn resuming_on_another_rank_count_is_exact_with_the_one_rank_arguments() {
    let _one = one_test_at_a_time();
    let expected = uninterrupted();
    let dir = tempfile::tempdir().expect("temp dir");
    digits_1792(dir.path());
    let mut job = mpirun(dir.path(), 2, &args()).spawn().expect("mpirun");
    let pids = rank_pids(&mut job, 2);
    wait_for_epochs(&dir.path().join("history.csv"), 5, &mut job);
    signal(pids[0], libc::SIGTERM);
    let out = wait_at_most(job, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    let sidecar = dir.path().join("out.backup/latest.json");
    let before = std::fs::read(&sidecar).expect("a committed state");

    let out = wgfit(dir.path(), &args()).output().expect("wgfit");
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("on 1 rank(s) it resumes exactly with --batch-size 32 --accumulate 2"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&sidecar).expect("the sidecar"), before);
    // 3 ranks cannot share its 2 micro-batches per update: --elastic refuses, naming 1 and 2.
    let out = wait_at_most(
        mpirun(dir.path(), 3, &elastic_args())
            .spawn()
            .expect("mpirun"),
        Duration::from_secs(60),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("2 micro-batches per update and 56 per epoch, which 3 rank(s) cannot share equally; run it on [1, 2] rank(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&sidecar).expect("the sidecar"), before);

    let mut one_rank: Vec<&str> = args()
        .into_iter()
        .map(|a| if a == "64" { "32" } else { a })
        .collect();
    one_rank.extend(["--accumulate", "2"]);
    let out = wgfit(dir.path(), &one_rank).output().expect("wgfit");
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming from the backup"),
        "{}",
        text(&out)
    );
    let got = std::fs::read(dir.path().join("out.safetensors")).expect("output");
    assert!(
        got == expected,
        "one process did not end with the 2-rank bits"
    );
}
