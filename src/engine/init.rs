//! The first weights of a model: Glorot-uniform weights and zero biases, drawn from the model
//! seed (Keras's default initializers).

use crate::layer::LayerSpec;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A layer's weights and biases.
type LayerInit = (Vec<f32>, Vec<f32>);

/// Initial `(weights, biases)` of every layer: [`glorot_uniform`] weights and zero biases.
/// Layers are drawn in parallel (each from its own stream, so the values do not depend on it).
pub(crate) fn glorot_layers(seed: u64, shapes: &[LayerSpec]) -> Vec<LayerInit> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<LayerInit> = vec![Default::default(); shapes.len()];
    std::thread::scope(|scope| {
        // Thread t draws layers t, t + threads, ...
        let mut slots: Vec<Vec<(usize, &mut LayerInit)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (i, slot) in out.iter_mut().enumerate() {
            slots[i % threads].push((i, slot));
        }
        for mine in slots {
            scope.spawn(move || {
                for (i, slot) in mine {
                    let LayerSpec {
                        inputs, outputs, ..
                    } = shapes[i];
                    *slot = (glorot_uniform(seed, i, inputs, outputs), vec![0.0; outputs]);
                }
            });
        }
    });
    out
}

/// Glorot-uniform weights `U(-a, a)`, `a = sqrt(6 / (in + out))`, drawn from ChaCha8 with the
/// model seed and the layer index as the stream, so each layer's draw is independent of the
/// others' sizes.
pub(crate) fn glorot_uniform(seed: u64, layer: usize, inputs: usize, outputs: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(layer as u64);
    let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
    (0..inputs * outputs)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * unit - 1.0) * limit
        })
        .collect()
}
