//! PROFILE: one W1 step taken apart, each launch timed on its own, beside the whole step.

use super::training::{w1_data, w1_model};
use super::{Bench, BenchResult};
use serde_json::json;

pub fn bench_profile(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = w1_data()?;
    let mut model = w1_model()?;
    // Enough repetitions that a launch's time dwarfs the submission's.
    let profile = model.profile_step(&data, 128, reps.max(3) * 10)?;
    for (name, ms) in &profile.launches {
        bench.report(
            "PROFILE",
            name.clone(),
            *ms,
            "ms",
            json!({"share_of_launches": ms / profile.launches_ms()}),
        );
    }
    bench.report(
        "PROFILE",
        "sum of launches",
        profile.launches_ms(),
        "ms",
        json!({}),
    );
    bench.report(
        "PROFILE",
        "whole step",
        profile.step_ms,
        "ms",
        json!({"steps_per_s": 1e3 / profile.step_ms}),
    );
    Ok(())
}
