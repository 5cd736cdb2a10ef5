//! A Keras model through wgfit and back, by the real programs: Keras builds and initialises
//! the convnet with BatchNormalization and saves `start.keras`; `wgfit train --model
//! start.keras` trains it on the bundled digits with a backup every batch, is killed
//! (SIGKILL) once a backup is committed and rerun to the end, with the bits of an
//! uninterrupted run of the same model from the same weights given as JSON and safetensors;
//! `wgfit export --model start.keras -o final.keras` writes the result, and Keras's
//! `evaluate` of `final.keras` gives wgfit's evaluation.

mod common;

use common::cli::{assert_ok, spawn, wait_for, wgfit};
use common::python_clients;
use std::path::Path;
use wgfit::{CsvOptions, Dataset, Loss, Sgd};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/keras/digits_convnet_bn.json"
);

/// `wgfit train` of `model` (more flags after) to `output` with a backup every batch.
fn train<'a>(model: &[&'a str], output: &'a str, backup: &'a str) -> Vec<&'a str> {
    let mut args = vec!["train"];
    args.extend_from_slice(model);
    args.extend([
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--save-freq",
        "1",
        "--backup-dir",
        backup,
        "--output",
        output,
        "--verbose",
        "0",
    ]);
    args
}

#[test]
fn a_keras_convnet_trained_by_wgfit_through_a_kill_evaluates_alike_in_keras() {
    if !python_clients::available("a_keras_convnet_trained_by_wgfit_through_a_kill") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    python_clients::run("keras_files.py", &[Path::new("init"), d]);

    let keras_file = ["--model", "start.keras"];
    let killed = train(&keras_file, "killed.safetensors", "killed.backup");
    let mut child = spawn(d, &killed);
    wait_for(&d.join("killed.backup/latest.json"), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!d.join("killed.safetensors").exists(), "killed too late");
    assert_ok(&wgfit(d, &killed));
    let given = ["--model", FIXTURE, "--init", "start.safetensors"];
    assert_ok(&wgfit(
        d,
        &train(&given, "whole.safetensors", "whole.backup"),
    ));
    assert!(
        std::fs::read(d.join("killed.safetensors")).unwrap()
            == std::fs::read(d.join("whole.safetensors")).unwrap(),
        "the killed and resumed run from start.keras ends with other bits than the \
         uninterrupted one from the same model and weights given apart"
    );

    let export = [
        "export",
        "killed.safetensors",
        "--model",
        "start.keras",
        "-o",
        "final.keras",
    ];
    assert_ok(&wgfit(d, &export));
    let keras: serde_json::Value = serde_json::from_str(
        python_clients::run(
            "keras_files.py",
            &[Path::new("evaluate"), &d.join("final.keras")],
        )
        .trim(),
    )
    .unwrap();

    // wgfit's evaluation of the same weights, unrounded.
    let file = wgfit::read_keras_file(d.join("final.keras")).unwrap();
    let mut model = file.keras.model;
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let trained = wgfit::checkpoint::read_tensors(&d.join("killed.safetensors")).unwrap();
    model.set_parameters(&trained).unwrap();
    let digits = Dataset::load(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"),
        &CsvOptions::default(),
    )
    .unwrap();
    let scaled: Vec<f32> = digits.x().iter().map(|v| v / 16.0).collect();
    let labels = match digits.targets() {
        wgfit::Targets::Classes(y) => y.clone(),
        other => panic!("digits have classes, not {other:?}"),
    };
    let data = Dataset::classification(scaled, digits.features(), labels).unwrap();
    let logs = model.evaluate(&data, 256).unwrap();
    let (loss, accuracy) = (logs["loss"], logs["accuracy"]);
    let keras_loss = keras["loss"].as_f64().unwrap();
    let keras_accuracy = keras["accuracy"].as_f64().unwrap();
    println!(
        "wgfit: loss {loss:.8} accuracy {accuracy:.6}; Keras: loss {keras_loss:.8} accuracy {keras_accuracy:.6}"
    );
    assert!(
        (loss - keras_loss).abs() <= 1e-5 * loss,
        "loss: wgfit {loss}, Keras {keras_loss}"
    );
    assert!(
        (accuracy - keras_accuracy).abs() < 0.5 / data.len() as f64,
        "accuracy: wgfit {accuracy}, Keras {keras_accuracy}"
    );
}
