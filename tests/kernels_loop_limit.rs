//! Sizes a kernel loops over past llvmpipe's loop limit: llvmpipe (lavapipe) silently ends an
//! invocation's loops after 65 535 iterations in all, so a matmul summing over more k, or an
//! activation backward over more batch rows, came out wrong there. On llvmpipe such sizes are
//! refused with an error that names them; on other adapters they are computed, exactly.

mod common;

use common::gpu::gpu;
use common::rng::Rng;
use wgfit::gpu::ops::{self, Layout, MatmulShape};
use wgfit::{Activation, Dataset, Error, FitOptions, Gpu, Loss, Sequential, Sgd};

fn on_llvmpipe(gpu: &Gpu) -> bool {
    gpu.is_cpu() && gpu.adapter().name.contains("llvmpipe")
}

#[track_caller]
fn assert_refused(err: Error, what: &str, size: usize) {
    match &err {
        Error::LoopLimit {
            what: w, size: s, ..
        } if w.contains(what) && *s == size => {}
        _ => panic!("expected a refusal of {what} = {size}, got: {err}"),
    }
    assert!(err.to_string().contains("65 535"), "{err}");
}

#[test]
fn a_matmul_over_more_k_than_llvmpipe_loops_is_refused_there_and_exact_elsewhere() {
    let gpu = gpu();
    let mut rng = Rng::new(51);
    // 32 768 is the largest k computed exactly on llvmpipe; primes and powers of two around
    // it and past 65 535.
    for k in [32_767, 32_768, 32_769, 65_537, 70_001] {
        let (m, n) = (3, 5);
        let a = rng.vec(m * k, 0.5, 1.0);
        let b = rng.vec(k * n, 0.5, 1.0);
        let shape = MatmulShape {
            m,
            n,
            k,
            a: Layout::Normal,
            b: Layout::Normal,
        };
        match ops::matmul(&gpu, shape, &a, &b, None, Activation::Linear) {
            Err(e) => {
                assert!(on_llvmpipe(&gpu) && k > 32_768, "k = {k}: {e}");
                assert_refused(e, "k", k);
            }
            Ok(c) => {
                assert!(
                    !on_llvmpipe(&gpu) || k <= 32_768,
                    "k = {k} computed on llvmpipe"
                );
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64)
                            .sum();
                        let got = c[i * n + j] as f64;
                        // f32 sums of k positive terms: within k · 2^-24 of the sum.
                        assert!(
                            (got - want).abs() <= k as f64 * 6e-8 * want,
                            "k = {k}: C[{i}, {j}] = {got}, reference {want}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn an_activation_backward_over_more_rows_than_llvmpipe_loops_is_refused_there() {
    let gpu = gpu();
    let rows = 70_001;
    let a = vec![1.0f32; rows];
    let d = vec![1.0f32; rows];
    match ops::activation_backward(&gpu, rows, 1, Activation::Relu, &a, &d) {
        Err(e) => {
            assert!(on_llvmpipe(&gpu), "{e}");
            assert_refused(e, "rows", rows);
        }
        Ok((_, db)) => {
            assert!(!on_llvmpipe(&gpu), "computed on llvmpipe: db = {db:?}");
            assert_eq!(db, vec![rows as f32]);
        }
    }
}

/// A model whose input layer sums over 70 001 features, and a batch of 70 001 rows: refused
/// on llvmpipe, before anything runs.
#[test]
fn models_and_batches_past_llvmpipes_loops_are_refused_there() {
    let gpu = gpu();
    let mut rng = Rng::new(52);
    let features = 70_001;
    let x = rng.vec(2 * features, -1.0, 1.0);
    let wide = Dataset::classification(x, features, vec![0, 1]).unwrap();
    let mut model = Sequential::dense_stack(features, &[2], Activation::Relu);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    match model.evaluate(&wide, 2) {
        Err(e) => {
            assert!(on_llvmpipe(&gpu), "{e}");
            assert_refused(e, "layer 0's input width", features);
        }
        Ok(_) => assert!(!on_llvmpipe(&gpu), "a 70 001-input layer ran on llvmpipe"),
    }

    let rows = 70_001;
    let x = rng.vec(rows, -1.0, 1.0);
    let labels = (0..rows as u32).map(|i| i % 2).collect();
    let tall = Dataset::classification(x, 1, labels).unwrap();
    let mut model = Sequential::dense_stack(1, &[2], Activation::Relu);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let options = FitOptions {
        epochs: 1,
        batch_size: rows,
        ..FitOptions::default()
    };
    match model.fit(&tall, options, &mut []) {
        Err(e) => {
            assert!(on_llvmpipe(&gpu), "{e}");
            assert_refused(e, "batch size", rows);
        }
        Ok(_) => assert!(!on_llvmpipe(&gpu), "a batch of 70 001 rows ran on llvmpipe"),
    }
}
