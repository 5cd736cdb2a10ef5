//! C1 (bench/WORKLOADS.md) on Burn's wgpu backend: the Keras example "Simple MNIST convnet"
//! (Conv2D 32 3x3 relu -> MaxPool 2 -> Conv2D 64 3x3 relu -> MaxPool 2 -> Flatten ->
//! Dropout 0.5 -> Dense 10), cross-entropy, Adam 1e-3, batch 128, 16 steps an epoch on
//! 2 048 generated 28x28x1 images held on the device. Prints steps/s of each timed epoch
//! (after one untimed epoch), each epoch ended by reading its last loss back.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;

const SAMPLES: usize = 2048;
const BATCH: usize = 128;

#[derive(Module, Debug)]
struct Net {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    dropout: Dropout,
    dense: Linear,
    relu: Relu,
}

impl Net {
    fn new(device: &Device) -> Self {
        Net {
            conv1: Conv2dConfig::new([1, 32], [3, 3]).init(device),
            conv2: Conv2dConfig::new([32, 64], [3, 3]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            dropout: DropoutConfig::new(0.5).init(),
            dense: LinearConfig::new(5 * 5 * 64, 10).init(device),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.relu.forward(self.conv1.forward(x)));
        let x = self.pool.forward(self.relu.forward(self.conv2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        self.dense.forward(self.dropout.forward(x))
    }
}

fn main() {
    let epochs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let device = Device::wgpu(DeviceKind::Cpu).autodiff();
    let x = Tensor::<4>::random([SAMPLES, 1, 28, 28], Distribution::Uniform(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..SAMPLES as i64).map(|i| (i * 7919) % 10).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [SAMPLES]), &device);
    let mut model = Net::new(&device);
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let steps = SAMPLES / BATCH;
    for epoch in 0..=epochs {
        let started = Instant::now();
        let mut last = None;
        for step in 0..steps {
            let xb = x.clone().slice(s![step * BATCH..(step + 1) * BATCH]);
            let yb = y.clone().slice(s![step * BATCH..(step + 1) * BATCH]);
            let loss = loss_fn.forward(model.forward(xb), yb);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model, grads);
            last = Some(loss);
        }
        let loss = last.map(|l| l.into_data().try_to_vec::<f32>().unwrap_or_default());
        let seconds = started.elapsed().as_secs_f64();
        let label = if epoch == 0 { "warmup" } else { "timed" };
        println!(
            "{label} epoch {epoch}: {seconds:.3} s, {:.3} steps/s, loss {loss:?}",
            steps as f64 / seconds
        );
    }
}
