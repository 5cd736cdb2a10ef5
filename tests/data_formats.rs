//! A data file's form is told by its content, not its name: a file `wgfit convert` wrote
//! trains under any extension, a CSV named `.safetensors` is still CSV. And a regression CSV
//! given to `wgfit train` says how to train on its float targets. A pipe, whose first bytes
//! telling its form would be lost to the read after, is refused.

use std::path::Path;
use wgfit::data::{DataFormat, convert_csv};
use wgfit::{CsvOptions, CsvTargets, Dataset, Targets};

fn wgfit(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wgfit"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// 40 rows of 3 features and one float target.
fn regression_csv(path: &Path) {
    let mut text = String::from("a,b,c,y\n");
    for r in 0..40 {
        let v = r as f32 / 40.0;
        text.push_str(&format!("{v},{},{},{}\n", 1.0 - v, v * v, 0.5 * v + 0.125));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_converted_file_is_read_as_safetensors_whatever_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    regression_csv(&tmp.path().join("reg.csv"));
    let o = wgfit(
        tmp.path(),
        &["convert", "reg.csv", "reg.st", "--targets", "1"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let st = tmp.path().join("reg.st");
    assert_eq!(DataFormat::of(&st).unwrap(), DataFormat::Safetensors);
    let d = Dataset::load(&st, &CsvOptions::default()).unwrap();
    assert!(d.is_mapped());
    assert!(matches!(d.targets(), Targets::Values { cols: 1, .. }));

    let train = wgfit(
        tmp.path(),
        &[
            "train",
            "--data",
            "reg.st",
            "--loss",
            "mse",
            "--layers",
            "4,1",
            "--epochs",
            "1",
            "--no-backup",
            "--verbose",
            "0",
        ],
    );
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );

    // And the other way round: CSV text under a safetensors name is CSV.
    let csv_named_st = tmp.path().join("text.safetensors");
    std::fs::copy(tmp.path().join("reg.csv"), &csv_named_st).unwrap();
    assert_eq!(DataFormat::of(&csv_named_st).unwrap(), DataFormat::Csv);
    let values = CsvOptions {
        targets: CsvTargets::Values(1),
        ..Default::default()
    };
    assert_eq!(Dataset::load(&csv_named_st, &values).unwrap().len(), 40);
}

#[test]
fn content_decides_the_form() {
    let st = {
        let tmp = tempfile::tempdir().unwrap();
        let (input, output) = (tmp.path().join("d.csv"), tmp.path().join("d.bin"));
        std::fs::write(&input, "1,2,0\n3,4,1\n").unwrap();
        convert_csv(&input, &output, &CsvOptions::default(), 1.0, |_| {}).unwrap();
        std::fs::read(&output).unwrap()
    };
    let of = |b: &[u8]| DataFormat::of_bytes(&b[..b.len().min(9)], b.len() as u64);
    assert_eq!(of(&st), DataFormat::Safetensors);
    assert_eq!(of(b"\x93NUMPY\x01\x00v\x00{"), DataFormat::Npy);
    assert_eq!(of(b"a,b,label\n1,2,0\n"), DataFormat::Csv);
    assert_eq!(of(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), DataFormat::Csv);
    // A header length beyond the file is not safetensors (a damaged file reads as CSV and
    // fails there, naming its first line).
    assert_eq!(of(&st[..100]), DataFormat::Csv);
    assert_eq!(of(b""), DataFormat::Csv);
}

#[test]
fn a_pipe_is_refused_not_read_twice_nor_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("d.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // No writer ever opens it: opening it to read would wait forever.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(Dataset::load(&fifo, &CsvOptions::default()).err()));
    let e = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the load waited on the pipe")
        .expect("the load of a pipe is refused");
    assert!(e.to_string().contains("a pipe or a device"), "{e}");
}

#[test]
fn a_regression_csv_says_how_to_train_on_float_targets() {
    let tmp = tempfile::tempdir().unwrap();
    regression_csv(&tmp.path().join("reg.csv"));
    let o = wgfit(
        tmp.path(),
        &[
            "train",
            "--data",
            "reg.csv",
            "--loss",
            "mse",
            "--layers",
            "4,1",
            "--epochs",
            "1",
            "--no-backup",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("row 2"), "{stderr}");
    assert!(
        stderr.contains("wgfit convert reg.csv reg.safetensors --targets N"),
        "{stderr}"
    );
    // What it says works.
    let c = wgfit(
        tmp.path(),
        &["convert", "reg.csv", "reg.safetensors", "--targets", "1"],
    );
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let t = wgfit(
        tmp.path(),
        &[
            "train",
            "--data",
            "reg.safetensors",
            "--loss",
            "mse",
            "--layers",
            "4,1",
            "--epochs",
            "1",
            "--no-backup",
            "--verbose",
            "0",
        ],
    );
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
}
