//! Every kernel (`wgfit::gpu::ops`) against a plain CPU reference written here: simple loops
//! with f64 accumulation, inputs from a small deterministic generator.
//!
//! Tolerances (u = 2^-24, the unit roundoff of f32):
//! - matmul: |gpu - ref| <= (k + 4) · u · (1 + Σ_k |a_ik · b_kj| + |bias_j|) + act_abs, the
//!   worst-case error bound of a sequential f32 dot product (γ_k) with one unit of slack for
//!   the bias add; act_abs = 1e-6 for tanh and sigmoid (the adapter's exp/tanh are a few ulps
//!   off) and 0 for linear and relu. Activations are 1-Lipschitz, so the bound carries over.
//! - activation_backward: dZ within 4 u relative plus u · |dA| absolute (the cancellation in
//!   1 - A² and A(1 - A)); db within (rows + 2) · u · Σ_r |dZ_rj| (sequential sum).
//! - loss: gradients and losses within 1e-6 relative to the magnitudes involved (plus 1e-6
//!   absolute for exp/log); the batch mean within (rows + 8) · u relative to Σ|row loss| / rows.
//! - gather: exact. sgd: 4 u relative to the sum of the magnitudes of the update's terms.

use std::sync::Arc;

use wgfit::gpu::ops::{self, Layout, MatmulShape};
use wgfit::{Activation, Gpu, Loss, Sgd};

const U: f64 = 1.0 / (1u64 << 24) as f64;

const ACTS: [Activation; 4] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Tanh,
    Activation::Sigmoid,
];

/// `(m, n, k)`: trivial, primes, non-multiples of the 64 tile, many workgroups.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (7, 13, 5),
    (13, 7, 17),
    (65, 63, 67),
    (100, 3, 129),
    (300, 257, 70),
];

fn gpu() -> Arc<Gpu> {
    Gpu::shared().expect("a GPU adapter (lavapipe on CI)")
}

/// SplitMix64: deterministic inputs without new dependencies.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn act_f64(x: f64, act: Activation) -> f64 {
    match act {
        Activation::Linear => x,
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}

// ------------------------------------------------------------------------------------------
// matmul

/// `A(i, kk)` of an `m×k` operand stored by `layout`.
fn a_at(a: &[f32], layout: Layout, m: usize, k: usize, i: usize, kk: usize) -> f64 {
    match layout {
        Layout::Normal => a[i * k + kk] as f64,
        Layout::Transposed => a[kk * m + i] as f64,
    }
}

/// `B(kk, j)` of a `k×n` operand stored by `layout`.
fn b_at(b: &[f32], layout: Layout, k: usize, n: usize, kk: usize, j: usize) -> f64 {
    match layout {
        Layout::Normal => b[kk * n + j] as f64,
        Layout::Transposed => b[j * k + kk] as f64,
    }
}

/// Reference `act(A·B + bias)` and, per element, `Σ_k |a·b| + |bias|` for the tolerance.
fn matmul_ref(
    s: MatmulShape,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; s.m * s.n];
    let mut mag = vec![0.0; s.m * s.n];
    for i in 0..s.m {
        for j in 0..s.n {
            let mut acc = 0f64;
            let mut abs = 0f64;
            for kk in 0..s.k {
                let p = a_at(a, s.a, s.m, s.k, i, kk) * b_at(b, s.b, s.k, s.n, kk, j);
                acc += p;
                abs += p.abs();
            }
            if let Some(bias) = bias {
                acc += bias[j] as f64;
                abs += (bias[j] as f64).abs();
            }
            out[i * s.n + j] = act_f64(acc, act);
            mag[i * s.n + j] = abs;
        }
    }
    (out, mag)
}

/// Runs one matmul and checks it against the reference; returns the worst error / tolerance.
fn check_matmul(
    gpu: &Gpu,
    rng: &mut Rng,
    (m, n, k): (usize, usize, usize),
    a_layout: Layout,
    b_layout: Layout,
    with_bias: bool,
    act: Activation,
) -> f64 {
    let shape = MatmulShape {
        m,
        n,
        k,
        a: a_layout,
        b: b_layout,
    };
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let bias = rng.vec(n, -1.0, 1.0);
    let bias = with_bias.then_some(bias.as_slice());
    let got = ops::matmul(gpu, shape, &a, &b, bias, act).expect("matmul runs");
    assert_eq!(got.len(), m * n, "result length for {shape:?}");
    let (want, mag) = matmul_ref(shape, &a, &b, bias, act);
    let act_abs = match act {
        Activation::Tanh | Activation::Sigmoid => 1e-6,
        _ => 0.0,
    };
    let mut worst = 0f64;
    for idx in 0..m * n {
        let tol = (k as f64 + 4.0) * U * (1.0 + mag[idx]) + act_abs;
        let err = (got[idx] as f64 - want[idx]).abs();
        assert!(
            err <= tol,
            "matmul {shape:?} bias={with_bias} {act:?}: C[{}, {}] = {} but reference {} \
             (error {err:e} > tolerance {tol:e})",
            idx / n,
            idx % n,
            got[idx],
            want[idx]
        );
        worst = worst.max(err / tol);
    }
    worst
}

#[test]
fn matmul_forward_x_wt_with_bias_and_every_activation() {
    let gpu = gpu();
    let mut rng = Rng::new(1);
    for shape in SHAPES {
        for act in ACTS {
            check_matmul(
                &gpu,
                &mut rng,
                shape,
                Layout::Normal,
                Layout::Transposed,
                true,
                act,
            );
        }
    }
}

#[test]
fn matmul_forward_without_bias() {
    let gpu = gpu();
    let mut rng = Rng::new(2);
    for shape in [(7, 13, 5), (65, 63, 67)] {
        for act in [Activation::Linear, Activation::Relu] {
            check_matmul(
                &gpu,
                &mut rng,
                shape,
                Layout::Normal,
                Layout::Transposed,
                false,
                act,
            );
        }
    }
}

#[test]
fn matmul_backward_input_dy_w() {
    let gpu = gpu();
    let mut rng = Rng::new(3);
    for shape in SHAPES {
        check_matmul(
            &gpu,
            &mut rng,
            shape,
            Layout::Normal,
            Layout::Normal,
            false,
            Activation::Linear,
        );
    }
}

#[test]
fn matmul_backward_weight_dyt_x() {
    let gpu = gpu();
    let mut rng = Rng::new(4);
    for shape in SHAPES {
        check_matmul(
            &gpu,
            &mut rng,
            shape,
            Layout::Transposed,
            Layout::Normal,
            false,
            Activation::Linear,
        );
    }
}

#[test]
fn matmul_both_transposed() {
    // Not used in training, but the strides allow it; cheap to cover.
    let gpu = gpu();
    let mut rng = Rng::new(5);
    for shape in [(1, 1, 1), (13, 7, 17), (65, 63, 67)] {
        check_matmul(
            &gpu,
            &mut rng,
            shape,
            Layout::Transposed,
            Layout::Transposed,
            true,
            Activation::Tanh,
        );
    }
}

#[test]
fn matmul_exact_on_integers() {
    // Small integers: every product and partial sum is exact in f32, so the result must be too.
    let gpu = gpu();
    let mut rng = Rng::new(6);
    let (m, n, k) = (65, 66, 130);
    let a: Vec<f32> = (0..m * k).map(|_| rng.below(7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..k * n).map(|_| rng.below(7) as f32 - 3.0).collect();
    let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
    let shape = MatmulShape {
        m,
        n,
        k,
        a: Layout::Normal,
        b: Layout::Transposed,
    };
    let got = ops::matmul(&gpu, shape, &a, &b, Some(&bias), Activation::Relu).unwrap();
    let (want, _) = matmul_ref(shape, &a, &b, Some(&bias), Activation::Relu);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(*g as f64, *w, "C[{}, {}]", i / n, i % n);
    }
}

#[test]
fn matmul_is_deterministic() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    let (m, n, k) = (300, 257, 70);
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let bias = rng.vec(n, -1.0, 1.0);
    let shape = MatmulShape {
        m,
        n,
        k,
        a: Layout::Normal,
        b: Layout::Transposed,
    };
    let first = ops::matmul(&gpu, shape, &a, &b, Some(&bias), Activation::Tanh).unwrap();
    let second = ops::matmul(&gpu, shape, &a, &b, Some(&bias), Activation::Tanh).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert!(
        bits(&first) == bits(&second),
        "two runs of the same matmul differ"
    );
}

// ------------------------------------------------------------------------------------------
// activation_backward

fn derivative_f64(a: f64, act: Activation) -> f64 {
    match act {
        Activation::Linear => 1.0,
        Activation::Relu => {
            if a > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Tanh => 1.0 - a * a,
        Activation::Sigmoid => a * (1.0 - a),
    }
}

#[test]
fn activation_backward_every_activation_and_shape() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    for (rows, cols) in [(1, 1), (7, 13), (300, 65)] {
        for act in ACTS {
            // A is a real layer output: act(z) of some pre-activation z (relu gives exact zeros).
            let z = rng.vec(rows * cols, -3.0, 3.0);
            let a: Vec<f32> = z.iter().map(|&v| act_f64(v as f64, act) as f32).collect();
            let d = rng.vec(rows * cols, -2.0, 2.0);
            let (dz, db) =
                ops::activation_backward(&gpu, rows, cols, act, &a, &d).expect("backward runs");
            assert_eq!(dz.len(), rows * cols);
            assert_eq!(db.len(), cols);
            let what = format!("activation_backward {rows}x{cols} {act:?}");
            for i in 0..rows * cols {
                let want = d[i] as f64 * derivative_f64(a[i] as f64, act);
                let tol = 4.0 * U * want.abs() + U * (d[i] as f64).abs();
                let err = (dz[i] as f64 - want).abs();
                assert!(
                    err <= tol,
                    "{what}: dZ[{i}] = {} but reference {want} (A = {}, dA = {})",
                    dz[i],
                    a[i],
                    d[i]
                );
            }
            for j in 0..cols {
                let want: f64 = (0..rows).map(|r| dz[r * cols + j] as f64).sum();
                let abs: f64 = (0..rows).map(|r| (dz[r * cols + j] as f64).abs()).sum();
                let tol = (rows as f64 + 2.0) * U * abs;
                let err = (db[j] as f64 - want).abs();
                assert!(
                    err <= tol,
                    "{what}: db[{j}] = {} but the column sum of dZ is {want}",
                    db[j]
                );
            }
        }
    }
}

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

#[allow(clippy::too_many_arguments)]
fn loss_ref(
    loss: Loss,
    rows: usize,
    cols: usize,
    y: &[f32],
    t: &[f32],
    class_labels: bool,
    t_cols: usize,
) -> LossRef {
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
    let got = ops::loss(gpu, loss, rows, cols, y, t, class_labels, t_cols).expect("loss runs");
    let want = loss_ref(loss, rows, cols, y, t, class_labels, t_cols);
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
}

fn labels(rng: &mut Rng, rows: usize, cols: usize) -> Vec<f32> {
    (0..rows).map(|_| rng.below(cols) as f32).collect()
}

#[test]
fn loss_mse_with_class_labels() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    for rows in [1, 7, 300] {
        for cols in [2, 10, 13] {
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
    for rows in [1, 7, 300] {
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
    let out = ops::loss(&gpu, Loss::CrossEntropy, 4, 3, &y, &t, true, 1).unwrap();
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
        let out = ops::loss(&gpu, loss, 2, 4, &y, &[1.0, 2.0], true, 1).unwrap();
        assert_eq!(out.row_correct, vec![1.0, 0.0], "{loss:?}");
        assert_eq!(out.batch_correct, 1.0, "{loss:?}");
    }
}

// ------------------------------------------------------------------------------------------
// gather

#[test]
fn gather_permuted_rows_from_an_offset() {
    let gpu = gpu();
    let mut rng = Rng::new(31);
    let samples = 50;
    for features in [1, 5, 64] {
        for t_cols in [1, 3] {
            let x = rng.vec(samples * features, -10.0, 10.0);
            let t = rng.vec(samples * t_cols, -10.0, 10.0);
            // A Fisher–Yates permutation.
            let mut perm: Vec<u32> = (0..samples as u32).collect();
            for i in (1..samples).rev() {
                perm.swap(i, rng.below(i + 1));
            }
            for (start, rows) in [(0, samples), (7, 20), (49, 1), (0, 1)] {
                let (xb, tb) =
                    ops::gather(&gpu, &x, features, &t, t_cols, &perm, start, rows).unwrap();
                let what = format!("features={features} t_cols={t_cols} start={start} rows={rows}");
                assert_eq!(xb.len(), rows * features, "{what}");
                assert_eq!(tb.len(), rows * t_cols, "{what}");
                for r in 0..rows {
                    let src = perm[start + r] as usize;
                    assert_eq!(
                        xb[r * features..(r + 1) * features],
                        x[src * features..(src + 1) * features],
                        "{what}: x row {r} (sample {src})"
                    );
                    assert_eq!(
                        tb[r * t_cols..(r + 1) * t_cols],
                        t[src * t_cols..(src + 1) * t_cols],
                        "{what}: t row {r} (sample {src})"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// sgd

/// Reference update in f64; returns `(w, v, tolerance scale of w, tolerance scale of v)`.
fn sgd_ref(o: &Sgd, w: f32, g: f32, v: f32) -> (f64, f64, f64, f64) {
    let (lr, m, wd) = (
        o.learning_rate as f64,
        o.momentum as f64,
        o.weight_decay as f64,
    );
    let (mut w, g, v) = (w as f64, g as f64, v as f64);
    let mut scale = w.abs();
    if wd != 0.0 {
        scale += (lr * wd * w).abs();
        w -= lr * wd * w;
    }
    if m == 0.0 {
        scale += (lr * g).abs();
        (w - lr * g, v, scale, 0.0)
    } else {
        let v_new = m * v - lr * g;
        let v_scale = (m * v).abs() + (lr * g).abs();
        if o.nesterov {
            scale += m * v_scale + (lr * g).abs();
            (w + m * v_new - lr * g, v_new, scale, v_scale)
        } else {
            scale += v_scale;
            (w + v_new, v_new, scale, v_scale)
        }
    }
}

#[test]
fn sgd_every_variant_and_length() {
    let gpu = gpu();
    let mut rng = Rng::new(41);
    let variants = [
        Sgd::new(0.1),
        Sgd::new(0.05).momentum(0.9),
        Sgd::new(0.05).momentum(0.9).nesterov(true),
        Sgd::new(0.1).weight_decay(0.01),
        Sgd::new(0.05).momentum(0.5).weight_decay(0.1),
        Sgd::new(0.05)
            .momentum(0.8)
            .nesterov(true)
            .weight_decay(0.02),
    ];
    for opt in variants {
        for len in [1, 7, 1000, 70_000] {
            let w = rng.vec(len, -2.0, 2.0);
            let g = rng.vec(len, -2.0, 2.0);
            let v = rng.vec(len, -1.0, 1.0);
            let (w_new, v_new) = ops::sgd(&gpu, &opt, &w, &g, &v).expect("sgd runs");
            assert_eq!(w_new.len(), len);
            assert_eq!(v_new.len(), len);
            for i in 0..len {
                let (ww, vw, ws, vs) = sgd_ref(&opt, w[i], g[i], v[i]);
                let what = format!("{opt:?} len={len} i={i}");
                assert!(
                    (w_new[i] as f64 - ww).abs() <= 4.0 * U * ws,
                    "{what}: w = {} but reference {ww}",
                    w_new[i]
                );
                if opt.momentum == 0.0 {
                    assert_eq!(v_new[i].to_bits(), v[i].to_bits(), "{what}: v changed");
                } else {
                    assert!(
                        (v_new[i] as f64 - vw).abs() <= 4.0 * U * vs,
                        "{what}: v = {} but reference {vw}",
                        v_new[i]
                    );
                }
            }
        }
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
    let out = ops::loss(&gpu, Loss::MeanSquaredError, rows, 1, &y, &t, false, 1).unwrap();
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
