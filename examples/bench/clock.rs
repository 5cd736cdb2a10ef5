//! The instants of the training hooks, which the workloads time with.

use std::time::Instant;
use wgfit::{Callback, Context, Logs};

/// Instants of the hooks: epoch ends (after fit's epoch-end readback of the losses), what
/// follows them (the time the loop is blocked by a save), the start of training (after a
/// restore) and the first batch.
#[derive(Default)]
pub struct HookClock {
    pub epoch_end: Vec<Instant>,
    pub after: Vec<Instant>,
    /// When training began (after the backup's restore, which runs first).
    pub train_begin: Option<Instant>,
    pub first_batch_begin: Option<Instant>,
    pub first_batch: Option<Instant>,
}

impl Callback for HookClock {
    fn name(&self) -> &str {
        "bench_hook_clock"
    }
    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        _epoch: usize,
        _logs: &Logs,
    ) -> wgfit::Result<()> {
        self.epoch_end.push(Instant::now());
        Ok(())
    }
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, _epoch: usize) -> wgfit::Result<()> {
        self.after.push(Instant::now());
        Ok(())
    }
    fn on_train_end(&mut self, _ctx: &mut Context<'_>, _logs: &Logs) -> wgfit::Result<()> {
        self.after.push(Instant::now());
        Ok(())
    }
    fn on_train_begin(&mut self, _ctx: &mut Context<'_>) -> wgfit::Result<()> {
        self.train_begin = Some(Instant::now());
        Ok(())
    }
    fn on_train_batch_begin(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        self.first_batch_begin.get_or_insert_with(Instant::now);
        Ok(())
    }
    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        self.first_batch.get_or_insert_with(Instant::now);
        Ok(())
    }
}

/// Seconds of the second epoch of a 2-epoch `fit` (the first compiles the kernels), once per
/// repetition, each on a fresh model from `model`.
pub fn second_epoch_seconds(
    model: impl Fn() -> Result<wgfit::Sequential, Box<dyn std::error::Error>>,
    data: &wgfit::Dataset,
    batch_size: usize,
    reps: usize,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut secs = Vec::new();
    for _ in 0..reps.max(1) {
        let mut m = model()?;
        let mut clock = HookClock::default();
        let options = wgfit::FitOptions {
            epochs: 2,
            batch_size,
            seed: 42,
            ..Default::default()
        };
        m.fit(data, options, &mut [&mut clock])?;
        let [warm, .., last] = clock.epoch_end[..] else {
            return Err("the epoch clock saw fewer than 2 epochs".into());
        };
        secs.push((last - warm).as_secs_f64());
    }
    Ok(secs)
}

/// A step's launches with one name (a product's chunks) summed, in the profile's order.
pub fn launches_by_name(profile: &wgfit::StepProfile) -> Vec<(String, f64)> {
    let mut launches: Vec<(String, f64)> = Vec::new();
    for (name, ms) in &profile.launches {
        match launches.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += ms,
            None => launches.push((name.clone(), *ms)),
        }
    }
    launches
}
