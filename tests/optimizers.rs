//! Training with Adam, AdamW and RMSprop: their slots are saved by name, a run killed mid-epoch
//! resumes to the uninterrupted run's bits (the per-step values of the update, Adam's bias
//! correction among them, continue exactly), and the optimizer is part of the fingerprint.

mod common;

use common::{Interrupt, data, options, uninterrupted_and_resumed};
use wgfit::{
    Activation, Adam, BackupAndRestore, Dense, Error, Loss, Optimizer, RmsProp, Sequential, Sgd,
};

fn model(optimizer: impl Optimizer + 'static) -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    m.compile(Loss::CrossEntropy, optimizer).unwrap();
    m
}

/// A run killed at global step 17 (mid-epoch, saves every batch) and resumed ends with the
/// uninterrupted run's bits.
fn resumes_exactly(optimizer: impl Optimizer + Clone + 'static) {
    let (reference, resumed) = uninterrupted_and_resumed(|| model(optimizer.clone()), 3, 17);
    assert_eq!(resumed, reference, "{}", optimizer.name());
}

#[test]
fn adam_resumes_exactly_mid_epoch() {
    resumes_exactly(Adam::new(0.01));
}

#[test]
fn adamw_exempting_biases_resumes_exactly_mid_epoch() {
    resumes_exactly(Adam::adamw(0.01).exclude_from_weight_decay(&["bias"]));
}

#[test]
fn adamw_with_amsgrad_resumes_exactly_mid_epoch() {
    resumes_exactly(Adam::adamw(0.01).amsgrad(true));
}

#[test]
fn centered_rmsprop_with_momentum_resumes_exactly_mid_epoch() {
    resumes_exactly(RmsProp::new(0.01).centered(true).momentum(0.5));
}

/// The slot names of the first weight after one epoch with `optimizer`.
fn slot_names(optimizer: impl Optimizer + 'static) -> Vec<String> {
    let mut m = model(optimizer);
    m.fit(&data(), options(1), &mut []).unwrap();
    let mut names: Vec<String> = m
        .optimizer_slots()
        .unwrap()
        .into_iter()
        .filter(|t| t.name.starts_with("optimizer.model.layers.0.weight."))
        .map(|t| t.name)
        .collect();
    names.sort();
    names
}

#[test]
fn slots_are_named_and_only_kept_ones_saved() {
    let w = "optimizer.model.layers.0.weight";
    assert_eq!(
        slot_names(Adam::new(0.01)),
        [format!("{w}.momentum"), format!("{w}.velocity")]
    );
    assert_eq!(
        slot_names(Adam::new(0.01).amsgrad(true)),
        [
            format!("{w}.momentum"),
            format!("{w}.velocity"),
            format!("{w}.velocity_hat")
        ]
    );
    assert_eq!(slot_names(RmsProp::new(0.01)), [format!("{w}.velocity")]);
}

#[test]
fn a_backup_of_another_optimizer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut stop = Interrupt {
        at_global_step: None,
        at_epoch_begin: Some(1),
    };
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    model(Sgd::new(0.05))
        .fit(&data(), options(2), &mut [&mut backup, &mut stop])
        .unwrap_err();
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model(Adam::new(0.01))
        .fit(&data(), options(2), &mut [&mut backup])
        .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err}");
    assert!(err.to_string().contains("now adam(lr=0.01"), "{err}");
}

/// The error `compile` gives for `optimizer`.
fn refused(optimizer: impl Optimizer + 'static) -> String {
    let mut m = Sequential::new(6).add(Dense::new(3));
    m.compile(Loss::CrossEntropy, optimizer)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_hyper_parameters_are_refused_at_compile() {
    assert!(refused(Adam::new(0.01).beta_1(1.0)).contains("beta_1"));
    assert!(refused(Adam::new(0.01).epsilon(0.0)).contains("epsilon"));
    assert!(refused(Adam::new(f32::NAN)).contains("learning rate"));
    assert!(refused(RmsProp::new(0.01).rho(-0.1)).contains("rho"));
}

/// Adam's update with a fourth slot declared kept, as a user's optimizer might keep four
/// (Adan keeps three moments and the previous gradient).
#[derive(Debug, Clone)]
struct FourSlots(Adam);

impl Optimizer for FourSlots {
    fn name(&self) -> &'static str {
        "four_slots"
    }
    fn kernel(&self) -> wgfit::UpdateKernel {
        wgfit::UpdateKernel {
            source: self.0.kernel().source,
            slots: &["momentum", "velocity", "velocity_hat", "previous_gradient"],
        }
    }
    fn keeps(&self, _slot: &str) -> bool {
        true
    }
    fn uniform(&self, len: usize) -> Vec<u8> {
        self.0.uniform(len)
    }
    fn learning_rate(&self) -> f32 {
        self.0.learning_rate()
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.0.set_learning_rate(lr)
    }
    fn validate(&self) -> wgfit::Result<()> {
        Ok(())
    }
    fn fingerprint(&self) -> String {
        "four_slots".into()
    }
    fn boxed(&self) -> Box<dyn Optimizer> {
        Box::new(self.clone())
    }
}

#[test]
fn an_optimizer_keeping_more_slots_than_a_backup_holds_is_refused_at_compile() {
    let e = refused(FourSlots(Adam::new(0.01)));
    assert!(
        e.contains("four_slots keeps 4 slots per parameter; a backup holds at most 3"),
        "{e}"
    );
}

/// A Configured around a Configured keeps the inner one's clipping and accumulation (the
/// fingerprint records them), and refuses a setting given to both.
#[test]
fn nested_configured_optimizers_keep_each_setting_once() {
    use wgfit::{Clipping, Configured};
    let inner = Configured::new(Sgd::new(0.1))
        .clipping(Clipping::GlobalNorm(0.5))
        .accumulate(3);
    let nested = Configured::new(inner.clone());
    assert_eq!(Optimizer::clipping(&nested), Clipping::GlobalNorm(0.5));
    assert_eq!(nested.accumulation_steps(), 3);
    nested.validate().unwrap();
    for twice in [
        Configured::new(inner.clone()).clipping(Clipping::Norm(1.0)),
        Configured::new(inner).accumulate(2),
    ] {
        let e = twice.validate().unwrap_err().to_string();
        assert!(e.contains("give it once"), "{e}");
    }
}
