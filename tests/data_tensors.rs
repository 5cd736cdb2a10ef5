//! safetensors loading: every dtype and shape case and every error against a real file.

mod common;

use std::path::PathBuf;

use common::data_files::write;
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use wgfit::Error;
use wgfit::data::{CsvOptions, Dataset, Targets};

// ---- safetensors ---------------------------------------------------------------------------

fn le_bytes<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

fn safetensors_file(
    tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>,
) -> (tempfile::TempDir, PathBuf) {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    write(
        "d.safetensors",
        &safetensors::serialize(views, None).unwrap(),
    )
}

fn x_tensor() -> (&'static str, Dtype, Vec<usize>, Vec<u8>) {
    (
        "x",
        Dtype::F32,
        vec![3, 2],
        le_bytes(&[1f32, 2., 3., 4., 5., 6.], f32::to_le_bytes),
    )
}

#[test]
fn safetensors_integer_labels() {
    let y = (
        "y",
        Dtype::I64,
        vec![3],
        le_bytes(&[2i64, 0, 1], i64::to_le_bytes),
    );
    let (_d, path) = safetensors_file(vec![x_tensor(), y]);
    let ds = Dataset::load(&path, &CsvOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.features()), (3, 2));
    assert_eq!(ds.x(), &[1., 2., 3., 4., 5., 6.]);
    assert_eq!(ds.targets(), &Targets::Classes(vec![2, 0, 1]));
}

#[test]
fn safetensors_float_targets_and_f64_x() {
    let x = (
        "x",
        Dtype::F64,
        vec![3],
        le_bytes(&[1f64, 2., 3.], f64::to_le_bytes),
    );
    let y = (
        "y",
        Dtype::F32,
        vec![3, 2],
        le_bytes(&[0.5f32, 1., 1.5, 2., 2.5, 3.], f32::to_le_bytes),
    );
    let (_d, path) = safetensors_file(vec![x, y]);
    let ds = Dataset::from_safetensors(&path).unwrap();
    assert_eq!(ds.features(), 1);
    assert_eq!(
        ds.targets(),
        &Targets::Values {
            data: vec![0.5, 1., 1.5, 2., 2.5, 3.],
            cols: 2
        }
    );
    let y1 = (
        "y",
        Dtype::F64,
        vec![3],
        le_bytes(&[0.5f64, 1., 1.5], f64::to_le_bytes),
    );
    let (_d, path) = safetensors_file(vec![x_tensor(), y1]);
    assert_eq!(Dataset::from_safetensors(&path).unwrap().target_cols(), 1);
}

#[test]
fn safetensors_negative_label_and_bad_dtype() {
    let y = ("y", Dtype::I8, vec![3], vec![0u8, 0xff, 1]);
    let (_d, path) = safetensors_file(vec![x_tensor(), y]);
    let err = Dataset::from_safetensors(&path).unwrap_err();
    assert!(matches!(err, Error::InvalidData { .. }));
    assert!(err.to_string().contains("label -1 at sample 1"), "{err}");
    let y = ("y", Dtype::BF16, vec![3], vec![0u8; 6]);
    let (_d, path) = safetensors_file(vec![x_tensor(), y]);
    let err = Dataset::from_safetensors(&path).unwrap_err();
    assert!(
        err.to_string().contains("`y`") && err.to_string().contains("d.safetensors"),
        "{err}"
    );
}

#[test]
fn safetensors_missing_y() {
    let (_d, path) = safetensors_file(vec![x_tensor()]);
    match Dataset::from_safetensors(&path).unwrap_err() {
        Error::MissingTensor { name, context } => {
            assert_eq!(name, "y");
            assert!(context.contains("d.safetensors"));
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn safetensors_length_mismatch_names_file() {
    let y = ("y", Dtype::U8, vec![2], vec![0u8, 1]);
    let (_d, path) = safetensors_file(vec![x_tensor(), y]);
    let err = Dataset::from_safetensors(&path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("x has 3 samples but y has 2") && msg.contains("d.safetensors"),
        "{msg}"
    );
}

#[test]
fn safetensors_damaged_bytes_error_not_panic() {
    let y = (
        "y",
        Dtype::U32,
        vec![3],
        le_bytes(&[0u32, 1, 2], u32::to_le_bytes),
    );
    let (_d, path) = safetensors_file(vec![x_tensor(), y]);
    let good = std::fs::read(&path).unwrap();
    let mut damaged: Vec<Vec<u8>> = (0..good.len())
        .step_by(7)
        .map(|n| good[..n].to_vec())
        .collect();
    // A header length pointing past the end, a garbage header, and a huge header length.
    damaged.push([&20u64.to_le_bytes()[..], b"{not json at all!!!}"].concat());
    damaged.push([&8u64.to_le_bytes()[..], b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"].concat());
    damaged.push(u64::MAX.to_le_bytes().to_vec());
    for bytes in damaged {
        std::fs::write(&path, &bytes).unwrap();
        match Dataset::from_safetensors(&path) {
            Err(Error::InvalidData { path: Some(p), .. }) => assert_eq!(p, path),
            other => panic!("{} bytes: expected InvalidData, got {other:?}", bytes.len()),
        }
    }
}
