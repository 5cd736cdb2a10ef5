//! `bench w1-backup-cpu`: the CPU time an every-epoch save of W1's state takes, all of the
//! process's threads together (the loop's snapshot, lavapipe's copy, the writer and its
//! hashing thread). Timing W1 on lavapipe cannot resolve a cost of 1 %: a control that saves
//! nothing read 1.006 and 1.042 (bench/NOTES.md, "A control for the measures within one
//! fit"); CPU time spent beside a short training step can. On two cores that lavapipe keeps
//! busy, a save can delay the loop by at most the CPU time it takes from it (a model: it
//! leaves out caches and idle waits), so that time over a W1 epoch bounds what every-epoch
//! backups cost.

use super::training::{w1_data, w1_model, w1_one_batch, w1_run};
use super::{Bench, BenchResult, median_and_interval};
use serde_json::json;
use std::time::{Duration, Instant};
use wgfit::{BackupAndRestore, Callback, Context, Dataset, FitOptions, Logs};

/// Epochs of one batch in each timed fit; the first two warm up.
const EPOCHS: usize = 302;

/// The CPU time all of this process's threads have used, those that ended included.
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_PROCESS_CPUTIME_ID exists on Linux");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How long each epoch waits at its start, so that the writer commits every save point
/// instead of superseding some (a W1 epoch leaves it 0.6 s), with lavapipe idle meanwhile.
const PAUSE: Duration = Duration::from_millis(20);

/// Notes the process's CPU time and the instant at the end of epoch 1, after the warm-up, and
/// pauses at the start of each epoch.
#[derive(Default)]
struct WarmedUp {
    at: Option<(Duration, Instant)>,
}

impl Callback for WarmedUp {
    fn name(&self) -> &str {
        "bench_warmed_up"
    }
    fn on_epoch_end(&mut self, _: &mut Context<'_>, epoch: usize, _: &Logs) -> wgfit::Result<()> {
        if epoch == 1 {
            self.at = Some((process_cpu_time(), Instant::now()));
        }
        Ok(())
    }
    fn on_epoch_begin(&mut self, _: &mut Context<'_>, _: usize) -> wgfit::Result<()> {
        std::thread::sleep(PAUSE);
        Ok(())
    }
}

/// CPU seconds and wall seconds from the end of epoch 1 to `fit` returning (every save
/// committed by then), with or without a backup every epoch, and the saves committed.
fn timed_fit(data: &Dataset, backup: bool) -> Result<(f64, f64, u64), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut model = w1_model()?;
    let mut warmed = WarmedUp::default();
    let options = FitOptions {
        epochs: EPOCHS,
        batch_size: data.len(),
        seed: 42,
        ..Default::default()
    };
    let committed = if backup {
        let mut b = BackupAndRestore::new(dir.path().join("backup"))?.delete_checkpoint(false);
        model.fit(data, options, &mut [&mut b, &mut warmed])?;
        b.committed_saves()
    } else {
        model.fit(data, options, &mut [&mut warmed])?;
        0
    };
    let (cpu, at) = warmed.at.ok_or("epoch 1 never ended")?;
    Ok((
        (process_cpu_time() - cpu).as_secs_f64(),
        at.elapsed().as_secs_f64(),
        committed,
    ))
}

pub fn bench_w1_backup_cpu(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = w1_one_batch()?;
    let (mut cpu_ms, mut wall_ms, mut commits) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps.max(1) {
        // Alternated, the order swapped every repetition, so that a drift falls on both.
        let order = if rep % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut took = [(0.0, 0.0, 0); 2];
        for backup in order {
            took[backup as usize] = timed_fit(&data, backup)?;
        }
        let [
            (cpu_none, wall_none, _),
            (cpu_saving, wall_saving, committed),
        ] = took;
        // The window holds the saves of epochs 1 to the last (epoch 1's is copied and written
        // after the hook that opens the window); epoch 0's was committed before it. A save
        // point the writer had no time for is superseded, and charging its copy to the
        // committed ones overstates their cost.
        let saves = committed.saturating_sub(1).max(1) as f64;
        let epochs = (EPOCHS - 2) as f64;
        if committed < EPOCHS as u64 {
            eprintln!(
                "  warning: the writer superseded {} save points (a busy machine?): this repetition overstates the CPU per save",
                EPOCHS as u64 - committed
            );
        }
        commits.push(committed);
        cpu_ms.push((cpu_saving - cpu_none) / saves * 1e3);
        wall_ms.push((wall_saving - wall_none) / saves * 1e3);
        println!(
            "  repetition {rep}: per save {:.2} ms of CPU, {:.2} ms of wall time ({committed} of {EPOCHS} save points committed; epochs of one batch and a pause: {:.2} / {:.2} ms without / with a save)",
            cpu_ms[rep],
            wall_ms[rep],
            wall_none / epochs * 1e3,
            wall_saving / epochs * 1e3
        );
    }
    let (cpu, cpu_low, cpu_high) = median_and_interval(&cpu_ms);
    let (wall, wall_low, wall_high) = median_and_interval(&wall_ms);
    // W1's three timed epochs without backups.
    let epoch = w1_run(&w1_data()?, None)?.seconds / 3.0;
    let bound = 1.0 + cpu / 1e3 / epoch;
    println!(
        "  an every-epoch save of W1's state: {cpu:.2} ms of CPU ({cpu_low:.2}–{cpu_high:.2}), {wall:.2} ms of wall time ({wall_low:.2}–{wall_high:.2}); a W1 epoch {:.0} ms: every epoch costs at most {bound:.4}× no backup",
        epoch * 1e3
    );
    bench.report(
        "W1-backup-cpu",
        "CPU time per every-epoch save of W1's state",
        cpu,
        "ms",
        json!({"per_repetition": cpu_ms, "interval_95": [cpu_low, cpu_high], "epochs_per_fit": EPOCHS,
            "committed_per_fit": commits}),
    );
    bench.report(
        "W1-backup-cpu",
        "wall time per save, epochs of one batch and a pause",
        wall,
        "ms",
        json!({"per_repetition": wall_ms, "interval_95": [wall_low, wall_high]}),
    );
    bench.report(
        "W1-backup-cpu",
        "bound on every-epoch backups: 1 + CPU per save / W1 epoch",
        bound,
        "ratio",
        json!({"w1_epoch_s": epoch}),
    );
    Ok(())
}
