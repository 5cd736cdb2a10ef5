//! M: matmul GFLOP/s for square sizes and the W1 shapes, median of several runs.

use super::{Bench, BenchResult, median};
use serde_json::{Value, json};
use std::error::Error;
use wgfit::Gpu;
use wgfit::gpu::MatmulVariant;
use wgfit::gpu::ops::{self, Layout, MatmulShape};

// M: matmul GFLOP/s

/// The products M measures: squares of 256 to 2048 and `extra_sizes`, and the three products
/// of W1's first layer as the training step launches them.
fn shapes(extra_sizes: &[usize]) -> Vec<(String, MatmulShape)> {
    let mut shapes: Vec<(String, MatmulShape)> = Vec::new();
    for &s in [256, 512, 1024, 2048].iter().chain(extra_sizes) {
        let square = MatmulShape {
            m: s,
            n: s,
            k: s,
            a: Layout::Normal,
            b: Layout::Normal,
        };
        shapes.push((format!("square {s}"), square));
    }
    // (m, n, k, A, B) of W1's first layer (784 → 256, batch 128).
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
    shapes
}

/// The median GFLOP/s of `variant` (`None`: the adapter's choice) on `shape`, and its figure's
/// JSON details; `None` where that kernel cannot compute this product.
fn gflops(
    gpu: &Gpu,
    variant: Option<MatmulVariant>,
    shape: MatmulShape,
) -> Result<Option<(f64, Value)>, Box<dyn Error>> {
    let flop = 2.0 * (shape.m * shape.n * shape.k) as f64;
    // At least 5 runs, and enough of them to take about a second where a run is short (a run
    // is at least one launch and about 20 ms of them).
    let Some(first) = ops::time_matmul_on(gpu, variant, shape, 1)? else {
        return Ok(None);
    };
    let reps = ((1.0 / first[0].max(0.02)) as usize).clamp(5, 50);
    let Some(times) = ops::time_matmul_on(gpu, variant, shape, reps)? else {
        return Ok(None);
    };
    let t = median(&times);
    let extra = json!({"m": shape.m, "n": shape.n, "k": shape.k, "a": format!("{:?}", shape.a),
                       "b": format!("{:?}", shape.b), "median_s": t, "runs": times.len()});
    Ok(Some((flop / t / 1e9, extra)))
}

pub fn bench_m(bench: &mut Bench, gpu: &Gpu, extra_sizes: &[usize]) -> BenchResult {
    for (name, shape) in shapes(extra_sizes) {
        if let Some((value, extra)) = gflops(gpu, None, shape)? {
            bench.report("M", name, value, "GFLOP/s", extra);
        }
    }
    Ok(())
}

/// M on every kernel that applies, one figure per kernel and product: what the choice of
/// kernel per adapter rests on.
pub fn bench_m_kernels(bench: &mut Bench, gpu: &Gpu, extra_sizes: &[usize]) -> BenchResult {
    for (name, shape) in shapes(extra_sizes) {
        for variant in MatmulVariant::ALL {
            let Some((value, mut extra)) = gflops(gpu, Some(variant), shape)? else {
                continue;
            };
            extra["kernel"] = json!(format!("{variant:?}"));
            bench.report(
                "M-kernels",
                format!("{name} {variant:?}"),
                value,
                "GFLOP/s",
                extra,
            );
        }
    }
    Ok(())
}
