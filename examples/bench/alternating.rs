//! `bench w1-backup-alt`: the cost of backups measured within one `fit`, epochs with and
//! without saves alternating. Separate runs of W1 on lavapipe differ by up to 1.6× from one
//! another (bench/NOTES.md, "W1-backup at 7 repetitions"), far more than the few per cent
//! sought; neighbouring epochs of one run share that drift.

use super::clock::HookClock;
use super::training::{SnapshotOnly, w1_data, w1_model};
use super::{Bench, BenchResult, median_and_interval};
use serde_json::json;
use std::sync::Arc;
use wgfit::{
    BackupAndRestore, Callback, Context, FitOptions, FitOutcome, Logs, SaveFreq, Snapshot, Tensor,
};

/// Forwards every hook to `inner` but the save points (batch and epoch ends) of even epochs,
/// so that odd epochs save and even ones do not.
struct OddEpochs<'a> {
    inner: &'a mut dyn Callback,
    on: bool,
}

impl Callback for OddEpochs<'_> {
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
        self.on = epoch % 2 == 1;
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

/// One W1 `fit` of 2 warm-up epochs and `pairs` pairs of (odd: saving, even: not); returns
/// each pair's ratio of the saving epoch's time to its neighbours' mean (the epochs without
/// saves before and after it), so that a steady drift cancels.
fn alternating_ratios(
    data: &wgfit::Dataset,
    backup: &mut dyn Callback,
    pairs: usize,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut model = w1_model()?;
    let mut clock = HookClock::default();
    let mut gated = OddEpochs {
        inner: backup,
        on: false,
    };
    let options = FitOptions {
        epochs: 3 + 2 * pairs,
        batch_size: 128,
        seed: 42,
        ..Default::default()
    };
    model.fit(data, options, &mut [&mut gated, &mut clock])?;
    // Epoch e took ends[e] - ends[e - 1]; epochs 0 and 1 warm up.
    let ends = &clock.epoch_end;
    let took = |e: usize| (ends[e] - ends[e - 1]).as_secs_f64();
    Ok((0..pairs)
        .map(|p| {
            let on = 3 + 2 * p;
            took(on) / ((took(on - 1) + took(on + 1)) / 2.0)
        })
        .collect())
}

pub fn bench_w1_backup_alternating(bench: &mut Bench, pairs: usize) -> BenchResult {
    let data = w1_data()?;
    let pairs = pairs.max(2);
    for (freq, label) in [
        (Some(SaveFreq::Batches(1)), "every batch"),
        (Some(SaveFreq::Epoch), "every epoch"),
        (None, "every batch, GPU copy only"),
    ] {
        let dir = tempfile::tempdir()?;
        let ratios = match freq {
            Some(freq) => {
                let location = super::backup_location(dir.path(), "w1-backup-alt");
                let mut backup = BackupAndRestore::new(location)?.save_freq(freq)?;
                alternating_ratios(&data, &mut backup, pairs)?
            }
            None => alternating_ratios(&data, &mut SnapshotOnly, pairs)?,
        };
        let (m, low, high) = median_and_interval(&ratios);
        println!(
            "  {label}: epoch with saves ÷ its neighbours without, median {m:.4} (95 % {low:.4}–{high:.4}) over {pairs} epochs"
        );
        bench.report(
            "W1-backup-alt",
            format!("{label}: saving epoch / neighbours"),
            m,
            "ratio",
            json!({"ratios": ratios, "interval_95": [low, high], "pairs": pairs}),
        );
    }
    Ok(())
}
