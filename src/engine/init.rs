//! The first weights of a model: Glorot-uniform weights and zero biases, drawn from the model
//! seed (Keras's default initializers).

use crate::layer::{LayerKind, LayerSpec};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A layer's parameter tensors.
type LayerInit = Vec<Vec<f32>>;

/// Initial values of every parameter tensor, in the layers' tensor order ([`LayerSpec::tensors`]):
/// [`glorot_uniform`] weights and zero biases. Layers are drawn in parallel (each from its own
/// stream, so the values do not depend on it).
pub(crate) fn glorot_layers(seed: u64, specs: &[LayerSpec]) -> Vec<Vec<f32>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<LayerInit> = vec![Vec::new(); specs.len()];
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
                    *slot = layer_init(seed, i, &specs[i]);
                }
            });
        }
    });
    out.into_iter().flatten().collect()
}

/// One layer's tensors, trainable then state: the weight from [`glorot_uniform`] with
/// Keras's fans (Dense: its input and output widths; Conv2D `[kh, kw, C, F]`: `kh·kw·C` and
/// `kh·kw·F`; MultiHeadAttention's kernels likewise, the last two axes times the others),
/// Embedding tables uniform in ±0.05 (Keras's default), biases, `beta` and `moving_mean`
/// zero, `gamma` and `moving_variance` one.
fn layer_init(seed: u64, layer: usize, spec: &LayerSpec) -> LayerInit {
    if spec.shares.is_some() {
        // A second call of a shared layer: its owner's tensors.
        return Vec::new();
    }
    spec.tensors()
        .into_iter()
        .chain(spec.state_tensors())
        .enumerate()
        .map(|(k, (name, shape))| {
            let count: usize = shape.iter().product();
            // Each tensor its own stream: the layer's, and the tensor's place above it (0 for
            // the first, so a layer of one weight draws from the layer's stream).
            let stream = layer as u64 | (k as u64) << 32;
            match name {
                "weight" => {}
                name if name.ends_with("_kernel") => {}
                // keras_hub's PositionEmbedding: Glorot-uniform.
                "position_embeddings" => {}
                // Keras's Embedding default: RandomUniform(-0.05, 0.05).
                "embeddings" => return uniform(seed, stream, count, 0.05),
                // BatchNormalization's scale and variance start at one (Keras's Ones).
                "gamma" | "moving_variance" => return vec![1.0; count],
                _ => return vec![0.0; count],
            }
            let (fan_in, fan_out) = match spec.kind {
                // Dense keeps its weight as [out, in].
                LayerKind::Dense => (shape[1], shape[0]),
                // Keras's fans: the last two axes times the product of the others.
                _ => {
                    let (lead, last_two) = shape.split_at(shape.len() - 2);
                    let receptive: usize = lead.iter().product();
                    (last_two[0] * receptive, last_two[1] * receptive)
                }
            };
            glorot_uniform(seed, stream, count, fan_in + fan_out)
        })
        .collect()
}

/// `count` Glorot-uniform weights `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`, drawn from
/// ChaCha8 with the model seed and `stream` (the layer index, and the tensor's place in the
/// layer above 32 bits), so each tensor's draw is independent of the others' sizes.
pub(crate) fn glorot_uniform(seed: u64, stream: u64, count: usize, fans: usize) -> Vec<f32> {
    uniform(seed, stream, count, (6.0 / fans as f64).sqrt() as f32)
}

/// `count` draws of `U(-limit, limit)` from ChaCha8 with the model seed and `stream`.
fn uniform(seed: u64, stream: u64, count: usize, limit: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    (0..count)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * unit - 1.0) * limit
        })
        .collect()
}
