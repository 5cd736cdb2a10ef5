//! `wgfit evaluate` and `wgfit predict` on a trained model, through the real binary.

mod common;

use common::cli::{assert_ok, stderr, stdout, summary_value, wgfit};

#[test]
fn evaluate_and_predict_on_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--epochs",
            "3",
            "--layers",
            "24,10",
            "--activation",
            "tanh",
            "--verbose",
            "0",
            "--output",
            "m.safetensors",
        ],
    );
    assert_ok(&o);
    let trained = summary_value(&stdout(&o), "accuracy");

    // Widths from the tensor shapes, activation from the file's metadata.
    let o = wgfit(dir.path(), &["evaluate", "--weights", "m.safetensors"]);
    assert_ok(&o);
    let accuracy = summary_value(&stdout(&o), "accuracy");
    assert!(
        accuracy >= 0.9 && accuracy >= trained - 0.05,
        "{accuracy} vs {trained}"
    );
    assert!(summary_value(&stdout(&o), "samples") == 1797.0);
    let o = wgfit(
        dir.path(),
        &[
            "evaluate",
            "--weights",
            "m.safetensors",
            "--layers",
            "24,10",
        ],
    );
    assert_ok(&o);
    let o = wgfit(
        dir.path(),
        &[
            "evaluate",
            "--weights",
            "m.safetensors",
            "--layers",
            "32,10",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));

    let o = wgfit(
        dir.path(),
        &["predict", "--weights", "m.safetensors", "--output", "p.csv"],
    );
    assert_ok(&o);
    let csv = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,class"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1797);
    let first: Vec<f64> = rows[0].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(first.len(), 11);
    assert!((first[..10].iter().sum::<f64>() - 1.0).abs() < 1e-4);

    // A file without a label column: one row per input row.
    let row: Vec<String> = (0..64).map(|i| ((i * 7) % 17).to_string()).collect();
    let text = format!("{0}\n{0}\n{0}\n", row.join(","));
    std::fs::write(dir.path().join("x.csv"), text).unwrap();
    let o = wgfit(
        dir.path(),
        &[
            "predict",
            "--weights",
            "m.safetensors",
            "--data",
            "x.csv",
            "--scale",
            "0.0625",
            "--output",
            "px.csv",
        ],
    );
    assert_ok(&o);
    let csv = std::fs::read_to_string(dir.path().join("px.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

#[test]
fn files_that_are_not_weights_files_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("d.csv"), "1,2,0\n3,4,1\n5,6,0\n").unwrap();
    let o = wgfit(
        d,
        &[
            "train",
            "--data",
            "d.csv",
            "--epochs",
            "1",
            "--batch-size",
            "3",
            "--optimizer",
            "adam",
            "--keep-checkpoint",
            "--verbose",
            "0",
            "--output",
            "m.safetensors",
        ],
    );
    assert_ok(&o);
    let state = std::fs::read_dir(d.join("m.backup"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .unwrap();
    std::fs::write(d.join("k.weights.h5"), b"\x89HDF\r\n\x1a\n\0\0\0\0").unwrap();
    std::fs::write(d.join("k.keras"), b"PK\x03\x04\0\0").unwrap();
    let state = state.to_str().unwrap();
    for (command, file, says) in [
        ("evaluate", state, "is a backup's state file"),
        (
            "evaluate",
            "k.weights.h5",
            "is an HDF5 file (Keras's .weights.h5)",
        ),
        (
            "export",
            "k.keras",
            "is a zip archive (a Keras .keras file?)",
        ),
    ] {
        let args = match command {
            "export" => vec!["export", file, "-o", "out.onnx"],
            _ => vec!["evaluate", "--weights", file, "--data", "d.csv"],
        };
        let o = wgfit(d, &args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(says),
            "{command} {file}: {}",
            stderr(&o)
        );
        assert!(!d.join("out.onnx").exists());
    }
}
