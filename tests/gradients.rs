//! Finite-difference gradient check of a 2-layer model (3 inputs → 4 hidden → 3 outputs, 5
//! samples, one batch = the whole data set, no shuffle) for every loss and hidden activation.
//!
//! The GPU's gradient is read through one plain SGD step with learning rate 1: g = before -
//! after (lr = 1 keeps the f32 rounding of the update at one ulp of the parameter, ~6e-8, where
//! a small lr would divide that rounding by lr). Two references:
//! - a central difference of the loss that `evaluate` computes on the GPU after
//!   `set_parameters` with one entry moved by ±EPS (f32 loss, so a loose tolerance:
//!   |g - fd| <= 2e-2 · max(|g|, |fd|) + 1e-4);
//! - a central difference (step 1e-4) of the same loss computed on the CPU in f64, which is
//!   accurate to ~1e-8, so the tolerance is tight: |g - ref| <= 1e-4 · |ref| + 2e-6.
//!
//! Relu kinks: the parameters and inputs are drawn again until every hidden pre-activation is
//! at least MARGIN away from 0, so no perturbation (at most EPS · max|x| = EPS) crosses a kink.

mod common;

use common::cpu_reference::act_f64;
use common::rng::Rng;
use wgfit::{Activation, Dataset, Dense, FitOptions, Loss, Sequential, Sgd, Tensor};

const INPUTS: usize = 3;
const HIDDEN: usize = 4;
const OUTPUTS: usize = 3;
const SAMPLES: usize = 5;
const EPS: f32 = 5e-3;
const MARGIN: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Targets {
    /// MSE against one-hot class labels.
    MseClasses,
    /// MSE against float targets, one per output.
    MseValues,
    /// MSE against one float target column broadcast to every output.
    MseBroadcast,
    /// Softmax cross-entropy with class labels.
    CrossEntropy,
}

impl Targets {
    fn loss(self) -> Loss {
        match self {
            Targets::CrossEntropy => Loss::CrossEntropy,
            _ => Loss::MeanSquaredError,
        }
    }
}

struct Problem {
    x: Vec<f32>,
    labels: Vec<u32>,
    values: Vec<f32>,
    t_cols: usize,
    /// w0 [HIDDEN, INPUTS], b0 [HIDDEN], w1 [OUTPUTS, HIDDEN], b1 [OUTPUTS].
    params: Vec<Tensor>,
}

fn hidden_pre(x: &[f32], p: &[Vec<f64>]) -> Vec<f64> {
    let mut z = vec![0.0; SAMPLES * HIDDEN];
    for r in 0..SAMPLES {
        for h in 0..HIDDEN {
            z[r * HIDDEN + h] = p[1][h]
                + (0..INPUTS)
                    .map(|i| x[r * INPUTS + i] as f64 * p[0][h * INPUTS + i])
                    .sum::<f64>();
        }
    }
    z
}

/// The batch loss on the CPU in f64 for parameters `p` (same order as `Problem::params`).
fn cpu_loss(prob: &Problem, kind: Targets, act: Activation, p: &[Vec<f64>]) -> f64 {
    let z = hidden_pre(&prob.x, p);
    let mut total = 0.0;
    for r in 0..SAMPLES {
        let y: Vec<f64> = (0..OUTPUTS)
            .map(|o| {
                p[3][o]
                    + (0..HIDDEN)
                        .map(|h| act_f64(z[r * HIDDEN + h], act) * p[2][o * HIDDEN + h])
                        .sum::<f64>()
            })
            .collect();
        total += match kind {
            Targets::CrossEntropy => {
                let m = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = y.iter().map(|v| (v - m).exp()).sum();
                m + s.ln() - y[prob.labels[r] as usize]
            }
            _ => {
                let t = |o: usize| match kind {
                    Targets::MseClasses => f64::from(u8::from(prob.labels[r] as usize == o)),
                    Targets::MseValues => prob.values[r * OUTPUTS + o] as f64,
                    _ => prob.values[r] as f64,
                };
                (0..OUTPUTS).map(|o| (y[o] - t(o)).powi(2)).sum::<f64>() / OUTPUTS as f64
            }
        };
    }
    total / SAMPLES as f64
}

fn problem(kind: Targets, act: Activation, seed: u64) -> Problem {
    let mut rng = Rng(seed);
    loop {
        let x = rng.vec(SAMPLES * INPUTS, -1.0, 1.0);
        let w0 = rng.vec(HIDDEN * INPUTS, -1.0, 1.0);
        let b0 = rng.vec(HIDDEN, -0.5, 0.5);
        let w1 = rng.vec(OUTPUTS * HIDDEN, -1.0, 1.0);
        let b1 = rng.vec(OUTPUTS, -0.5, 0.5);
        let labels: Vec<u32> = (0..SAMPLES)
            .map(|_| (rng.next_u64() % OUTPUTS as u64) as u32)
            .collect();
        let t_cols = if kind == Targets::MseBroadcast {
            1
        } else {
            OUTPUTS
        };
        let values = rng.vec(SAMPLES * t_cols, -1.0, 1.0);
        let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
        let p = [f64s(&w0), f64s(&b0), f64s(&w1), f64s(&b1)];
        let z = hidden_pre(&x, &p);
        if act == Activation::Relu && z.iter().any(|v| v.abs() < MARGIN) {
            continue;
        }
        let tensor = |name: &str, shape: Vec<usize>, data: Vec<f32>| Tensor {
            name: name.into(),
            shape,
            data,
        };
        return Problem {
            x,
            labels,
            values,
            t_cols,
            params: vec![
                tensor("model.layers.0.weight", vec![HIDDEN, INPUTS], w0),
                tensor("model.layers.0.bias", vec![HIDDEN], b0),
                tensor("model.layers.1.weight", vec![OUTPUTS, HIDDEN], w1),
                tensor("model.layers.1.bias", vec![OUTPUTS], b1),
            ],
        };
    }
}

fn check_gradient(kind: Targets, act: Activation, seed: u64) {
    let prob = problem(kind, act, seed);
    let data = match kind {
        Targets::MseClasses | Targets::CrossEntropy => {
            Dataset::classification(prob.x.clone(), INPUTS, prob.labels.clone())
        }
        _ => Dataset::regression(prob.x.clone(), INPUTS, prob.values.clone(), prob.t_cols),
    }
    .unwrap();
    let mut model = Sequential::new(INPUTS)
        .add(Dense::new(HIDDEN).activation(act))
        .add(Dense::new(OUTPUTS))
        .seed(seed);
    model.compile(kind.loss(), Sgd::new(1.0)).unwrap();
    model.set_parameters(&prob.params).unwrap();
    let before = model.parameters().unwrap();
    assert_eq!(before, prob.params, "parameters read back as set");

    let what = format!("{kind:?} hidden {act:?}");
    let as_f64 = |ts: &[Tensor]| -> Vec<Vec<f64>> {
        ts.iter()
            .map(|t| t.data.iter().map(|&v| v as f64).collect())
            .collect()
    };
    let base = as_f64(&before);

    // evaluate agrees with the CPU loss before anything else.
    let gpu_loss = model.evaluate(&data, SAMPLES).unwrap()["loss"];
    let cpu = cpu_loss(&prob, kind, act, &base);
    assert!(
        (gpu_loss - cpu).abs() <= 1e-5 * cpu.abs() + 1e-6,
        "{what}: evaluate's loss {gpu_loss} but the CPU's {cpu}"
    );

    // One SGD step with lr = 1 over the whole data set: g = before - after.
    let options = FitOptions {
        epochs: 1,
        batch_size: SAMPLES,
        shuffle: false,
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut []).unwrap();
    assert_eq!(history.len(), 1);
    let fit_loss = history.last().unwrap()["loss"];
    assert!(
        (fit_loss - gpu_loss).abs() <= 1e-6 * gpu_loss.abs() + 1e-7,
        "{what}: the epoch's loss {fit_loss} differs from evaluate's {gpu_loss} at the same parameters"
    );
    let after = model.parameters().unwrap();

    let mut failures = Vec::new();
    for ti in 0..before.len() {
        for e in 0..before[ti].data.len() {
            let w = before[ti].data[e];
            let g = w as f64 - after[ti].data[e] as f64;

            // GPU loss at w ± EPS (the actual f32 steps, which differ from EPS by rounding).
            let mut eval_at = |v: f32| {
                let mut p = before.clone();
                p[ti].data[e] = v;
                model.set_parameters(&p).unwrap();
                model.evaluate(&data, SAMPLES).unwrap()["loss"]
            };
            let (wp, wm) = (w + EPS, w - EPS);
            let (lp, lm) = (eval_at(wp), eval_at(wm));
            let fd = (lp - lm) / (wp as f64 - wm as f64);

            // CPU f64 loss at w ± 1e-4.
            let h = 1e-4;
            let mut p = base.clone();
            p[ti][e] = w as f64 + h;
            let cp = cpu_loss(&prob, kind, act, &p);
            p[ti][e] = w as f64 - h;
            let cm = cpu_loss(&prob, kind, act, &p);
            let reference = (cp - cm) / (2.0 * h);

            let name = &before[ti].name;
            if (g - fd).abs() > 2e-2 * g.abs().max(fd.abs()) + 1e-4 {
                failures.push(format!(
                    "{name}[{e}]: GPU gradient {g:.6e}, finite difference of evaluate {fd:.6e}"
                ));
            }
            if (g - reference).abs() > 1e-4 * reference.abs() + 2e-6 {
                failures.push(format!(
                    "{name}[{e}]: GPU gradient {g:.6e}, CPU f64 reference {reference:.6e}"
                ));
            }
        }
    }
    model.set_parameters(&before).unwrap();
    assert!(
        failures.is_empty(),
        "{what}: {} gradient entries wrong:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

macro_rules! gradient_tests {
    ($($name:ident: $kind:expr, $act:expr, $seed:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check_gradient($kind, $act, $seed);
            }
        )*
    };
}

gradient_tests! {
    mse_classes_linear: Targets::MseClasses, Activation::Linear, 1;
    mse_classes_relu: Targets::MseClasses, Activation::Relu, 2;
    mse_classes_tanh: Targets::MseClasses, Activation::Tanh, 3;
    mse_classes_sigmoid: Targets::MseClasses, Activation::Sigmoid, 4;
    mse_values_linear: Targets::MseValues, Activation::Linear, 5;
    mse_values_relu: Targets::MseValues, Activation::Relu, 6;
    mse_values_tanh: Targets::MseValues, Activation::Tanh, 7;
    mse_values_sigmoid: Targets::MseValues, Activation::Sigmoid, 8;
    mse_broadcast_tanh: Targets::MseBroadcast, Activation::Tanh, 9;
    mse_broadcast_relu: Targets::MseBroadcast, Activation::Relu, 10;
    cross_entropy_linear: Targets::CrossEntropy, Activation::Linear, 11;
    cross_entropy_relu: Targets::CrossEntropy, Activation::Relu, 12;
    cross_entropy_tanh: Targets::CrossEntropy, Activation::Tanh, 13;
    cross_entropy_sigmoid: Targets::CrossEntropy, Activation::Sigmoid, 14;
}
