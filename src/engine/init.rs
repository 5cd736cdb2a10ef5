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
/// `kh·kw·F`), biases, `beta` and `moving_mean` zero, `gamma` and `moving_variance` one.
fn layer_init(seed: u64, layer: usize, spec: &LayerSpec) -> LayerInit {
    spec.tensors()
        .into_iter()
        .chain(spec.state_tensors())
        .map(|(name, shape)| {
            let count: usize = shape.iter().product();
            match name {
                "weight" => {}
                // BatchNormalization's scale and variance start at one (Keras's Ones).
                "gamma" | "moving_variance" => return vec![1.0; count],
                _ => return vec![0.0; count],
            }
            let (fan_in, fan_out) = match spec.kind {
                LayerKind::Conv2D { .. } => {
                    let receptive = shape[0] * shape[1];
                    (receptive * shape[2], receptive * shape[3])
                }
                _ => (shape[1], shape[0]),
            };
            glorot_uniform(seed, layer, count, fan_in + fan_out)
        })
        .collect()
}

/// `count` Glorot-uniform weights `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`, drawn from
/// ChaCha8 with the model seed and the layer index as the stream, so each layer's draw is
/// independent of the others' sizes.
pub(crate) fn glorot_uniform(seed: u64, layer: usize, count: usize, fans: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(layer as u64);
    let limit = (6.0 / fans as f64).sqrt() as f32;
    (0..count)
        .map(|_| {
            let unit = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * unit - 1.0) * limit
        })
        .collect()
}
