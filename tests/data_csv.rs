//! CSV loading: every error case against a real file, and the shipped data sets.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::data_files::{csv, write};
use wgfit::Error;
use wgfit::data::{CsvOptions, CsvTargets, Dataset, Header, Targets};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
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

/// A first line is taken for a header only when it looks like one: a missing-value marker
/// makes it data (reported, not dropped), and a guessed header must have the data's width.
#[test]
fn a_first_row_is_not_dropped_as_a_header_it_cannot_be() {
    let (_d, path, r) = csv("0.1,NA,1\n0.3,0.4,0\n0.5,0.6,1\n");
    assert_parse_error(r, &path, 1, 2, "not a number");
    let (_d, path, r) = csv("a,b,c,d,e\n0.3,0.4,0\n0.5,0.6,1\n");
    assert_parse_error(r, &path, 1, 0, "it has 5 fields, but row 2 has 3");
    // A header of the data's width is still found, with numbers among its names (iris's).
    let (_d, _path, r) = csv("150,4,label\n0.3,0.4,0\n0.5,0.6,1\n");
    assert_eq!(r.unwrap().len(), 2);
    // Said to be a header, it is skipped whatever its width.
    let (_d, path) = write("h.csv", b"a,b,c,d\n0.3,0.4,0\n");
    let options = CsvOptions {
        header: Header::Yes,
        ..CsvOptions::default()
    };
    assert_eq!(Dataset::from_csv(&path, &options).unwrap().len(), 1);
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

#[test]
fn loading_reports_its_progress_up_to_the_whole_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("p.csv");
    let text: String = (0..10_000)
        .map(|i| format!("{i},{},{}\n", i * 2, i % 3))
        .collect();
    std::fs::write(&path, &text).unwrap();
    let mut seen = Vec::new();
    let data =
        wgfit::Dataset::from_csv_with_progress(&path, &Default::default(), |read| seen.push(read))
            .unwrap();
    assert_eq!(data.len(), 10_000);
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "it only moves forward"
    );
    assert!(seen.len() >= 3, "it reports along the way: {seen:?}");
    assert_eq!(seen.last(), Some(&(text.len() as u64)));
}
