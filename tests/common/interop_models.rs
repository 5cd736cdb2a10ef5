//! The models the interchange tests write and read (`tests/keras_files.rs`,
//! `tests/onnx_torch_files.rs`): an MLP and Keras fixtures covering every layer kind (see
//! [`cases`]), on small random data.

use super::rng::Rng;
use std::path::Path;
use wgfit::{
    Activation, Adam, Dataset, Dense, FitOptions, LayerKind, Loss, Sequential, Targets, Tensor,
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

/// 64 random samples that fit `model`: ids below its Embedding's `input_dim` for an id input,
/// else values in [0, 1); a class of its output's width per sample, or per position for an
/// output of `[T, n]`.
fn data_for(model: &Sequential, rng: &mut Rng) -> Dataset {
    let n = 64;
    let specs = model.specs().unwrap();
    let features: usize = model.input_shape().iter().product();
    let x: Vec<f32> = match specs.first().map(|s| &s.kind) {
        Some(LayerKind::Embedding { input_dim, .. }) => (0..n * features)
            .map(|_| rng.below(*input_dim) as f32)
            .collect(),
        _ => (0..n * features)
            .map(|_| rng.below(1000) as f32 / 1000.0)
            .collect(),
    };
    let out = &specs.last().unwrap().out_shape;
    let classes = *out.last().unwrap();
    let targets = match out.len() {
        2 => Targets::Tokens {
            labels: (0..n * out[0]).map(|_| rng.below(classes) as u32).collect(),
            positions: out[0],
        },
        _ => Targets::Classes((0..n).map(|_| rng.below(classes) as u32).collect()),
    };
    Dataset::new(x, features, targets).unwrap()
}

/// The models: `mlp` and `tanh_out` (built here), then the fixtures `digits_convnet_bn.json` (the Step 16
/// convnet with BatchNormalization), `gpt_small.json` (a GPT block), `every_layer.json`
/// (both paddings, both poolings, Reshape, Activation, Dense on images, global pooling),
/// `with_layernorm.json`, `with_softmax.json` (Embedding, a Softmax layer) and
/// `shared_dense.json` (a Functional model calling one Dense twice).
pub fn cases() -> Vec<Case> {
    let mut rng = Rng(29);
    let mlp = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(5).activation(Activation::Tanh))
        .add(Dense::new(3));
    // Its last activation leaves no place for the loss's softmax: a Softmax layer follows.
    let tanh_out = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Tanh));
    let mut cases = vec![
        Case {
            name: "mlp",
            data: data_for(&mlp, &mut rng),
            model: mlp,
            config: None,
        },
        Case {
            name: "tanh_out",
            data: data_for(&tanh_out, &mut rng),
            model: tanh_out,
            config: None,
        },
    ];
    for (name, file) in [
        ("convnet_bn", "digits_convnet_bn.json"),
        ("gpt", "gpt_small.json"),
        ("every_layer", "every_layer.json"),
        ("with_layernorm", "with_layernorm.json"),
        ("with_softmax", "with_softmax.json"),
        ("shared_dense", "shared_dense.json"),
    ] {
        let text = std::fs::read_to_string(format!("tests/data/keras/{file}")).unwrap();
        let model = from_keras_json(&text).unwrap().model;
        cases.push(Case {
            name,
            data: data_for(&model, &mut rng),
            model,
            config: Some(text),
        });
    }
    cases
}

/// A case whose model wgfit trained one epoch, with a directory of its own.
pub struct Trained {
    pub name: &'static str,
    pub dir: std::path::PathBuf,
    pub model: Sequential,
    pub config: Option<String>,
    pub data: Dataset,
}

/// Every case trained one epoch (Adam), each with its directory `root/<name>` made.
pub fn trained_cases(root: &Path) -> Vec<Trained> {
    cases()
        .into_iter()
        .map(|case| {
            let dir = root.join(case.name);
            std::fs::create_dir(&dir).unwrap();
            let mut model = compiled(case.model);
            model.fit(&case.data, options(), &mut []).unwrap();
            Trained {
                name: case.name,
                dir,
                model,
                config: case.config,
                data: case.data,
            }
        })
        .collect()
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
