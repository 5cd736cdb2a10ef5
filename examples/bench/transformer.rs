//! T1: a GPT of 4 blocks, embedding 128, 4 heads, T = 64, batch 32, on generated ids:
//! tokens/s of training, and each launch of one step timed on its own (the attention kernels
//! among them).

use super::clock::{launches_by_name, second_epoch_seconds};
use super::training::splitmix64;
use super::{Bench, BenchResult, median};
use serde_json::json;
use wgfit::{
    Activation, Adam, Call, Dataset, Dense, Embedding, Input, LayerNormalization, Loss, Model,
    MultiHeadAttention, PositionEmbedding, Sequential, Targets,
};

const VOCABULARY: usize = 65;
const T: usize = 64;
const WIDTH: usize = 128;
const HEADS: usize = 4;
const BLOCKS: usize = 4;
const BATCH: usize = 32;
/// 16 steps an epoch.
const SAMPLES: usize = 16 * BATCH;

/// The GPT of `tests/keras`' shape: pre-norm blocks of causal attention and a GELU MLP
/// (4 × wide), each with its residual connection, a final LayerNormalization and the logits.
fn model() -> Result<Sequential, Box<dyn std::error::Error>> {
    let input = Input::new(&[T]);
    let tokens = Embedding::new(VOCABULARY, WIDTH).call(&input);
    let mut x = tokens.add(&PositionEmbedding::new(T).call(&tokens));
    for _ in 0..BLOCKS {
        let h = LayerNormalization::new().call(&x);
        let h = MultiHeadAttention::new(HEADS, WIDTH / HEADS)
            .use_causal_mask(true)
            .call(&h);
        x = x.add(&h);
        let h = LayerNormalization::new().call(&x);
        let h = Dense::new(4 * WIDTH).activation(Activation::Gelu).call(&h);
        x = x.add(&Dense::new(WIDTH).call(&h));
    }
    let logits = Dense::new(VOCABULARY).call(&LayerNormalization::new().call(&x));
    let mut m = Model::new(&input, &logits)?.into_sequential().seed(42);
    m.compile(Loss::CrossEntropy, Adam::new(0.001))?;
    Ok(m)
}

/// Ids from W1's generator (seed 43), each sequence's labels its ids one further.
fn data() -> Result<Dataset, Box<dyn std::error::Error>> {
    let ids: Vec<u32> = (0..(SAMPLES * T + 1) as u64)
        .map(|i| (splitmix64(43, i) >> 32) as u32 % VOCABULARY as u32)
        .collect();
    let x: Vec<f32> = ids[..SAMPLES * T].iter().map(|&i| i as f32).collect();
    let targets = Targets::Tokens {
        labels: ids[1..].to_vec(),
        positions: T,
    };
    Ok(Dataset::new(x, T, targets)?)
}

pub fn bench_t1(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = data()?;
    let secs = second_epoch_seconds(model, &data, BATCH, reps)?;
    let t = median(&secs);
    let tokens = (SAMPLES * T) as f64;
    let parameters: usize = model()?.parameters()?.iter().map(|p| p.data.len()).sum();
    bench.report(
        "T1",
        "tokens/s",
        tokens / t,
        "tokens/s",
        json!({"timed_seconds": secs, "tokens_per_epoch": tokens, "batch": BATCH,
               "parameters": parameters}),
    );
    println!("  {parameters} parameters");
    let mut m = model()?;
    let profile = m.profile_step(&data, BATCH, reps.max(1) * 2)?;
    let mut launches = launches_by_name(&profile);
    launches.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (name, ms) in launches.iter().take(12) {
        bench.report("T1", name.clone(), *ms, "ms", json!({}));
        println!("  {name}: {ms:.2} ms");
    }
    bench.report("T1", "whole step", profile.step_ms, "ms", json!({}));
    println!("  whole step: {:.1} ms", profile.step_ms);
    Ok(())
}
