//! The loss kernel (`wgfit::gpu::ops::loss`) against a plain CPU reference written here, with
//! f64 accumulation and inputs from a small deterministic generator.
//!
//! Tolerances (u = 2^-24, the unit roundoff of f32):
//! - loss: gradients and losses within 1e-6 relative to the magnitudes involved (plus 1e-6
//!   absolute for exp/log); the batch mean within (rows + 8) · u relative to Σ|row loss| / rows.

mod common;

use common::cpu_reference::U;
use common::gpu::gpu;
use common::rng::Rng;
use wgfit::gpu::ops::{self, LossCase};
use wgfit::{Activation, Gpu, Loss};

// ------------------------------------------------------------------------------------------
// loss

struct LossRef {
    grad: Vec<f64>,
    row_loss: Vec<f64>,
    /// Magnitude of the terms of each row loss, for its tolerance.
    row_mag: Vec<f64>,
    row_correct: Vec<f32>,
}

fn argmax_first(row: &[f32]) -> usize {
    let mut best = 0;
    for j in 1..row.len() {
        if row[j] > row[best] {
            best = j;
        }
    }
    best
}

fn loss_ref(c: &LossCase<'_>) -> LossRef {
    let LossCase {
        loss,
        rows,
        cols,
        y,
        t,
        class_labels,
        t_cols,
    } = *c;
    let mut r = LossRef {
        grad: vec![0.0; rows * cols],
        row_loss: vec![0.0; rows],
        row_mag: vec![0.0; rows],
        row_correct: vec![0.0; rows],
    };
    for i in 0..rows {
        let yr = &y[i * cols..(i + 1) * cols];
        let target = |j: usize| -> f64 {
            if class_labels {
                if t[i] as usize == j { 1.0 } else { 0.0 }
            } else if t_cols == 1 {
                t[i] as f64
            } else {
                t[i * t_cols + j] as f64
            }
        };
        match loss {
            Loss::MeanSquaredError => {
                let mut sum = 0.0;
                for (j, &yj) in yr.iter().enumerate() {
                    let diff = yj as f64 - target(j);
                    sum += diff * diff;
                    r.grad[i * cols + j] = 2.0 * diff / (rows * cols) as f64;
                }
                r.row_loss[i] = sum / cols as f64;
                r.row_mag[i] = r.row_loss[i];
            }
            Loss::CrossEntropy => {
                let label = t[i] as usize;
                let m = yr.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let s: f64 = yr.iter().map(|&v| (v as f64 - m).exp()).sum();
                r.row_loss[i] = m + s.ln() - yr[label] as f64;
                r.row_mag[i] = m.abs() + s.ln().abs() + (yr[label] as f64).abs();
                for (j, &yj) in yr.iter().enumerate() {
                    let p = (yj as f64 - m).exp() / s;
                    let onehot = if j == label { 1.0 } else { 0.0 };
                    r.grad[i * cols + j] = (p - onehot) / rows as f64;
                }
            }
        }
        if class_labels && argmax_first(yr) == t[i] as usize {
            r.row_correct[i] = 1.0;
        }
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn check_loss(
    gpu: &Gpu,
    loss: Loss,
    rows: usize,
    cols: usize,
    y: &[f32],
    t: &[f32],
    class_labels: bool,
    t_cols: usize,
) {
    let what =
        format!("{loss:?} rows={rows} cols={cols} class_labels={class_labels} t_cols={t_cols}");
    let case = LossCase {
        loss,
        rows,
        cols,
        y,
        t,
        class_labels,
        t_cols,
    };
    let got = ops::loss(gpu, &case).expect("loss runs");
    let want = loss_ref(&case);
    assert_eq!(got.grad.len(), rows * cols, "{what}");
    assert_eq!(got.row_loss.len(), rows, "{what}");
    for (i, g) in got.grad.iter().enumerate() {
        assert!(g.is_finite(), "{what}: grad[{i}] = {g}");
        let w = want.grad[i];
        // exp on the adapter is a few ulps off: 1e-6 of the largest possible term, 1/rows.
        let tol = 1e-6 * w.abs() + 1e-6 / rows as f64;
        assert!(
            (*g as f64 - w).abs() <= tol,
            "{what}: grad[{}, {}] = {g} but reference {w}",
            i / cols,
            i % cols
        );
    }
    for i in 0..rows {
        let (g, w) = (got.row_loss[i], want.row_loss[i]);
        assert!(g.is_finite(), "{what}: row_loss[{i}] = {g}");
        let tol = 1e-6 * want.row_mag[i] + 1e-6;
        assert!(
            (g as f64 - w).abs() <= tol,
            "{what}: row_loss[{i}] = {g} but reference {w}"
        );
    }
    assert_eq!(got.row_correct, want.row_correct, "{what}: row_correct");
    let mean: f64 = want.row_loss.iter().sum::<f64>() / rows as f64;
    let abs_mean: f64 = want.row_mag.iter().sum::<f64>() / rows as f64;
    let tol = (rows as f64 + 8.0) * U * abs_mean + 1e-6 * abs_mean + 1e-6;
    assert!(
        (got.batch_loss as f64 - mean).abs() <= tol,
        "{what}: batch_loss = {} but the mean of the row losses is {mean}",
        got.batch_loss
    );
    let correct: f32 = want.row_correct.iter().sum();
    assert_eq!(got.batch_correct, correct, "{what}: batch_correct");

    // Small batches take the one-launch form in training on a GPU (loss, reduce and the last layer's
    // activation backward): it must agree to the bit with the separate launches.
    if rows <= 64 {
        // Zeros compare equal whatever their sign: llvmpipe compiles WGSL without signed
        // zeros (LLVM's nsz), so `0.0 + g` may fold to `g` and keep the -0 of a product
        // `dy · 0` in one kernel and not in the other. Every other value agrees to the bit.
        let bits = |v: &[f32]| v.iter().map(|x| (x + 0.0).to_bits()).collect::<Vec<_>>();
        for act in [
            Activation::Linear,
            Activation::Relu,
            Activation::Tanh,
            Activation::Sigmoid,
        ] {
            let (fused, db) = ops::loss_fused(gpu, &case, act).expect("fused loss runs");
            let (dz, want_db) = ops::activation_backward(gpu, rows, cols, act, y, &got.grad)
                .expect("activation backward runs");
            assert_eq!(bits(&fused.grad), bits(&dz), "{what} {act:?}: fused dZ");
            assert_eq!(bits(&db), bits(&want_db), "{what} {act:?}: fused db");
            assert_eq!(
                fused.batch_loss.to_bits(),
                got.batch_loss.to_bits(),
                "{what}: fused batch loss"
            );
            assert_eq!(
                fused.batch_correct, got.batch_correct,
                "{what}: fused correct"
            );
        }
    }
}

/// A batch with one class label per row.
fn labels_case<'a>(
    loss: Loss,
    rows: usize,
    cols: usize,
    y: &'a [f32],
    t: &'a [f32],
) -> LossCase<'a> {
    LossCase {
        loss,
        rows,
        cols,
        y,
        t,
        class_labels: true,
        t_cols: 1,
    }
}

fn labels(rng: &mut Rng, rows: usize, cols: usize) -> Vec<f32> {
    (0..rows).map(|_| rng.below(cols) as f32).collect()
}

#[test]
fn loss_mse_with_class_labels() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for rows in [1, 7, 64, 65, 300] {
        for cols in [2, 10, 13, 70] {
            let y = rng.vec(rows * cols, -2.0, 2.0);
            let t = labels(&mut rng, rows, cols);
            check_loss(&gpu, Loss::MeanSquaredError, rows, cols, &y, &t, true, 1);
        }
    }
}

#[test]
fn loss_mse_with_float_targets() {
    let gpu = gpu();
    let mut rng = Rng::new(22);
    for rows in [1, 7, 300] {
        for cols in [1, 2, 10, 13] {
            let y = rng.vec(rows * cols, -2.0, 2.0);
            let t = rng.vec(rows * cols, -2.0, 2.0);
            check_loss(
                &gpu,
                Loss::MeanSquaredError,
                rows,
                cols,
                &y,
                &t,
                false,
                cols,
            );
        }
    }
}

#[test]
fn loss_mse_with_one_target_column_broadcast() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    for rows in [1, 7, 300] {
        for cols in [2, 10, 13] {
            let y = rng.vec(rows * cols, -2.0, 2.0);
            let t = rng.vec(rows, -2.0, 2.0);
            check_loss(&gpu, Loss::MeanSquaredError, rows, cols, &y, &t, false, 1);
        }
    }
}

#[test]
fn loss_cross_entropy() {
    let gpu = gpu();
    let mut rng = Rng::new(24);
    for rows in [1, 7, 64, 300] {
        for cols in [2, 10, 13] {
            let y = rng.vec(rows * cols, -5.0, 5.0);
            let t = labels(&mut rng, rows, cols);
            check_loss(&gpu, Loss::CrossEntropy, rows, cols, &y, &t, true, 1);
        }
    }
}

#[test]
fn loss_cross_entropy_large_logits_are_stable() {
    let gpu = gpu();
    let mut rng = Rng::new(25);
    let special = [80.0, -80.0, 1000.0, -1000.0, 88.0, -88.0, 0.0];
    for rows in [1, 7, 300] {
        for cols in [2, 10, 13] {
            // Every logit is one of the special values, or a random one around it.
            let y: Vec<f32> = (0..rows * cols)
                .map(|_| special[rng.below(special.len())] + rng.uniform(-1.0, 1.0))
                .collect();
            let t = labels(&mut rng, rows, cols);
            check_loss(&gpu, Loss::CrossEntropy, rows, cols, &y, &t, true, 1);
        }
    }
    // Hand-picked rows: one dominating logit, the label far below it, exact ties.
    let y = vec![
        1000.0, 0.0, -1000.0, // label 2: loss 2000
        80.0, -80.0, 80.0, // tie: first max (0) wins
        -80.0, -80.0, -80.0, // all equal: argmax 0
        0.0, 1000.0, 999.0, // label 1
    ];
    let t = vec![2.0, 2.0, 0.0, 1.0];
    check_loss(&gpu, Loss::CrossEntropy, 4, 3, &y, &t, true, 1);
    let out = ops::loss(&gpu, &labels_case(Loss::CrossEntropy, 4, 3, &y, &t)).unwrap();
    assert_eq!(out.row_correct, vec![0.0, 0.0, 1.0, 1.0]);
    assert!(
        (out.row_loss[0] - 2000.0).abs() <= 1e-3,
        "{:?}",
        out.row_loss
    );
    // -80 + ln 3 + 80 in f32: two roundings at the scale of 80 (ulp 7.6e-6).
    assert!(
        (out.row_loss[2] - 3f32.ln()).abs() <= 2e-5,
        "{:?}",
        out.row_loss
    );
}

#[test]
fn loss_first_maximum_wins_ties() {
    let gpu = gpu();
    // Rows with ties between columns 1 and 2; the label names one of them.
    let y = vec![0.0, 5.0, 5.0, 1.0, 0.0, 5.0, 5.0, 1.0];
    for loss in [Loss::MeanSquaredError, Loss::CrossEntropy] {
        let out = ops::loss(&gpu, &labels_case(loss, 2, 4, &y, &[1.0, 2.0])).unwrap();
        assert_eq!(out.row_correct, vec![1.0, 0.0], "{loss:?}");
        assert_eq!(out.batch_correct, 1.0, "{loss:?}");
    }
}

#[test]
fn loss_rows_beyond_one_grid_dimension() {
    // 65 535 workgroups of 64 rows is the most one grid dimension holds; `grid()` folds larger
    // launches into a second dimension, which the loss kernel must then cover too.
    let gpu = gpu();
    let rows = 65_535 * 64 + 100;
    let y: Vec<f32> = (0..rows).map(|i| (i % 7 + 1) as f32).collect();
    let t = vec![0.0f32; rows];
    let case = LossCase {
        loss: Loss::MeanSquaredError,
        rows,
        cols: 1,
        y: &y,
        t: &t,
        class_labels: false,
        t_cols: 1,
    };
    let out = ops::loss(&gpu, &case).unwrap();
    let scale = 2.0 / rows as f32;
    let wrong: Vec<usize> = (0..rows)
        .filter(|&i| out.row_loss[i] != y[i] * y[i] || out.grad[i] != scale * y[i])
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {rows} rows have a wrong loss or gradient, the first at row {} (loss {}, \
         expected {})",
        wrong.len(),
        wrong[0],
        out.row_loss[wrong[0]],
        y[wrong[0]] * y[wrong[0]]
    );
}
