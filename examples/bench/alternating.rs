//! `bench w1-backup-alt` and `bench w1-backup-alt4`: the cost of backups measured within one
//! `fit`, epochs with and without saves alternating. Separate runs of W1 on lavapipe differ by
//! up to 1.6× from one another (bench/NOTES.md, "W1-backup at 7 repetitions"), far more than
//! the few per cent sought; neighbouring epochs of one run share that drift.
//!
//! `w1-backup-alt` saves in every second epoch and compares it with its two neighbours. The
//! writer's work after an epoch's last save point falls into the next epoch, a neighbour, so
//! that measure is biased low when the saves are few (every epoch: one save). `w1-backup-alt4`
//! saves in one epoch of every four and charges the epoch after it too: (saving epoch + the
//! next) against (the epoch before + the one after the next), which a steady drift also
//! cancels.

use super::clock::HookClock;
use super::training::{SnapshotOnly, w1_data, w1_model};
use super::{Bench, BenchResult, median_and_interval};
use serde_json::json;
use std::sync::Arc;
use wgfit::{
    BackupAndRestore, Callback, Context, FitOptions, FitOutcome, Logs, SaveFreq, Snapshot, Tensor,
};

/// Forwards every hook to `inner` but the save points (batch and epoch ends) of the epochs
/// `e` with `e % period != 1`, so that one epoch of every `period` saves.
struct SavingEpochs<'a> {
    inner: &'a mut dyn Callback,
    period: usize,
    on: bool,
}

impl Callback for SavingEpochs<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> wgfit::Result<()> {
        self.inner.on_train_begin(ctx)
    }
    fn on_train_end(&mut self, ctx: &mut Context<'_>, logs: &Logs) -> wgfit::Result<()> {
        self.inner.on_train_end(ctx, logs)
    }
    fn on_epoch_begin(&mut self, ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        self.on = epoch % self.period == 1;
        self.inner.on_epoch_begin(ctx, epoch)
    }
    fn on_epoch_end(
        &mut self,
        ctx: &mut Context<'_>,
        epoch: usize,
        logs: &Logs,
    ) -> wgfit::Result<()> {
        if self.on {
            self.inner.on_epoch_end(ctx, epoch, logs)?;
        }
        Ok(())
    }
    fn on_train_batch_begin(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        self.inner.on_train_batch_begin(ctx, batch)
    }
    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        if self.on {
            self.inner.on_train_batch_end(ctx, batch)?;
        }
        Ok(())
    }
    fn on_snapshot(&mut self, ctx: &mut Context<'_>, snapshot: Snapshot) -> wgfit::Result<()> {
        self.inner.on_snapshot(ctx, snapshot)
    }
    fn on_fit_exit(&mut self, ctx: &mut Context<'_>, outcome: FitOutcome) -> wgfit::Result<()> {
        self.inner.on_fit_exit(ctx, outcome)
    }
    fn settings(&self) -> Option<String> {
        self.inner.settings()
    }
    fn state(&self) -> Option<serde_json::Value> {
        self.inner.state()
    }
    fn load_state(&mut self, state: serde_json::Value) -> wgfit::Result<()> {
        self.inner.load_state(state)
    }
    fn state_tensors(&self) -> Option<Arc<[Tensor]>> {
        self.inner.state_tensors()
    }
    fn load_state_tensors(&mut self, tensors: Vec<Tensor>) -> wgfit::Result<()> {
        self.inner.load_state_tensors(tensors)
    }
}

/// Does nothing at the save points: with it both measures should read 1.
struct Nothing;

impl Callback for Nothing {
    fn name(&self) -> &str {
        "bench_nothing"
    }
}

/// One W1 `fit` in which one epoch of every `period` (2 or 4) saves, after warm-up epochs.
/// Returns, for each of `groups` saving epochs, its time as a ratio to an epoch without saves
/// (with period 2, the saving epoch against the mean of its neighbours; with period 4, the
/// saving epoch and the next against the epoch before and the one after the next, read as
/// 2A / B − 1), and the median epoch in ms at each place of a group, from the one before the
/// saving epoch on: a place slower or faster than the others with nothing saved biases the
/// ratio, which the control shows.
fn alternating_ratios(
    data: &wgfit::Dataset,
    backup: &mut dyn Callback,
    groups: usize,
    period: usize,
) -> Result<(Vec<f64>, Vec<f64>), Box<dyn std::error::Error>> {
    let mut model = w1_model()?;
    let mut clock = HookClock::default();
    let mut gated = SavingEpochs {
        inner: backup,
        period,
        on: false,
    };
    // The first measured saving epoch is 1 + period (the epochs before the one before it warm
    // up; epoch 1 saves too), and every group ends with an epoch without saves after its
    // saving one (two with period 4).
    let first = 1 + period;
    let options = FitOptions {
        epochs: first + period * groups - period + period / 2 + 1,
        batch_size: 128,
        seed: 42,
        ..Default::default()
    };
    model.fit(data, options, &mut [&mut gated, &mut clock])?;
    // Epoch e took ends[e] - ends[e - 1].
    let ends = &clock.epoch_end;
    let took = |e: usize| (ends[e] - ends[e - 1]).as_secs_f64();
    let places: Vec<f64> = (0..period)
        .map(|place| {
            let times: Vec<f64> = (0..groups)
                .map(|g| took(first + period * g + place - 1))
                .collect();
            super::median(&times) * 1e3
        })
        .collect();
    let ratios = (0..groups)
        .map(|g| {
            let on = first + period * g;
            if period == 2 {
                took(on) / ((took(on - 1) + took(on + 1)) / 2.0)
            } else {
                2.0 * (took(on) + took(on + 1)) / (took(on - 1) + took(on + 2)) - 1.0
            }
        })
        .collect();
    Ok((ratios, places))
}

/// `period` 2: `bench w1-backup-alt`; 4: `bench w1-backup-alt4`; `groups` saving epochs each.
pub fn bench_w1_backup_alternating(bench: &mut Bench, groups: usize, period: usize) -> BenchResult {
    let data = w1_data()?;
    let groups = groups.max(2);
    let (workload, measure) = match period {
        2 => ("W1-backup-alt", "saving epoch / neighbours"),
        4 => (
            "W1-backup-alt4",
            "saving epoch and the next, less the epochs around them, / one epoch, + 1",
        ),
        _ => return Err(format!("no alternation of period {period}").into()),
    };
    for (freq, label) in [
        (Some(SaveFreq::Batches(1)), "every batch"),
        (Some(SaveFreq::Epoch), "every epoch"),
        (None, "every batch, GPU copy only"),
        (None, "nothing (the measure's control)"),
    ] {
        let dir = tempfile::tempdir()?;
        let ((ratios, places), commits) = match freq {
            Some(freq) => {
                let location = super::backup_location(dir.path(), "w1-backup-alt");
                let mut backup = BackupAndRestore::new(location)?.save_freq(freq)?;
                let ratios = alternating_ratios(&data, &mut backup, groups, period)?;
                let commits = [backup.committed_saves(), backup.superseded_saves()];
                println!(
                    "  {label}: {} save points committed, {} superseded while the writer was busy",
                    commits[0], commits[1]
                );
                (ratios, Some(commits))
            }
            None if label.starts_with("nothing") => (
                alternating_ratios(&data, &mut Nothing, groups, period)?,
                None,
            ),
            None => (
                alternating_ratios(&data, &mut SnapshotOnly, groups, period)?,
                None,
            ),
        };
        let (m, low, high) = median_and_interval(&ratios);
        let shown: Vec<String> = places.iter().map(|p| format!("{p:.1}")).collect();
        println!(
            "    median epoch in ms, from the one before the saving epoch on: {}",
            shown.join(", ")
        );
        println!(
            "  {label}: {measure}, median {m:.4} (95 % {low:.4}–{high:.4}) over {groups} saving epochs"
        );
        bench.report(
            workload,
            format!("{label}: {measure}"),
            m,
            "ratio",
            json!({"ratios": ratios, "interval_95": [low, high], "groups": groups, "period": period,
                "committed_and_superseded": commits, "median_epoch_ms_by_place": places}),
        );
    }
    Ok(())
}
