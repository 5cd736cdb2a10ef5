//! `wgfit train` says which model it builds before it trains (the `model:` line), and does
//! not silently build an output layer far wider than the labels the data uses: one stray
//! label with the default `--layers` is refused, and with `--layers` given it is warned about.

mod common;

use common::cli::{assert_ok, stderr, stdout, wgfit};
use std::path::Path;

/// A 4-feature CSV with one sample per label.
fn write_csv(dir: &Path, name: &str, labels: &[u32]) {
    let mut text = String::from("a,b,c,d,label\n");
    for (i, l) in labels.iter().enumerate() {
        let v = i as f32 / 10.0;
        text.push_str(&format!("{v},{},{},{},{l}\n", 1.0 - v, v * v, -v));
    }
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn one_stray_label_with_the_default_layers_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path(), "stray.csv", &[0, 1, 2, 1, 0, 1_000_000]);
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--data",
            "stray.csv",
            "--epochs",
            "1",
            "--batch-size",
            "4",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stray.csv uses 4 distinct labels, but its largest label is 1000000"),
        "{err}"
    );
    assert!(
        err.contains("1000001 classes, 999997 of which no sample has"),
        "{err}"
    );
    assert!(err.contains("--layers 32,1000001"), "{err}");
    assert!(!dir.path().join("wgfit-model.safetensors").exists());
}

#[test]
fn sparse_labels_with_layers_given_are_warned_about_and_the_model_line_shows_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path(), "sparse.csv", &[0, 1, 2, 5_000]);
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--data",
            "sparse.csv",
            "--layers",
            "4,5001",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--verbose",
            "1",
        ],
    );
    assert_ok(&o);
    let err = stderr(&o);
    assert!(
        err.contains(
            "wgfit: warning: sparse.csv uses 4 distinct labels, but its largest label is 5000"
        ),
        "{err}"
    );
    // (4 + 1) · 4 + (4 + 1) · 5 001 parameters, printed before the first epoch.
    let out = stdout(&o);
    let model = out
        .find("model:         4 -> 4 -> 5001 (25025 parameters)")
        .unwrap_or_else(|| panic!("no model line in\n{out}"));
    let epoch = out.find("poch").unwrap_or(usize::MAX);
    assert!(model < epoch, "the model line comes first:\n{out}");
}

#[test]
fn dense_labels_train_quietly_with_their_model_line() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path(), "dense.csv", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--data",
            "dense.csv",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--verbose",
            "1",
        ],
    );
    assert_ok(&o);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // (4 + 1) · 32 + (32 + 1) · 10 parameters.
    assert!(
        stdout(&o).contains("model:         4 -> 32 -> 10 (490 parameters)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_validation_label_the_model_cannot_have_names_the_validation_file() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path(), "train.csv", &[0, 1, 2, 1, 0, 2]);
    write_csv(dir.path(), "val.csv", &[0, 7, 1]);
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--data",
            "train.csv",
            "--validation-data",
            "val.csv",
            "--epochs",
            "1",
            "--batch-size",
            "4",
        ],
    );
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "--validation-data val.csv: label 7 at sample 1 (counted from 0) is out of range"
        ) && err.contains("needs the training data's features and labels (train.csv)"),
        "{err}"
    );
    assert!(!err.contains("--layers ending in"), "{err}");
    assert!(!dir.path().join("wgfit-model.safetensors").exists());
}

/// Float targets with the default cross-entropy: the error names the data and the loss flag,
/// not a one-output model the user never asked for.
#[test]
fn float_targets_with_cross_entropy_name_the_data_not_the_model() {
    use wgfit::Tensor;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows = 40;
    let tensors = [
        Tensor {
            name: "x".into(),
            shape: vec![rows, 2],
            data: (0..rows * 2).map(|v| v as f32 / 80.0).collect(),
        },
        Tensor {
            name: "y".into(),
            shape: vec![rows],
            data: (0..rows).map(|v| (v % 2) as f32).collect(),
        },
    ];
    wgfit::checkpoint::write_tensors(&d.join("f.safetensors"), &tensors).unwrap();
    let o = wgfit(
        d,
        &[
            "train",
            "--data",
            "f.safetensors",
            "--epochs",
            "1",
            "--no-backup",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("f.safetensors: its targets are floats")
            && err.contains("--loss crossentropy (the default)")
            && !err.contains("invalid model"),
        "{err}"
    );
    // With the loss for values it trains.
    assert_ok(&wgfit(
        d,
        &[
            "train",
            "--data",
            "f.safetensors",
            "--epochs",
            "1",
            "--no-backup",
            "--loss",
            "mse",
            "--verbose",
            "0",
        ],
    ));
}
