//! ONNX and PyTorch names, checked by their own tools without wgfit
//! (`tests/keras/onnx_torch_files.py`):
//! - onnxruntime runs the ONNX file of each interchange model (an MLP, the convnet with
//!   BatchNormalization, a small GPT, and fixtures with every other layer kind and a shared
//!   layer) at batch sizes 1 and 37 and gets what wgfit predicts;
//! - the PyTorch-named file of the MLP and the convnet has the keys and shapes of the
//!   `nn.Sequential` that docs/INTEROP.md states, and NumPy computing that `nn.Sequential`
//!   (channels first, as torch does) from it gets what wgfit predicts.

mod common;

use common::interop_models::{cases, compiled, trained_cases, write_io};
use common::python_clients;

#[test]
fn onnxruntime_and_the_torch_layout_compute_what_wgfit_predicts() {
    if !python_clients::available("onnxruntime_and_the_torch_layout_compute_what_wgfit_predicts") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for case in trained_cases(root.path()) {
        let (dir, model) = (&case.dir, &case.model);
        model.save_onnx(dir.join("model.onnx")).unwrap();
        // The two whose nn.Sequential tests/keras/onnx_torch_files.py states.
        if matches!(case.name, "mlp" | "convnet_bn") {
            model
                .save_torch_weights(dir.join("model.pt.safetensors"))
                .unwrap();
        }
        write_io(model, &case.data, dir);
    }
    python_clients::run("onnx_torch_files.py", &[root.path()]);
}

#[test]
fn a_graph_has_no_torch_sequential_names() {
    let mut gpt = cases().remove(3);
    assert_eq!(gpt.name, "gpt");
    gpt.model = compiled(gpt.model);
    let e = gpt.model.torch_state_dict().unwrap_err().to_string();
    assert!(e.contains("not an nn.Sequential"), "{e}");
}
