//! The backup writer runs at a low priority (nice 19 by default, `WGFIT_WRITER_NICE`), so that
//! where training keeps every core busy it takes the time training leaves: seen from outside,
//! in the nice value Linux reports for the writer thread while a fit with a backup every batch
//! runs.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, Ordering};
use wgfit::{Activation, BackupAndRestore, Dataset, Dense, FitOptions, Loss, SaveFreq, Sequential};
use wgfit::{Sgd, Targets};

/// The nice value of this process's thread named `wgfit-backup-wr…` (Linux keeps 15 bytes
/// of a thread's name), if one runs.
fn writer_nice() -> Option<i64> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "wgfit-backup-wr" {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // "pid (comm) state ...": nice is the 19th field, the 17th after the name.
        return stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(16)?
            .parse()
            .ok();
    }
    None
}

#[test]
fn the_writer_thread_runs_at_nice_19() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let done = AtomicBool::new(false);
    let seen = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(Ordering::SeqCst) {
                seen.extend(writer_nice());
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            seen
        });
        let x = (0..512 * 8).map(|i| (i % 13) as f32 / 13.0).collect();
        let data = Dataset::new(x, 8, Targets::Classes((0..512).map(|i| i % 3).collect()));
        let mut model = Sequential::new(8)
            .add(Dense::new(32).activation(Activation::Relu))
            .add(Dense::new(3))
            .seed(1);
        model.compile(Loss::CrossEntropy, Sgd::new(0.05)).unwrap();
        let mut backup = BackupAndRestore::new(&dir)
            .unwrap()
            .save_freq(SaveFreq::Batches(1))
            .unwrap();
        let options = FitOptions {
            epochs: 20,
            batch_size: 16,
            ..Default::default()
        };
        let fitted = model.fit(&data.unwrap(), options, &mut [&mut backup]);
        done.store(true, Ordering::SeqCst);
        fitted.unwrap();
        watcher.join().unwrap()
    });
    assert!(!seen.is_empty(), "the writer thread was never seen");
    assert!(seen.iter().all(|&n| n == 19), "{seen:?}");
}
