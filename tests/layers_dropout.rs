//! Dropout's masks: the generator against Philox4x32-10's published known answers, the drop
//! rate and scale, a new mask at every step, and a run interrupted mid-epoch that resumes from
//! its backup with the masks of the uninterrupted run (bit-identical weights and moving
//! statistics, a convnet with BatchNormalization and Adam).

mod common;

use common::gpu::gpu;
use common::{Interrupt, bits};
use wgfit::{
    Adam, BackupAndRestore, Conv2D, Dataset, Dense, Dropout, FitOptions, Flatten, Loss,
    MaxPooling2D, SaveFreq, Sequential, Sgd,
};

#[test]
fn philox_matches_its_known_answers() {
    // Random123's kat_vectors for philox4x32_10.
    let cases = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    let inputs: Vec<([u32; 4], [u32; 2])> = cases.iter().map(|(c, k, _)| (*c, *k)).collect();
    let words = wgfit::gpu::ops::philox(&gpu(), &inputs).unwrap();
    for ((_, _, expected), got) in cases.iter().zip(&words) {
        assert_eq!(got, expected, "{got:08x?} != {expected:08x?}");
    }
}

/// `Dropout(rate) → Dense(1)` on one sample of ones: one SGD step's weight gradient is
/// `2 (y − t) · mask · scale` per input, so its zeros are the dropped inputs.
fn dropped_after_each_epoch(rate: f32, features: usize, epochs: usize) -> Vec<Vec<bool>> {
    let data = Dataset::regression(vec![1.0; features], features, vec![5.0], 1).unwrap();
    let mut model = Sequential::new(features)
        .add(Dropout::new(rate))
        .add(Dense::new(1));
    model
        .compile(Loss::MeanSquaredError, Sgd::new(1e-3))
        .unwrap();
    let mut out = Vec::new();
    let mut before = model.parameters().unwrap()[0].data.clone();
    for epoch in 0..epochs {
        let options = FitOptions {
            epochs: epoch + 1,
            initial_epoch: epoch,
            batch_size: 1,
            ..Default::default()
        };
        model.fit(&data, options, &mut []).unwrap();
        let after = model.parameters().unwrap()[0].data.clone();
        let steps: Vec<f32> = before.iter().zip(&after).map(|(b, a)| b - a).collect();
        // Every kept input moves by the same step: 2 (y - t) · scale · lr.
        let kept: Vec<f32> = steps.iter().copied().filter(|s| *s != 0.0).collect();
        let first = kept[0];
        assert!(
            kept.iter().all(|s| (s - first).abs() <= 1e-6 * first.abs()),
            "kept inputs moved by different steps"
        );
        out.push(steps.iter().map(|s| *s == 0.0).collect());
        before = after;
    }
    out
}

#[test]
fn dropout_drops_its_rate_and_draws_a_new_mask_every_step() {
    let features = 4000;
    for rate in [0.25f32, 0.5] {
        let masks = dropped_after_each_epoch(rate, features, 3);
        for mask in &masks {
            let dropped = mask.iter().filter(|&&d| d).count() as f64 / features as f64;
            // 4 000 draws: the standard deviation is at most 0.008.
            assert!(
                (dropped - f64::from(rate)).abs() < 0.04,
                "rate {rate}: {dropped} dropped"
            );
        }
        assert_ne!(
            masks[0], masks[1],
            "rate {rate}: steps 0 and 1 drew one mask"
        );
        assert_ne!(
            masks[1], masks[2],
            "rate {rate}: steps 1 and 2 drew one mask"
        );
    }
}

/// Two batches of one epoch draw two masks: after an epoch of two one-sample batches, an input
/// is untouched only where both dropped it (rate², not rate).
#[test]
fn two_batches_of_an_epoch_draw_two_masks() {
    let features = 4000;
    let data = Dataset::regression(vec![1.0; 2 * features], features, vec![5.0, 5.0], 1).unwrap();
    let mut model = Sequential::new(features)
        .add(Dropout::new(0.5))
        .add(Dense::new(1));
    model
        .compile(Loss::MeanSquaredError, Sgd::new(1e-3))
        .unwrap();
    let before = model.parameters().unwrap()[0].data.clone();
    let options = FitOptions {
        epochs: 1,
        batch_size: 1,
        ..Default::default()
    };
    model.fit(&data, options, &mut []).unwrap();
    let after = model.parameters().unwrap()[0].data.clone();
    let untouched = before.iter().zip(&after).filter(|(b, a)| b == a).count();
    let fraction = untouched as f64 / features as f64;
    assert!((fraction - 0.25).abs() < 0.04, "{fraction} untouched");
}

fn images() -> Dataset {
    let mut rng = common::rng::Rng(21);
    let x = rng.vec(30 * 6 * 6, 0.0, 1.0);
    let y = (0..30).map(|i| (i % 3) as u32).collect();
    Dataset::classification(x, 36, y).unwrap()
}

fn convnet() -> Sequential {
    convnet_of(4, 0.5)
}

/// Conv2D (`filters`) → BatchNormalization → MaxPooling2D → Flatten → Dropout (`rate`) →
/// Dense, with Adam.
fn convnet_of(filters: usize, rate: f32) -> Sequential {
    let mut m = Sequential::with_input_shape(&[6, 6, 1])
        .add(Conv2D::new(filters, 3).activation(wgfit::Activation::Relu))
        .add(wgfit::BatchNormalization::new())
        .add(MaxPooling2D::new([2, 2]))
        .add(Flatten)
        .add(Dropout::new(rate))
        .add(Dense::new(3))
        .seed(5);
    m.compile(Loss::CrossEntropy, Adam::new(0.01)).unwrap();
    m
}

fn options() -> FitOptions {
    FitOptions {
        epochs: 3,
        batch_size: 4,
        seed: 9,
        ..Default::default()
    }
}

#[test]
fn a_convnet_with_dropout_resumed_mid_epoch_ends_bit_identical() {
    let data = images();
    let mut whole = convnet();
    whole.fit(&data, options(), &mut []).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let backup = || {
        BackupAndRestore::new(dir.path())
            .unwrap()
            .save_freq(SaveFreq::Batches(1))
            .unwrap()
    };
    // Stopped in the middle of the second epoch (8 batches an epoch), then resumed.
    let mut first = convnet();
    let mut stop = Interrupt {
        at_global_step: Some(11),
        at_epoch_begin: None,
    };
    let mut b = backup();
    assert!(
        first
            .fit(&data, options(), &mut [&mut b, &mut stop])
            .is_err()
    );
    let mut resumed = convnet();
    let mut b = backup();
    resumed.fit(&data, options(), &mut [&mut b]).unwrap();
    assert!(
        bits(&resumed) == bits(&whole),
        "the resumed run's weights differ"
    );

    // And the masks matter: the same run without dropout ends elsewhere.
    let mut plain = convnet_of(4, 0.0);
    plain.fit(&data, options(), &mut []).unwrap();
    assert!(bits(&plain) != bits(&whole));
}

/// A backup of another convnet (one Conv2D with 5 filters instead of 4) is refused, naming the
/// layer that differs with its arguments and shapes.
#[test]
fn a_backup_of_another_convnet_is_refused_naming_the_layer() {
    let data = images();
    let dir = tempfile::tempdir().unwrap();
    let backup = || {
        BackupAndRestore::new(dir.path())
            .unwrap()
            .save_freq(SaveFreq::Batches(1))
            .unwrap()
    };
    let mut first = convnet();
    let mut stop = Interrupt {
        at_global_step: Some(3),
        at_epoch_begin: None,
    };
    let mut b = backup();
    assert!(
        first
            .fit(&data, options(), &mut [&mut b, &mut stop])
            .is_err()
    );
    let mut other = convnet_of(5, 0.5);
    let mut b = backup();
    let e = other
        .fit(&data, options(), &mut [&mut b])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layer 0: backup Conv2D(filters=4, kernel_size=3x3")
            && e.contains("now Conv2D(filters=5, kernel_size=3x3"),
        "{e}"
    );
    assert!(e.contains("6x6x1 -> 4x4x5"), "{e}");
}

/// The convnet (BatchNormalization, Dropout) on data streamed from host memory a batch at a
/// time, with validation, gradient clipping and accumulation: the same bits as resident data
/// (dropout's masks are keyed by epoch positions, which streaming keeps).
#[test]
fn a_convnet_streamed_from_host_memory_ends_as_the_resident_one() {
    let data = images();
    let run = |on: wgfit::DataOn| {
        let mut m = Sequential::with_input_shape(&[6, 6, 1])
            .add(Conv2D::new(4, 3).activation(wgfit::Activation::Relu))
            .add(wgfit::BatchNormalization::new())
            .add(MaxPooling2D::new([2, 2]))
            .add(Flatten)
            .add(Dropout::new(0.5))
            .add(Dense::new(3))
            .seed(5);
        let optimizer = wgfit::Configured::new(Adam::new(0.01))
            .clipping(wgfit::Clipping::GlobalNorm(0.5))
            .accumulate(2);
        m.compile(Loss::CrossEntropy, optimizer).unwrap();
        let options = FitOptions {
            data_on: on,
            validation_split: Some(0.2),
            ..options()
        };
        let history = m.fit(&data, options, &mut []).unwrap();
        (bits(&m), history)
    };
    let (resident, h1) = run(wgfit::DataOn::Gpu);
    let (streamed, h2) = run(wgfit::DataOn::Host);
    assert!(resident == streamed, "streamed weights differ");
    assert_eq!(h1, h2);
}
