//! M: matmul GFLOP/s for square sizes and the W1 shapes, median of several runs.

use super::{Bench, BenchResult, median};
use serde_json::json;
use wgfit::Gpu;
use wgfit::gpu::ops::{self, Layout, MatmulShape};

// M: matmul GFLOP/s

pub fn bench_m(bench: &mut Bench, gpu: &Gpu, extra_sizes: &[usize]) -> BenchResult {
    let mut shapes: Vec<(String, MatmulShape)> = Vec::new();
    for &s in [256, 512, 1024, 2048].iter().chain(extra_sizes) {
        shapes.push((
            format!("square {s}"),
            MatmulShape {
                m: s,
                n: s,
                k: s,
                a: Layout::Normal,
                b: Layout::Normal,
            },
        ));
    }
    // The first layer of W1 (784 → 256, batch 128), as the training step launches it.
    let w1 = [
        // Z = X · Wᵀ: X [128, 784], W [256, 784]
        (
            "w1 forward 128x256x784",
            128,
            256,
            784,
            Layout::Normal,
            Layout::Transposed,
        ),
        // dX = dZ · W: dZ [128, 256], W [256, 784]
        (
            "w1 dX 128x784x256",
            128,
            784,
            256,
            Layout::Normal,
            Layout::Normal,
        ),
        // dW = dZᵀ · X: dZ [128, 256], X [128, 784]
        (
            "w1 dW 256x784x128",
            256,
            784,
            128,
            Layout::Transposed,
            Layout::Normal,
        ),
    ];
    for (name, m, n, k, a, b) in w1 {
        shapes.push((name.to_string(), MatmulShape { m, n, k, a, b }));
    }
    for (name, shape) in shapes {
        let flop = 2.0 * (shape.m * shape.n * shape.k) as f64;
        // At least 5 runs, and enough of them to take about a second for small shapes.
        let first = ops::time_matmul(gpu, shape, 1)?[0];
        let reps = ((1.0 / first.max(1e-6)) as usize).clamp(5, 200);
        let times = ops::time_matmul(gpu, shape, reps)?;
        let t = median(&times);
        bench.report(
            "M",
            name,
            flop / t / 1e9,
            "GFLOP/s",
            json!({"m": shape.m, "n": shape.n, "k": shape.k, "a": format!("{:?}", shape.a),
                   "b": format!("{:?}", shape.b), "median_s": t, "runs": times.len()}),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W1: small MLP, plain SGD
