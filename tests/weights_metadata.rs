//! Every weights file the library writes records the model it belongs to (each layer's
//! activation and the loss), and a file of another model is refused rather than loaded.

mod common;

use common::{data, options};
use wgfit::{
    Activation, Dense, Error, Loss, ModelCheckpoint, Sequential, Sgd, WEIGHTS_META_KEY, WeightsMeta,
};

/// A compiled 6-8-3 model with a tanh hidden layer and an output activation of its own.
fn model(hidden: Activation, output: Activation, loss: Loss) -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(hidden))
        .add(Dense::new(3).activation(output))
        .seed(3);
    m.compile(loss, Sgd::new(0.05)).unwrap();
    m
}

fn recorded(path: &std::path::Path) -> Option<WeightsMeta> {
    let bytes = std::fs::read(path).unwrap();
    WeightsMeta::from_file_bytes(&bytes, path, 2).unwrap()
}

#[test]
fn model_checkpoint_files_record_the_activations_the_loss_and_the_input_scale() {
    let tmp = tempfile::tempdir().unwrap();
    let pattern = tmp.path().join("w-{epoch}.safetensors");
    let mut checkpoint = ModelCheckpoint::new(pattern.to_str().unwrap())
        .monitor("loss")
        .input_scale(0.5);
    let mut m = model(
        Activation::Tanh,
        Activation::Sigmoid,
        Loss::MeanSquaredError,
    );
    m.fit(&data(), options(2), &mut [&mut checkpoint]).unwrap();
    let saved = checkpoint.saved().to_vec();
    assert_eq!(saved.len(), 2);
    for path in &saved {
        assert_eq!(
            recorded(path),
            Some(WeightsMeta {
                activations: vec![Activation::Tanh, Activation::Sigmoid],
                loss: Loss::MeanSquaredError,
                input_scale: Some(0.5),
                model: None,
            }),
            "{}",
            path.display()
        );
    }
    // The file is the model: loaded into a model like it, it gives the same loss.
    let mut again = model(
        Activation::Tanh,
        Activation::Sigmoid,
        Loss::MeanSquaredError,
    );
    again.load_weights(&saved[1]).unwrap();
    assert_eq!(
        again.evaluate(&data(), 16).unwrap()["loss"],
        m.evaluate(&data(), 16).unwrap()["loss"]
    );
}

#[test]
fn save_weights_records_the_model_and_load_weights_refuses_another() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.safetensors");
    let mut m = model(Activation::Tanh, Activation::Linear, Loss::CrossEntropy);
    m.fit(&data(), options(1), &mut []).unwrap();
    m.save_weights(&path).unwrap();
    let meta = recorded(&path).expect("a record");
    assert_eq!(meta.activations, [Activation::Tanh, Activation::Linear]);
    assert_eq!(meta.loss, Loss::CrossEntropy);
    assert_eq!(meta.hidden_activation(), Some(Activation::Tanh));
    assert_eq!(meta.input_scale, None, "the library scales no inputs");

    let mut same = model(Activation::Tanh, Activation::Linear, Loss::CrossEntropy);
    same.load_weights(&path).unwrap();
    assert_eq!(same.parameters().unwrap(), m.parameters().unwrap());

    let mut relu = model(Activation::Relu, Activation::Linear, Loss::CrossEntropy);
    let err = relu.load_weights(&path).unwrap_err();
    assert!(
        matches!(&err, Error::ModelRecordMismatch { what, .. } if what == "activations"),
        "{err}"
    );
    assert!(err.to_string().contains("tanh, linear"), "{err}");
    let mut mse = model(Activation::Tanh, Activation::Linear, Loss::MeanSquaredError);
    let err = mse.load_weights(&path).unwrap_err();
    assert!(
        matches!(&err, Error::ModelRecordMismatch { what, .. } if what == "loss"),
        "{err}"
    );
}

#[test]
fn a_record_that_does_not_parse_is_an_error_not_a_guess() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.safetensors");
    let m = model(Activation::Tanh, Activation::Linear, Loss::CrossEntropy);
    let bad = std::collections::HashMap::from([(
        WEIGHTS_META_KEY.to_string(),
        r#"{"activations":["tanh","swish"],"loss":"crossentropy"}"#.to_string(),
    )]);
    wgfit::checkpoint::write_tensors_with_metadata(&path, &m.parameters().unwrap(), Some(bad))
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let err = WeightsMeta::from_file_bytes(&bytes, &path, 2).unwrap_err();
    assert!(err.to_string().contains("swish"), "{err}");
    // An input scale no input can be multiplied by is the file's fault, named as such (the
    // CLI reported it as a `--scale 0` the user never gave).
    let zero = std::collections::HashMap::from([(
        WEIGHTS_META_KEY.to_string(),
        r#"{"activations":["tanh","linear"],"loss":"crossentropy","input_scale":0.0}"#.to_string(),
    )]);
    wgfit::checkpoint::write_tensors_with_metadata(&path, &m.parameters().unwrap(), Some(zero))
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let err = WeightsMeta::from_file_bytes(&bytes, &path, 2).unwrap_err();
    assert!(
        matches!(err, Error::CorruptCheckpoint { .. })
            && err.to_string().contains("records the input scale 0"),
        "{err}"
    );
    // Without a record there is nothing to read, and nothing is made up.
    wgfit::checkpoint::write_tensors(&path, &m.parameters().unwrap()).unwrap();
    assert_eq!(recorded(&path), None);
}

/// A file of another architecture whose tensors all fit (the same convolution with other
/// strides: the same kernel, another output) is refused by naming the layer that differs,
/// and so is a file of a deeper stack, as another model rather than a damaged file.
#[test]
fn load_weights_refuses_another_architecture_even_where_the_shapes_fit() {
    use wgfit::{Conv2D, GlobalAveragePooling2D, Padding};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("conv.safetensors");
    let conv = |strides: usize| {
        let mut m = Sequential::with_input_shape(&[6, 6, 1])
            .add(
                Conv2D::new(2, 3)
                    .strides([strides, strides])
                    .padding(Padding::Same),
            )
            .add(GlobalAveragePooling2D)
            .add(Dense::new(3))
            .seed(5);
        m.compile(Loss::CrossEntropy, Sgd::new(0.05)).unwrap();
        m
    };
    conv(2).save_weights(&path).unwrap();
    let mut same = conv(2);
    same.load_weights(&path).unwrap();
    assert_eq!(
        same.parameters().unwrap(),
        conv(2).parameters().unwrap(),
        "the same architecture loads"
    );
    let mut other = conv(1);
    let before = other.parameters().unwrap();
    let err = other.load_weights(&path).unwrap_err();
    assert!(
        matches!(&err, Error::ModelRecordMismatch { what, .. } if what == "architecture"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("layer 0 Conv2D")
            && text.contains("strides=2x2")
            && text.contains("strides=1x1"),
        "{text}"
    );
    assert_eq!(other.parameters().unwrap(), before, "nothing was loaded");

    // Three Dense layers saved, two to load into: another model, not a damaged file.
    let deep = tmp.path().join("deep.safetensors");
    let mut three = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3));
    three.compile(Loss::CrossEntropy, Sgd::new(0.05)).unwrap();
    three.save_weights(&deep).unwrap();
    let mut two = model(Activation::Tanh, Activation::Linear, Loss::CrossEntropy);
    let err = two.load_weights(&deep).unwrap_err();
    assert!(
        matches!(&err, Error::ModelRecordMismatch { what, .. } if what == "architecture"),
        "{err}"
    );
    assert!(
        err.to_string().contains("a stack of 3 Dense layers"),
        "{err}"
    );
}
