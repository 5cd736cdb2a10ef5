//! The backup touches nothing that is not its own: a directory that is not a wgfit backup is
//! refused untouched, cleanup spares files wgfit cannot prove it wrote, nothing is followed
//! out of the directory or waited on, and one run holds the lock from restore to removal.

mod common;

use common::cli::{stderr, wgfit};
use common::{data, dir_contents, kept_backup, model, options, resume_error};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;
use wgfit::checkpoint::{self, BackupDir, LATEST, MARKER};
use wgfit::{BackupAndRestore, Error};

/// The reproduction: a directory with files named like wgfit's.
fn foreign_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ckpt-1.safetensors"), "mine\n").unwrap();
    std::fs::write(dir.join("previous.json"), "{}\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "x\n").unwrap();
}

#[test]
fn a_directory_that_is_not_a_backup_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    foreign_dir(&dir);
    let before = dir_contents(&dir);
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(&data(), options(2), &mut [&mut backup])
        .unwrap_err();
    assert!(matches!(err, Error::NotABackupDir { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("is not a wgfit backup directory") && msg.contains("3 entries"),
        "{msg}"
    );
    assert_eq!(dir_contents(&dir), before, "nothing in it changed");

    // The command line, as the issue ran it.
    let o = wgfit(
        tmp.path(),
        &[
            "train",
            "--backup-dir",
            "d",
            "--epochs",
            "2",
            "--verbose",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a wgfit backup directory"));
    assert_eq!(dir_contents(&dir), before, "nothing in it changed");
    assert!(!tmp.path().join("wgfit-model.safetensors").exists());
}

#[test]
fn only_a_directory_wgfit_created_is_removed_and_only_its_own_files_go() {
    let tmp = tempfile::tempdir().unwrap();
    // An empty directory the user made: taken, marked, and left (empty) at the end.
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    let mut backup = BackupAndRestore::new(&mine).unwrap();
    model()
        .fit(&data(), options(1), &mut [&mut backup])
        .unwrap();
    assert!(mine.is_dir());
    assert!(dir_contents(&mine).is_empty());

    // A backup wgfit made, into which the user put files named like wgfit's: they stay, and
    // so does the directory.
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    assert!(dir.join(MARKER).is_file());
    std::fs::write(dir.join("ckpt-999.safetensors"), b"the user's").unwrap();
    // Where the next save (the end of epoch 4, global step 48) would write: never replaced.
    std::fs::write(dir.join("ckpt-48.safetensors"), b"the user's").unwrap();
    std::fs::write(dir.join(".wgfit-tmp-not-ours"), b"the user's").unwrap();
    std::fs::write(dir.join("notes.txt"), b"the user's").unwrap();
    let mut backup = BackupAndRestore::new(&dir).unwrap().double_checkpoint(true);
    model()
        .fit(&data(), options(4), &mut [&mut backup])
        .unwrap();
    let left: Vec<String> = dir_contents(&dir).into_keys().collect();
    assert_eq!(
        left,
        [
            ".wgfit-tmp-not-ours",
            "ckpt-48.safetensors",
            "ckpt-999.safetensors",
            "notes.txt"
        ],
        "only wgfit's files went"
    );
    assert_eq!(
        std::fs::read(dir.join("ckpt-48.safetensors")).unwrap(),
        b"the user's"
    );

    // A directory wgfit made and nothing else is in: removed.
    let fresh = tmp.path().join("fresh");
    let mut backup = BackupAndRestore::new(&fresh).unwrap();
    model()
        .fit(&data(), options(1), &mut [&mut backup])
        .unwrap();
    assert!(!fresh.exists());
}

#[test]
fn a_dangling_lock_link_is_refused_and_its_target_never_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    let outside = tmp.path().join("outside");
    std::fs::remove_file(dir.join(".lock")).unwrap();
    symlink(&outside, dir.join(".lock")).unwrap();
    let err = resume_error(&dir);
    assert!(matches!(err, Error::NotRegularFile { .. }), "{err}");
    assert!(err.to_string().contains("a symbolic link"), "{err}");
    assert!(
        !outside.exists(),
        "nothing was created outside the directory"
    );
}

#[test]
fn a_sidecar_or_weights_file_that_is_a_link_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    // A valid sidecar, moved out and linked back: not read.
    let elsewhere = tmp.path().join("latest.json");
    std::fs::rename(dir.join(LATEST), &elsewhere).unwrap();
    symlink(&elsewhere, dir.join(LATEST)).unwrap();
    let err = resume_error(&dir);
    assert!(matches!(err, Error::NotRegularFile { .. }), "{err}");
    let report = checkpoint::inspect(&dir).unwrap();
    assert!(
        matches!(report.rerun, checkpoint::Outlook::Refuse { .. }),
        "{:?}",
        report.rerun
    );
}

/// Runs `f` on another thread and fails the test if it does not return within a minute.
fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} blocked"))
}

#[test]
fn a_fifo_named_latest_json_is_refused_not_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    std::fs::remove_file(dir.join(LATEST)).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.join(LATEST))
        .status()
        .unwrap();
    assert!(status.success());
    let d = dir.clone();
    let err = within_a_minute("fit", move || {
        let mut backup = BackupAndRestore::new(&d).unwrap();
        model()
            .fit(&data(), options(4), &mut [&mut backup])
            .unwrap_err()
            .to_string()
    });
    assert!(err.contains("is a FIFO, not a regular file"), "{err}");
    let d = dir.clone();
    let report = within_a_minute("inspect", move || checkpoint::inspect(&d).unwrap());
    assert!(
        matches!(&report.rerun, checkpoint::Outlook::Refuse { reason } if reason.contains("FIFO")),
        "{:?}",
        report.rerun
    );
    let o = within_a_minute("wgfit inspect", move || wgfit(&dir, &["inspect", "."]));
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn the_lock_is_held_from_restore_until_the_backup_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .delete_checkpoint(false);
    model()
        .fit(&data(), options(1), &mut [&mut backup])
        .unwrap();
    // Between the end of fit and the removal, no other run can take the directory.
    let err = BackupDir::take(&dir).unwrap_err();
    assert!(matches!(err, Error::BackupLocked { .. }), "{err}");
    // And inspect says so, as a rerun would find it.
    let report = checkpoint::inspect(&dir).unwrap();
    assert!(
        matches!(&report.rerun, checkpoint::Outlook::Refuse { reason } if reason.contains("in use")),
        "{:?}",
        report.rerun
    );
    let mut other = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(&data(), options(1), &mut [&mut other])
        .unwrap_err();
    assert!(matches!(err, Error::BackupLocked { .. }), "{err}");
    backup.remove_backup().unwrap();
    assert!(!dir.exists());

    // A run that waited on the old lock file finds it unlinked and takes a fresh one.
    kept_backup(&dir);
    let held = BackupDir::take(&dir).unwrap();
    let stale = std::fs::File::open(dir.join(".lock")).unwrap();
    held.remove().unwrap();
    stale.try_lock().unwrap();
    let fresh = BackupDir::take(&dir).unwrap();
    assert!(dir.join(".lock").is_file());
    drop(fresh);
}

#[test]
fn nothing_is_removed_while_a_sidecar_cannot_be_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir); // latest at global step 36, previous at 24
    let latest_weights = dir.join("ckpt-36.safetensors");
    assert!(latest_weights.is_file());
    std::fs::write(dir.join(LATEST), b"{").unwrap();
    // Falls back to previous.json and stops before its next save.
    let mut backup = BackupAndRestore::new(&dir).unwrap().double_checkpoint(true);
    let mut stop = common::Interrupt {
        at_global_step: Some(25),
        at_epoch_begin: None,
    };
    model()
        .fit(&data(), options(4), &mut [&mut backup, &mut stop])
        .unwrap_err();
    assert!(
        latest_weights.is_file(),
        "the weights of the unreadable latest.json are kept"
    );
}

/// Forks a child that sleeps for two seconds, as a process started by another thread does
/// between its fork and its exec: the child shares every open file description, the lock's
/// too.
struct ForkAtEpochBegin {
    child: Option<libc::pid_t>,
}

impl wgfit::Callback for ForkAtEpochBegin {
    fn on_epoch_begin(&mut self, _: &mut wgfit::Context<'_>, epoch: usize) -> wgfit::Result<()> {
        if epoch == 1 {
            // SAFETY: the child calls only async-signal-safe functions (sleep, _exit).
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    libc::sleep(2);
                    libc::_exit(0)
                }
            }
            self.child = Some(pid);
            return Err(common::interrupted());
        }
        Ok(())
    }
}

#[test]
fn a_failed_fit_has_released_the_lock_when_it_returns_even_with_a_forked_child_alive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let mut fork = ForkAtEpochBegin { child: None };
    model()
        .fit(&data(), options(3), &mut [&mut backup, &mut fork])
        .unwrap_err();
    let report = checkpoint::inspect(&dir).unwrap();
    let child = fork.child.expect("forked");
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    assert!(
        matches!(report.rerun, checkpoint::Outlook::Resume { .. }),
        "{:?}",
        report.rerun
    );
}

/// The unfinished write a killed run left (named with this directory's id) goes when the next
/// run starts, even if that run stops before it commits anything: the writer thread sweeps
/// first, and `fit` does not end before the sweep has.
#[test]
fn a_killed_runs_unfinished_write_goes_even_when_nothing_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    let marker: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(MARKER)).unwrap()).unwrap();
    let id = marker["id"].as_str().unwrap();
    let stray = dir.join(format!(".wgfit-tmp-{id}-ckpt-48.safetensors"));
    std::fs::write(&stray, b"half a file").unwrap();
    let committed = std::fs::read(dir.join(LATEST)).unwrap();

    let mut backup = BackupAndRestore::new(&dir).unwrap().double_checkpoint(true);
    let mut stop = common::Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(3),
    };
    let r = model().fit(&data(), options(4), &mut [&mut backup, &mut stop]);
    assert!(matches!(r, Err(Error::Callback { .. })), "{r:?}");
    assert_eq!(
        std::fs::read(dir.join(LATEST)).unwrap(),
        committed,
        "nothing was committed"
    );
    assert!(!stray.exists(), "the unfinished write was removed");
}
