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

    // A Dense width the model cannot have is named by its reason (a width past what a shape
    // can count was reported as "0 units").
    for (units, why) in [
        (0, "at least one unit"),
        (1 << 32, "more than 2147483647 elements"),
    ] {
        let mut wide = wgfit::Sequential::new(2).add(wgfit::Dense::new(units));
        let err = wide
            .compile(Loss::CrossEntropy, Sgd::new(0.1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer 0: ") && err.contains(why), "{err}");
    }

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

#[test]
fn a_layer_added_after_compile_needs_a_new_compile_and_keeps_the_trained_weights() {
    let data = small_data();
    let opts = FitOptions {
        epochs: 1,
        batch_size: 3,
        ..Default::default()
    };
    let mut model = Sequential::new(4)
        .add(Dense::new(8).activation(wgfit::Activation::Tanh))
        .seed(3);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    model.fit(&data, opts.clone(), &mut []).unwrap();
    let trained = model.parameters().unwrap();

    // The GPU holds the one layer it was compiled with: every use is refused until compiled.
    let mut model = model.add(Dense::new(3));
    let refused = |r: Result<(), Error>| match r {
        Err(Error::Config { what, reason }) => {
            assert_eq!(what, "model");
            assert!(reason.contains("added after compile"), "{reason}");
        }
        other => panic!("expected the model refused, got {other:?}"),
    };
    refused(model.fit(&data, opts.clone(), &mut []).map(drop));
    refused(model.evaluate(&data, 3).map(drop));
    refused(model.predict(data.x(), 3).map(drop));
    refused(model.parameters().map(drop));

    // Compiled again: the first layer as trained, the new one drawn as compile draws it.
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let now = model.parameters().unwrap();
    assert_eq!(now[..2], trained[..]);
    let mut fresh = Sequential::new(4)
        .add(Dense::new(8).activation(wgfit::Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    fresh.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    assert_eq!(now[2..], fresh.parameters().unwrap()[2..]);
    assert!(now[2].data.iter().any(|&w| w != 0.0));
    model.fit(&data, opts, &mut []).unwrap();
}

#[test]
fn labels_must_fit_the_axes_of_the_output_not_only_its_size() {
    use wgfit::{Call, Embedding, Input, Model, Targets};
    // An output of 8 positions × 6 classes.
    let input = Input::new(&[8]);
    let logits = Dense::new(6).call(&Embedding::new(6, 4).call(&input));
    let mut model = Model::new(&input, &logits).unwrap().into_sequential();
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let x: Vec<f32> = (0..16).map(|i| (i % 6) as f32).collect();
    let data = |targets| Dataset::new(x.clone(), 8, targets).unwrap();
    let shape_error = |d: &Dataset, expected: &[usize]| match model.check_data(d) {
        Err(Error::Shape {
            expected: e, got, ..
        }) => {
            assert_eq!(e, expected);
            assert_eq!(got, [8, 6]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    };
    // 4 positions would each take a softmax over 12 columns spanning two positions.
    let four_positions = data(Targets::Tokens {
        labels: vec![0; 8],
        positions: 4,
    });
    shape_error(&four_positions, &[4, 6]);
    // One label per sample would take one softmax over all 48 outputs.
    shape_error(&data(Targets::Classes(vec![1, 2])), &[6]);
    let fits = data(Targets::Tokens {
        labels: vec![5; 16],
        positions: 8,
    });
    model.check_data(&fits).unwrap();
    // A flat output of 8 × 3: positions of 3 consecutive outputs each (wgfit train's
    // default model for sequences).
    let mut flat = Sequential::new(8).add(Dense::new(24));
    flat.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let per_position = data(Targets::Tokens {
        labels: vec![2; 16],
        positions: 8,
    });
    flat.check_data(&per_position).unwrap();
}

#[test]
fn an_epoch_of_more_batches_than_the_batch_table_addresses_is_refused() {
    let options = FitOptions {
        batch_size: 1,
        ..Default::default()
    };
    options.validate(1 << 24).unwrap();
    let refused = |r: wgfit::Result<()>| match r {
        Err(Error::Config { what, reason }) => {
            assert_eq!(what, "batch size");
            assert!(reason.contains("at least 2"), "{reason}");
        }
        other => panic!("expected the batch size refused, got {other:?}"),
    };
    refused(options.validate((1 << 24) + 1));
    // predict and evaluate pass over their rows in batches through the same table.
    let mut model = Sequential::new(1).add(Dense::new(2));
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    refused(model.predict(&vec![0.5; (1 << 24) + 1], 1).map(drop));
}

#[test]
fn a_layer_called_on_no_tensor_is_refused() {
    use wgfit::{Call, Input, Model};
    let input = Input::new(&[4]);
    let x = Dense::new(3).call(&input);
    let lost = Dense::new(3).call_on(&[]);
    let e = Model::new(&input, &x.add(&lost)).unwrap_err().to_string();
    assert!(e.contains("Dense layer is called on no tensor"), "{e}");
}
