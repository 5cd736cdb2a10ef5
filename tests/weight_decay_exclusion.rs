//! AdamW with `exclude_from_weight_decay` (Keras's): the exempted parameters take no decay and
//! the others the decay they would take without exemptions, to the bit, and a list that
//! exempts nothing changes no bit.

mod common;

use common::rng::Rng;
use wgfit::{Adam, Dataset, Dense, FitOptions, LayerNormalization, Loss, Sequential, Tensor};

/// The parameters after one AdamW step (the whole data set as one batch) from the same start.
fn one_step(optimizer: Adam) -> Vec<Tensor> {
    let mut rng = Rng(5);
    let x = rng.vec(12 * 5, -1.0, 1.0);
    let t = rng.vec(12 * 3, -1.0, 1.0);
    let data = Dataset::regression(x, 5, t, 3).unwrap();
    let mut model = Sequential::new(5)
        .add(Dense::new(7))
        .add(LayerNormalization::new())
        .add(Dense::new(3))
        .seed(2);
    model.compile(Loss::MeanSquaredError, optimizer).unwrap();
    // Gamma and beta away from their initial ones and zeros, so that a decay would show.
    let mut start = model.parameters().unwrap();
    for p in &mut start {
        p.data = rng.vec(p.data.len(), -1.0, 1.0);
    }
    model.set_parameters(&start).unwrap();
    let options = FitOptions {
        epochs: 1,
        batch_size: 12,
        shuffle: false,
        ..Default::default()
    };
    model.fit(&data, options, &mut []).unwrap();
    model.parameters().unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn exempted_parameters_take_no_decay_and_the_rest_all_of_it() {
    let decayed = one_step(Adam::adamw(0.01).weight_decay(0.5));
    let plain = one_step(Adam::adamw(0.01).weight_decay(0.0));
    let exempted = one_step(
        Adam::adamw(0.01)
            .weight_decay(0.5)
            .exclude_from_weight_decay(&["gamma", "beta", "bias"]),
    );
    let mut checked = (0, 0);
    for ((e, d), p) in exempted.iter().zip(&decayed).zip(&plain) {
        let exempt = ["gamma", "beta", "bias"].iter().any(|n| e.name.contains(n));
        let want = if exempt { p } else { d };
        assert_eq!(bits(e), bits(want), "{} (exempt: {exempt})", e.name);
        assert_ne!(bits(d), bits(p), "{}: the decay shows", e.name);
        if exempt {
            checked.0 += 1;
        } else {
            checked.1 += 1;
        }
    }
    // Two biases, gamma, beta; two weights.
    assert_eq!(checked, (4, 2));

    // Exempting nothing: the decay runs in its own launches, with the same bits.
    let nothing = one_step(
        Adam::adamw(0.01)
            .weight_decay(0.5)
            .exclude_from_weight_decay(&["no parameter has this name"]),
    );
    for (n, d) in nothing.iter().zip(&decayed) {
        assert_eq!(bits(n), bits(d), "{}", n.name);
    }
}

#[test]
fn an_empty_name_is_refused() {
    let mut model = Sequential::new(2).add(Dense::new(1));
    let e = model
        .compile(
            Loss::MeanSquaredError,
            Adam::adamw(0.01).exclude_from_weight_decay(&["bias", ""]),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("exclude_from_weight_decay"), "{e}");
}
