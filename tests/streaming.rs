//! Streamed input: a data set kept in host memory and fed to the GPU a batch at a time gives
//! the bits the resident data set gives, for training, validation, a mid-epoch resume and
//! `wgfit train`'s automatic choice.

mod common;

use common::{Interrupt, bits, data, model, options};
use wgfit::{Activation, DataOn, Dataset, Dense, FitOptions, Loss, Sequential, Sgd};

/// Batches of 4: 23 an epoch, so the ring of 16 batch slots wraps inside every epoch, and the
/// last batch is short.
fn on(data_on: DataOn, epochs: usize) -> FitOptions {
    FitOptions {
        data_on,
        batch_size: 4,
        ..options(epochs)
    }
}

#[test]
fn streamed_and_resident_data_give_the_same_bits() {
    let mut resident = model();
    let h1 = resident.fit(&data(), on(DataOn::Gpu, 3), &mut []).unwrap();
    let mut streamed = model();
    let h2 = streamed.fit(&data(), on(DataOn::Host, 3), &mut []).unwrap();
    assert_eq!(h1, h2);
    assert_eq!(bits(&resident), bits(&streamed));

    // Regression with three target columns, validation data streamed too, batches of 5.
    let regression = || {
        let x: Vec<f32> = (0..97 * 4)
            .map(|i| ((i * 37 % 101) as f32) / 101.0)
            .collect();
        let y: Vec<f32> = (0..97 * 3).map(|i| ((i * 13 % 29) as f32) / 29.0).collect();
        Dataset::regression(x, 4, y, 3).unwrap()
    };
    let (train, validation) = regression().split_tail(0.25).unwrap();
    let run = |data_on| {
        let mut m = Sequential::new(4)
            .add(Dense::new(7).activation(Activation::Relu))
            .add(Dense::new(3))
            .seed(5);
        m.compile(Loss::MeanSquaredError, Sgd::new(0.05)).unwrap();
        let options = FitOptions {
            batch_size: 5,
            epochs: 4,
            validation_data: Some(validation.clone()),
            data_on,
            ..Default::default()
        };
        let h = m.fit(&train, options, &mut []).unwrap();
        (bits(&m), h)
    };
    let (b1, h1) = run(DataOn::Gpu);
    let (b2, h2) = run(DataOn::Host);
    assert!(h1.last().unwrap().contains_key("val_loss"));
    assert_eq!(h1, h2);
    assert_eq!(b1, b2);
}

#[test]
fn a_streamed_run_resumed_in_the_middle_of_an_epoch_ends_as_the_resident_one() {
    let mut reference = model();
    reference.fit(&data(), on(DataOn::Gpu, 3), &mut []).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let backup = || common::backup_every_batch(&dir);
    for at in [5, 19, 40] {
        let mut stop = Interrupt {
            at_global_step: Some(at),
            at_epoch_begin: None,
        };
        model()
            .fit(
                &data(),
                on(DataOn::Host, 3),
                &mut [&mut backup(), &mut stop],
            )
            .unwrap_err();
    }
    let mut resumed = model();
    resumed
        .fit(&data(), on(DataOn::Host, 3), &mut [&mut backup()])
        .unwrap();
    assert_eq!(bits(&resumed), bits(&reference));
}

/// An MNIST-shaped CSV (784 pixel columns of 0..255 and a label), from a fixed seed.
fn mnist_like(path: &std::path::Path, rows: usize) {
    let mut state = 7u64;
    let mut text = String::new();
    for r in 0..rows {
        for _ in 0..784 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(&((state >> 56) as u8).to_string());
            text.push(',');
        }
        text.push_str(&(r % 10).to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn wgfit_train_streams_what_exceeds_the_resident_limit_with_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("mnist.csv");
    // 1500 rows: 4.7 MB of inputs, over a resident limit of 1 MB.
    mnist_like(&csv, 1500);
    let train = |out: &str, extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgfit"));
        cmd.current_dir(tmp.path())
            .env("WGFIT_RESIDENT_LIMIT_BYTES", "1000000")
            .args(["train", "--data", "mnist.csv", "--scale", "0.00392"])
            .args(["--layers", "32,10", "--epochs", "2", "--verbose", "2"])
            .args(["--no-backup", "--output", out])
            .args(extra);
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let auto = train("auto.safetensors", &[]);
    assert!(
        auto.contains(
            "data: 4.7 MB streamed from host memory a batch at a time (resident limit 1.0 MB)"
        ),
        "{auto}"
    );
    let gpu = train("gpu.safetensors", &["--data-on", "gpu"]);
    assert!(!gpu.contains("streamed"), "{gpu}");
    let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
    assert!(read("auto.safetensors") == read("gpu.safetensors"));
}

#[test]
fn a_model_past_one_binding_trains_in_pieces_with_clipping_to_the_same_bits() {
    // An 8 KiB piece limit binds the 64-32-10 model's parameters in two pieces (layer 0's
    // weights; the rest): training with gradient clipping (a norm per tensor, or over all of
    // them) writes the bytes the model bound whole writes. A 4 KiB limit is smaller than
    // layer 0's weights: refused before training, naming the layer.
    let tmp = tempfile::tempdir().unwrap();
    let run = |limit: Option<&str>, out: &str, extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgfit"));
        cmd.current_dir(tmp.path())
            .args(["train", "--epochs", "2", "--no-backup", "--verbose", "0"])
            .args(["--output", out])
            .args(extra);
        if let Some(limit) = limit {
            cmd.env("WGFIT_MAX_BINDING_BYTES", limit);
        }
        cmd.output().unwrap()
    };
    let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
    for clip in [
        &["--clipnorm", "0.5"][..],
        &["--global-clipnorm", "0.5"],
        &[],
    ] {
        let whole = run(None, "whole.safetensors", clip);
        let pieces = run(Some("8192"), "pieces.safetensors", clip);
        for o in [&whole, &pieces] {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(
            read("whole.safetensors") == read("pieces.safetensors"),
            "{clip:?}: the same bits in pieces"
        );
    }
    let refused = run(Some("4096"), "x.safetensors", &[]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("layer 0's weights"), "{err}");
}
