//! `from_keras_json` on what Keras 3.15's `model.to_json()` wrote (`tests/data/keras/`,
//! written by the Keras calls in each file's test): the shapes and parameter counts Keras's
//! `model.summary()` printed, and a clear refusal of what wgfit does not have.

use wgfit::{Loss, Sgd, from_keras_json};

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("tests/data/keras/{name}")).unwrap()
}

fn shapes_and_parameters(json: &str) -> (Vec<Vec<usize>>, usize, bool) {
    let mut keras = from_keras_json(json).unwrap();
    let shapes = keras
        .model
        .specs()
        .unwrap()
        .iter()
        .map(|s| s.out_shape.clone())
        .collect();
    keras
        .model
        .compile(Loss::CrossEntropy, Sgd::new(0.01))
        .unwrap();
    let count = keras
        .model
        .parameters()
        .unwrap()
        .iter()
        .map(|t| t.data.len())
        .sum();
    (shapes, count, keras.softmax_output)
}

/// The Keras example "Simple MNIST convnet": Conv2D 32 → MaxPool → Conv2D 64 → MaxPool →
/// Flatten → Dropout 0.5 → Dense 10 softmax; Keras counts 34 826 parameters.
#[test]
fn the_simple_mnist_convnet_reads_with_keras_shapes() {
    let (shapes, parameters, softmax) = shapes_and_parameters(&read("mnist_convnet.json"));
    assert_eq!(
        shapes,
        [
            vec![26, 26, 32],
            vec![13, 13, 32],
            vec![11, 11, 64],
            vec![5, 5, 64],
            vec![1600],
            vec![1600],
            vec![10]
        ]
    );
    assert_eq!(parameters, 34_826);
    assert!(softmax, "the softmax output is noted");
}

/// Every layer wgfit reads (same and valid padding, strides, no bias, an Activation layer,
/// Reshape, Dense on the last axis of an image, global pooling); Keras counts 588 parameters.
#[test]
fn every_layer_kind_reads_with_keras_shapes() {
    let (shapes, parameters, softmax) = shapes_and_parameters(&read("every_layer.json"));
    assert_eq!(
        shapes,
        [
            vec![8, 8, 8],
            vec![4, 3, 8],
            vec![4, 3, 8],
            vec![4, 3, 8],
            vec![3, 4, 8],
            vec![2, 2, 8],
            vec![2, 2, 6],
            vec![6],
            vec![6],
            vec![10]
        ]
    );
    assert_eq!(parameters, 588);
    assert!(!softmax);
}

fn refusal(json: &str) -> String {
    from_keras_json(json).unwrap_err().to_string()
}

/// The kernels index a sample's elements, and take windows, strides and pads, as 32-bit
/// integers: larger sizes are refused by name, not wrapped (a dilation of 2^32 + 1 ran as 1).
#[test]
fn sizes_beyond_what_the_kernels_index_are_refused() {
    let base = read("every_layer.json");
    let dilated = base.replacen(
        "\"dilation_rate\": [1, 1]",
        "\"dilation_rate\": [4294967297, 1]",
        1,
    );
    assert_ne!(dilated, base);
    let e = refusal(&dilated);
    assert!(
        e.contains("4294967297") && e.contains("spans more than"),
        "{e}"
    );
    let huge = base.replacen("[null, 8, 8, 1]", "[null, 4294967296, 4294967296, 1]", 1);
    assert_ne!(huge, base);
    let e = refusal(&huge);
    assert!(e.contains("elements per sample"), "{e}");
    // The same through the library: a product that overflows, and one that does not.
    for shape in [[1usize << 32, 1 << 32, 1], [1 << 16, 1 << 16, 1]] {
        let mut model = wgfit::Sequential::with_input_shape(&shape).add(wgfit::Dense::new(2));
        let e = model
            .compile(Loss::CrossEntropy, Sgd::new(0.1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("elements per sample"), "{e}");
    }
}

#[test]
fn an_unsupported_layer_is_named_with_the_supported_ones() {
    let e = refusal(&read("with_upsampling.json"));
    assert!(e.contains("UpSampling2D"), "{e}");
    assert!(e.contains("Conv2D, MaxPooling2D"), "{e}");
}

/// Conv2D 4 → LayerNormalization → Flatten → Dense 10: Keras counts 40 + 8 + 1 450
/// parameters; an axis other than the last, or RMS scaling, is refused by name.
#[test]
fn layer_normalization_reads_and_its_unsupported_arguments_are_named() {
    let (shapes, parameters, _) = shapes_and_parameters(&read("with_layernorm.json"));
    assert_eq!(shapes[1], [6, 6, 4]);
    assert_eq!(parameters, 40 + 8 + 1450);
    let base = read("with_layernorm.json");
    for (from, to, named) in [
        ("\"axis\": [-1]", "\"axis\": [1]", "axis"),
        (
            "\"rms_scaling\": false",
            "\"rms_scaling\": true",
            "rms_scaling",
        ),
        ("\"epsilon\": 0.001", "\"epsilon\": -1", "epsilon"),
    ] {
        assert!(base.contains(from), "{from}");
        let e = refusal(&base.replace(from, to));
        assert!(e.contains(named) && e.contains("LayerNormalization"), "{e}");
    }
}

/// Conv2D without bias → BatchNormalization → Activation → …: Keras counts 834 parameters,
/// 16 of them its non-trainable moving statistics.
#[test]
fn batch_normalization_reads_with_its_moving_statistics() {
    let (shapes, parameters, softmax) = shapes_and_parameters(&read("digits_convnet_bn.json"));
    assert_eq!(shapes[1], [6, 6, 8]);
    assert_eq!(parameters, 834);
    assert!(softmax);
    let (_, parameters, _) = shapes_and_parameters(&read("with_batchnorm.json"));
    assert_eq!(parameters, 4 * 10 + 4 * 4 + 144 * 10 + 10);
    let base = read("with_batchnorm.json");
    for (from, to, named) in [
        ("\"axis\": -1", "\"axis\": 1", "axis"),
        ("\"renorm\": false", "\"renorm\": true", "renorm"),
        (
            "\"synchronized\": false",
            "\"synchronized\": true",
            "synchronized",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let e = refusal(&base.replacen(from, to, 1));
        assert!(e.contains(named), "{named}: {e}");
    }
}

#[test]
fn an_unsupported_argument_or_value_is_named() {
    let e = refusal(&read("with_regularizer.json"));
    assert!(
        e.contains("layer 1 `conv2d") && e.contains("(Conv2D)") && e.contains("kernel_regularizer"),
        "{e}"
    );

    let base = read("mnist_convnet.json");
    for (from, to, named) in [
        (
            "\"padding\": \"valid\"",
            "\"padding\": \"causal\"",
            "padding",
        ),
        (
            "\"rate\": 0.5, \"seed\": null",
            "\"rate\": 0.5, \"seed\": 3",
            "seed",
        ),
        ("\"groups\": 1", "\"groups\": 2", "groups"),
        ("\"filters\": 32", "\"filters\": 32, \"flip\": true", "flip"),
        (
            "\"activation\": \"relu\"",
            "\"activation\": \"selu\"",
            "selu",
        ),
        (
            "\"data_format\": \"channels_last\"",
            "\"data_format\": \"channels_first\"",
            "channels_first",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let e = refusal(&base.replacen(from, to, 1));
        assert!(e.contains(named), "{named}: {e}");
    }
    let e = refusal("{\"class_name\": \"Subclassed\"}");
    assert!(e.contains("Sequential and Functional"), "{e}");
    let e = refusal("{\"class_name\": \"Functional\"}");
    assert!(e.contains("no config.layers"), "{e}");
    let e = refusal("not json");
    assert!(e.contains("not JSON"), "{e}");
}

#[test]
fn softmax_is_taken_on_the_last_layer_only() {
    let base = read("mnist_convnet.json");
    let e = refusal(&base.replacen("\"activation\": \"relu\"", "\"activation\": \"softmax\"", 1));
    assert!(e.contains("softmax only on the last layer"), "{e}");
}

/// `Dense(n), Softmax()` is `Dense(n, activation="softmax")` to Keras: the output's softmax,
/// which cross-entropy applies to the logits (kept as a layer, it would be applied twice).
#[test]
fn a_last_softmax_layer_is_the_outputs_softmax() {
    let mut root: serde_json::Value = serde_json::from_str(&read("with_softmax.json")).unwrap();
    let layers = root["config"]["layers"].as_array_mut().unwrap();
    let mut last = layers[2].clone();
    last["config"]["name"] = "softmax_out".into();
    layers.push(last);
    let json = root.to_string();
    let (shapes, parameters, softmax) = shapes_and_parameters(&json);
    assert_eq!(shapes, [vec![6, 4], vec![6, 4], vec![6, 5]]);
    assert_eq!(parameters, 45);
    assert!(softmax);
    // Keras's softmax of probabilities has no wgfit form: refused by name.
    let twice = json.replacen("\"activation\":\"linear\"", "\"activation\":\"softmax\"", 1);
    assert_ne!(twice, json);
    let e = refusal(&twice);
    assert!(e.contains("softmax of probabilities"), "{e}");
}

/// A GPT block as a Functional model (`tests/data/keras/gpt_small.json`, from Keras 3.15):
/// `Input((8,), int32)` → Embedding(11, 16), plus PositionEmbedding(8) (keras_hub's config),
/// plus MultiHeadAttention(2, 8)(h, h, use_causal_mask=True) of LayerNormalization(1e-5),
/// plus a Dense(64, gelu) → Dense(16) → Dropout(0.1) MLP of LayerNormalization, then
/// Dense(11); Keras counts 3 771 parameters (the Keras code: `tests/keras/compare_gpt.py`).
#[test]
fn a_functional_gpt_block_reads_with_its_graph() {
    let json = read("gpt_small.json");
    let (shapes, parameters, softmax) = shapes_and_parameters(&json);
    assert_eq!(shapes.len(), 12);
    assert_eq!(shapes[0], [8, 16]);
    assert_eq!(shapes.last().unwrap(), &[8, 11]);
    assert_eq!(parameters, 3771);
    assert!(!softmax);
    let keras = from_keras_json(&json).unwrap();
    let specs = keras.model.specs().unwrap();
    // The first Add reads the Embedding (tensor 1) and the PositionEmbedding (tensor 2); the
    // attention reads the LayerNormalization once, with the causal mask.
    assert_eq!(specs[2].sources, [1, 2]);
    assert!(
        matches!(
            specs[4].kind,
            wgfit::LayerKind::MultiHeadAttention {
                use_causal_mask: true,
                num_heads: 2,
                key_dim: 8,
                value_dim: 8,
                use_bias: true
            }
        ),
        "{:?}",
        specs[4]
    );
    assert_eq!(specs[4].sources, [4]);
    assert_eq!(specs[5].sources, [3, 5]);

    // What wgfit does not have is refused by name.
    for (from, to, named) in [
        ("\"dropout\": 0.0", "\"dropout\": 0.1", "dropout"),
        (
            "\"use_causal_mask\": true",
            "\"return_attention_scores\": true",
            "return_attention_scores",
        ),
        ("\"mask_zero\": false", "\"mask_zero\": true", "mask_zero"),
        (
            "\"class_name\": \"Functional\"",
            "\"class_name\": \"Graph\"",
            "Graph",
        ),
    ] {
        assert!(json.contains(from), "{from}");
        let e = refusal(&json.replacen(from, to, 1));
        assert!(e.contains(named), "{from} → {to}: {e}");
    }
    // Cross-attention: the value is another tensor than the query.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mha = v["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["class_name"] == "MultiHeadAttention")
        .unwrap();
    mha["inbound_nodes"][0]["args"][1]["config"]["keras_history"][0] = "embedding".into();
    let e = refusal(&v.to_string());
    assert!(e.contains("cross-attention"), "{e}");
    // A call that reads a layer no call computes.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let dense = v["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["name"] == "dense_1")
        .unwrap();
    dense["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "nowhere".into();
    let e = refusal(&v.to_string());
    assert!(e.contains("`nowhere`"), "{e}");
}

/// A Dense layer called twice (`tests/data/keras/shared_dense.json`, Keras 3.15):
/// `h1 = dense(Embedding(9, 8)(x))`, `h2 = dense(LayerNormalization()(h1))`, then
/// `Dense(9)(Add()([h1, h2]))`: one set of weights, 241 parameters as Keras counts them.
#[test]
fn a_layer_named_as_the_input_is_refused_by_name() {
    let mut root: serde_json::Value = serde_json::from_str(&read("shared_dense.json")).unwrap();
    let config = &mut root["config"];
    let last = config["layers"].as_array_mut().unwrap().last_mut().unwrap();
    last["name"] = "input_layer".into();
    last["config"]["name"] = "input_layer".into();
    config["output_layers"] = serde_json::json!(["input_layer", 0, 0]);
    let e = refusal(&root.to_string());
    assert!(e.contains("as the model's input is"), "{e}");
}

#[test]
fn a_shared_layer_reads_as_two_calls_of_one_set_of_weights() {
    let json = read("shared_dense.json");
    let (shapes, parameters, _) = shapes_and_parameters(&json);
    assert_eq!(parameters, 241);
    assert_eq!(shapes.len(), 6);
    let specs = from_keras_json(&json).unwrap().model.specs().unwrap();
    let shares: Vec<Option<usize>> = specs.iter().map(|s| s.shares).collect();
    // Embedding, dense, LayerNormalization, dense again, Add, Dense.
    assert_eq!(shares, [None, None, None, Some(1), None, None]);
    assert_eq!(specs[3].sources, [3]);
    assert_eq!(specs[4].sources, [2, 4]);
}

/// `Embedding(5, 4) → Softmax() → Dense(5)` on 6 ids (`tests/data/keras/with_softmax.json`,
/// Keras 3.15): a Softmax layer inside a model; 45 parameters; another axis refused.
#[test]
fn a_softmax_layer_reads_and_another_axis_is_named() {
    let json = read("with_softmax.json");
    let (shapes, parameters, softmax) = shapes_and_parameters(&json);
    assert_eq!(shapes, [vec![6, 4], vec![6, 4], vec![6, 5]]);
    assert_eq!(parameters, 45);
    assert!(
        !softmax,
        "a Softmax layer is a layer, not the output's softmax"
    );
    let e = refusal(&json.replacen("\"axis\": -1", "\"axis\": 1", 1));
    assert!(e.contains("axis") && e.contains("Softmax"), "{e}");
}

/// A cross-entropy model whose last layer has an activation (or is no Dense) is written with
/// a Softmax layer after it, so that Keras predicts probabilities, and reads back as the same
/// model with the output's softmax.
#[test]
fn the_loss_softmax_of_a_last_layer_with_its_own_activation_is_a_softmax_layer() {
    use wgfit::{Activation, Call, Dense, Input, Model, Sequential};
    let stack = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(3).activation(Activation::Tanh));
    let input = Input::new(&[4]);
    let residual = Dense::new(4).call(&input).add(&input);
    let graph = Model::new(&input, &residual).unwrap().into_sequential();
    for (mut model, class) in [(stack, "Sequential"), (graph, "Functional")] {
        model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
        let json = model.to_keras_json().unwrap();
        let root: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(root["class_name"], class);
        let last = root["config"]["layers"].as_array().unwrap().last().unwrap();
        assert_eq!(last["class_name"], "Softmax", "{json}");
        let back = from_keras_json(&json).unwrap();
        assert!(back.softmax_output, "{json}");
        assert_eq!(back.model.specs().unwrap(), model.specs().unwrap());
    }
}

/// A Keras Sequential cannot call MultiHeadAttention (its call takes a query and a value):
/// a stack that has one is written as a Functional model, which keeps `use_causal_mask`.
#[test]
fn a_stack_with_attention_is_written_as_a_functional_model_with_its_causal_mask() {
    use wgfit::{Call, Dense, Embedding, Input, Model, MultiHeadAttention};
    let input = Input::new(&[5]);
    let attended = MultiHeadAttention::new(2, 4)
        .use_causal_mask(true)
        .call(&Embedding::new(7, 8).call(&input));
    let output = Dense::new(7).call(&attended);
    let mut model = Model::new(&input, &output).unwrap().into_sequential();
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let json = model.to_keras_json().unwrap();
    let root: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(root["class_name"], "Functional", "{json}");
    assert!(json.contains("\"use_causal_mask\":true"), "{json}");
    let back = from_keras_json(&json).unwrap();
    assert_eq!(back.model.specs().unwrap(), model.specs().unwrap());
}
