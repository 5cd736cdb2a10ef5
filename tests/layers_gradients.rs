//! Every layer kind's forward pass against a CPU reference in f64, and its backward pass
//! against central finite differences of that reference, on small awkward shapes (odd sizes,
//! stride 2, `same` and `valid`, dilation, no bias).
//!
//! Each case is `Conv2D(2, 1) → the layer(s) under test → Flatten → Dense(3)` with MSE against
//! float targets, 3 samples in one batch: the 1×1 convolution in front needs the tested
//! layer's input gradient, so that is checked too. The GPU's gradient is read through one
//! SGD step with learning rate 1 (g = before − after).

mod common;

use common::finite_differences::wrong_entries;
use common::layers_reference::{forward, forward_in};
use common::rng::Rng;
use std::sync::{Arc, OnceLock};
use wgfit::{
    Activation, ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dataset, Dense,
    Dropout, FitOptions, Flatten, GlobalAveragePooling2D, Gpu, LayerNormalization, Loss,
    MaxPooling2D, Padding, Reshape, Sequential, Sgd,
};

const ROWS: usize = 3;
const OUTPUTS: usize = 3;

fn model(input: &[usize], middle: impl FnOnce(Sequential) -> Sequential) -> Sequential {
    let m = Sequential::with_input_shape(input).add(Conv2D::new(2, 1));
    middle(m).add(Flatten).add(Dense::new(OUTPUTS))
}

/// The MSE of the CPU forward pass of a training step.
fn cpu_loss(specs: &[wgfit::LayerSpec], p: &[Vec<f64>], x: &[f64], t: &[f64]) -> f64 {
    let y = forward_in(specs, p, x, ROWS, true);
    y.iter().zip(t).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / (ROWS * OUTPUTS) as f64
}

fn check(name: &str, model: Sequential, seed: u64) {
    check_on(Gpu::shared().unwrap(), name, model, seed);
}

/// `check` on the GPU context `gpu`.
fn check_on(gpu: Arc<Gpu>, name: &str, mut model: Sequential, seed: u64) {
    let mut rng = Rng(seed);
    let inputs = model.inputs();
    let x = rng.vec(ROWS * inputs, -1.0, 1.0);
    let t = rng.vec(ROWS * OUTPUTS, -1.0, 1.0);
    let data = Dataset::regression(x.clone(), inputs, t.clone(), OUTPUTS).unwrap();
    model
        .compile_on(gpu, Loss::MeanSquaredError, Sgd::new(1.0))
        .unwrap();
    let specs = model.specs().unwrap();
    let mut before = model.parameters().unwrap();
    for p in &mut before {
        // A variance must be positive.
        let lo = if p.name.ends_with("moving_variance") {
            0.5
        } else {
            -1.0
        };
        p.data = rng.vec(p.data.len(), lo, 1.0);
    }
    model.set_parameters(&before).unwrap();
    let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let base: Vec<Vec<f64>> = before.iter().map(|p| f64s(&p.data)).collect();
    let (x64, t64) = (f64s(&x), f64s(&t));

    // Forward: predict against the CPU.
    let y = model.predict(&x, ROWS).unwrap();
    let reference = forward(&specs, &base, &x64, ROWS);
    for (i, (&g, &r)) in y.iter().zip(&reference).enumerate() {
        assert!(
            (g as f64 - r).abs() <= 1e-5 * r.abs() + 1e-5,
            "{name}: output {i} is {g}, the CPU's {r}"
        );
    }

    // Backward: one SGD step with lr = 1 against central differences of the CPU loss.
    let options = FitOptions {
        epochs: 1,
        batch_size: ROWS,
        shuffle: false,
        ..Default::default()
    };
    model.fit(&data, options, &mut []).unwrap();
    let after = model.parameters().unwrap();
    let loss = |p: &[Vec<f64>]| cpu_loss(&specs, p, &x64, &t64);
    // Moving statistics are state, not parameters: see
    // batch_normalization_updates_its_moving_statistics.
    let failures = wrong_entries(&before, &after, &base, loss, |n| n.contains(".moving_"));
    assert!(
        failures.is_empty(),
        "{name}: {} gradient entries wrong:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Valid 3×3 ReLU on 5×7×2.
fn valid_3x3_relu() -> Sequential {
    model(&[5, 7, 2], |m| {
        m.add(Conv2D::new(3, 3).activation(Activation::Relu))
    })
}

/// Same 2×3 stride 2 tanh on 6×5×3.
fn same_2x3_stride_2_tanh() -> Sequential {
    model(&[6, 5, 3], |m| {
        m.add(
            Conv2D::new(4, 1)
                .kernel_size([2, 3])
                .strides([2, 2])
                .padding(Padding::Same)
                .activation(Activation::Tanh),
        )
    })
}

/// Valid 3×2 dilated 2×1, sigmoid, no bias, on 7×6×1.
fn dilated_without_bias() -> Sequential {
    model(&[7, 6, 1], |m| {
        m.add(
            Conv2D::new(2, 1)
                .kernel_size([3, 2])
                .dilation_rate([2, 1])
                .use_bias(false)
                .activation(Activation::Sigmoid),
        )
    })
}

/// 3 × 38 × 38 = 4 332 output positions: the kernel gradient is summed over two chunks of
/// positions (4 096 and 236).
fn over_two_chunks_of_positions() -> Sequential {
    model(&[40, 40, 1], |m| {
        m.add(Conv2D::new(2, 3).activation(Activation::Tanh))
            .add(MaxPooling2D::new([4, 4]))
    })
}

#[test]
fn conv2d_valid_3x3_relu() {
    check("conv2d valid 3x3 relu", valid_3x3_relu(), 1);
}

#[test]
fn conv2d_same_stride_2_tanh() {
    check("conv2d same 2x3 stride 2 tanh", same_2x3_stride_2_tanh(), 2);
}

#[test]
fn conv2d_dilated_without_bias() {
    check("conv2d dilated 3x2 without bias", dilated_without_bias(), 3);
}

#[test]
fn conv2d_same_stride_2_on_odd_sizes() {
    let m = model(&[5, 5, 1], |m| {
        m.add(Conv2D::new(3, 3).strides([2, 2]).padding(Padding::Same))
    });
    check("conv2d same 3x3 stride 2 on 5x5", m, 4);
}

#[test]
fn conv2d_over_two_chunks_of_positions() {
    check(
        "conv2d over two chunks of positions",
        over_two_chunks_of_positions(),
        15,
    );
}

/// `model` with a front convolution of `front` filters: with channels and filters multiples
/// of 4, the tested convolution runs as implicit GEMMs where the adapter has the subgroup
/// matmul kernels (lavapipe), which the step's launches show (no `im2col`).
fn implicit_case(
    name: &str,
    input: &[usize],
    front: usize,
    tested: impl FnOnce(Sequential) -> Sequential,
    seed: u64,
) {
    let m = Sequential::with_input_shape(input).add(Conv2D::new(front, 1));
    let mut m = tested(m).add(Flatten).add(Dense::new(OUTPUTS));
    m.compile(Loss::MeanSquaredError, Sgd::new(1.0)).unwrap();
    let inputs = m.inputs();
    let data = Dataset::regression(
        vec![0.5; ROWS * inputs],
        inputs,
        vec![0.0; ROWS * OUTPUTS],
        OUTPUTS,
    )
    .unwrap();
    let profile = m.profile_step(&data, ROWS, 1).unwrap();
    let names: Vec<&str> = profile.launches.iter().map(|(n, _)| n.as_str()).collect();
    if m.adapter().unwrap().device_type == "Cpu" {
        assert!(
            !names.iter().any(|n| n.starts_with("conv2d1 im2col")),
            "{name}: the tested convolution built an im2col matrix: {names:?}"
        );
    }
    check(name, m, seed);
}

#[test]
fn implicit_conv2d_valid_3x3_relu() {
    implicit_case(
        "implicit conv2d valid 3x3 relu",
        &[5, 7, 2],
        4,
        |m| m.add(Conv2D::new(8, 3).activation(Activation::Relu)),
        21,
    );
}

#[test]
fn implicit_conv2d_same_2x3_stride_2_tanh_on_odd_sizes() {
    implicit_case(
        "implicit conv2d same 2x3 stride 2 tanh",
        &[7, 5, 3],
        12,
        |m| {
            m.add(
                Conv2D::new(4, 1)
                    .kernel_size([2, 3])
                    .strides([2, 2])
                    .padding(Padding::Same)
                    .activation(Activation::Tanh),
            )
        },
        22,
    );
}

#[test]
fn implicit_conv2d_dilated_same_without_bias() {
    implicit_case(
        "implicit conv2d dilated 3x2 same without bias",
        &[7, 6, 1],
        4,
        |m| {
            m.add(
                Conv2D::new(4, 1)
                    .kernel_size([3, 2])
                    .dilation_rate([2, 1])
                    .padding(Padding::Same)
                    .use_bias(false)
                    .activation(Activation::Sigmoid),
            )
        },
        23,
    );
}

/// 36 channels in: the input gradient on `conv_input_grad`, whose lanes take 8 channels
/// each (32 or fewer take `conv_input_grad_narrow`, as the other cases do).
#[test]
fn implicit_conv2d_on_36_channels() {
    implicit_case(
        "implicit conv2d on 36 channels",
        &[4, 5, 1],
        36,
        |m| m.add(Conv2D::new(4, 2).activation(Activation::Tanh)),
        25,
    );
}

/// 3 × 40 × 40 = 4 800 output positions over several 64-row blocks, the kernel gradient in
/// two chunks (4 096 and 704), channels 12: blocks of 64 rows and columns end inside.
#[test]
fn implicit_conv2d_over_two_chunks_of_positions() {
    implicit_case(
        "implicit conv2d over two chunks of positions",
        &[40, 40, 1],
        12,
        |m| {
            m.add(
                Conv2D::new(4, 3)
                    .padding(Padding::Same)
                    .activation(Activation::Tanh),
            )
            .add(MaxPooling2D::new([5, 5]))
        },
        24,
    );
}

/// A context that chooses every kernel as on a GPU, on whatever adapter this is: the
/// convolutions run as implicit GEMMs on 16×16 tiles (`conv2d_gemm_tiles.wgsl`).
fn gpu_kernels() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| Arc::new(Gpu::with_gpu_kernels().unwrap()))
        .clone()
}

/// `model`'s checks with the GPU kernels, after checking that no convolution builds an
/// im2col matrix there.
fn tiles_case(name: &str, mut model: Sequential, seed: u64) {
    model
        .compile_on(gpu_kernels(), Loss::MeanSquaredError, Sgd::new(1.0))
        .unwrap();
    let inputs = model.inputs();
    let data = Dataset::regression(
        vec![0.5; ROWS * inputs],
        inputs,
        vec![0.0; ROWS * OUTPUTS],
        OUTPUTS,
    )
    .unwrap();
    let profile = model.profile_step(&data, ROWS, 1).unwrap();
    assert!(
        !profile.launches.iter().any(|(n, _)| n.contains("im2col")),
        "{name}: a convolution built an im2col matrix: {:?}",
        profile.launches
    );
    check_on(gpu_kernels(), name, model, seed);
}

#[test]
fn tiles_conv2d_valid_3x3_relu() {
    tiles_case("tiles conv2d valid 3x3 relu", valid_3x3_relu(), 31);
}

#[test]
fn tiles_conv2d_same_2x3_stride_2_tanh() {
    tiles_case(
        "tiles conv2d same 2x3 stride 2 tanh",
        same_2x3_stride_2_tanh(),
        32,
    );
}

#[test]
fn tiles_conv2d_dilated_without_bias() {
    tiles_case(
        "tiles conv2d dilated 3x2 without bias",
        dilated_without_bias(),
        33,
    );
}

#[test]
fn tiles_conv2d_over_two_chunks_of_positions() {
    tiles_case(
        "tiles conv2d over two chunks of positions",
        over_two_chunks_of_positions(),
        34,
    );
}

#[test]
fn max_pooling_2x2_valid_on_odd_sizes() {
    let m = model(&[5, 7, 2], |m| m.add(MaxPooling2D::new([2, 2])));
    check("max pooling 2x2 valid", m, 5);
}

#[test]
fn max_pooling_3x3_stride_2_same() {
    let m = model(&[7, 6, 2], |m| {
        m.add(
            MaxPooling2D::new([3, 3])
                .strides([2, 2])
                .padding(Padding::Same),
        )
    });
    check("max pooling 3x3 stride 2 same", m, 6);
}

#[test]
fn average_pooling_same_uneven_strides() {
    let m = model(&[5, 7, 2], |m| {
        m.add(
            AveragePooling2D::new([2, 3])
                .strides([1, 2])
                .padding(Padding::Same),
        )
    });
    check("average pooling 2x3 same", m, 7);
}

#[test]
fn global_average_pooling() {
    let m = model(&[4, 5, 3], |m| m.add(GlobalAveragePooling2D));
    check("global average pooling", m, 8);
}

#[test]
fn dense_on_the_last_axis_and_an_activation_layer() {
    let m = model(&[3, 4, 2], |m| {
        m.add(Dense::new(3).activation(Activation::Tanh))
            .add(ActivationLayer(Activation::Sigmoid))
    });
    check("dense on the last axis, activation layer", m, 9);
}

#[test]
fn reshape_then_convolution() {
    let m = model(&[4, 6, 1], |m| {
        m.add(Reshape::new(&[6, 4, 2])).add(Conv2D::new(2, 3))
    });
    check("reshape then conv2d", m, 10);
}

#[test]
fn batch_normalization_after_a_convolution() {
    let m = model(&[5, 4, 2], |m| {
        m.add(Conv2D::new(3, 2).activation(Activation::Tanh))
            .add(BatchNormalization::new())
    });
    check("batch normalization of a conv2d", m, 12);
}

#[test]
fn batch_normalization_without_center_or_scale_on_flat_inputs() {
    let m = model(&[3, 3, 1], |m| {
        m.add(Flatten)
            .add(Dense::new(5).activation(Activation::Sigmoid))
            .add(BatchNormalization::new().center(false))
            .add(BatchNormalization::new().scale(false).epsilon(0.01))
    });
    check("batch normalization without center, without scale", m, 13);
}

/// One training step moves the moving statistics toward the batch's: `moving · momentum +
/// batch · (1 − momentum)`, with the biased variance over rows and positions.
#[test]
fn layer_normalization_after_a_convolution() {
    let m = model(&[3, 4, 2], |m| {
        m.add(Conv2D::new(5, 2).activation(Activation::Tanh))
            .add(LayerNormalization::new())
    });
    check("layer normalization after a convolution", m, 41);
}

#[test]
fn layer_normalization_without_center_or_scale_and_with_each() {
    for (i, (center, scale)) in [(false, false), (true, false), (false, true)]
        .into_iter()
        .enumerate()
    {
        let m = model(&[2, 3, 1], |m| {
            m.add(Flatten).add(Dense::new(7)).add(
                LayerNormalization::new()
                    .center(center)
                    .scale(scale)
                    .epsilon(0.01),
            )
        });
        check(
            &format!("layer normalization, center {center}, scale {scale}"),
            m,
            42 + i as u64,
        );
    }
}

/// One channel: every sample normalizes to 0 (its variance is 0), so only beta reaches the
/// output and the input gradient is 0.
#[test]
fn layer_normalization_of_one_channel() {
    let m = model(&[3, 2, 1], |m| {
        m.add(Conv2D::new(1, 1)).add(LayerNormalization::new())
    });
    check("layer normalization of one channel", m, 45);
}

#[test]
fn batch_normalization_updates_its_moving_statistics() {
    let mut m = Sequential::with_input_shape(&[3, 4, 2])
        .add(BatchNormalization::new().momentum(0.9))
        .add(Flatten)
        .add(Dense::new(OUTPUTS));
    m.compile(Loss::MeanSquaredError, Sgd::new(0.1)).unwrap();
    let mut rng = Rng(14);
    let x = rng.vec(ROWS * 24, -2.0, 3.0);
    let t = rng.vec(ROWS * OUTPUTS, -1.0, 1.0);
    let data = Dataset::regression(x.clone(), 24, t, OUTPUTS).unwrap();
    let before = m.parameters().unwrap();
    let moving = |p: &[wgfit::Tensor], name: &str| {
        p.iter()
            .find(|t| t.name == format!("model.layers.0.{name}"))
            .unwrap()
            .data
            .clone()
    };
    assert_eq!(moving(&before, "moving_mean"), [0.0, 0.0]);
    assert_eq!(moving(&before, "moving_variance"), [1.0, 1.0]);
    let options = FitOptions {
        epochs: 1,
        batch_size: ROWS,
        shuffle: false,
        ..Default::default()
    };
    m.fit(&data, options, &mut []).unwrap();
    let after = m.parameters().unwrap();
    for ch in 0..2 {
        let values: Vec<f64> = x.iter().skip(ch).step_by(2).map(|&v| v as f64).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        let (m_new, v_new) = (
            moving(&after, "moving_mean")[ch] as f64,
            moving(&after, "moving_variance")[ch] as f64,
        );
        assert!(
            (m_new - 0.1 * mean).abs() < 1e-6,
            "mean {m_new} vs {}",
            0.1 * mean
        );
        assert!(
            (v_new - (0.9 + 0.1 * var)).abs() < 1e-5,
            "variance {v_new} vs {}",
            0.9 + 0.1 * var
        );
    }
    // The optimizer keeps no slot for them.
    m.compile(Loss::MeanSquaredError, Sgd::new(0.1).momentum(0.9))
        .unwrap();
    let slots = m.optimizer_slots().unwrap();
    assert!(
        slots.iter().all(|s| !s.name.contains("moving")),
        "{slots:?}"
    );
}

#[test]
fn dropout_is_the_identity_in_prediction() {
    let m = model(&[4, 4, 1], |m| m.add(Dropout::new(0.5)));
    let mut m = m;
    m.compile(Loss::MeanSquaredError, Sgd::new(0.1)).unwrap();
    let specs = m.specs().unwrap();
    let x = Rng(11).vec(ROWS * 16, -1.0, 1.0);
    let params: Vec<Vec<f64>> = m
        .parameters()
        .unwrap()
        .iter()
        .map(|p| p.data.iter().map(|&v| v as f64).collect())
        .collect();
    let y = m.predict(&x, ROWS).unwrap();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let reference = forward(&specs, &params, &x64, ROWS);
    for (&g, &r) in y.iter().zip(&reference) {
        assert!((g as f64 - r).abs() <= 1e-5 * r.abs() + 1e-6, "{g} vs {r}");
    }
}

#[test]
fn a_layer_that_does_not_fit_its_input_is_named() {
    let mut m = Sequential::with_input_shape(&[4, 4, 1])
        .add(Conv2D::new(2, 3))
        .add(Conv2D::new(2, 3))
        .add(Flatten)
        .add(Dense::new(2));
    let err = m
        .compile(Loss::MeanSquaredError, Sgd::new(0.1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 1 (Conv2D)"), "{err}");
    assert!(err.contains("does not fit"), "{err}");
}
