//! Gradient accumulation: the update every N micro-batches from the mean of their gradients,
//! with the accumulator saved, so a run killed mid-accumulation resumes exactly.

mod common;

use common::{Counter, Interrupt, bits, data, interrupted, options, uninterrupted_and_resumed};
use std::sync::Arc;
use wgfit::{
    Activation, Adam, BackupAndRestore, Callback, Configured, Context, Dense, EarlyStopping, Loss,
    Optimizer, Sequential, Tensor,
};

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

/// A user's callback that keeps a copy of the parameters as its state tensors.
struct Keeper(Option<Arc<[Tensor]>>);

impl Callback for Keeper {
    fn name(&self) -> &str {
        "Keeper"
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> wgfit::Result<()> {
        if self.0.is_none() {
            let params = ctx.read_params()?;
            let kept = params.into_iter().map(|t| Tensor {
                name: format!("callbacks.Keeper.{}", t.name),
                ..t
            });
            self.0 = Some(kept.collect());
        }
        Ok(())
    }

    fn state_tensors(&self) -> Option<Arc<[Tensor]>> {
        self.0.clone()
    }

    fn load_state_tensors(&mut self, tensors: Vec<Tensor>) -> wgfit::Result<()> {
        self.0 = Some(tensors.into());
        Ok(())
    }
}

#[test]
fn the_largest_state_a_run_can_keep_is_restored() {
    // Adam with amsgrad keeps three slots and accumulation a fourth; with EarlyStopping's best
    // weights and a user's copy, the state holds seven copies of the parameters (40 KB each).
    let make = || {
        let mut m = Sequential::new(6)
            .add(Dense::new(96).activation(Activation::Tanh))
            .add(Dense::new(96).activation(Activation::Tanh))
            .add(Dense::new(3))
            .seed(3);
        let adam = Adam::new(0.01).amsgrad(true);
        m.compile(Loss::CrossEntropy, Configured::new(adam).accumulate(3))
            .unwrap();
        m
    };
    let early = || {
        EarlyStopping::new("loss")
            .patience(9)
            .restore_best_weights(true)
    };
    let mut reference = make();
    reference
        .fit(&data(), options(2), &mut [&mut early(), &mut Keeper(None)])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    // A run with a backup, the two callbacks and `last`.
    let run = |model: &mut Sequential, last: &mut dyn Callback| {
        let mut backup = BackupAndRestore::new(&dir).unwrap();
        let callbacks: &mut [&mut dyn Callback] =
            &mut [&mut backup, &mut early(), &mut Keeper(None), last];
        model.fit(&data(), options(2), callbacks)
    };
    let mut stop = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(1),
    };
    let stopped = run(&mut make(), &mut stop).expect_err("interrupted");
    assert_eq!(stopped.to_string(), interrupted().to_string());
    let mut resumed = make();
    let mut rest = Counter::default();
    run(&mut resumed, &mut rest).unwrap();
    assert!(
        rest.batches.iter().all(|&(epoch, _)| epoch == 1),
        "the rerun resumed after epoch 0"
    );
    assert_eq!(bits(&resumed), bits(&reference));
}
