//! Callback errors and stops during `fit`, and the errors raised before any GPU work.

mod common;

use common::training::{Probe, blob_model, blobs, tensor};
use wgfit::{
    Dataset, Dense, Error, FitOptions, FitOutcome, History, Loss, Sequential, Sgd, Tensor,
};

// ------------------------------------------------------------------------------------------
// (e) callback errors, (f) stopping

#[test]
fn callback_error_ends_fit_with_that_error() {
    let data = blobs(12, 1);
    let mut model = blob_model(0);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let mut probe = Probe {
        fail_at_epoch_end: Some(1),
        ..Default::default()
    };
    let options = FitOptions {
        epochs: 5,
        batch_size: 4,
        ..Default::default()
    };
    let err = model.fit(&data, options, &mut [&mut probe]).unwrap_err();
    match err {
        Error::Callback { callback, reason } => {
            assert_eq!(callback, "probe");
            assert_eq!(reason, "deliberate failure after epoch 1");
        }
        other => panic!("expected Error::Callback, got {other:?}"),
    }
    assert_eq!(
        probe.epoch_ends.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(probe.batch_ends.len(), 6, "no batch after the failure");
    assert!(!probe.train_end, "on_train_end does not run after an error");
    assert_eq!(probe.outcomes, vec![FitOutcome::Failed]);
}

#[test]
fn stop_training_after_a_batch() {
    let data = blobs(12, 2);
    let mut model = blob_model(0);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let mut probe = Probe {
        stop_at: Some((1, 1)),
        read_batch_logs: true,
        ..Default::default()
    };
    let options = FitOptions {
        epochs: 5,
        batch_size: 4,
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut [&mut probe]).unwrap();
    assert_eq!(
        probe.batch_ends,
        vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    );
    assert_eq!(history.epoch_numbers(), vec![0, 1]);
    // The stopped epoch's loss covers the two batches that ran.
    let b = &probe.batch_losses[3..5];
    let want = (b[0] + b[1]) / 2.0;
    let got = history[1].logs["loss"];
    assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    assert!(probe.train_end);
    assert_eq!(probe.outcomes, vec![FitOutcome::Completed]);
    assert_eq!(probe.epoch_ends.len(), 2);
}

// ------------------------------------------------------------------------------------------
// (h) errors before any GPU work

fn small_data() -> Dataset {
    blobs(6, 9)
}

fn assert_config(result: wgfit::Result<History>, what: &str) {
    match result {
        Err(Error::Config { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected Error::Config about {what}, got {other:?}"),
    }
}

#[test]
fn errors_before_gpu_work() {
    let data = small_data();

    let mut model = blob_model(0);
    assert!(matches!(
        model.fit(&data, FitOptions::default(), &mut []),
        Err(Error::NotCompiled)
    ));
    assert!(matches!(model.evaluate(&data, 2), Err(Error::NotCompiled)));
    assert!(matches!(
        model.predict(data.x(), 2),
        Err(Error::NotCompiled)
    ));
    assert!(matches!(model.parameters(), Err(Error::NotCompiled)));

    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let initial = model.parameters().unwrap();
    let opts = |epochs, batch_size| FitOptions {
        epochs,
        batch_size,
        ..Default::default()
    };
    assert_config(model.fit(&data, opts(1, 0), &mut []), "batch size");
    assert_config(model.fit(&data, opts(1, 7), &mut []), "batch size");
    assert_config(model.fit(&data, opts(0, 2), &mut []), "epochs");
    let late_start = FitOptions {
        initial_epoch: 3,
        ..opts(3, 2)
    };
    assert_config(model.fit(&data, late_start, &mut []), "initial epoch");

    let bad_labels = Dataset::classification(vec![0.0; 12], 4, vec![0, 3, 1]).unwrap();
    match model.fit(&bad_labels, opts(1, 1), &mut []) {
        Err(Error::LabelOutOfRange {
            sample,
            label,
            classes,
        }) => assert_eq!((sample, label, classes), (1, 3, 3)),
        other => panic!("expected LabelOutOfRange, got {other:?}"),
    }
    let wide = Dataset::classification(vec![0.0; 15], 5, vec![0, 1, 2]).unwrap();
    assert!(matches!(
        model.fit(&wide, opts(1, 1), &mut []),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(model.evaluate(&wide, 1), Err(Error::Shape { .. })));
    let floats = Dataset::regression(vec![0.0; 12], 4, vec![0.0; 3], 1).unwrap();
    assert!(matches!(
        model.fit(&floats, opts(1, 1), &mut []),
        Err(Error::InvalidData { .. })
    ));
    assert!(
        model.predict(&[0.0; 5], 1).is_err(),
        "5 values for 4 inputs"
    );

    // set_parameters: wrong shape, missing tensor, unknown tensor.
    let mut wrong = initial.clone();
    wrong[0].shape = vec![4, 8];
    assert!(matches!(
        model.set_parameters(&wrong),
        Err(Error::Shape { .. })
    ));
    let mut short = initial.clone();
    short[1].data.pop();
    assert!(matches!(
        model.set_parameters(&short),
        Err(Error::Shape { .. })
    ));
    let missing: Vec<Tensor> = initial[1..].to_vec();
    match model.set_parameters(&missing) {
        Err(Error::MissingTensor { name, .. }) => assert_eq!(name, "model.layers.0.weight"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let mut unknown = initial.clone();
    unknown.push(tensor("model.layers.9.bias", vec![1], vec![0.0]));
    assert!(matches!(
        model.set_parameters(&unknown),
        Err(Error::Config { .. })
    ));

    // Nothing above touched the parameters.
    assert_eq!(model.parameters().unwrap(), initial);

    // Model configuration errors at compile.
    let mut empty = Sequential::new(4);
    assert!(matches!(
        empty.compile(Loss::MeanSquaredError, Sgd::new(0.1)),
        Err(Error::Config { .. })
    ));
    let mut one_output = Sequential::new(4).add(Dense::new(1));
    assert!(matches!(
        one_output.compile(Loss::CrossEntropy, Sgd::new(0.1)),
        Err(Error::Config { .. })
    ));
    let mut m = blob_model(0);
    for bad in [
        Sgd::new(0.0),
        Sgd::new(f32::NAN),
        Sgd::new(0.1).momentum(1.0),
        Sgd::new(0.1).nesterov(true),
        Sgd::new(0.1).weight_decay(-1.0),
    ] {
        assert!(
            matches!(
                m.compile(Loss::CrossEntropy, bad),
                Err(Error::Config { .. })
            ),
            "{bad:?}"
        );
    }
}
