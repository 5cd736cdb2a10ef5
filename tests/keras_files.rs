//! Keras 3's files both ways, checked by Keras itself (`tests/keras/keras_files.py`, Keras on
//! JAX): an MLP, the Step 16 convnet with BatchNormalization (`digits_convnet_bn.json`), a
//! small GPT (`gpt_small.json`) and fixtures with every other layer kind and a shared layer
//! (`tests/common/interop_models.rs`), each trained a little by wgfit, then
//! - written as `.weights.h5` and `.keras`: Keras loads both and predicts what wgfit predicts;
//! - initialised by Keras and written with `save_weights`: wgfit reads the very bits Keras
//!   holds, and a run from them equals a run from the same weights given as safetensors.

mod common;

use common::interop_models::{cases, compiled, options, trained_cases, write_io};
use common::python_clients;
use std::path::Path;
use wgfit::{Activation, Dense, Sequential, Tensor};

#[test]
fn keras_loads_the_weights_and_models_wgfit_writes_and_predicts_the_same() {
    if !python_clients::available("keras_loads_the_weights_and_models_wgfit_writes") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for case in trained_cases(root.path()) {
        let (dir, model) = (&case.dir, &case.model);
        let config = match case.config {
            Some(c) => c,
            None => model.to_keras_json().unwrap(),
        };
        std::fs::write(dir.join("config.json"), &config).unwrap();
        model
            .save_keras_weights(dir.join("model.weights.h5"))
            .unwrap();
        model.save_keras(dir.join("model.keras"), None).unwrap();
        write_io(model, &case.data, dir);
    }
    python_clients::run("keras_files.py", &[Path::new("check"), root.path()]);
}

fn bits(tensors: &[Tensor]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out: Vec<_> = tensors
        .iter()
        .map(|t| {
            let bits = t.data.iter().map(|v| v.to_bits()).collect();
            (t.name.clone(), t.shape.clone(), bits)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn wgfit_reads_the_weights_keras_writes_bit_for_bit() {
    if !python_clients::available("wgfit_reads_the_weights_keras_writes_bit_for_bit") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A shared layer's second call is a layer of its own in wgfit's names, which the NumPy
    // renaming of keras_files.py does not follow; Keras reading wgfit's file of it is checked
    // above.
    let cases: Vec<_> = cases()
        .into_iter()
        .filter(|c| c.name != "shared_dense")
        .collect();
    for case in &cases {
        let dir = root.path().join(case.name);
        std::fs::create_dir(&dir).unwrap();
        let config = match &case.config {
            Some(c) => c.clone(),
            None => {
                let built = self::cases().into_iter().find(|c| c.name == case.name);
                compiled(built.unwrap().model).to_keras_json().unwrap()
            }
        };
        std::fs::write(dir.join("config.json"), config).unwrap();
    }
    python_clients::run("keras_files.py", &[Path::new("write"), root.path()]);
    // The same models again (built alike), for the second run.
    let twins = self::cases()
        .into_iter()
        .filter(|c| c.name != "shared_dense");
    for (case, twin) in cases.into_iter().zip(twins) {
        let dir = root.path().join(case.name);
        let mut from_keras = compiled(case.model);
        let mut from_safetensors = compiled(twin.model);
        let keras = from_keras
            .read_keras_weights(&dir.join("keras.weights.h5"))
            .unwrap();
        let given = wgfit::checkpoint::read_tensors(&dir.join("wgfit.safetensors")).unwrap();
        assert_eq!(bits(&keras), bits(&given), "{}", case.name);
        from_keras.set_parameters(&keras).unwrap();
        from_safetensors.set_parameters(&given).unwrap();
        from_keras.fit(&case.data, options(), &mut []).unwrap();
        from_safetensors
            .fit(&case.data, options(), &mut [])
            .unwrap();
        assert_eq!(
            bits(&from_keras.parameters().unwrap()),
            bits(&from_safetensors.parameters().unwrap()),
            "{}: the runs differ",
            case.name
        );
    }
}

/// A Keras file that is not one, or of another model, is refused with an error that names
/// the problem; the model keeps its weights.
#[test]
fn a_foreign_file_of_the_wrong_kind_or_model_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut all = cases();
    let mut mlp = compiled(all.remove(0).model);
    let convnet = compiled(all.remove(1).model);
    mlp.save_keras_weights(d.join("mlp.weights.h5")).unwrap();
    mlp.save_keras(d.join("mlp.keras"), None).unwrap();
    let before = bits(&mlp.parameters().unwrap());
    let refusal = |e: wgfit::Error| e.to_string();

    let other = refusal(
        convnet
            .read_keras_weights(&d.join("mlp.weights.h5"))
            .unwrap_err(),
    );
    assert!(
        other.contains("layers/dense/vars/0") && other.contains("another model"),
        "{other}"
    );

    let narrower = Sequential::new(6)
        .add(Dense::new(7).activation(Activation::Relu))
        .add(Dense::new(5).activation(Activation::Tanh))
        .add(Dense::new(3));
    let shapes = refusal(
        compiled(narrower)
            .read_keras_weights(&d.join("mlp.weights.h5"))
            .unwrap_err(),
    );
    assert!(
        shapes.contains("has shape [6, 8]") && shapes.contains("[6, 7]"),
        "{shapes}"
    );

    std::fs::write(d.join("text.weights.h5"), "not hdf5").unwrap();
    let garbage = refusal(
        mlp.load_keras_weights(d.join("text.weights.h5"))
            .unwrap_err(),
    );
    assert!(garbage.contains("not an HDF5 file"), "{garbage}");

    let whole = std::fs::read(d.join("mlp.keras")).unwrap();
    std::fs::write(d.join("cut.keras"), &whole[..whole.len() / 2]).unwrap();
    let cut = refusal(wgfit::read_keras_file(d.join("cut.keras")).unwrap_err());
    assert!(
        cut.contains("cut.keras") && cut.contains("not a zip archive"),
        "{cut}"
    );
    let missing = refusal(wgfit::read_keras_file(d.join("none.keras")).unwrap_err());
    assert!(missing.contains("none.keras"), "{missing}");

    assert_eq!(
        bits(&mlp.parameters().unwrap()),
        before,
        "a refused load changed weights"
    );
    let file = wgfit::read_keras_file(d.join("mlp.keras")).unwrap();
    let mut again = compiled(file.keras.model);
    again
        .set_parameters(&file.weights.tensors_for(&again).unwrap())
        .unwrap();
    assert_eq!(
        bits(&again.parameters().unwrap()),
        before,
        "the .keras round trip"
    );
}
