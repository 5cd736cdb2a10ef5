//! Training end to end: learning on the digits, and `evaluate` and `predict` against CPU
//! computations. Continuation and errors have their own files.

mod common;

use common::rng::Rng;
use common::training::{Probe, tensor};
use wgfit::{Activation, CsvOptions, Dataset, Dense, FitOptions, Loss, Sequential, Sgd};

fn digits() -> Dataset {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let data = Dataset::from_csv(path, &CsvOptions::default()).unwrap();
    Dataset::new(
        data.x().iter().map(|v| v / 16.0).collect(),
        data.features(),
        data.targets().clone(),
    )
    .unwrap()
}

// ------------------------------------------------------------------------------------------
// (a) learning

#[test]
fn digits_reach_95_percent_training_accuracy() {
    let data = digits();
    assert_eq!((data.len(), data.features()), (1797, 64));
    let mut model = Sequential::new(64)
        .add(Dense::new(32).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(7);
    model
        .compile(Loss::CrossEntropy, Sgd::new(0.1).momentum(0.9))
        .unwrap();
    let options = FitOptions {
        epochs: 30,
        batch_size: 32,
        seed: 42,
        ..Default::default()
    };
    // Stop as soon as the goal is met, to keep the test short.
    let mut probe = Probe {
        stop_at_accuracy: Some(0.95),
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut [&mut probe]).unwrap();
    let accuracy = history.metric("accuracy");
    eprintln!(
        "digits: {} epochs on {}, accuracy {accuracy:?}",
        history.len(),
        model.adapter().unwrap()
    );
    let last = *accuracy.last().unwrap();
    assert!(
        last >= 0.95,
        "training accuracy after {} epochs is {last}; history {accuracy:?}",
        history.len()
    );
    assert!(history.len() <= 30);
    let losses = history.metric("loss");
    assert!(
        losses.last().unwrap() < &losses[0],
        "the loss did not fall: {losses:?}"
    );
    // evaluate agrees with what training reports, roughly (the weights moved during the epoch).
    let logs = model.evaluate(&data, 256).unwrap();
    assert!(logs["accuracy"] >= 0.9, "evaluate: {logs:?}");
}

// ------------------------------------------------------------------------------------------
// (g) evaluate and predict

#[test]
fn predict_and_evaluate_match_the_cpu() {
    let mut model = Sequential::new(3).add(Dense::new(2)).seed(0);
    model
        .compile(Loss::MeanSquaredError, Sgd::new(0.1))
        .unwrap();
    let w = vec![0.5, -1.0, 2.0, 0.25, 0.75, -0.5];
    let b = vec![0.125, -2.0];
    model
        .set_parameters(&[
            tensor("model.layers.0.weight", vec![2, 3], w.clone()),
            tensor("model.layers.0.bias", vec![2], b.clone()),
        ])
        .unwrap();
    let mut rng = Rng(5);
    let rows = 7;
    let x = rng.vec(rows * 3, -2.0, 2.0);
    let want: Vec<f64> = (0..rows)
        .flat_map(|r| {
            let x = &x;
            let w = &w;
            let b = &b;
            (0..2).map(move |o| {
                b[o] as f64
                    + (0..3)
                        .map(|i| x[r * 3 + i] as f64 * w[o * 3 + i] as f64)
                        .sum::<f64>()
            })
        })
        .collect();
    for batch in [1, 3, 7, 100] {
        let got = model.predict(&x, batch).unwrap();
        assert_eq!(got.len(), rows * 2, "batch {batch}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-6 * (1.0 + w.abs()),
                "batch {batch}: output [{}, {}] = {g} but x·Wᵀ+b = {w}",
                i / 2,
                i % 2
            );
        }
    }

    // evaluate: MSE over all rows and outputs, regardless of the batch size.
    let t = rng.vec(rows * 2, -1.0, 1.0);
    let data = Dataset::regression(x.clone(), 3, t.clone(), 2).unwrap();
    let mse: f64 = want
        .iter()
        .zip(&t)
        .map(|(y, t)| (y - *t as f64).powi(2))
        .sum::<f64>()
        / (rows * 2) as f64;
    for batch in [1, 3, 7] {
        let logs = model.evaluate(&data, batch).unwrap();
        assert!(
            (logs["loss"] - mse).abs() <= 1e-5 * mse,
            "batch {batch}: evaluate {logs:?} but the CPU MSE is {mse}"
        );
        assert!(!logs.contains_key("accuracy"));
    }
}

#[test]
fn evaluate_cross_entropy_loss_and_accuracy() {
    let mut model = Sequential::new(2).add(Dense::new(3)).seed(0);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    // Identity-like weights: logits = (x0, x1, 0.5).
    model
        .set_parameters(&[
            tensor(
                "model.layers.0.weight",
                vec![3, 2],
                vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            ),
            tensor("model.layers.0.bias", vec![3], vec![0.0, 0.0, 0.5]),
        ])
        .unwrap();
    let x = vec![2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 3.0, 3.0, 1.0];
    let labels = vec![0, 1, 2, 0, 0];
    let data = Dataset::classification(x.clone(), 2, labels.clone()).unwrap();
    let mut loss = 0.0;
    let mut correct = 0;
    for r in 0..5 {
        let y = [x[2 * r] as f64, x[2 * r + 1] as f64, 0.5];
        let m = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + y.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        loss += lse - y[labels[r] as usize];
        let arg = (0..3).fold(0, |best, j| if y[j] > y[best] { j } else { best });
        correct += usize::from(arg == labels[r] as usize);
    }
    assert_eq!(correct, 4);
    for batch in [2, 5] {
        let logs = model.evaluate(&data, batch).unwrap();
        assert!((logs["loss"] - loss / 5.0).abs() <= 1e-6, "{logs:?}");
        assert_eq!(logs["accuracy"], 0.8, "{logs:?}");
    }
}

// ------------------------------------------------------------------------------------------
// (c) initial weights, drawn on first use

fn fresh(seed: u64) -> Sequential {
    let mut m = Sequential::new(7)
        .add(Dense::new(13).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(seed);
    m.compile(Loss::MeanSquaredError, Sgd::new(0.1)).unwrap();
    m
}

#[test]
fn initial_weights_are_glorot_and_the_same_whichever_use_draws_them() {
    let first = fresh(5).parameters().unwrap();
    for (t, (inputs, outputs)) in first.chunks_exact(2).zip([(7usize, 13usize), (13, 3)]) {
        let (w, b) = (&t[0], &t[1]);
        assert_eq!(w.shape, vec![outputs, inputs]);
        let limit = (6.0 / (inputs + outputs) as f32).sqrt();
        assert!(w.data.iter().all(|v| v.abs() <= limit), "{}", w.name);
        assert!(w.data.iter().any(|v| *v != w.data[0]), "{} varies", w.name);
        assert!(b.data.iter().all(|v| *v == 0.0), "{} is zero", b.name);
    }
    // Drawn by an evaluation instead of a read: the same bits.
    let data = Dataset::regression(vec![0.5; 2 * 7], 7, vec![0.0; 2], 1).unwrap();
    let evaluated = fresh(5);
    evaluated.evaluate(&data, 2).unwrap();
    assert_eq!(evaluated.parameters().unwrap(), first);
    assert_ne!(fresh(6).parameters().unwrap(), first, "another seed");
}

#[test]
fn replaced_parameters_are_never_overwritten_by_the_initial_ones() {
    let glorot = fresh(5).parameters().unwrap();
    let mut replaced: Vec<_> = glorot.clone();
    for t in &mut replaced {
        t.data.iter_mut().for_each(|v| *v = 0.25);
    }
    // Set before anything drew the initial weights: a later evaluation (which draws pending
    // weights) and a read keep them.
    let data = Dataset::regression(vec![0.5; 2 * 7], 7, vec![0.0; 2], 1).unwrap();
    let mut m = fresh(5);
    m.set_parameters(&replaced).unwrap();
    m.evaluate(&data, 2).unwrap();
    assert_eq!(m.parameters().unwrap(), replaced);
    // A refused set changes nothing: the initial weights are still drawn on first use.
    let mut m = fresh(5);
    assert!(m.set_parameters(&replaced[..1]).is_err());
    assert_eq!(m.parameters().unwrap(), glorot);
}

// ------------------------------------------------------------------------------------------
// (d) the step profile

#[test]
fn profile_step_names_every_launch_and_leaves_the_state_as_it_was() {
    let mut m = Sequential::new(7)
        .add(Dense::new(13).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(2);
    m.compile(Loss::MeanSquaredError, Sgd::new(0.1).momentum(0.9))
        .unwrap();
    let data = Dataset::regression(vec![0.5; 9 * 7], 7, vec![1.0; 9], 1).unwrap();
    // Momentum that is not zero, so that a profile that trains would change it.
    let options = FitOptions {
        epochs: 1,
        batch_size: 4,
        ..Default::default()
    };
    m.fit(&data, options, &mut []).unwrap();
    let (params, slots) = (m.parameters().unwrap(), m.optimizer_slots().unwrap());

    let profile = m.profile_step(&data, 4, 3).unwrap();
    let names: Vec<&str> = profile.launches.iter().map(|(n, _)| n.as_str()).collect();
    // A batch of 4 has its loss, reduction and last activation backward in one launch, but
    // not on a CPU adapter (src/engine/plan.rs says why).
    let loss: &[&str] = if m.adapter().unwrap().device_type == "Cpu" {
        &["loss", "loss reduce", "dense1 activation backward"]
    } else {
        &["loss, reduce, dense1 activation backward"]
    };
    let expected: Vec<&str> = ["gather", "dense0 forward", "dense1 forward"]
        .into_iter()
        .chain(loss.iter().copied())
        .chain([
            "dense1 weight gradient",
            "dense1 input gradient",
            "dense0 activation backward",
            "dense0 weight gradient",
            "sgd update",
        ])
        .collect();
    assert_eq!(names, expected);
    assert!(profile.launches.iter().all(|(_, ms)| *ms > 0.0));
    assert!(profile.step_ms > 0.0);
    assert_eq!(m.parameters().unwrap(), params, "parameters put back");
    assert_eq!(m.optimizer_slots().unwrap(), slots, "momentum put back");
}
