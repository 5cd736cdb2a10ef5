//! Sequence models' layers and graphs against a CPU reference in f64: Embedding, Dense on
//! the last axis of `[T, C]`, GELU (exact and approximate), Add (residual connections in a
//! Functional model) and a cross-entropy per token, forward and backward (central finite
//! differences of the reference), on odd sequence lengths and vocabularies.
//!
//! The GPU's gradient is read through one SGD step with learning rate 1 (g = before − after).

mod common;

use common::finite_differences::wrong_entries;
use common::layers_reference::forward;
use common::rng::Rng;
use wgfit::{
    Activation, Add, Call, Dataset, Dense, Embedding, FitOptions, Input, LayerNormalization, Loss,
    Model, MultiHeadAttention, PositionEmbedding, Sequential, Sgd, Shared, Softmax, Targets,
};

const ROWS: usize = 3;

/// The mean cross-entropy over every token of logits `y` (`[tokens, classes]`).
fn cross_entropy(y: &[f64], labels: &[u32], classes: usize) -> f64 {
    let tokens = labels.len();
    (0..tokens)
        .map(|i| {
            let row = &y[i * classes..(i + 1) * classes];
            let m = row.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
            m + s.ln() - row[labels[i] as usize]
        })
        .sum::<f64>()
        / tokens as f64
}

/// Trains `model` one step on random ids and next-token labels and compares its outputs and
/// gradients with the CPU's.
fn check(name: &str, mut model: Sequential, vocab: usize, seed: u64) {
    let mut rng = Rng(seed);
    let t = model.inputs();
    let ids: Vec<f32> = (0..ROWS * t).map(|_| rng.below(vocab) as f32).collect();
    let classes = model.outputs() / t;
    let labels: Vec<u32> = (0..ROWS * t).map(|_| rng.below(classes) as u32).collect();
    let targets = Targets::Tokens {
        labels: labels.clone(),
        positions: t,
    };
    let data = Dataset::new(ids.clone(), t, targets).unwrap();
    model.compile(Loss::CrossEntropy, Sgd::new(1.0)).unwrap();
    let specs = model.specs().unwrap();
    let mut before = model.parameters().unwrap();
    for p in &mut before {
        p.data = rng.vec(p.data.len(), -1.0, 1.0);
    }
    model.set_parameters(&before).unwrap();
    let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let base: Vec<Vec<f64>> = before.iter().map(|p| f64s(&p.data)).collect();
    let x64 = f64s(&ids);

    let y = model.predict(&ids, ROWS).unwrap();
    let reference = forward(&specs, &base, &x64, ROWS);
    for (i, (&g, &r)) in y.iter().zip(&reference).enumerate() {
        assert!(
            (g as f64 - r).abs() <= 1e-5 * r.abs() + 1e-5,
            "{name}: output {i} is {g}, the CPU's {r}"
        );
    }
    let logs = model.evaluate(&data, ROWS).unwrap();
    let want = cross_entropy(&reference, &labels, classes);
    let got = logs["loss"];
    assert!(
        (got - want).abs() <= 1e-5 * want.abs(),
        "{name}: loss {got}, the CPU's {want}"
    );

    let options = FitOptions {
        epochs: 1,
        batch_size: ROWS,
        shuffle: false,
        ..Default::default()
    };
    model.fit(&data, options, &mut []).unwrap();
    let after = model.parameters().unwrap();
    let loss = |p: &[Vec<f64>]| cross_entropy(&forward(&specs, p, &x64, ROWS), &labels, classes);
    let failures = wrong_entries(&before, &after, &base, loss, |_| false);
    assert!(
        failures.is_empty(),
        "{name}: {} gradient entries wrong:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn embedding_then_dense_per_token_in_a_stack() {
    // Ids repeat within the batch (vocabulary 5, 21 positions): the table's gradient sums them.
    let model = Sequential::with_input_shape(&[7])
        .add(Embedding::new(5, 3))
        .add(Dense::new(4).activation(Activation::Tanh))
        .add(Dense::new(6));
    check("embedding stack", model, 5, 1);
}

#[test]
fn a_softmax_layer_inside_a_model() {
    // Softmax over a width of 9, then over each position of a [5, 4] projection.
    let model = Sequential::with_input_shape(&[5])
        .add(Embedding::new(7, 9))
        .add(Softmax)
        .add(Dense::new(4))
        .add(Softmax)
        .add(Dense::new(7));
    check("softmax", model, 7, 40);
}

#[test]
fn gelu_exact_and_approximate_per_token() {
    for (act, seed) in [(Activation::Gelu, 2), (Activation::GeluApproximate, 3)] {
        let model = Sequential::with_input_shape(&[5])
            .add(Embedding::new(7, 4))
            .add(Dense::new(9).activation(act))
            .add(Dense::new(7));
        check(&format!("{act:?}"), model, 7, seed);
    }
}

/// A pre-norm residual block as a transformer's feed-forward half:
/// `x + Dense(Dense_gelu(LayerNorm(x)))`, then a second residual reading `x` again.
fn residual_block(t: usize, vocab: usize, width: usize) -> Model {
    let input = Input::new(&[t]);
    let x = Embedding::new(vocab, width).call(&input);
    let h = LayerNormalization::new().call(&x);
    let h = Dense::new(2 * width + 1)
        .activation(Activation::Gelu)
        .call(&h);
    let h = Dense::new(width).call(&h);
    let y = x.add(&h);
    // x is read a third time: its gradient sums three edges.
    let z = Add.call_on(&[&y, &x, &h]);
    let logits = Dense::new(vocab).call(&z);
    Model::new(&input, &logits).unwrap()
}

#[test]
fn functional_residual_blocks_sum_their_gradients() {
    check("residual", residual_block(5, 6, 4).into_sequential(), 6, 4);
    check(
        "residual T=1",
        residual_block(1, 3, 2).into_sequential(),
        3,
        5,
    );
    // x + tanh(Dense(x)): the Dense turns its output's gradient into its own in place, which
    // must not reach the gradient the Add passes to x.
    let input = Input::new(&[3]);
    let x = Embedding::new(4, 5).call(&input);
    let y = x.add(&Dense::new(5).activation(Activation::Tanh).call(&x));
    let model = Model::new(&input, &Dense::new(4).call(&y)).unwrap();
    check("residual around tanh", model.into_sequential(), 4, 6);
}

/// `Embedding → MultiHeadAttention → Dense`: the attention's input gradient flows back to
/// the table. Head dimensions that are multiples of 4 take the vec4 kernels.
fn attention(
    t: usize,
    heads: usize,
    key_dim: usize,
    value_dim: usize,
    causal: bool,
    bias: bool,
) -> Sequential {
    Sequential::with_input_shape(&[t])
        .add(Embedding::new(5, 3))
        .add(
            MultiHeadAttention::new(heads, key_dim)
                .value_dim(value_dim)
                .use_bias(bias)
                .use_causal_mask(causal),
        )
        .add(Dense::new(4))
}

#[test]
fn multi_head_attention_with_and_without_the_causal_mask() {
    for (t, heads, key_dim, value_dim, causal, bias, seed) in [
        (5, 1, 2, 2, true, true, 10),
        (5, 1, 2, 2, false, true, 11),
        (7, 3, 2, 3, true, true, 12),
        (3, 2, 3, 1, false, false, 13),
        (1, 2, 2, 2, true, true, 14),
        // Head dimensions of whole vec4s: the kernels that read four floats at a time.
        (5, 2, 4, 8, true, true, 15),
        (6, 1, 8, 4, false, false, 16),
    ] {
        let name = format!("attention T={t} heads={heads} causal={causal} bias={bias}");
        check(
            &name,
            attention(t, heads, key_dim, value_dim, causal, bias),
            5,
            seed,
        );
    }
}

/// A GPT block: token and position embeddings, pre-norm causal self-attention and a GELU MLP,
/// each with its residual connection, then the logits.
pub fn gpt_block(t: usize, vocab: usize, width: usize, heads: usize) -> Model {
    let input = Input::new(&[t]);
    let tokens = Embedding::new(vocab, width).call(&input);
    // A table longer than the sequences: its last rows get no gradient.
    let positions = PositionEmbedding::new(t + 2).call(&tokens);
    let x = tokens.add(&positions);
    let h = LayerNormalization::new().call(&x);
    let h = MultiHeadAttention::new(heads, width / heads)
        .use_causal_mask(true)
        .call(&h);
    let x = x.add(&h);
    let h = LayerNormalization::new().call(&x);
    let h = Dense::new(2 * width).activation(Activation::Gelu).call(&h);
    let h = Dense::new(width).call(&h);
    let x = x.add(&h);
    let logits = Dense::new(vocab).call(&LayerNormalization::new().call(&x));
    Model::new(&input, &logits).unwrap()
}

#[test]
fn a_gpt_block_end_to_end() {
    check("gpt block", gpt_block(5, 7, 4, 2).into_sequential(), 7, 20);
}

/// A Dense layer called twice (Keras's shared layer) and an attention called on two tensors
/// in turn: one set of weights each, trained by the sum of their calls' gradients.
fn shared_layers() -> Model {
    let input = Input::new(&[5]);
    let x = Embedding::new(6, 4).call(&input);
    let dense = Shared::new(Dense::new(4).activation(Activation::Tanh));
    let attention = Shared::new(MultiHeadAttention::new(2, 2).use_causal_mask(true));
    let a = dense.call(&x);
    let b = dense.call(&attention.call(&a));
    let c = attention.call(&b.add(&x));
    let logits = Dense::new(6).call(&c);
    Model::new(&input, &logits).unwrap()
}

#[test]
fn a_shared_layer_trains_one_set_of_weights() {
    let model = shared_layers();
    let layers = model.layers();
    // Embedding, Dense, MultiHeadAttention, Dense (shares 1), Add, MultiHeadAttention (shares
    // 2), Dense.
    let shares: Vec<Option<usize>> = layers.iter().map(|l| l.shares()).collect();
    assert_eq!(shares, [None, None, None, Some(1), None, Some(2), None]);
    check("shared layers", model.into_sequential(), 6, 30);
}

#[test]
fn a_graph_is_laid_out_after_what_it_reads() {
    let model = residual_block(3, 4, 2);
    let layers = model.layers();
    // Embedding, LayerNormalization, Dense, Dense, Add, Add, Dense.
    assert_eq!(layers.len(), 7);
    assert_eq!(layers[0].sources(), &[0]);
    assert_eq!(layers[4].sources(), &[1, 4]);
    assert_eq!(layers[5].sources(), &[5, 1, 4]);
    // The same model twice has one fingerprint; a different wiring another.
    let record = model.record().unwrap().unwrap();
    assert_eq!(record.model().specs().unwrap(), model.specs().unwrap());
}

#[test]
fn ids_out_of_the_table_and_bad_graphs_are_refused() {
    let mut model = Sequential::with_input_shape(&[2])
        .add(Embedding::new(3, 2))
        .add(Dense::new(3));
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    for bad in [3.0, -1.0, 0.5] {
        let data = Dataset::new(
            vec![0.0, bad],
            2,
            Targets::Tokens {
                labels: vec![0, 1],
                positions: 2,
            },
        )
        .unwrap();
        let err = model.check_data(&data).unwrap_err().to_string();
        assert!(
            err.contains("input 1 of sample 0") && err.contains("[0, 3)"),
            "{err}"
        );
    }
    // Labels past the classes per token.
    let data = Dataset::new(
        vec![0.0, 1.0],
        2,
        Targets::Tokens {
            labels: vec![0, 3],
            positions: 2,
        },
    )
    .unwrap();
    let err = model.check_data(&data).unwrap_err().to_string();
    assert!(err.contains('3'), "{err}");

    // Add of tensors of different shapes, an Embedding not on the input.
    let input = Input::new(&[4]);
    let a = Embedding::new(5, 3).call(&input);
    let b = Dense::new(2).call(&a);
    let err = Model::new(&input, &a.add(&b)).unwrap_err().to_string();
    assert!(err.contains("shapes differ"), "{err}");
    let c = Embedding::new(5, 3).call(&Dense::new(4).call(&input));
    let err = Model::new(&input, &c).unwrap_err().to_string();
    assert!(err.contains("must read the model's input"), "{err}");
    let other = Input::new(&[4]);
    let err = Model::new(&input, &Dense::new(2).call(&other))
        .unwrap_err()
        .to_string();
    assert!(err.contains("one input"), "{err}");
}
