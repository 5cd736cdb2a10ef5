//! Learning-rate schedules: Keras 3's formulas at chosen steps, and runs killed exactly at a
//! warmup boundary and at a piecewise boundary resuming to the uninterrupted run's bits.

mod common;

use common::{bits, data, options, uninterrupted_and_resumed};
use wgfit::{
    Activation, Adam, Callback, Configured, Context, Dense, LearningRateSchedule as S, Loss,
    Sequential, Sgd,
};

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-7 * b.abs().max(1e-3)
}

#[test]
fn the_formulas_are_kerass() {
    let exp = |staircase| S::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        decay_rate: 0.5,
        staircase,
    };
    assert!(close(exp(false).at(5), 0.1 * 0.5f64.powf(0.5)));
    assert!(close(exp(true).at(15), 0.05));
    let piecewise = S::PiecewiseConstantDecay {
        boundaries: vec![10, 20],
        values: vec![1.0, 0.5, 0.1],
    };
    let got: Vec<f32> = [0, 10, 11, 20, 21]
        .iter()
        .map(|&s| piecewise.at(s))
        .collect();
    assert_eq!(got, [1.0, 1.0, 0.5, 0.5, 0.1]);
    let poly = |cycle| S::PolynomialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        end_learning_rate: 0.01,
        power: 1.0,
        cycle,
    };
    assert!(close(poly(false).at(5), 0.055));
    assert!(close(poly(false).at(20), 0.01));
    assert!(close(poly(true).at(15), 0.09 * 0.25 + 0.01));
    let inverse = S::InverseTimeDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        decay_rate: 1.0,
        staircase: false,
    };
    assert!(close(inverse.at(10), 0.05));
    let cosine = S::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 100,
        alpha: 0.1,
        warmup_target: Some(0.1),
        warmup_steps: 10,
    };
    assert!(close(cosine.at(5), 0.05));
    assert!(close(cosine.at(10), 0.1));
    assert!(close(cosine.at(60), 0.1 * (0.9 * 0.5 + 0.1)));
    assert!(close(cosine.at(1000), 0.01));
}

#[test]
fn bad_schedules_are_refused() {
    let mut m = Sequential::new(6).add(Dense::new(3));
    let bad = [
        S::PiecewiseConstantDecay {
            boundaries: vec![10],
            values: vec![1.0],
        },
        S::ExponentialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 0,
            decay_rate: 0.5,
            staircase: false,
        },
        S::PolynomialDecay {
            initial_learning_rate: 0.1,
            decay_steps: 10,
            end_learning_rate: -1.0,
            power: 1.0,
            cycle: false,
        },
    ];
    // A negative base alternates the sign of the rate after the first staircase step, where
    // steps 0 and 1 and a late even exponent all give rates >= 0.
    let alternating = S::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        decay_rate: -0.5,
        staircase: true,
    };
    assert!(alternating.at(10) < 0.0, "the case this guards");
    let err = alternating.validate().unwrap_err().to_string();
    assert!(err.contains("decay_rate is -0.5"), "{err}");
    let negative_power = S::PolynomialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10,
        end_learning_rate: 0.0,
        power: -1.0,
        cycle: true,
    };
    let err = negative_power.validate().unwrap_err().to_string();
    assert!(err.contains("power is -1"), "{err}");
    for s in bad {
        let err = m
            .compile(
                Loss::CrossEntropy,
                Configured::new(Sgd::new(0.1)).schedule(s),
            )
            .unwrap_err();
        assert!(err.to_string().contains("schedule"), "{err}");
    }
    // The last step as a boundary: checked without overflowing.
    let last = S::PiecewiseConstantDecay {
        boundaries: vec![u64::MAX],
        values: vec![0.1, 0.01],
    };
    last.validate().unwrap();
}

fn model(schedule: &S) -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    let optimizer = Configured::new(Adam::new(0.01)).schedule(schedule.clone());
    m.compile(Loss::CrossEntropy, optimizer).unwrap();
    m
}

/// Killed at the end of global step `at` with saves every batch, then resumed: the same
/// bits as an uninterrupted run (and not those of a constant rate).
fn resumes_exactly_at(schedule: S, at: u64) {
    let (reference, resumed) = uninterrupted_and_resumed(|| model(&schedule), 3, at);
    assert_eq!(resumed, reference);
    let mut constant = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    constant
        .compile(Loss::CrossEntropy, Adam::new(0.01))
        .unwrap();
    constant.fit(&data(), options(3), &mut []).unwrap();
    assert_ne!(bits(&constant), reference, "the schedule made a difference");
}

#[test]
fn a_run_killed_at_the_warmup_boundary_resumes_exactly() {
    let schedule = S::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 20,
        alpha: 0.1,
        warmup_target: Some(0.05),
        warmup_steps: 10,
    };
    resumes_exactly_at(schedule, 10);
}

#[test]
fn a_run_killed_at_a_piecewise_boundary_resumes_exactly() {
    let schedule = S::PiecewiseConstantDecay {
        boundaries: vec![17, 30],
        values: vec![0.05, 0.01, 0.002],
    };
    resumes_exactly_at(schedule, 17);
}

#[test]
fn a_scheduled_rate_cannot_be_set_by_hand() {
    struct SetLr(Option<String>);
    impl Callback for SetLr {
        fn on_epoch_begin(&mut self, ctx: &mut Context<'_>, _epoch: usize) -> wgfit::Result<()> {
            self.0 = ctx.set_learning_rate(0.5).err().map(|e| e.to_string());
            Ok(())
        }
    }
    let schedule = S::ExponentialDecay {
        initial_learning_rate: 0.01,
        decay_steps: 10,
        decay_rate: 0.9,
        staircase: false,
    };
    let mut set = SetLr(None);
    model(&schedule)
        .fit(&data(), options(1), &mut [&mut set])
        .unwrap();
    let err = set.0.expect("refused");
    assert!(err.contains("follows a schedule"), "{err}");
}

#[test]
fn the_history_records_each_epochs_learning_rate() {
    let schedule = S::ExponentialDecay {
        initial_learning_rate: 0.01,
        decay_steps: 12,
        decay_rate: 0.5,
        staircase: true,
    };
    let history = model(&schedule).fit(&data(), options(3), &mut []).unwrap();
    // 12 batches an epoch: the last update of epoch e follows 12e + 11 micro-batches.
    let rates = history.metric("learning_rate");
    assert_eq!(
        rates,
        [0.01, 0.005, 0.0025].map(|r: f32| f64::from(r)).to_vec()
    );
}
