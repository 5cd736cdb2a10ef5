//! The content-hash cache beside a mapped data file (`<file>.wgfit-cache`): it may spare a
//! resume a pass over the file, but never at the price of training on, or resuming with,
//! data other than what the file holds now. A changed label file, an in-place edit with the
//! modification time set back, and a file changed a moment ago are all read again.

mod common;

use common::data_files::npy;
use std::path::Path;
use std::time::Duration;
use wgfit::data::convert_csv;
use wgfit::{CsvOptions, Dataset, Error};

/// Longer than the age a file must reach before its stamp is trusted (a change within the
/// filesystem's timestamp granularity of the stamp would go unseen).
const SETTLE: Duration = Duration::from_millis(2100);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `bytes` over the start of `path` at `offset`, then sets its modification time back
/// to what it was (as `rsync -t`, `cp -p` or `tar` do): size and mtime say "unchanged".
fn edit_keeping_mtime(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut file = std::fs::File::options().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

#[test]
fn a_changed_label_file_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let x: Vec<f32> = (0..12).map(|i| i as f32 / 4.0).collect();
    let (x_path, y_path) = (tmp.path().join("trainx.npy"), tmp.path().join("trainy.npy"));
    npy(&x_path, "<f4", "(6, 2)", false, &f32_bytes(&x));
    npy(
        &y_path,
        "<i8",
        "(6,)",
        false,
        &i64_bytes(&[0, 1, 2, 0, 1, 2]),
    );
    std::thread::sleep(SETTLE);
    let first = Dataset::from_npy(&x_path).unwrap();
    let first_hash = first.content_hash();
    assert!(tmp.path().join("trainx.npy.wgfit-cache").exists());

    // Other labels, same size, the mtime set back: the hash must be that of the new data.
    let new_labels = [2u32, 2, 2, 1, 1, 1];
    let y: Vec<i64> = new_labels.iter().map(|&l| i64::from(l)).collect();
    let header_len = std::fs::read(&y_path).unwrap().len() - 6 * 8;
    edit_keeping_mtime(&y_path, header_len as u64, &i64_bytes(&y));
    let again = Dataset::from_npy(&x_path).unwrap();
    let truth = Dataset::classification(x, 2, new_labels.to_vec()).unwrap();
    assert_eq!(again.targets(), truth.targets());
    assert_ne!(again.content_hash(), first_hash, "a stale hash was used");
    assert_eq!(again.content_hash(), truth.content_hash());
}

#[test]
fn an_edit_with_the_mtime_set_back_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("d.csv"), tmp.path().join("d.st"));
    std::fs::write(&input, "1,2,0\n3,4,1\n5,6,2\n").unwrap();
    convert_csv(&input, &output, &CsvOptions::default(), 1.0, |_| {}).unwrap();
    std::thread::sleep(SETTLE);
    let clean = Dataset::from_safetensors(&output).unwrap();
    assert!(tmp.path().join("d.st.wgfit-cache").exists());

    // A NaN in place of x[0][0] (the inputs start after the 8-byte length and the header).
    let header = u64::from_le_bytes(std::fs::read(&output).unwrap()[..8].try_into().unwrap());
    edit_keeping_mtime(&output, 8 + header, &f32::NAN.to_le_bytes());
    let err = Dataset::from_safetensors(&output).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidData { reason, .. } if reason.contains("not finite")),
        "{err}"
    );

    // Put back as it was, still with the old mtime: read again, the same data set.
    edit_keeping_mtime(&output, 8 + header, &1f32.to_le_bytes());
    let back = Dataset::from_safetensors(&output).unwrap();
    assert_eq!(back.content_hash(), clean.content_hash());
}

#[test]
fn a_file_changed_a_moment_ago_is_not_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, converted) = (tmp.path().join("d.csv"), tmp.path().join("c.st"));
    std::fs::write(&input, "1,2,0\n3,4,1\n").unwrap();
    convert_csv(&input, &converted, &CsvOptions::default(), 1.0, |_| {}).unwrap();
    // Written and loaded at once: too soon to vouch for the stamp.
    let output = tmp.path().join("d.st");
    std::fs::write(&output, std::fs::read(&converted).unwrap()).unwrap();
    Dataset::from_safetensors(&output).unwrap();
    assert!(!tmp.path().join("d.st.wgfit-cache").exists());
    std::thread::sleep(SETTLE);
    Dataset::from_safetensors(&output).unwrap();
    assert!(tmp.path().join("d.st.wgfit-cache").exists());
}
