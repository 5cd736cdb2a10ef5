//! Text from a sequence model: [`Sequential::generate`] continues a prompt one token at a
//! time, each from the model's logits at the last position it was given.

use super::Sequential;
use crate::error::{Error, Result};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// How [`Sequential::generate`] picks each next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token (the first, on a tie).
    Greedy,
    /// A draw from `softmax(logits / temperature)`, from a ChaCha8 stream of `seed`: the same
    /// prompt, model, temperature and seed give the same text.
    Temperature {
        /// Above 0: lower is more conservative, 1 the model's own distribution.
        temperature: f32,
        /// The draws' seed.
        seed: u64,
    },
}

impl Sequential {
    /// `tokens` ids continuing `prompt`, for a model of `[T]` ids to `[T, V]` logits (causal,
    /// as a GPT): the context is the last `T` ids so far, placed at the start of the window
    /// (the rest filled with id 0, which a causal model does not look at before the last
    /// context position), and the next id comes from the logits at the context's last
    /// position. Fails on an empty prompt, an id of `V` or more, or a model of another shape.
    pub fn generate(&self, prompt: &[u32], tokens: usize, sampling: Sampling) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(tokens.min(1 << 16));
        self.generate_each(prompt, tokens, sampling, |id| {
            out.push(id);
            true
        })?;
        Ok(out)
    }

    /// [`Sequential::generate`], handing each id to `each` as it is made (to print it, say)
    /// instead of collecting them: memory stays that of the context however many are asked
    /// for. Stops early when `each` returns false.
    pub fn generate_each(
        &self,
        prompt: &[u32],
        tokens: usize,
        sampling: Sampling,
        mut each: impl FnMut(u32) -> bool,
    ) -> Result<()> {
        let t = match self.input_shape() {
            [t] => *t,
            other => {
                return Err(Error::config(
                    "generate",
                    format!("the model takes inputs of shape {other:?}, not a sequence [T] of ids"),
                ));
            }
        };
        let vocabulary = self.outputs() / t;
        if vocabulary * t != self.outputs() || vocabulary == 0 {
            return Err(Error::config(
                "generate",
                format!(
                    "the model's {} outputs are not logits [T = {t}, vocabulary] per position",
                    self.outputs()
                ),
            ));
        }
        if let Sampling::Temperature { temperature, .. } = sampling
            && !(temperature.is_finite() && temperature > 0.0)
        {
            return Err(Error::config(
                "temperature",
                format!("{temperature}; give a finite temperature above 0"),
            ));
        }
        if prompt.is_empty() {
            return Err(Error::config("prompt", "empty; give at least one token"));
        }
        if let Some(bad) = prompt.iter().find(|&&id| id as usize >= vocabulary) {
            return Err(Error::config(
                "prompt",
                format!("id {bad} is past the model's vocabulary of {vocabulary}"),
            ));
        }
        let mut rng = match sampling {
            Sampling::Temperature { seed, .. } => Some(ChaCha8Rng::seed_from_u64(seed)),
            Sampling::Greedy => None,
        };
        let mut ids = prompt.to_vec();
        for _ in 0..tokens {
            if ids.len() >= 2 * t {
                // Only the last T ids are ever read again.
                ids.drain(..ids.len() - t);
            }
            let context = &ids[ids.len().saturating_sub(t)..];
            let mut window = vec![0.0f32; t];
            for (w, &id) in window.iter_mut().zip(context) {
                *w = id as f32;
            }
            let logits = self.predict(&window, 1)?;
            let last = (context.len() - 1) * vocabulary;
            let row = &logits[last..last + vocabulary];
            let next = match (&mut rng, sampling) {
                (Some(rng), Sampling::Temperature { temperature, .. }) => {
                    draw(row, temperature, rng)
                }
                _ => first_largest(row),
            };
            ids.push(next);
            if !each(next) {
                break;
            }
        }
        Ok(())
    }
}

fn first_largest(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// A draw from `softmax(row / temperature)`, in f64.
fn draw(row: &[f32], temperature: f32, rng: &mut ChaCha8Rng) -> u32 {
    let scaled: Vec<f64> = row.iter().map(|&v| v as f64 / temperature as f64).collect();
    let m = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scaled.iter().map(|v| (v - m).exp()).collect();
    let total: f64 = weights.iter().sum();
    // A uniform draw in [0, total): 53 random bits.
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    let mut sum = 0.0;
    for (i, w) in weights.iter().enumerate() {
        sum += w;
        if u < sum {
            return i as u32;
        }
    }
    (weights.len() - 1) as u32
}
