//! The SIGKILL storm, on a local directory or an object store: kills at random moments of a
//! run saving every batch, restarting after each; the run then completes exactly.

use super::worker::{env, reference, spawn, training_from};
use std::path::{Path, PathBuf};

/// Where a storm's backup lives, and how the test reads what is committed there.
pub struct Backup<'a> {
    /// The directory or URL the worker gets.
    pub location: PathBuf,
    /// The global step committed now, if any.
    pub committed_step: Box<dyn Fn() -> Option<u64> + 'a>,
    /// What is left of the backup (nothing once a finished run removed it).
    pub left: Box<dyn Fn() -> Vec<String> + 'a>,
}

/// SIGKILLs at random moments of a run saving every batch (`WGFIT_KILLS` of them, else
/// `default_kills`), restarting after each; the run then completes exactly.
pub fn kill_storm(
    tmp: &Path,
    backup: &Backup,
    what: &str,
    settings: &[(&str, &str)],
    default_kills: usize,
) {
    let mut vars = vec![("FREQ", "1")];
    vars.extend_from_slice(settings);
    let (expected, mut duration) = reference(tmp, &vars);
    let kills: usize = env("WGFIT_KILLS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_kills);
    let dir = &backup.location;
    let committed_step = |_: &PathBuf| (backup.committed_step)();
    let out = tmp.join("out.bin");
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut landed = 0;
    // The global steps restarts resumed at (where a state was committed before them), one
    // list per run: a run that finishes removes its backup, and the next starts afresh.
    let mut resumes = vec![Vec::new()];
    let mut previous_found_a_commit = true;
    for _ in 0..kills {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
        // A random moment of the training phase, where the saves are (a restarted run resumes,
        // so it has less left to do: kill within the first half).
        let at = duration.mul_f64(0.5 * (rng >> 11) as f64 / (1u64 << 53) as f64);
        let committed = committed_step(dir);
        if committed.is_none() && !resumes.last().is_none_or(Vec::is_empty) {
            // Nothing committed any more (a kill landed while the finished run removed its
            // backup): this restart begins a new run.
            resumes.push(Vec::new());
        }
        let spawned = std::time::Instant::now();
        let mut child = spawn(dir, &out, &vars, None);
        let from = training_from(&mut child);
        let started = from.is_some();
        if let (Some(committed), Some(from)) = (committed, from) {
            // A restart resumes from what was committed, not from the beginning. (At least
            // that: on object storage the killed run's last commit, already sent, may land
            // after `committed` was read and before the restart restores.)
            assert!(
                from >= committed,
                "the restart resumed from {from}, before the commit at {committed}"
            );
            resumes.last_mut().unwrap().push(from);
        }
        if committed.is_none() && !previous_found_a_commit {
            // Two fresh starts in a row: this one is killed only after its first commit, so
            // that the storm goes on resuming even where the first step (which compiles the
            // kernels) and the first save take longer than the moments drawn from the
            // reference run, as under the load of the other tests.
            wait_for_a_commit(&committed_step, dir, &mut child);
        }
        previous_found_a_commit = committed.is_some();
        std::thread::sleep(at);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            // It finished before the kill: a fresh run starts next; nothing to count. Runs
            // go faster than the reference did (which ran under more load): draw the next
            // moments from this run's length.
            duration = duration.min(spawned.elapsed());
            std::fs::remove_file(&out).unwrap();
            resumes.push(Vec::new());
        } else if started {
            landed += 1;
        }
    }
    // The final run must resume from what killed runs left: if the last restart finished
    // (and removed its backup), kill fresh runs early until one has committed a state.
    let mut extra = 0;
    while committed_step(dir).is_none() {
        assert!(
            extra < 20,
            "no state committed after {extra} extra restarts"
        );
        extra += 1;
        let mut child = spawn(dir, &out, &vars, None);
        training_from(&mut child);
        // Killed once it has committed a state (or ended), not after a share of the reference
        // run: a fresh process compiles its kernels on its first step, which under the load of
        // the other tests may take longer than the whole reference run took.
        wait_for_a_commit(&committed_step, dir, &mut child);
        child.kill().unwrap();
        if child.wait().unwrap().success() {
            std::fs::remove_file(&out).unwrap();
        }
    }
    let committed = committed_step(dir);
    let mut child = spawn(dir, &out, &vars, None);
    let from = training_from(&mut child);
    assert!(
        from.is_some() && from >= committed,
        "the final run resumes from the last commit ({committed:?}), not {from:?}"
    );
    let output = child.wait_with_output().unwrap();
    let (code, err) = (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert_eq!(code, 0, "the run completes after {landed} kills: {err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        expected,
        "final parameters equal the uninterrupted run's"
    );
    let left = (backup.left)();
    assert!(
        left.is_empty(),
        "the finished run removed its backup: {left:?} left"
    );
    for run in &resumes {
        assert!(
            run.windows(2).all(|w| w[0] <= w[1]),
            "within a run, the resumed position advances: {resumes:?}"
        );
    }
    assert!(
        resumes.iter().any(|run| !run.is_empty()),
        "some restart found a committed state and resumed from it: {resumes:?}"
    );
    eprintln!(
        "survived {landed} SIGKILLs ({what}), run of {duration:?}, resumed at {resumes:?}, \
         the final run at {from:?} after {extra} extra restarts"
    );
    assert!(
        landed >= kills / 2,
        "most kills landed while the worker ran ({landed}/{kills})"
    );
}

/// Waits until a state is committed in `dir`, `child` has ended, or two minutes have passed.
fn wait_for_a_commit(
    committed_step: &dyn Fn(&PathBuf) -> Option<u64>,
    dir: &PathBuf,
    child: &mut std::process::Child,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while committed_step(dir).is_none()
        && child.try_wait().unwrap().is_none()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
