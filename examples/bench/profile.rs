//! PROFILE: one step of W1 and of W0 taken apart, each launch timed on its own, beside the
//! whole step.

use super::training::{w1_data, w1_model};
use super::{Bench, BenchResult};
use serde_json::json;
use wgfit::{Dataset, Dense, Loss, Sequential, Sgd, StepProfile};

fn report(bench: &mut Bench, workload: &'static str, profile: &StepProfile) {
    for (name, ms) in &profile.launches {
        bench.report(
            workload,
            name.clone(),
            *ms,
            "ms",
            json!({"share_of_launches": ms / profile.launches_ms()}),
        );
    }
    bench.report(
        workload,
        "sum of launches",
        profile.launches_ms(),
        "ms",
        json!({}),
    );
    bench.report(
        workload,
        "whole step",
        profile.step_ms,
        "ms",
        json!({"steps_per_s": 1e3 / profile.step_ms}),
    );
}

pub fn bench_profile(bench: &mut Bench, reps: usize) -> BenchResult {
    // Enough repetitions that a launch's time dwarfs the submission's.
    let reps = reps.max(3) * 10;
    let mut w1 = w1_model()?;
    report(
        bench,
        "PROFILE-W1",
        &w1.profile_step(&w1_data()?, 128, reps)?,
    );

    let w0_data = Dataset::regression(vec![1.0; 5 * 20], 20, vec![0.0; 5], 1)?;
    let mut w0 = Sequential::new(20).add(Dense::new(10)).seed(1);
    w0.compile(Loss::MeanSquaredError, Sgd::new(0.01))?;
    report(
        bench,
        "PROFILE-W0",
        &w0.profile_step(&w0_data, 1, reps * 10)?,
    );
    Ok(())
}
