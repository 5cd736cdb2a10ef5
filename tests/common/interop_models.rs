//! The models the interchange tests write and read (`tests/keras_files.rs`,
//! `tests/onnx_torch_files.rs`): an MLP, the Step 16 convnet with BatchNormalization
//! (`digits_convnet_bn.json`) and a small GPT (`gpt_small.json`), on small random data.

use super::rng::Rng;
use std::path::Path;
use wgfit::{
    Activation, Adam, Dataset, Dense, FitOptions, Loss, Sequential, Targets, Tensor,
    from_keras_json,
};

/// Rows predicted in the comparison: not a multiple of any batch size used.
pub const ROWS: usize = 37;

pub struct Case {
    pub name: &'static str,
    pub model: Sequential,
    /// The model's Keras config (a fixture's text; for a model built here, wgfit's).
    pub config: Option<String>,
    pub data: Dataset,
}

fn fixture(name: &str) -> (Sequential, String) {
    let text = std::fs::read_to_string(format!("tests/data/keras/{name}")).unwrap();
    (from_keras_json(&text).unwrap().model, text)
}

fn classes(rng: &mut Rng, n: usize, features: usize, classes: usize) -> Dataset {
    let x: Vec<f32> = (0..n * features)
        .map(|_| rng.below(1000) as f32 / 1000.0)
        .collect();
    let y: Vec<u32> = (0..n).map(|_| rng.below(classes) as u32).collect();
    Dataset::classification(x, features, y).unwrap()
}

pub fn cases() -> Vec<Case> {
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

pub fn options() -> FitOptions {
    FitOptions {
        epochs: 1,
        batch_size: 16,
        seed: 3,
        ..FitOptions::default()
    }
}

pub fn compiled(model: Sequential) -> Sequential {
    let mut model = model.seed(7);
    model.compile(Loss::CrossEntropy, Adam::new(0.01)).unwrap();
    model
}

pub fn tensor(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor {
        name: name.into(),
        shape,
        data,
    }
}

/// `io.safetensors` in `dir`: the first [`ROWS`] inputs `x` of `data` and the model's
/// outputs `y` for them, each `[ROWS, …its shape]`.
pub fn write_io(model: &Sequential, data: &Dataset, dir: &Path) {
    let features = data.features();
    let x = data.x()[..ROWS * features].to_vec();
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
