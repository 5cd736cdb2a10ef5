//! Data files written to temporary directories for the data-loading tests.

use std::path::{Path, PathBuf};

use wgfit::data::{CsvOptions, Dataset};

/// Writes `contents` to `name` in a fresh temp dir; the dir lives as long as the guard.
pub fn write(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

/// Writes `contents` as a CSV file and loads it with the default options.
pub fn csv(contents: &str) -> (tempfile::TempDir, PathBuf, wgfit::Result<Dataset>) {
    let (dir, path) = write("data.csv", contents.as_bytes());
    let result = Dataset::from_csv(&path, &CsvOptions::default());
    (dir, path, result)
}

/// Writes an `.npy` file (format 1.0) of `descr` (e.g. `<f4`) and `shape` (e.g. `(90, 6)`)
/// holding `data`, in Fortran order when `fortran`.
pub fn npy(path: &Path, descr: &str, shape: &str, fortran: bool, data: &[u8]) {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    // NumPy pads the header with spaces and a newline so the data starts at a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}
