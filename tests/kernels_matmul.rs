//! The matmul kernels (`wgfit::gpu::ops`) against plain CPU references written here: simple
//! loops with f64 accumulation, inputs from a small deterministic generator.
//!
//! Tolerances (u = 2^-24, the unit roundoff of f32):
//! - matmul: |gpu - ref| <= (k + 4) · u · (1 + Σ_k |a_ik · b_kj| + |bias_j|) + act_abs, the
//!   worst-case error bound of a sequential f32 dot product (γ_k) with one unit of slack for
//!   the bias add; act_abs = 1e-6 for tanh and sigmoid (the adapter's exp/tanh are a few ulps
//!   off) and 0 for linear and relu. Activations are 1-Lipschitz, so the bound carries over.

mod common;

use common::cpu_reference::{U, act_f64};
use common::gpu::gpu;
use common::rng::Rng;
use wgfit::gpu::MatmulVariant;
use wgfit::gpu::ops::{self, Layout, MatmulShape};
use wgfit::{Activation, Gpu};

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
    // Every kernel: the adapter's choice, and the three that take any strides, which sum in
    // the same order and so must agree to the bit.
    let tiled = ops::matmul_on(gpu, Some(MatmulVariant::Tiled), shape, &a, &b, bias, act).unwrap();
    let small = ops::matmul_on(
        gpu,
        Some(MatmulVariant::SmallTiles),
        shape,
        &a,
        &b,
        bias,
        act,
    )
    .unwrap();
    let blocked =
        ops::matmul_on(gpu, Some(MatmulVariant::Blocked), shape, &a, &b, bias, act).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&tiled),
        bits(&small),
        "tiled and small-tile kernels agree for {shape:?}"
    );
    assert_eq!(
        bits(&tiled),
        bits(&blocked),
        "tiled and blocked kernels agree for {shape:?}"
    );
    let chosen = ops::matmul(gpu, shape, &a, &b, bias, act).expect("matmul runs");
    let mut worst = 0f64;
    for got in [chosen, tiled] {
        worst = worst.max(check_against_reference(
            shape, &a, &b, bias, act, &got, with_bias,
        ));
    }
    worst
}

/// Checks one result against the f64 reference; returns the worst error / tolerance.
fn check_against_reference(
    shape: MatmulShape,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Activation,
    got: &[f32],
    with_bias: bool,
) -> f64 {
    let (m, n, k) = (shape.m, shape.n, shape.k);
    assert_eq!(got.len(), m * n, "result length for {shape:?}");
    let (want, mag) = matmul_ref(shape, a, b, bias, act);
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

/// Every kernel that can compute a product must give the reference kernel's exact bits: they
/// all sum over k in increasing order with the same fma chain. The shapes here fit the vec4
/// and subgroup kernels (multiples of 4 where those need them) and are awkward otherwise:
/// 1, primes, sizes past a 64-row or 64-column block by one.
#[test]
fn matmul_every_applicable_kernel_matches_the_reference_bits() {
    let gpu = gpu();
    let mut rng = Rng::new(8);
    type Shapes = &'static [(usize, usize, usize)];
    let cases: [(Layout, Layout, Shapes); 5] = [
        // nn: k and n multiples of 4
        (
            Layout::Normal,
            Layout::Normal,
            &[
                (1, 4, 4),
                (5, 12, 8),
                (67, 68, 132),
                (129, 260, 36),
                (64, 64, 64),
            ],
        ),
        // nt: k a multiple of 4
        (
            Layout::Normal,
            Layout::Transposed,
            &[
                (1, 1, 4),
                (67, 13, 132),
                (129, 68, 36),
                (33, 260, 8),
                (40, 70, 12),
            ],
        ),
        // tn: m and n multiples of 4
        (
            Layout::Transposed,
            Layout::Normal,
            &[(4, 4, 1), (68, 12, 67), (132, 260, 37), (36, 36, 5)],
        ),
        // A that only scalar loads can read (k or m not a multiple of 4), B rows
        (Layout::Normal, Layout::Normal, &[(67, 68, 10), (5, 12, 7)]),
        (
            Layout::Transposed,
            Layout::Normal,
            &[(10, 260, 129), (13, 68, 5)],
        ),
    ];
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut ran = std::collections::BTreeMap::new();
    // Each shape takes the next epilogue: every activation, with and without a bias.
    let mut epilogues = ACTS
        .iter()
        .flat_map(|&act| [(act, true), (act, false)])
        .cycle();
    for (a_layout, b_layout, shapes) in cases {
        for &(m, n, k) in shapes {
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
            let Some((act, with_bias)) = epilogues.next() else {
                unreachable!("a cycle never ends")
            };
            let bias = with_bias.then_some(bias.as_slice());
            let reference =
                ops::matmul_on(&gpu, Some(MatmulVariant::Tiled), shape, &a, &b, bias, act).unwrap();
            check_against_reference(shape, &a, &b, bias, act, &reference, with_bias);
            for variant in MatmulVariant::ALL {
                let Some(got) =
                    ops::try_matmul_on(&gpu, Some(variant), shape, &a, &b, bias, act).unwrap()
                else {
                    continue;
                };
                assert_eq!(
                    bits(&got),
                    bits(&reference),
                    "{variant:?} differs from the reference kernel for {shape:?}, \
                     {act:?}, bias {with_bias}"
                );
                *ran.entry(format!("{variant:?}")).or_insert(0) += 1;
            }
        }
    }
    eprintln!("kernels run: {ran:?}");
    // Every kernel for any strides and every layout's vec4 kernel ran. So did, on lavapipe
    // and the GPUs measured, matmul_gpu.wgsl (a device with too little workgroup memory goes
    // without it), and on lavapipe with 8-lane subgroups the subgroup kernels: this test
    // cannot pass by skipping them.
    for name in ["Nn", "Nt", "Tn", "Blocked", "SmallTiles"] {
        assert!(ran.contains_key(name), "{name} never applied");
    }
    let adapter = &gpu.adapter().name;
    if adapter.contains("llvmpipe") || adapter.contains("NVIDIA") {
        assert!(
            ran.contains_key("GpuTiles"),
            "GpuTiles never ran on {adapter}"
        );
    }
    if adapter.contains("llvmpipe") && adapter.contains("256 bits") {
        for name in ["SubgroupNn", "SubgroupNt", "SubgroupTn", "SubgroupAn"] {
            assert!(ran.contains_key(name), "{name} never ran on {adapter}");
        }
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
