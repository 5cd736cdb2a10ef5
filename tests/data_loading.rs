//! Data loading: every error case against a real file, the shipped data sets, the shuffle.

use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use wgfit::Error;
use wgfit::data::{CsvOptions, CsvTargets, Dataset, Header, Targets, epoch_permutation};

/// Writes `contents` to `name` in a fresh temp dir; the dir lives as long as the guard.
fn write(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn csv(contents: &str) -> (tempfile::TempDir, PathBuf, wgfit::Result<Dataset>) {
    let (dir, path) = write("data.csv", contents.as_bytes());
    let result = Dataset::from_csv(&path, &CsvOptions::default());
    (dir, path, result)
}

/// Asserts a DataParse error at `row`/`column` whose message names the file and contains `text`.
fn assert_parse_error(
    result: wgfit::Result<Dataset>,
    path: &Path,
    row: usize,
    column: usize,
    text: &str,
) {
    let err = result.expect_err("loading should fail");
    let msg = err.to_string();
    match err {
        Error::DataParse {
            path: p,
            row: r,
            column: c,
            reason,
        } => {
            assert_eq!((r, c), (row, column), "wrong position in: {msg}");
            assert_eq!(p, path);
            assert!(reason.contains(text), "reason {reason:?} lacks {text:?}");
        }
        other => panic!("expected DataParse, got {other:?}"),
    }
    assert!(
        msg.contains(&path.display().to_string()),
        "message lacks the file: {msg}"
    );
    assert!(
        msg.contains(&format!("row {row}")),
        "message lacks the row: {msg}"
    );
}

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

// ---- CSV happy paths -----------------------------------------------------------------------

#[test]
fn csv_loads_with_header_blank_lines_and_crlf() {
    let (_d, _p, ds) = csv("a,b,label\r\n1, 2 ,0\r\n\r\n3,4,1.0\r\n");
    let ds = ds.unwrap();
    assert_eq!((ds.len(), ds.features()), (2, 2));
    assert_eq!(ds.x(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(ds.targets(), &Targets::Classes(vec![0, 1]));
}

#[test]
fn csv_value_targets() {
    let (_d, path) = write("r.csv", b"1,2,0.5,1.5\n3,4,2.5,3.5\n");
    let opts = CsvOptions {
        header: Header::No,
        targets: CsvTargets::Values(2),
    };
    let ds = Dataset::from_csv(&path, &opts).unwrap();
    assert_eq!(ds.features(), 2);
    assert_eq!(ds.target_cols(), 2);
    assert_eq!(ds.targets_f32(), vec![0.5, 1.5, 2.5, 3.5]);
}

#[test]
fn gz_loads_identically_to_plain() {
    let text = b"x1,x2,y\n0.5,1,2\n-3,4e1,0\n";
    let (_d1, plain) = write("a.csv", text);
    // A misleading extension on purpose: gzip is detected by its magic bytes.
    let (_d2, gz) = write("a.csv", &gzip(text));
    let a = Dataset::from_csv(&plain, &CsvOptions::default()).unwrap();
    let b = Dataset::load(&gz, &CsvOptions::default()).unwrap();
    assert_eq!(a.x(), b.x());
    assert_eq!(a.targets(), b.targets());
    assert_eq!(a.content_hash(), b.content_hash());
}

// ---- CSV errors ----------------------------------------------------------------------------

#[test]
fn ragged_row_names_row_and_counts() {
    let (_d, path, r) = csv("1,2,0\n3,4,1\n\n5,6,7,1\n");
    assert_parse_error(r, &path, 4, 0, "expected 3 columns, found 4");
}

#[test]
fn non_number_names_row_column_and_text() {
    let (_d, path, r) = csv("1,2,0\n3,abc,1\n");
    assert_parse_error(r, &path, 2, 2, "\"abc\"");
}

#[test]
fn nan_is_rejected() {
    let (_d, path, r) = csv("h1,h2,y\n1,2,0\n3,NaN,1\n");
    assert_parse_error(r, &path, 3, 2, "not finite");
    let (_d, path, r) = csv("nan,2,0\n");
    assert_parse_error(r, &path, 1, 1, "not finite");
}

#[test]
fn infinity_is_rejected() {
    let (_d, path, r) = csv("1,inf,0\n");
    assert_parse_error(r, &path, 1, 2, "not finite");
    // Finite text beyond f32's range is not finite either.
    let (_d, path, r) = csv("1,2,0\n-1e39,2,0\n");
    assert_parse_error(r, &path, 2, 1, "not finite");
}

#[test]
fn negative_label_is_rejected() {
    let (_d, path, r) = csv("1,2,0\n3,4,-1\n");
    assert_parse_error(r, &path, 2, 3, "negative");
}

#[test]
fn fractional_label_is_rejected() {
    let (_d, path, r) = csv("1,2,0\n3,4,2.5\n");
    assert_parse_error(r, &path, 2, 3, "not an integer");
}

#[test]
fn too_few_columns_is_rejected() {
    let (_d, path) = write("r.csv", b"1,2\n");
    let opts = CsvOptions {
        header: Header::No,
        targets: CsvTargets::Values(2),
    };
    assert_parse_error(
        Dataset::from_csv(&path, &opts),
        &path,
        1,
        0,
        "at least 3 columns",
    );
}

#[test]
fn empty_file_is_empty_data() {
    for contents in ["", "\n\n  \n"] {
        let (_d, path, r) = csv(contents);
        match r {
            Err(Error::EmptyData { path: p }) => assert_eq!(p, path),
            other => panic!("expected EmptyData, got {other:?}"),
        }
    }
}

#[test]
fn header_only_file_is_empty_data() {
    let (_d, path, r) = csv("a,b,label\n");
    let err = r.unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()));
    assert!(matches!(err, Error::EmptyData { .. }), "{err:?}");
}

#[test]
fn missing_file_is_data_io_with_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.csv");
    let err = Dataset::load(&path, &CsvOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nope.csv"), "{err}");
    match err {
        Error::DataIo { path: p, source } => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected DataIo, got {other:?}"),
    }
}

#[test]
fn gz_bad_row_reports_the_right_row() {
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&format!("{i},{},{}\n", i * 2, i % 3));
    }
    text.push_str("1,oops,0\n");
    let (_d, path) = write("bad.csv.gz", &gzip(text.as_bytes()));
    assert_parse_error(
        Dataset::from_csv(&path, &CsvOptions::default()),
        &path,
        501,
        2,
        "\"oops\"",
    );
}

#[test]
fn invalid_utf8_is_a_parse_error() {
    let (_d, path) = write("u.csv", b"1,2,0\n1,\xff\xfe,0\n");
    assert_parse_error(
        Dataset::from_csv(&path, &CsvOptions::default()),
        &path,
        2,
        2,
        "UTF-8",
    );
}

#[test]
fn over_long_line_is_rejected() {
    // 17 MiB on one line, after a good first line.
    let mut text = b"1,2,0\n".to_vec();
    text.resize(text.len() + 17 * 1024 * 1024, b'1');
    text.extend_from_slice(b",2,0\n");
    let (_d, path) = write("long.csv", &text);
    assert_parse_error(
        Dataset::from_csv(&path, &CsvOptions::default()),
        &path,
        2,
        0,
        "longer than 16 MiB",
    );
}

// ---- In-memory validation and model checks -------------------------------------------------

#[test]
fn length_mismatch_names_both_counts() {
    let err = Dataset::classification(vec![1.0; 6], 2, vec![0, 1]).unwrap_err();
    assert!(matches!(err, Error::InvalidData { .. }), "{err:?}");
    assert!(
        err.to_string().contains("x has 3 samples but y has 2"),
        "{err}"
    );
    let err = Dataset::regression(vec![1.0; 6], 3, vec![0.0; 6], 2).unwrap_err();
    assert!(
        err.to_string().contains("x has 2 samples but y has 3"),
        "{err}"
    );
}

#[test]
fn non_finite_in_memory_names_sample_and_feature() {
    let err = Dataset::classification(vec![1.0, 2.0, 3.0, f32::NAN], 2, vec![0, 1]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidData { .. }));
    assert!(
        msg.contains("sample 1") && msg.contains("feature 1") && msg.contains("NaN"),
        "{msg}"
    );
}

#[test]
fn label_out_of_range_via_check_model() {
    let (_d, _p, ds) = csv("1,2,0\n3,4,5\n5,6,9\n");
    let err = ds.unwrap().check_model(2, 5).unwrap_err();
    match err {
        Error::LabelOutOfRange {
            sample,
            label,
            classes,
        } => assert_eq!((sample, label, classes), (1, 5, 5)),
        other => panic!("expected LabelOutOfRange, got {other:?}"),
    }
}

#[test]
fn width_mismatch_via_check_model() {
    let (_d, _p, ds) = csv("1,2,0\n3,4,1\n");
    let ds = ds.unwrap();
    ds.check_model(2, 2).unwrap();
    match ds.check_model(3, 2).unwrap_err() {
        Error::Shape {
            what,
            expected,
            got,
        } => {
            assert_eq!(what, "input features");
            assert_eq!((expected, got), (vec![3], vec![2]));
        }
        other => panic!("expected Shape, got {other:?}"),
    }
    let reg = Dataset::regression(vec![0.0; 4], 2, vec![0.0; 4], 2).unwrap();
    reg.check_model(2, 2).unwrap();
    assert!(matches!(reg.check_model(2, 3), Err(Error::Shape { .. })));
    let broadcast = Dataset::regression(vec![0.0; 4], 2, vec![0.0; 2], 1).unwrap();
    broadcast.check_model(2, 7).unwrap();
}

#[test]
fn split_tail_sizes() {
    let x: Vec<f32> = (0..20).map(|v| v as f32).collect();
    let labels: Vec<u32> = (0..10).collect();
    let ds = Dataset::classification(x, 2, labels).unwrap();
    let (train, val) = ds.split_tail(0.2).unwrap();
    assert_eq!((train.len(), val.len()), (8, 2));
    assert_eq!(val.x(), &[16.0, 17.0, 18.0, 19.0]);
    assert_eq!(val.targets(), &Targets::Classes(vec![8, 9]));
    for bad in [0.0, 1.0, -0.5, f64::NAN, 0.01, 0.99] {
        assert!(
            matches!(ds.split_tail(bad), Err(Error::Config { .. })),
            "fraction {bad}"
        );
    }
}

#[test]
fn content_hash_changes_with_one_value() {
    let a = Dataset::classification(vec![1.0, 2.0, 3.0, 4.0], 2, vec![0, 1]).unwrap();
    let b = Dataset::classification(vec![1.0, 2.0, 3.0, 4.5], 2, vec![0, 1]).unwrap();
    let c = Dataset::classification(vec![1.0, 2.0, 3.0, 4.0], 2, vec![0, 0]).unwrap();
    let d = Dataset::classification(vec![1.0, 2.0, 3.0, 4.0], 4, vec![0]).unwrap();
    assert_eq!(a.content_hash(), a.clone().content_hash());
    for other in [&b, &c, &d] {
        assert_ne!(a.content_hash(), other.content_hash());
    }
}

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

// ---- Shipped data sets ---------------------------------------------------------------------

#[test]
fn repo_digits_loads() {
    let ds = Dataset::load(repo_file("digits.csv.gz"), &CsvOptions::default()).unwrap();
    assert_eq!((ds.len(), ds.features()), (1797, 64));
    let Targets::Classes(labels) = ds.targets() else {
        panic!("digits has class labels")
    };
    let mut seen = [false; 10];
    labels.iter().for_each(|&l| seen[l as usize] = true);
    assert!(seen.iter().all(|&s| s));
    ds.check_model(64, 10).unwrap();
}

#[test]
fn repo_iris_loads_with_auto_header() {
    let opts = CsvOptions {
        header: Header::Auto,
        ..Default::default()
    };
    let ds = Dataset::from_csv(repo_file("iris.csv"), &opts).unwrap();
    assert_eq!((ds.len(), ds.features()), (150, 4));
    let Targets::Classes(labels) = ds.targets() else {
        panic!("iris has class labels")
    };
    assert_eq!(labels.iter().max(), Some(&2));
    assert!((0..3).all(|c| labels.contains(&c)));
}

// ---- Shuffle -------------------------------------------------------------------------------

#[test]
fn epoch_permutation_is_a_stable_permutation() {
    for n in [0, 1, 2, 10, 1000] {
        let mut p = epoch_permutation(7, 3, n);
        assert_eq!(p, epoch_permutation(7, 3, n));
        p.sort_unstable();
        assert_eq!(p, (0..n as u32).collect::<Vec<_>>());
    }
    let base = epoch_permutation(42, 0, 100);
    assert_ne!(base, epoch_permutation(42, 1, 100));
    assert_ne!(base, epoch_permutation(43, 0, 100));
}

#[test]
fn epoch_permutation_golden_values() {
    // Computed once from this implementation; a change means resumed runs would see
    // different batches than the original run.
    assert_eq!(epoch_permutation(42, 0, 10), GOLDEN_42_0_10);
}

const GOLDEN_42_0_10: [u32; 10] = [1, 5, 9, 6, 3, 2, 0, 8, 4, 7];
