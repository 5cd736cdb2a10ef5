//! The update kernels of Adam, AdamW and RMSprop against a CPU reference in f64 (Keras 3's
//! formulas), over several iterations, on awkward sizes: 1, primes, not multiples of 4 or of
//! the workgroup of 256.

mod common;

use common::gpu::gpu;
use common::rng::Rng;
use wgfit::gpu::ops;
use wgfit::{Adam, Optimizer, RmsProp};

const SIZES: [usize; 5] = [1, 5, 13, 257, 1031];
const ITERATIONS: u64 = 4;

fn vector(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Runs `ITERATIONS` updates on the GPU and with `reference`, and compares every weight and
/// slot within f32's rounding of the same arithmetic.
fn check(
    name: &str,
    optimizer: &dyn Optimizer,
    reference: impl Fn(u64, &mut [f64], &[f64], &mut [Vec<f64>]),
) {
    let gpu = gpu();
    let slots_n = optimizer.kernel().slots.len();
    for n in SIZES {
        let mut rng = Rng(n as u64 + 7);
        let mut w = vector(&mut rng, n);
        let mut slots: Vec<Vec<f32>> = vec![vec![0.0; n]; slots_n];
        let mut w64: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
        let mut slots64: Vec<Vec<f64>> = vec![vec![0.0; n]; slots_n];
        for t in 1..=ITERATIONS {
            let g = vector(&mut rng, n);
            let g64: Vec<f64> = g.iter().map(|&x| f64::from(x)).collect();
            let (w2, s2) = ops::update(&gpu, optimizer, t, &w, &g, &slots).unwrap();
            w = w2;
            slots = s2;
            reference(t, &mut w64, &g64, &mut slots64);
        }
        for (i, (a, b)) in w.iter().zip(&w64).enumerate() {
            let tol = 1e-5 * b.abs().max(1.0);
            assert!(
                (f64::from(*a) - b).abs() <= tol,
                "{name}, n = {n}: w[{i}] = {a}, reference {b}"
            );
        }
        for (k, (s, r)) in slots.iter().zip(&slots64).enumerate() {
            if !optimizer.keeps(optimizer.kernel().slots[k]) {
                continue;
            }
            for (i, (a, b)) in s.iter().zip(r).enumerate() {
                let tol = 1e-5 * b.abs().max(1e-2);
                assert!(
                    (f64::from(*a) - b).abs() <= tol,
                    "{name}, n = {n}: slot {k}[{i}] = {a}, reference {b}"
                );
            }
        }
    }
}

fn adam_reference(o: Adam) -> impl Fn(u64, &mut [f64], &[f64], &mut [Vec<f64>]) {
    move |t, w, g, slots| {
        let lr = f64::from(o.learning_rate);
        let (b1, b2) = (f64::from(o.beta_1), f64::from(o.beta_2));
        let alpha = lr * (1.0 - b2.powi(t as i32)).sqrt() / (1.0 - b1.powi(t as i32));
        for i in 0..w.len() {
            w[i] -= w[i] * f64::from(o.weight_decay) * lr;
            slots[0][i] += (g[i] - slots[0][i]) * (1.0 - b1);
            slots[1][i] += (g[i] * g[i] - slots[1][i]) * (1.0 - b2);
            let mut v = slots[1][i];
            if o.amsgrad {
                slots[2][i] = slots[2][i].max(v);
                v = slots[2][i];
            }
            w[i] -= slots[0][i] * alpha / (v.sqrt() + f64::from(o.epsilon));
        }
    }
}

fn rmsprop_reference(o: RmsProp) -> impl Fn(u64, &mut [f64], &[f64], &mut [Vec<f64>]) {
    move |_, w, g, slots| {
        let lr = f64::from(o.learning_rate);
        let rho = f64::from(o.rho);
        for i in 0..w.len() {
            w[i] -= w[i] * f64::from(o.weight_decay) * lr;
            slots[0][i] = rho * slots[0][i] + (1.0 - rho) * g[i] * g[i];
            let denominator = if o.centered {
                slots[2][i] = rho * slots[2][i] + (1.0 - rho) * g[i];
                slots[0][i] - slots[2][i] * slots[2][i] + f64::from(o.epsilon)
            } else {
                slots[0][i] + f64::from(o.epsilon)
            };
            let increment = lr * g[i] / denominator.sqrt();
            if o.momentum > 0.0 {
                slots[1][i] = f64::from(o.momentum) * slots[1][i] + increment;
                w[i] -= slots[1][i];
            } else {
                w[i] -= increment;
            }
        }
    }
}

#[test]
fn adam_matches_the_reference() {
    let o = Adam::new(0.01);
    check("adam", &o, adam_reference(o.clone()));
}

#[test]
fn adam_with_amsgrad_matches_the_reference() {
    let o = Adam::new(0.01).amsgrad(true).beta_2(0.9);
    check("adam amsgrad", &o, adam_reference(o.clone()));
}

#[test]
fn adamw_matches_the_reference() {
    let o = Adam::adamw(0.01).weight_decay(0.05);
    assert_eq!(o.name(), "adamw");
    check("adamw", &o, adam_reference(o.clone()));
}

#[test]
fn rmsprop_matches_the_reference() {
    let o = RmsProp::new(0.01);
    check("rmsprop", &o, rmsprop_reference(o));
}

#[test]
fn centered_rmsprop_with_momentum_and_decay_matches_the_reference() {
    let o = RmsProp::new(0.01)
        .centered(true)
        .momentum(0.8)
        .weight_decay(0.01);
    check("rmsprop centered momentum", &o, rmsprop_reference(o));
}
