//! Sequence data through the rest of training: a GPT on data streamed from host memory ends
//! with the bits of the same run on resident data, with gradient accumulation, a schedule
//! and clipping around AdamW.

mod common;

use common::rng::Rng;
use wgfit::{
    Activation, Adam, Call, Clipping, Configured, DataOn, Dataset, Dense, Dropout, Embedding,
    FitOptions, Input, LayerNormalization, LearningRateSchedule, Loss, Model, MultiHeadAttention,
    PositionEmbedding, Sequential, Targets,
};

const T: usize = 7;
const VOCABULARY: usize = 9;

fn gpt() -> Sequential {
    let input = Input::new(&[T]);
    let tokens = Embedding::new(VOCABULARY, 8).call(&input);
    let x = tokens.add(&PositionEmbedding::new(T).call(&tokens));
    let h = MultiHeadAttention::new(2, 4)
        .use_causal_mask(true)
        .call(&LayerNormalization::new().call(&x));
    let x = x.add(&Dropout::new(0.2).call(&h));
    let h = Dense::new(16)
        .activation(Activation::GeluApproximate)
        .call(&x);
    let x = x.add(&Dense::new(8).call(&h));
    let logits = Dense::new(VOCABULARY).call(&x);
    let mut m = Model::new(&input, &logits)
        .unwrap()
        .into_sequential()
        .seed(9);
    let schedule = LearningRateSchedule::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 20,
        alpha: 0.0,
        warmup_target: Some(0.01),
        warmup_steps: 4,
    };
    let optimizer = Configured::new(Adam::adamw(0.01).exclude_from_weight_decay(&["bias"]))
        .schedule(schedule)
        .clipping(Clipping::GlobalNorm(0.5))
        .accumulate(2);
    m.compile(Loss::CrossEntropy, optimizer).unwrap();
    m
}

fn data() -> Dataset {
    let mut rng = Rng(17);
    let n = 61;
    let x: Vec<f32> = (0..n * T).map(|_| rng.below(VOCABULARY) as f32).collect();
    let labels: Vec<u32> = (0..n * T).map(|_| rng.below(VOCABULARY) as u32).collect();
    Dataset::new(
        x,
        T,
        Targets::Tokens {
            labels,
            positions: T,
        },
    )
    .unwrap()
}

fn train(on: DataOn) -> Vec<Vec<u32>> {
    let mut model = gpt();
    let options = FitOptions {
        epochs: 3,
        batch_size: 8,
        data_on: on,
        validation_split: Some(0.2),
        ..Default::default()
    };
    let history = model.fit(&data(), options, &mut []).unwrap();
    assert!(history[2].logs.contains_key("val_accuracy"));
    model
        .parameters()
        .unwrap()
        .iter()
        .map(|t| t.data.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn a_gpt_on_streamed_sequences_ends_with_the_resident_runs_bits() {
    assert_eq!(train(DataOn::Host), train(DataOn::Gpu));
}
