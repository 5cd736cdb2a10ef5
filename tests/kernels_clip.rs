//! Gradient clipping (`clip.wgsl`) against Keras 3's formulas in f64, on tensors of awkward
//! sizes (1, primes, more than one workgroup of 256), and its effect in training.

mod common;

use common::gpu::gpu;
use common::rng::Rng;
use common::{bits, data, options, uninterrupted_and_resumed};
use wgfit::gpu::ops;
use wgfit::{Activation, Adam, Clipping, Configured, Dense, Loss, Sequential, Sgd};

fn tensors(scale: f32) -> Vec<Vec<f32>> {
    let mut rng = Rng(5);
    [1usize, 7, 257, 1031]
        .iter()
        .map(|&n| (0..n).map(|_| scale * rng.uniform(-1.0, 1.0)).collect())
        .collect()
}

fn reference(clipping: Clipping, tensors: &[Vec<f32>]) -> Vec<Vec<f64>> {
    let t64: Vec<Vec<f64>> = tensors
        .iter()
        .map(|t| t.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let norm = |t: &[f64]| t.iter().map(|x| x * x).sum::<f64>().sqrt();
    match clipping {
        Clipping::None => t64,
        Clipping::Value(c) => {
            let c = f64::from(c);
            t64.iter()
                .map(|t| t.iter().map(|x| x.clamp(-c, c)).collect())
                .collect()
        }
        Clipping::Norm(c) => {
            let c = f64::from(c);
            t64.iter()
                .map(|t| {
                    let n = norm(t);
                    t.iter().map(|x| x * c / n.max(c)).collect()
                })
                .collect()
        }
        Clipping::GlobalNorm(c) => {
            let c = f64::from(c);
            let total = t64.iter().map(|t| norm(t).powi(2)).sum::<f64>().sqrt();
            let scale = c * (1.0 / total).min(1.0 / c);
            t64.iter()
                .map(|t| t.iter().map(|x| x * scale).collect())
                .collect()
        }
    }
}

#[test]
fn clipping_matches_kerass_formulas() {
    let gpu = gpu();
    for clipping in [
        Clipping::Value(0.3),
        Clipping::Norm(2.0),
        Clipping::Norm(100.0),
        Clipping::GlobalNorm(3.0),
        Clipping::GlobalNorm(1000.0),
    ] {
        let input = tensors(1.5);
        let got = ops::clip(&gpu, clipping, &input, 1).unwrap();
        let want = reference(clipping, &input);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-6 * b.abs().max(1e-3),
                    "{clipping:?}: tensor {k}[{i}] = {a}, reference {b}"
                );
            }
        }
    }
}

/// Tensors cut at multiples of 64 elements into shards, as the ranks of a distributed run clip
/// theirs (each its own shard's block sums, then the gathered sums), clip to the same bits as
/// the whole: each tensor's norm is summed in one order at any shard count.
#[test]
fn shards_clip_to_the_bits_of_the_whole() {
    let gpu = gpu();
    for clipping in [
        Clipping::Norm(2.0),
        Clipping::GlobalNorm(3.0),
        Clipping::Value(0.3),
    ] {
        let input = tensors(1.5);
        let whole = ops::clip(&gpu, clipping, &input, 1).unwrap();
        // 1 536 elements with the padding, 24 blocks, the 1031-element tensor in blocks
        // 7 to 23: 2 shards split it once, 3 twice, 8 into 6 parts.
        for shards in [2, 3, 4, 8] {
            let cut = ops::clip(&gpu, clipping, &input, shards).unwrap();
            for (k, (a, b)) in cut.iter().zip(&whole).enumerate() {
                let (a, b): (Vec<u32>, Vec<u32>) = (
                    a.iter().map(|x| x.to_bits()).collect(),
                    b.iter().map(|x| x.to_bits()).collect(),
                );
                assert_eq!(a, b, "{clipping:?}, {shards} shards: tensor {k}");
            }
        }
    }
}

fn model(clipping: Clipping) -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    m.compile(
        Loss::CrossEntropy,
        Configured::new(Adam::new(0.05)).clipping(clipping),
    )
    .unwrap();
    m
}

#[test]
fn clipped_training_differs_and_resumes_exactly() {
    let run = |clipping| {
        let mut m = model(clipping);
        m.fit(&data(), options(2), &mut []).unwrap();
        bits(&m)
    };
    let unclipped = run(Clipping::None);
    let reference = run(Clipping::GlobalNorm(0.05));
    assert_ne!(unclipped, reference, "clipping changed the training");
    assert_ne!(run(Clipping::Norm(0.05)), unclipped);
    assert_ne!(run(Clipping::Value(0.001)), unclipped);

    let (uninterrupted, resumed) =
        uninterrupted_and_resumed(|| model(Clipping::GlobalNorm(0.05)), 2, 13);
    assert_eq!(uninterrupted, reference);
    assert_eq!(resumed, reference);
}

#[test]
fn a_bad_bound_is_refused() {
    let mut m = Sequential::new(6).add(Dense::new(3));
    let err = m
        .compile(
            Loss::CrossEntropy,
            Configured::new(Sgd::new(0.1)).clipping(Clipping::Norm(0.0)),
        )
        .unwrap_err();
    assert!(err.to_string().contains("gradient clipping"), "{err}");
}
