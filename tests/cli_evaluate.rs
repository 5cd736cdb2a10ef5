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
