//! `wgfit train --model model.json` through the real binary: a convnet that Keras 3 wrote
//! (`tests/data/keras/digits_convnet.json`: Conv2D 16 relu → MaxPooling2D → Flatten →
//! Dropout 0.25 → Dense 10 softmax) trained on the bundled 8×8 digits, killed and resumed to
//! the same bytes, then evaluated and used for prediction from its weights file alone.

mod common;

use common::cli::{assert_ok, spawn, stderr, stdout, summary_value, wait_for, wgfit};

fn model_path() -> String {
    format!(
        "{}/tests/data/keras/digits_convnet.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn train(model: &str) -> Vec<String> {
    [
        "train",
        "--model",
        model,
        "--epochs",
        "12",
        "--save-freq",
        "5",
        "--verbose",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_keras_convnet_killed_and_resumed_ends_byte_identical_and_evaluates_from_its_file() {
    let model = model_path();
    let args = train(&model);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reference = tempfile::tempdir().unwrap();
    let resumed = tempfile::tempdir().unwrap();

    let mut child = spawn(resumed.path(), &args);
    wait_for(
        &resumed.path().join("wgfit-model.backup/latest.json"),
        &mut child,
    );
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success(), "finished before the kill");
    // inspect describes the backup's model, layer by layer.
    let inspect = wgfit(resumed.path(), &["inspect", "wgfit-model.backup"]);
    assert_ok(&inspect);
    let text = stdout(&inspect);
    assert!(
        text.contains("Conv2D(filters=16, kernel_size=3x3") && text.contains("Dropout(rate=0.25)"),
        "{text}"
    );

    let full = wgfit(reference.path(), &args);
    assert_ok(&full);
    assert!(
        stdout(&full).contains("Conv2D(filters=16"),
        "{}",
        stdout(&full)
    );
    let o = wgfit(resumed.path(), &args);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("resuming from the backup"),
        "{}",
        stderr(&o)
    );
    let a = std::fs::read(reference.path().join("wgfit-model.safetensors")).unwrap();
    let b = std::fs::read(resumed.path().join("wgfit-model.safetensors")).unwrap();
    assert!(
        a == b,
        "the resumed convnet's weights differ from the uninterrupted run's"
    );

    // The weights file records the whole model: evaluate and predict need nothing else.
    let e = wgfit(
        resumed.path(),
        &["evaluate", "--weights", "wgfit-model.safetensors"],
    );
    assert_ok(&e);
    let accuracy = summary_value(&stdout(&e), "accuracy");
    assert!(accuracy > 0.9, "accuracy {accuracy}");
    let p = wgfit(
        resumed.path(),
        &[
            "predict",
            "--weights",
            "wgfit-model.safetensors",
            "--output",
            "p.csv",
        ],
    );
    assert_ok(&p);
    let lines = std::fs::read_to_string(resumed.path().join("p.csv")).unwrap();
    assert_eq!(lines.lines().count(), 1798);
    // A flag that cannot describe the recorded model is refused.
    let refused = wgfit(
        resumed.path(),
        &[
            "evaluate",
            "--weights",
            "wgfit-model.safetensors",
            "--layers",
            "32,10",
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("records its whole model"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn a_model_file_wgfit_cannot_build_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{}/tests/data/keras", env!("CARGO_MANIFEST_DIR"));
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--model",
            &format!("{data}/with_upsampling.json"),
            "--epochs",
            "1",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("UpSampling2D"), "{}", stderr(&o));

    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--model",
            &model_path(),
            "--loss",
            "mse",
            "--epochs",
            "1",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("softmax"), "{}", stderr(&o));

    let o = wgfit(
        dir.path(),
        &["train", "--model", &model_path(), "--layers", "32,10"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // A model whose input is not the data's rows.
    let o = wgfit(
        dir.path(),
        &[
            "train",
            "--model",
            &format!("{data}/mnist_convnet.json"),
            "--epochs",
            "1",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("[28, 28, 1]"), "{}", stderr(&o));
    assert!(!dir.path().join("wgfit-model.safetensors").exists());
}
