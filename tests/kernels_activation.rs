//! The activation_backward kernels (`wgfit::gpu::ops`) against a plain CPU reference.
//!
//! Tolerances (u = 2^-24, the unit roundoff of f32): dZ within 4 u relative plus u · |dA|
//! absolute (the cancellation in 1 - A² and A(1 - A)); db within (rows + 2) · u · Σ_r |dZ_rj|
//! (sequential sum). GELU's derivative, taken from the input, within 8 u relative plus 1e-6
//! absolute: its erf is a rational approximation within 7e-8, the adapter's tanh and exp are a
//! few ulps off, and for negative inputs its two terms, each up to about 1, cancel to a
//! derivative of a few hundredths.

mod common;

use common::cpu_reference::{U, act_f64};
use common::gpu::gpu;
use common::rng::Rng;
use wgfit::Activation;
use wgfit::gpu::ops;

const ACTS: [Activation; 6] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Gelu,
    Activation::GeluApproximate,
];

/// What a layer keeps for the backward pass: its output, or for GELU its input `z`.
fn kept(z: f64, act: Activation) -> f64 {
    match act {
        Activation::Gelu | Activation::GeluApproximate => z,
        _ => act_f64(z, act),
    }
}

#[test]
fn activation_backward_four_columns_at_a_time_gives_the_same_bits() {
    // The first 8 columns of a 9-wide layer (one column per invocation) and the same 8
    // columns alone (four per invocation) must agree to the bit, dZ and db.
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let rows = 37;
    for act in ACTS {
        let a9: Vec<f32> = rng
            .vec(rows * 9, -3.0, 3.0)
            .iter()
            .map(|&v| kept(v as f64, act) as f32)
            .collect();
        let d9 = rng.vec(rows * 9, -2.0, 2.0);
        let first8 = |v: &[f32]| {
            v.chunks(9)
                .flat_map(|r| r[..8].to_vec())
                .collect::<Vec<_>>()
        };
        let (dz9, db9) = ops::activation_backward(&gpu, rows, 9, act, &a9, &d9).unwrap();
        let (dz8, db8) =
            ops::activation_backward(&gpu, rows, 8, act, &first8(&a9), &first8(&d9)).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dz8), bits(&first8(&dz9)), "dZ for {act:?}");
        assert_eq!(bits(&db8), bits(&db9[..8]), "db for {act:?}");
    }
}

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
        // From the input.
        Activation::Gelu => {
            0.5 * (1.0 + common::cpu_reference::erf(a / std::f64::consts::SQRT_2))
                + a * (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }
        Activation::GeluApproximate => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let t = (c * (a + 0.044715 * a.powi(3))).tanh();
            0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * a * a)
        }
    }
}

#[test]
fn activation_backward_every_activation_and_shape() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    // Widths that are multiples of 4 run four columns per invocation (backward4).
    for (rows, cols) in [(1, 1), (7, 13), (300, 65), (3, 8), (64, 256)] {
        for act in ACTS {
            // A is a real layer output: act(z) of some pre-activation z (relu gives exact zeros).
            let z = rng.vec(rows * cols, -3.0, 3.0);
            let a: Vec<f32> = z.iter().map(|&v| kept(v as f64, act) as f32).collect();
            let d = rng.vec(rows * cols, -2.0, 2.0);
            let (dz, db) =
                ops::activation_backward(&gpu, rows, cols, act, &a, &d).expect("backward runs");
            assert_eq!(dz.len(), rows * cols);
            assert_eq!(db.len(), cols);
            let what = format!("activation_backward {rows}x{cols} {act:?}");
            for i in 0..rows * cols {
                let want = d[i] as f64 * derivative_f64(a[i] as f64, act);
                let gelu = matches!(act, Activation::Gelu | Activation::GeluApproximate);
                let tol = if gelu {
                    8.0 * U * want.abs() + 1e-6 * (d[i] as f64).abs()
                } else {
                    4.0 * U * want.abs() + U * (d[i] as f64).abs()
                };
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
