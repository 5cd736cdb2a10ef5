//! The loss kernels on wide rows (tens of thousands of classes up to the widest row a model may
//! have) against an f64 reference written here, and a model with that many classes evaluated
//! end to end. llvmpipe (lavapipe) silently ends an invocation's loops after 65 535 iterations
//! in all, which once cut the loss of rows past about 16 000 columns short: the widths below
//! sit around that limit, around every power of two from the kernels' 256-lane tiling up, and
//! on the switch from the one-invocation-per-row kernel to the wide one (4 096 columns).
//!
//! Tolerances: exp and log on the adapter are a few ulps off, and the wide kernel sums a row in
//! a tree of 256 lanes: losses within 4e-6 of the magnitudes of their terms, gradients within
//! 4e-6 relative (the softmax terms of a wide row are about 1 / cols, so an absolute slack would
//! hide them).

mod common;

use common::gpu::gpu;
use common::rng::Rng;
use wgfit::gpu::MAX_LOSS_COLS;
use wgfit::gpu::ops::{self, LossCase};
use wgfit::{Activation, Dataset, Gpu, Loss, Sequential, Sgd, Tensor};

/// Per-row losses, their magnitudes, the gradient and the first-maximum hits, in f64.
struct Reference {
    row_loss: Vec<f64>,
    row_mag: Vec<f64>,
    grad: Vec<f64>,
    correct: Vec<f32>,
}

fn reference(c: &LossCase<'_>) -> Reference {
    let (rows, cols) = (c.rows, c.cols);
    let mut out = Reference {
        row_loss: vec![0.0; rows],
        row_mag: vec![0.0; rows],
        grad: vec![0.0; rows * cols],
        correct: vec![0.0; rows],
    };
    for i in 0..rows {
        let y = &c.y[i * cols..(i + 1) * cols];
        let target = |j: usize| -> f64 {
            match (c.class_labels, c.t_cols) {
                (true, _) => f64::from(u8::from(c.t[i] as usize == j)),
                (false, 1) => c.t[i] as f64,
                (false, _) => c.t[i * c.t_cols + j] as f64,
            }
        };
        let first_max = (0..cols).fold(0, |best, j| if y[j] > y[best] { j } else { best });
        if c.class_labels && first_max == c.t[i] as usize {
            out.correct[i] = 1.0;
        }
        let grad = &mut out.grad[i * cols..(i + 1) * cols];
        match c.loss {
            Loss::MeanSquaredError => {
                let mut sum = 0.0;
                for j in 0..cols {
                    let diff = y[j] as f64 - target(j);
                    sum += diff * diff;
                    grad[j] = 2.0 * diff / (rows * cols) as f64;
                }
                out.row_loss[i] = sum / cols as f64;
                out.row_mag[i] = out.row_loss[i];
            }
            Loss::CrossEntropy => {
                let label = c.t[i] as usize;
                let m = y[first_max] as f64;
                let s: f64 = y.iter().map(|&v| (v as f64 - m).exp()).sum();
                out.row_loss[i] = m + s.ln() - y[label] as f64;
                out.row_mag[i] = m.abs() + s.ln().abs() + (y[label] as f64).abs();
                for j in 0..cols {
                    let p = (y[j] as f64 - m).exp() / s;
                    grad[j] = (p - target(j)) / rows as f64;
                }
            }
        }
    }
    out
}

fn check(gpu: &Gpu, c: &LossCase<'_>) {
    let what = format!("{:?} rows={} cols={}", c.loss, c.rows, c.cols);
    let got = ops::loss(gpu, c).expect("the loss runs");
    let want = reference(c);
    for i in 0..c.rows {
        let (g, w) = (got.row_loss[i] as f64, want.row_loss[i]);
        assert!(
            (g - w).abs() <= 4e-6 * want.row_mag[i] + 1e-6,
            "{what}: row {i} loss {g}, reference {w}"
        );
    }
    let bad = (0..want.grad.len()).find(|&k| {
        let (g, w) = (got.grad[k] as f64, want.grad[k]);
        (g - w).abs() > 4e-6 * w.abs() + 1e-30
    });
    if let Some(k) = bad {
        panic!(
            "{what}: dY[{}, {}] = {} but the reference is {}",
            k / c.cols,
            k % c.cols,
            got.grad[k],
            want.grad[k]
        );
    }
    assert_eq!(got.row_correct, want.correct, "{what}: first maxima");
    let mean = want.row_loss.iter().sum::<f64>() / c.rows as f64;
    let mag = want.row_mag.iter().sum::<f64>() / c.rows as f64;
    assert!(
        (got.batch_loss as f64 - mean).abs() <= 4e-6 * mag + 1e-6,
        "{what}: batch loss {} against {mean}",
        got.batch_loss
    );
}

/// Widths around the wide kernel's switch, its 256-lane tiling, llvmpipe's 65 535 iterations
/// (about 16 000 and 65 536 columns) and the powers of two up to 131 072, plus primes.
const WIDTHS: [usize; 19] = [
    2, 255, 4_093, 4_096, 4_097, 16_383, 16_384, 16_385, 21_841, 32_767, 32_768, 32_769, 40_000,
    65_535, 65_536, 65_537, 100_001, 131_072, 131_073,
];

/// Logits in [-2, 2), a row's labels at its first, last and a middle column.
fn case_data(rng: &mut Rng, rows: usize, cols: usize) -> (Vec<f32>, Vec<f32>) {
    let y = rng.vec(rows * cols, -2.0, 2.0);
    let t = (0..rows)
        .map(|i| match i % 3 {
            0 => 0,
            1 => cols - 1,
            _ => rng.below(cols),
        } as f32)
        .collect();
    (y, t)
}

#[test]
fn cross_entropy_is_exact_on_rows_of_every_width() {
    let gpu = gpu();
    let mut rng = Rng::new(41);
    for cols in WIDTHS {
        let rows = 3;
        let (y, t) = case_data(&mut rng, rows, cols);
        let case = LossCase {
            loss: Loss::CrossEntropy,
            rows,
            cols,
            y: &y,
            t: &t,
            class_labels: true,
            t_cols: 1,
        };
        check(&gpu, &case);
    }
}

#[test]
fn mean_squared_error_is_exact_on_rows_of_every_width() {
    let gpu = gpu();
    let mut rng = Rng::new(42);
    for cols in [4_097, 16_385, 65_537, 100_001] {
        let rows = 2;
        let (y, labels) = case_data(&mut rng, rows, cols);
        let values = rng.vec(rows * cols, -1.0, 1.0);
        let one_column = rng.vec(rows, -1.0, 1.0);
        for (t, class_labels, t_cols) in [
            (&labels, true, 1),
            (&values, false, cols),
            (&one_column, false, 1),
        ] {
            let case = LossCase {
                loss: Loss::MeanSquaredError,
                rows,
                cols,
                y: &y,
                t,
                class_labels,
                t_cols,
            };
            check(&gpu, &case);
        }
    }
}

#[test]
fn the_widest_row_a_model_may_have_is_exact() {
    let gpu = gpu();
    let mut rng = Rng::new(43);
    let (y, _) = case_data(&mut rng, 1, MAX_LOSS_COLS);
    let t = [(MAX_LOSS_COLS - 1) as f32];
    let case = LossCase {
        loss: Loss::CrossEntropy,
        rows: 1,
        cols: MAX_LOSS_COLS,
        y: &y,
        t: &t,
        class_labels: true,
        t_cols: 1,
    };
    check(&gpu, &case);
    // One more column is refused, not computed wrong.
    let y = vec![0.0; MAX_LOSS_COLS + 1];
    let err = ops::loss(
        &gpu,
        &LossCase {
            cols: MAX_LOSS_COLS + 1,
            y: &y,
            ..case
        },
    )
    .expect_err("a row wider than the kernel takes");
    assert!(err.to_string().contains("at most"), "{err}");
}

#[test]
fn the_first_maximum_of_a_wide_row_wins_ties_across_lanes() {
    let gpu = gpu();
    let cols = 70_001;
    // Row 0: the maximum at columns 300 and 5 000 (other lanes, the later one in a lower
    // lane); row 1: at the last column only; row 2: at columns 256 and 0 (the same lane).
    let mut y = vec![0.0f32; 3 * cols];
    y[300] = 3.0;
    y[5_000] = 3.0;
    y[cols + cols - 1] = 2.0;
    y[2 * cols + 256] = 1.0;
    y[2 * cols] = 1.0;
    for (labels, correct) in [
        ([300.0, (cols - 1) as f32, 0.0], [1.0, 1.0, 1.0]),
        ([5_000.0, 7.0, 256.0], [0.0, 0.0, 0.0]),
    ] {
        let case = LossCase {
            loss: Loss::CrossEntropy,
            rows: 3,
            cols,
            y: &y,
            t: &labels,
            class_labels: true,
            t_cols: 1,
        };
        check(&gpu, &case);
        let got = ops::loss(&gpu, &case).expect("the loss runs");
        assert_eq!(got.row_correct, correct, "labels {labels:?}");
    }
}

/// A model with 70 001 classes, evaluated: its loss and accuracy are the f64 reference's on
/// its own parameters (the forward pass here is one 4-input layer, whose matmul loops over 4).
#[test]
fn a_model_with_seventy_thousand_classes_evaluates_to_the_reference() {
    let classes = 70_001;
    let (features, samples) = (4, 6);
    let mut rng = Rng::new(44);
    let x = rng.vec(samples * features, -1.0, 1.0);
    let labels: Vec<u32> = [0, 1, classes - 1, 65_535, 40_000, 7]
        .iter()
        .map(|&l| l as u32)
        .collect();
    let data = Dataset::classification(x.clone(), features, labels.clone()).unwrap();
    let mut model = Sequential::dense_stack(features, &[classes], Activation::Relu).seed(3);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    // Larger weights than Glorot's for so wide a layer, so that the logits differ clearly.
    let weight = rng.vec(classes * features, -1.0, 1.0);
    let bias = rng.vec(classes, -0.5, 0.5);
    model
        .set_parameters(&[
            Tensor {
                name: "model.layers.0.weight".into(),
                shape: vec![classes, features],
                data: weight.clone(),
            },
            Tensor {
                name: "model.layers.0.bias".into(),
                shape: vec![classes],
                data: bias.clone(),
            },
        ])
        .unwrap();
    let logs = model.evaluate(&data, samples).unwrap();
    let mut loss = 0.0;
    let mut correct = 0.0;
    for (i, &label) in labels.iter().enumerate() {
        let logits: Vec<f64> = (0..classes)
            .map(|j| {
                (0..features).fold(bias[j] as f64, |s, f| {
                    s + weight[j * features + f] as f64 * x[i * features + f] as f64
                })
            })
            .collect();
        let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = logits.iter().map(|v| (v - m).exp()).sum();
        loss += m + s.ln() - logits[label as usize];
        let first_max = (0..classes).find(|&j| logits[j] == m).unwrap();
        correct += f64::from(u8::from(first_max == label as usize));
    }
    let (loss, accuracy) = (loss / samples as f64, correct / samples as f64);
    assert!(
        (logs["loss"] - loss).abs() <= 1e-4 * loss,
        "loss {} but the reference is {loss}",
        logs["loss"]
    );
    assert_eq!(logs["accuracy"], accuracy, "accuracy");
}
