//! A backup directory on a real, small file system (a tmpfs this test mounts) that fills up
//! or turns read-only while a worker process trains with a save every batch: the save fails
//! with an error naming the path, the last committed state stays valid, no partial file is
//! left, and the next run resumes from it and ends exactly.
//!
//! Mounting needs root: an ordinary user's run repeats each test in a user and mount
//! namespace where it may mount, or says loudly that it could not (see `common::mount_ns`).

mod common;

use common::mount_ns::mount_here;
use common::worker::{self, reference, run_to_end, spawn, wait_for_training};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn worker() {
    worker::main();
}

/// A memory file system mounted for one test; unmounted (lazily, in case a file is still
/// open) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        Tmpfs::mount_kind(at, "tmpfs", &format!("size={size}"))
    }

    /// A ramfs: unbounded, and it refuses O_DIRECT.
    fn mount_ramfs(at: &Path) -> Tmpfs {
        Tmpfs::mount_kind(at, "ramfs", "defaults")
    }

    fn mount_kind(at: &Path, kind: &str, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", kind, "-o", options, kind])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a {kind} at {} failed (as root, or inside the namespace of mount_here)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }

    /// Remounts a tmpfs read-only or read-write. A remount to read-only fails (EBUSY) while a
    /// file is open for writing, so it is retried until it lands between two writes of the
    /// worker.
    ///
    /// The source ("tmpfs") is named so that mount(8) passes only `options` to the kernel:
    /// given the mount point alone it adds the options /proc/self/mountinfo shows, which in a
    /// user namespace include `uid=<the user outside>`, an id the namespace does not map, and
    /// the kernel refuses the remount (EINVAL).
    fn remount(&self, options: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new("mount")
                .args(["-o", &format!("remount,{options}"), "tmpfs"])
                .arg(&self.0)
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "remount,{options} kept failing");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits until the worker has committed a backup, so that the fault comes mid-run.
fn wait_for_commit(dir: &Path, child: &mut Child) {
    assert!(wait_for_training(child), "the worker starts training");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join(wgfit::checkpoint::LATEST).exists() {
        assert!(Instant::now() < deadline, "no commit within a minute");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the worker ended early"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Fills the file system holding `path` until the kernel says it is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => return, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// After the failed save: the error named the directory and `reason`, the committed state
/// verifies, no temporary file is left. Returns the committed step.
fn check_after_failed_save(dir: &Path, code: i32, err: &str, reason: &str) -> u64 {
    assert_eq!(code, 1, "the worker fails: {err}");
    assert!(
        err.contains(dir.to_str().unwrap()),
        "the error names the path: {err}"
    );
    assert!(
        err.to_lowercase().contains(&reason.to_lowercase()),
        "the error says '{reason}': {err}"
    );
    let info = wgfit::checkpoint::inspect(dir).unwrap();
    let wgfit::checkpoint::Outlook::Resume { sidecar, .. } = &info.rerun else {
        panic!("the last committed state still verifies: {:?}", info.rerun);
    };
    let sidecar = info.sidecars.iter().find(|s| &s.name == sidecar).unwrap();
    let state = sidecar.state.as_ref().unwrap();
    let partial: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wgfit-tmp-"))
        .collect();
    assert!(partial.is_empty(), "no partial file is left: {partial:?}");
    state.global_step
}

const VARS: [(&str, &str); 3] = [("FREQ", "1"), ("SLOW_MS", "4"), ("KEEP", "1")];

/// A worker training with its backup on a fresh 1 MiB tmpfs, past its first commit.
struct MidRun {
    /// Unmounted before `_tmp` goes (fields drop in this order).
    fs: Tmpfs,
    dir: PathBuf,
    out: PathBuf,
    child: Child,
    /// The final bits of the same run uninterrupted.
    expected: Vec<u8>,
    /// Holds the mount point and the reference run's files.
    _tmp: tempfile::TempDir,
}

impl MidRun {
    fn start() -> MidRun {
        let tmp = tempfile::tempdir().unwrap();
        let (expected, _) = reference(tmp.path(), &VARS);
        let fs = Tmpfs::mount(&tmp.path().join("mnt"), "1m");
        let dir = fs.0.join("backup");
        let out = tmp.path().join("out.bin");
        let mut child = spawn(&dir, &out, &VARS, None);
        wait_for_commit(&dir, &mut child);
        MidRun {
            fs,
            dir,
            out,
            child,
            expected,
            _tmp: tmp,
        }
    }
}

#[test]
fn a_file_system_that_fills_up_mid_run_fails_the_save_and_loses_nothing() {
    if !mount_here("a_file_system_that_fills_up_mid_run_fails_the_save_and_loses_nothing") {
        return;
    }
    let run = MidRun::start();
    let (dir, out) = (&run.dir, &run.out);
    let filler = run.fs.0.join("filler");
    fill(&filler);
    let output = run.child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    let step = check_after_failed_save(
        dir,
        output.status.code().unwrap_or(-1),
        &err,
        "No space left on device",
    );
    assert!(step > 0);

    // With the disk still full, a rerun restores (reading needs no space) and fails the same
    // way at its first save, committing nothing.
    let committed = std::fs::read(dir.join(wgfit::checkpoint::LATEST)).unwrap();
    let (code, err) = run_to_end(dir, out, &VARS, None);
    check_after_failed_save(dir, code, &err, "No space left on device");
    assert_eq!(
        std::fs::read(dir.join(wgfit::checkpoint::LATEST)).unwrap(),
        committed
    );

    std::fs::remove_file(&filler).unwrap();
    let (code, err) = run_to_end(dir, out, &VARS, None);
    assert_eq!(
        code, 0,
        "with room again the run resumes and completes: {err}"
    );
    assert_eq!(
        std::fs::read(out).unwrap(),
        run.expected,
        "final parameters equal the uninterrupted run's"
    );
}

#[test]
fn a_file_system_turning_read_only_mid_run_fails_the_save_and_loses_nothing() {
    if !mount_here("a_file_system_turning_read_only_mid_run_fails_the_save_and_loses_nothing") {
        return;
    }
    let run = MidRun::start();
    let (dir, out) = (&run.dir, &run.out);
    run.fs.remount("ro");
    let output = run.child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    let step = check_after_failed_save(dir, output.status.code().unwrap_or(-1), &err, "read-only");
    assert!(step > 0);

    run.fs.remount("rw");
    let (code, err) = run_to_end(dir, out, &VARS, None);
    assert_eq!(
        code, 0,
        "writable again, the run resumes and completes: {err}"
    );
    assert_eq!(std::fs::read(out).unwrap(), run.expected);
}

/// Files of 16 MiB and more are written past the page cache (O_DIRECT) where the file system
/// allows it, and the ordinary way where it does not (ramfs): the bytes are the same.
#[test]
fn large_files_are_written_exactly_with_and_without_direct_io() {
    if !mount_here("large_files_are_written_exactly_with_and_without_direct_io") {
        return;
    }
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fs = Tmpfs::mount_ramfs(&tmp.path().join("mnt"));
    // Not a multiple of the 4 KiB block, nor of the 1 MiB bounce buffer.
    let n = (16 << 20) + 4099;
    let bytes: Vec<u8> = (0..n as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    // ramfs refuses O_DIRECT: the write falls back to the ordinary path, with the same bytes.
    // (Where a file system takes the direct path is shown by tests/direct_write.rs.)
    for (dir, ramfs) in [(tmp.path(), false), (fs.0.as_path(), true)] {
        let path = dir.join("big.safetensors");
        let written = wgfit::checkpoint::write_atomically(&path, &bytes).unwrap();
        if ramfs {
            assert!(!written.direct_io, "ramfs took O_DIRECT?");
        }
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), n, "{}", path.display());
        assert!(back == bytes, "{}: contents differ", path.display());
    }
}
