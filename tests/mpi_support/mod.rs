//! Running `wgfit train` under `mpirun` on this machine: the data, the launcher command, the
//! ranks' process ids (to signal one), and the summary a rank prints.
#![allow(dead_code)]

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wgfit");

/// The first 1792 bundled digits (28 batches of 64: every rank has rows in every batch), as
/// CSV in `dir`; pixels are scaled by `--scale 0.0625` in [`TRAIN`].
pub fn digits_1792(dir: &Path) -> PathBuf {
    let gz = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"))
        .expect("bundled digits");
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(&gz[..]));
    let path = dir.join("digits1792.csv");
    let mut out = std::fs::File::create(&path).expect("create data");
    for line in reader.lines().take(1792) {
        writeln!(out, "{}", line.expect("gzip line")).expect("write data");
    }
    path
}

/// Held by every test of an MPI test binary: its tests run one at a time. Waiting ranks poll,
/// so two jobs at once on 2 cores each took twice as long and came near the tests' time
/// limits (tests/mpi_faults.rs: 311 s with two tests at a time, 197 s one at a time under
/// Open MPI; about 775 s and 398 s under MPICH).
pub fn one_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A failed test poisons the lock; the next test still runs.
    ONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `wgfit train` on the digits of [`digits_1792`] (add `--verbose`).
pub const TRAIN: &[&str] = &["train", "--data", "digits1792.csv", "--scale", "0.0625"];

/// Quiet: `mpirun` gives the ranks a terminal, where wgfit would draw progress bars.
pub const QUIET: &[&str] = &["--verbose", "0"];

/// `mpirun -np N wgfit <args>` in `dir`, through [`launcher`].
pub fn mpirun(dir: &Path, ranks: usize, args: &[&str]) -> Command {
    let mut c = launcher(ranks);
    c.arg(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// `mpirun -np N`: the launcher `WGFIT_MPIRUN` names (e.g. `mpirun.mpich`), else `mpirun`.
/// Open MPI's is told `--oversubscribe` (2 cores may host more ranks) and, as root,
/// `--allow-run-as-root`; MPICH's Hydra needs neither.
pub fn launcher(ranks: usize) -> Command {
    let program = std::env::var("WGFIT_MPIRUN").unwrap_or_else(|_| "mpirun".into());
    let mut c = Command::new(&program);
    if is_open_mpi(&program) {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            c.arg("--allow-run-as-root");
        }
        c.arg("--oversubscribe");
    }
    c.args(["-np", &ranks.to_string()]);
    c
}

/// Whether `program --version` says it is Open MPI's launcher.
fn is_open_mpi(program: &str) -> bool {
    let out = Command::new(program)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{program} --version: {e}"));
    String::from_utf8_lossy(&out.stdout).contains("Open MPI")
}

/// One `wgfit` process in `dir`, without a launcher.
pub fn wgfit(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    c
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "failed: {}", text(o));
}

/// The `rank r parameters sha256:` value every rank printed, in rank order.
pub fn rank_hashes(o: &Output, ranks: usize) -> Vec<String> {
    let out = String::from_utf8_lossy(&o.stdout);
    (0..ranks)
        .map(|r| {
            let prefix = format!("rank {r} parameters sha256: ");
            // mpirun interleaves the ranks' output, not always at line starts.
            out.split(prefix.as_str())
                .nth(1)
                .and_then(|rest| rest.get(..64))
                .unwrap_or_else(|| panic!("no `{prefix}` in\n{}", text(o)))
                .to_string()
        })
        .collect()
}

/// The process id of each rank of the job `mpirun` (the child) started on this machine, by
/// rank, once all `ranks` run: its descendants with a rank in their environment (Open MPI's
/// `OMPI_COMM_WORLD_RANK`, Hydra's `PMI_RANK`; Hydra starts them under a proxy).
pub fn rank_pids(mpirun: &mut Child, ranks: usize) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let mut found = vec![None; ranks];
        for pid in descendants(mpirun.id()) {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let rank = env
                .split(|&b| b == 0)
                .find_map(|v| {
                    v.strip_prefix(b"OMPI_COMM_WORLD_RANK=")
                        .or_else(|| v.strip_prefix(b"PMI_RANK="))
                })
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok());
            if let Some(r) = rank.filter(|&r| r < ranks) {
                found[r] = Some(pid);
            }
        }
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
        if let Ok(Some(status)) = mpirun.try_wait() {
            panic!("mpirun ended ({status}) before its {ranks} ranks were seen");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the ranks never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes descended from `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": the parent is the field after the state.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let descends = |mut pid: u32| {
        while let Some(&p) = parent.get(&pid) {
            if p == root {
                return true;
            }
            if p <= 1 {
                return false;
            }
            pid = p;
        }
        false
    };
    parent
        .keys()
        .copied()
        .filter(|&pid| descends(pid))
        .collect()
}

/// Waits until `path` exists while `child` runs.
pub fn wait_for(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mpirun ended ({status}) before {} appeared", path.display());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` at most `limit`: a job whose rank died must end, never hang.
pub fn wait_at_most(child: Child, limit: Duration) -> Output {
    let id = child.id();
    let output = wait_in_thread(child);
    match output.recv_timeout(limit) {
        Ok(out) => out.expect("wait for mpirun"),
        Err(_) => end_hung_job(
            id,
            &output,
            &format!("mpirun {id} still ran after {limit:?}"),
        ),
    }
}

/// How long `mpirun` may outlive its ranks in [`wait_for_ranks`].
const LAUNCHER_GRACE: Duration = Duration::from_secs(20);

/// Waits for a job one of whose ranks was killed: every rank in `ranks` must end within
/// `limit` (none waits for the dead one for ever). Open MPI 4.1.4's `mpirun` can then stay,
/// deadlocked in its own PMIx finalize, after every rank has ended (seen under load: its main
/// thread waiting on a lock in `PMIx_server_finalize`, a rank left unreaped); a launcher that
/// outlives its ranks by [`LAUNCHER_GRACE`] is killed, and the test goes on with what it
/// printed.
pub fn wait_for_ranks(child: Child, ranks: &[u32], limit: Duration) -> Output {
    assert!(!ranks.is_empty(), "no ranks to wait for");
    let id = child.id();
    let output = wait_in_thread(child);
    let start = Instant::now();
    let mut ranks_ended: Option<Instant> = None;
    loop {
        if let Ok(out) = output.recv_timeout(Duration::from_millis(50)) {
            return out.expect("wait for mpirun");
        }
        if ranks_ended.is_none() && ranks.iter().all(|&pid| has_ended(pid)) {
            ranks_ended = Some(Instant::now());
        }
        match ranks_ended {
            Some(at) if at.elapsed() > LAUNCHER_GRACE => {
                eprintln!(
                    "mpirun {id} outlived its ranks by {LAUNCHER_GRACE:?} (Open MPI's \
                     finalize after a killed rank): killed"
                );
                // SAFETY: kill has no memory-safety preconditions; the launcher is ours.
                unsafe { libc::kill(id as i32, libc::SIGKILL) };
                return output
                    .recv_timeout(Duration::from_secs(10))
                    .expect("mpirun's output after SIGKILL")
                    .expect("wait for mpirun");
            }
            None if start.elapsed() > limit => {
                // A launcher deadlocked as above would not pass a signal on: the ranks left
                // polling would slow every later test.
                for &pid in ranks {
                    signal(pid, libc::SIGKILL);
                }
                end_hung_job(
                    id,
                    &output,
                    &format!("a rank of mpirun {id} still ran after {limit:?}"),
                )
            }
            _ => {}
        }
    }
}

/// Whether process `pid` has ended: gone, or a zombie its parent has not reaped.
fn has_ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}

/// `child`'s output, waited for on a thread of its own.
fn wait_in_thread(child: Child) -> std::sync::mpsc::Receiver<std::io::Result<Output>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx
}

/// Ends the hung job `id` (mpirun passes SIGTERM to its ranks and ends them; SIGKILL if it
/// does not) and fails the test.
fn end_hung_job(
    id: u32,
    output: &std::sync::mpsc::Receiver<std::io::Result<Output>>,
    what: &str,
) -> ! {
    // SAFETY: kill has no memory-safety preconditions; the job is ours.
    unsafe { libc::kill(id as i32, libc::SIGTERM) };
    if output.recv_timeout(Duration::from_secs(10)).is_err() {
        // SAFETY: as above.
        unsafe { libc::kill(id as i32, libc::SIGKILL) };
    }
    panic!("{what}: the job hung");
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions; the process is one of our job's ranks.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits until rank 0's `--history` CSV at `path` lists `epochs` epochs (it is rewritten
/// after every epoch): training is under way. (Neither the backup's first commit, which may
/// land late while the ranks keep 2 cores busy, nor stdout, which `mpirun` forwards to a pipe
/// late, tells it in time.)
pub fn wait_for_epochs(path: &Path, epochs: usize, child: &mut Child) {
    let start = Instant::now();
    loop {
        let lines = std::fs::read_to_string(path).map_or(0, |t| t.lines().count());
        if lines > epochs {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mpirun ended ({status}) before epoch {epochs}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "epoch {epochs} never came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs this test binary's ignored `rank` test on `ranks` ranks with `CASE` set to `case`:
/// what the ranks printed, and how long the job took. A job that runs past 60 s (a rank waits
/// for ever) or fails is a test failure.
pub fn run_ranks(case: &str, ranks: usize) -> (String, Duration) {
    run_ranks_with(case, ranks, &[])
}

/// [`run_ranks`] with the variables `env` set for every rank.
pub fn run_ranks_with(case: &str, ranks: usize, env: &[(&str, &str)]) -> (String, Duration) {
    let started = Instant::now();
    let mut child = launcher(ranks)
        .arg(std::env::current_exe().unwrap())
        .args([
            "rank",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CASE", case)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let mut out = String::new();
            let _ = child.stdout.take().unwrap().read_to_string(&mut out);
            panic!("case {case}: the job still runs after 60 s (a rank waits for ever):\n{out}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "case {case}: {:?}\n{out}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    (out, started.elapsed())
}

/// The line rank `r` printed as `rank r: …` (what follows the prefix).
pub fn line(out: &str, r: usize) -> String {
    let prefix = format!("rank {r}: ");
    out.lines()
        .find_map(|l| l.find(&prefix).map(|at| l[at + prefix.len()..].to_string()))
        .unwrap_or_else(|| panic!("no line of rank {r} in\n{out}"))
}
