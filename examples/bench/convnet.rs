//! C1: the Keras example "Simple MNIST convnet" on W1's data as 28×28×1 images, batch 128:
//! steps/s of training, and each launch of one step timed on its own, with the GFLOP/s of
//! the convolutions' and the dense layer's products.

use super::clock::{launches_by_name, second_epoch_seconds};
use super::training::w1_raw;
use super::{Bench, BenchResult, median};
use serde_json::json;
use wgfit::{
    Activation, Adam, Conv2D, Dataset, Dense, Dropout, Flatten, Loss, MaxPooling2D, Sequential,
};

/// Samples C1 trains on (the first of W1's): 16 steps of 128 an epoch.
const SAMPLES: usize = 2048;
const BATCH: usize = 128;

fn model() -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut m = Sequential::with_input_shape(&[28, 28, 1])
        .add(Conv2D::new(32, 3).activation(Activation::Relu))
        .add(MaxPooling2D::new([2, 2]))
        .add(Conv2D::new(64, 3).activation(Activation::Relu))
        .add(MaxPooling2D::new([2, 2]))
        .add(Flatten)
        .add(Dropout::new(0.5))
        .add(Dense::new(10))
        .seed(42);
    m.compile(Loss::CrossEntropy, Adam::new(0.001))?;
    Ok(m)
}

fn data() -> Result<Dataset, Box<dyn std::error::Error>> {
    let (x, labels) = w1_raw()?;
    Ok(Dataset::classification(
        x[..SAMPLES * 784].to_vec(),
        784,
        labels[..SAMPLES].to_vec(),
    )?)
}

/// Multiply-adds ×2 of each product of a step, by the launch names of the profile (the
/// kernel gradient's partial products together).
fn flops(name: &str) -> Option<f64> {
    let b = BATCH as f64;
    // conv0: 26×26 positions, 9 taps, 32 filters; conv2: 11×11, 288 taps, 64 filters.
    let conv0 = 2.0 * b * 26.0 * 26.0 * 9.0 * 32.0;
    let conv2 = 2.0 * b * 11.0 * 11.0 * 288.0 * 64.0;
    let dense = 2.0 * b * 1600.0 * 10.0;
    Some(match name {
        "conv2d0 forward" | "conv2d0 weight gradient partial product" => conv0,
        "conv2d2 forward"
        | "conv2d2 weight gradient partial product"
        // The im2col path's product, or the implicit GEMM's one launch (which also multiplies
        // the zeros of the taps that fall outside: counted as the useful work only).
        | "conv2d2 input gradient product"
        | "conv2d2 input gradient" => conv2,
        "dense6 forward" | "dense6 weight gradient" | "dense6 input gradient" => dense,
        _ => return None,
    })
}

pub fn bench_c1(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = data()?;
    let secs = second_epoch_seconds(model, &data, BATCH, reps)?;
    let steps = (SAMPLES / BATCH) as f64;
    let t = median(&secs);
    bench.report(
        "C1",
        "steps/s",
        steps / t,
        "steps/s",
        json!({"timed_seconds": secs, "steps_per_epoch": steps, "batch": BATCH}),
    );
    let mut m = model()?;
    let profile = m.profile_step(&data, BATCH, reps.max(1) * 3)?;
    let launches = launches_by_name(&profile);
    for (name, ms) in &launches {
        let gflops = flops(name).map(|f| f / (ms * 1e-3) / 1e9);
        bench.report("C1", name.clone(), *ms, "ms", json!({"gflops": gflops}));
        if let Some(g) = gflops {
            println!("  {name}: {ms:.2} ms, {g:.1} GFLOP/s");
        }
    }
    bench.report("C1", "whole step", profile.step_ms, "ms", json!({}));
    Ok(())
}
