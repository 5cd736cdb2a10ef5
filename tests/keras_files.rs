//! Keras 3's files both ways, checked by Keras itself (`tests/keras/keras_files.py`, Keras on
//! JAX): an MLP, the Step 16 convnet with BatchNormalization (`digits_convnet_bn.json`) and a
//! small GPT (`gpt_small.json`), each trained a little by wgfit, then
//! - written as `.weights.h5` and `.keras`: Keras loads both and predicts what wgfit predicts;
//! - initialised by Keras and written with `save_weights`: wgfit reads the very bits Keras
//!   holds, and a run from them equals a run from the same weights given as safetensors.

mod common;

use common::python_clients;
use common::rng::Rng;
use std::path::Path;
use wgfit::{
    Activation, Adam, Dataset, Dense, FitOptions, Loss, Sequential, Targets, Tensor,
    from_keras_json,
};

/// Rows predicted in the comparison: not a multiple of any batch size used.
const ROWS: usize = 37;

struct Case {
    name: &'static str,
    model: Sequential,
    /// The model's Keras config (a fixture's text; for a model built here, wgfit's).
    config: Option<String>,
    data: Dataset,
}

fn fixture(name: &str) -> (Sequential, String) {
    let text = std::fs::read_to_string(format!("tests/data/keras/{name}")).unwrap();
    (from_keras_json(&text).unwrap().model, text)
}

fn classes(rng: &mut Rng, n: usize, features: usize, classes: usize) -> Dataset {
    let x: Vec<f32> = (0..n * features).map(|_| rng.below(1000) as f32 / 1000.0).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.below(classes) as u32).collect();
    Dataset::classification(x, features, y).unwrap()
}

fn cases() -> Vec<Case> {
    let mut rng = Rng(29);
    let mlp = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(5).activation(Activation::Tanh))
        .add(Dense::new(3));
    let (convnet, convnet_json) = fixture("digits_convnet_bn.json");
    let (gpt, gpt_json) = fixture("gpt_small.json");
    let (t, vocabulary) = (8, 11);
    let tokens = Dataset::new(
        (0..64 * t).map(|_| rng.below(vocabulary) as f32).collect(),
        t,
        Targets::Tokens {
            labels: (0..64 * t).map(|_| rng.below(vocabulary) as u32).collect(),
            positions: t,
        },
    )
    .unwrap();
    vec![
        Case {
            name: "mlp",
            model: mlp,
            config: None,
            data: classes(&mut rng, 64, 6, 3),
        },
        Case {
            name: "convnet_bn",
            model: convnet,
            config: Some(convnet_json),
            data: classes(&mut rng, 64, 64, 10),
        },
        Case {
            name: "gpt",
            model: gpt,
            config: Some(gpt_json),
            data: tokens,
        },
    ]
}

fn options() -> FitOptions {
    FitOptions {
        epochs: 1,
        batch_size: 16,
        seed: 3,
        ..FitOptions::default()
    }
}

fn compiled(model: Sequential) -> Sequential {
    let mut model = model.seed(7);
    model.compile(Loss::CrossEntropy, Adam::new(0.01)).unwrap();
    model
}

fn tensor(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor {
        name: name.into(),
        shape,
        data,
    }
}

#[test]
fn keras_loads_the_weights_and_models_wgfit_writes_and_predicts_the_same() {
    if !python_clients::available("keras_loads_the_weights_and_models_wgfit_writes") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for case in cases() {
        let dir = root.path().join(case.name);
        std::fs::create_dir(&dir).unwrap();
        let mut model = compiled(case.model);
        model.fit(&case.data, options(), &mut []).unwrap();
        let config = match case.config {
            Some(c) => c,
            None => model.to_keras_json().unwrap(),
        };
        std::fs::write(dir.join("config.json"), &config).unwrap();
        model.save_keras_weights(dir.join("model.weights.h5")).unwrap();
        model.save_keras(dir.join("model.keras"), None).unwrap();
        let features = case.data.features();
        let x = case.data.x()[..ROWS * features].to_vec();
        let y = model.predict(&x, 16).unwrap();
        let mut x_shape = vec![ROWS];
        x_shape.extend(model.input_shape());
        let mut y_shape = vec![ROWS];
        y_shape.extend(&model.specs().unwrap().last().unwrap().out_shape);
        wgfit::checkpoint::write_tensors(
            &dir.join("io.safetensors"),
            &[tensor("x", x_shape, x), tensor("y", y_shape, y)],
        )
        .unwrap();
    }
    python_clients::run("keras_files.py", &[Path::new("check"), root.path()]);
}

fn bits(tensors: &[Tensor]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out: Vec<_> = tensors
        .iter()
        .map(|t| {
            let bits = t.data.iter().map(|v| v.to_bits()).collect();
            (t.name.clone(), t.shape.clone(), bits)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn wgfit_reads_the_weights_keras_writes_bit_for_bit() {
    if !python_clients::available("wgfit_reads_the_weights_keras_writes_bit_for_bit") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cases = cases();
    for case in &cases {
        let dir = root.path().join(case.name);
        std::fs::create_dir(&dir).unwrap();
        let config = match &case.config {
            Some(c) => c.clone(),
            None => compiled(self::cases().remove(0).model).to_keras_json().unwrap(),
        };
        std::fs::write(dir.join("config.json"), config).unwrap();
    }
    python_clients::run("keras_files.py", &[Path::new("write"), root.path()]);
    // The same models again (built alike), for the second run.
    for (case, twin) in cases.into_iter().zip(self::cases()) {
        let dir = root.path().join(case.name);
        let mut from_keras = compiled(case.model);
        let mut from_safetensors = compiled(twin.model);
        let keras = from_keras
            .read_keras_weights(&dir.join("keras.weights.h5"))
            .unwrap();
        let given = wgfit::checkpoint::read_tensors(&dir.join("wgfit.safetensors")).unwrap();
        assert_eq!(bits(&keras), bits(&given), "{}", case.name);
        from_keras.set_parameters(&keras).unwrap();
        from_safetensors.set_parameters(&given).unwrap();
        from_keras.fit(&case.data, options(), &mut []).unwrap();
        from_safetensors.fit(&case.data, options(), &mut []).unwrap();
        assert_eq!(
            bits(&from_keras.parameters().unwrap()),
            bits(&from_safetensors.parameters().unwrap()),
            "{}: the runs differ",
            case.name
        );
    }
}
