//! The gather and sgd kernels (`wgfit::gpu::ops`) against plain CPU references written here,
//! with inputs from a small deterministic generator.
//!
//! Tolerances (u = 2^-24, the unit roundoff of f32):
//! - gather: exact. sgd: 4 u relative to the sum of the magnitudes of the update's terms.

mod common;

use common::cpu_reference::U;
use common::gpu::gpu;
use common::rng::Rng;
use wgfit::Sgd;
use wgfit::gpu::ops;

// ------------------------------------------------------------------------------------------
// gather

#[test]
fn gather_permuted_rows_from_an_offset() {
    let gpu = gpu();
    let mut rng = Rng::new(31);
    let samples = 50;
    // Rows longer than the 64 invocations of a workgroup, and targets wider than the rows.
    for features in [1, 5, 64, 131] {
        for t_cols in [1, 3, 70] {
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

#[test]
fn gather_more_rows_than_one_grid_dimension_holds() {
    // 70 000 rows: more workgroups than one dimension allows, so workgroups take several rows.
    let gpu = gpu();
    let samples = 70_000;
    let x: Vec<f32> = (0..samples * 2).map(|i| i as f32).collect();
    let t: Vec<f32> = (0..samples).map(|i| -(i as f32)).collect();
    let perm: Vec<u32> = (0..samples as u32).rev().collect();
    let (xb, tb) = ops::gather(&gpu, &x, 2, &t, 1, &perm, 0, samples).unwrap();
    for r in [0, 1, 65_534, 65_535, 65_536, samples - 1] {
        let src = samples - 1 - r;
        assert_eq!(xb[2 * r..2 * r + 2], x[2 * src..2 * src + 2], "x row {r}");
        assert_eq!(tb[r], t[src], "t row {r}");
    }
    assert!(
        xb.iter()
            .zip(x.chunks(2).rev().flatten())
            .all(|(a, b)| a == b),
        "every row is its source row"
    );
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
