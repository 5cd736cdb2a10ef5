//! A small GPT learns a task with a measurable answer on any adapter (lavapipe included):
//! reversing five-digit strings, `12345=54321`, trained as next-character prediction with the
//! cross-entropy over every position; exact-match accuracy on held-out strings, read from the
//! logits at the answer's positions (all five right, which is what greedy decoding would write).

mod common;

use common::rng::Rng;
use wgfit::{
    Activation, Adam, Call, Dataset, Dense, Embedding, FitOptions, Input, LayerNormalization, Loss,
    Model, MultiHeadAttention, PositionEmbedding, Targets,
};

/// Digits 0..9 and `=` (10).
const VOCABULARY: usize = 11;
const DIGITS: usize = 5;
/// `ddddd=rrrrr` less its last character.
const T: usize = 2 * DIGITS;

/// `n` strings: inputs (ids) and labels (the next character of every position).
fn strings(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<u32>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let digits: Vec<u32> = (0..DIGITS).map(|_| rng.below(10) as u32).collect();
        let mut s = digits.clone();
        s.push(10);
        s.extend(digits.iter().rev());
        x.extend(s[..T].iter().map(|&d| d as f32));
        y.extend(&s[1..]);
    }
    (x, y)
}

fn gpt(width: usize, heads: usize, blocks: usize) -> Model {
    let input = Input::new(&[T]);
    let tokens = Embedding::new(VOCABULARY, width).call(&input);
    let mut x = tokens.add(&PositionEmbedding::new(T).call(&tokens));
    for _ in 0..blocks {
        let h = LayerNormalization::new().call(&x);
        let h = MultiHeadAttention::new(heads, width / heads)
            .use_causal_mask(true)
            .call(&h);
        x = x.add(&h);
        let h = LayerNormalization::new().call(&x);
        let h = Dense::new(2 * width).activation(Activation::Gelu).call(&h);
        x = x.add(&Dense::new(width).call(&h));
    }
    let logits = Dense::new(VOCABULARY).call(&LayerNormalization::new().call(&x));
    Model::new(&input, &logits).unwrap()
}

#[test]
fn a_small_gpt_learns_to_reverse_digit_strings() {
    let mut rng = Rng(7);
    let (x, y) = strings(&mut rng, 4096);
    let data = Dataset::new(
        x,
        T,
        Targets::Tokens {
            labels: y,
            positions: T,
        },
    )
    .unwrap();
    let mut model = gpt(32, 2, 2).into_sequential().seed(3);
    model.compile(Loss::CrossEntropy, Adam::new(3e-3)).unwrap();
    let options = FitOptions {
        epochs: 12,
        batch_size: 64,
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut []).unwrap();
    let last = history.iter().last().unwrap();
    println!("after {} epochs: {last:?}", history.len());

    let (x, y) = strings(&mut Rng(99), 512);
    let logits = model.predict(&x, 128).unwrap();
    let exact = (0..512)
        .filter(|&s| {
            (T - DIGITS..T).all(|p| {
                let row = &logits[(s * T + p) * VOCABULARY..][..VOCABULARY];
                let best = (0..VOCABULARY).fold(0, |b, i| if row[i] > row[b] { i } else { b });
                best as u32 == y[s * T + p]
            })
        })
        .count();
    let accuracy = exact as f64 / 512.0;
    println!("exact-match accuracy on 512 held-out strings: {accuracy:.4}");
    assert!(accuracy >= 0.99, "exact match {accuracy}");
}
