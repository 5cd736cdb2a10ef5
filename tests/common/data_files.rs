//! Data files written to temporary directories for the data-loading tests.

use std::path::PathBuf;

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
