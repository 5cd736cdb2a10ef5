//! Gradient accumulation: the update every N micro-batches from the mean of their gradients,
//! with the accumulator saved, so a run killed mid-accumulation resumes exactly.

mod common;

use common::{bits, data, options, uninterrupted_and_resumed};
use wgfit::{Activation, Adam, Configured, Dense, Loss, Optimizer, Sequential};

fn model(optimizer: impl Optimizer + 'static) -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    m.compile(Loss::CrossEntropy, optimizer).unwrap();
    m
}

fn trained(optimizer: impl Optimizer + 'static) -> Vec<(String, Vec<u32>)> {
    let mut m = model(optimizer);
    m.fit(&data(), options(2), &mut []).unwrap();
    bits(&m)
}

#[test]
fn accumulation_changes_training_and_one_step_is_none() {
    let plain = trained(Adam::new(0.01));
    assert_eq!(
        trained(Configured::new(Adam::new(0.01)).accumulate(1)),
        plain
    );
    let accumulated = trained(Configured::new(Adam::new(0.01)).accumulate(3));
    assert_ne!(accumulated, plain);
    assert!(
        accumulated
            .iter()
            .any(|(name, _)| name == "optimizer.model.layers.0.weight.gradient_accumulator"),
        "the accumulator is part of the state"
    );
}

#[test]
fn a_run_killed_mid_accumulation_resumes_exactly() {
    // 17 micro-batches: two of the next update's three are in the accumulator.
    let make = || model(Configured::new(Adam::new(0.01)).accumulate(3));
    let (reference, resumed) = uninterrupted_and_resumed(make, 2, 17);
    assert_eq!(resumed, reference);
}

#[test]
fn zero_steps_are_refused() {
    let mut m = Sequential::new(6).add(Dense::new(3));
    let err = m
        .compile(
            Loss::CrossEntropy,
            Configured::new(Adam::new(0.01)).accumulate(0),
        )
        .unwrap_err();
    assert!(err.to_string().contains("accumulation"), "{err}");
}
