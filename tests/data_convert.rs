//! `wgfit convert` and mapped data: a CSV converted once to safetensors, in one streaming
//! pass, reads back (mapped, not copied) as the very data set the CSV gives, trains to the
//! same bits, and records its content hash beside it so a resume does not read it again.
//! A conversion killed mid-write leaves nothing once the next one ran.

mod common;

use common::data_files::npy;
use common::{bits, model, options};
use std::path::Path;
use wgfit::data::convert_csv;
use wgfit::{CsvOptions, CsvTargets, Dataset, Error};

/// A CSV of 6 features and a class label 0..2, with a header, from a fixed LCG.
fn csv(path: &Path, rows: usize) {
    let mut state = 99u64;
    let mut text = String::from("a,b,c,d,e,f,label\n");
    for r in 0..rows {
        for _ in 0..6 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(&format!("{},", (state >> 40) as f32 / (1u64 << 24) as f32));
        }
        text.push_str(&format!("{}\n", r % 3));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_converted_file_is_the_csv_data_set_mapped() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("d.csv"), tmp.path().join("d.safetensors"));
    csv(&input, 90);
    let c = convert_csv(&input, &output, &CsvOptions::default(), 1.0, |_| {}).unwrap();
    assert_eq!((c.samples, c.features, c.classes), (90, 6, true));
    assert_eq!(c.bytes, std::fs::metadata(&output).unwrap().len());
    let from_csv = Dataset::from_csv(&input, &CsvOptions::default()).unwrap();
    let mapped = Dataset::from_safetensors(&output).unwrap();
    assert!(mapped.is_mapped() && !from_csv.is_mapped());
    assert_eq!(mapped.x(), from_csv.x());
    assert_eq!(mapped.targets(), from_csv.targets());
    assert_eq!(mapped.content_hash(), from_csv.content_hash());

    // Training on the mapped file gives the bits training on the CSV gives.
    let (mut a, mut b) = (model(), model());
    a.fit(&from_csv, options(2), &mut []).unwrap();
    b.fit(&mapped, options(2), &mut []).unwrap();
    assert_eq!(bits(&a), bits(&b));

    // Float targets (the last two columns) and a scale.
    let regression = CsvOptions {
        targets: CsvTargets::Values(2),
        ..Default::default()
    };
    let out2 = tmp.path().join("r.safetensors");
    let c = convert_csv(&input, &out2, &regression, 0.5, |_| {}).unwrap();
    assert_eq!((c.features, c.target_cols, c.classes), (5, 2, false));
    let csv_data = Dataset::from_csv(&input, &regression).unwrap();
    let r = Dataset::from_safetensors(&out2).unwrap();
    let halved: Vec<f32> = csv_data.x().iter().map(|v| v * 0.5).collect();
    assert_eq!(r.x(), &halved[..]);
    assert_eq!(r.targets(), csv_data.targets());
}

#[test]
fn a_bad_row_names_its_place_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("d.csv"), tmp.path().join("d.safetensors"));
    std::fs::write(&input, "1,2,0\n3,4,1\n5,x,2\n").unwrap();
    let err = convert_csv(&input, &output, &CsvOptions::default(), 1.0, |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DataParse {
                row: 3,
                column: 2,
                ..
            }
        ),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the input remains: {left:?}");
    // An empty file and a missing one are named too.
    std::fs::write(&input, "a,b,label\n").unwrap();
    let err = convert_csv(&input, &output, &CsvOptions::default(), 1.0, |_| {}).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    let err = convert_csv(
        &tmp.path().join("nope.csv"),
        &output,
        &CsvOptions::default(),
        1.0,
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope.csv"), "{err}");
}

#[test]
fn the_content_hash_is_read_once_and_kept_beside_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("d.csv"), tmp.path().join("d.safetensors"));
    csv(&input, 30);
    convert_csv(&input, &output, &CsvOptions::default(), 1.0, |_| {}).unwrap();
    let cache = tmp.path().join("d.safetensors.wgfit-cache");
    // A stamp is recorded once the file's last change is 2 s old (tests/data_cache.rs).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let right = Dataset::from_safetensors(&output).unwrap().content_hash();
    // The cache is what a load believes for the same file: a recorded hash is used as it is.
    let text = std::fs::read_to_string(&cache).unwrap();
    let hex: String = right.iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&hex), "{text}");
    std::fs::write(&cache, text.replace(&hex, &"ab".repeat(32))).unwrap();
    assert_eq!(
        Dataset::from_safetensors(&output).unwrap().content_hash(),
        [0xab; 32]
    );
    // A file changed since (another modification time) is read again.
    let file = std::fs::File::options().write(true).open(&output).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    assert_eq!(
        Dataset::from_safetensors(&output).unwrap().content_hash(),
        right
    );
}

#[test]
fn wgfit_convert_then_train_on_the_mapped_file_streamed() {
    let tmp = tempfile::tempdir().unwrap();
    csv(&tmp.path().join("d.csv"), 300);
    let wgfit = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wgfit"))
            .current_dir(tmp.path())
            .args(args)
            .output()
            .unwrap()
    };
    let o = wgfit(&["convert", "d.csv", "d.safetensors", "--scale", "0.5"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.starts_with("wrote d.safetensors: 300 samples x 6 features, class labels ("),
        "{stdout}"
    );
    let train = [
        "train",
        "--layers",
        "8,3",
        "--epochs",
        "2",
        "--no-backup",
        "--verbose",
        "2",
    ];
    let mapped = wgfit(
        &[
            &train[..],
            &["--data", "d.safetensors", "--data-on", "host"],
            &["--output", "a.safetensors"],
        ]
        .concat(),
    );
    assert!(
        mapped.status.success(),
        "{}",
        String::from_utf8_lossy(&mapped.stderr)
    );
    assert!(String::from_utf8_lossy(&mapped.stdout).contains("streamed from host memory"));
    let parsed = wgfit(
        &[
            &train[..],
            &["--data", "d.csv", "--scale", "0.5", "--data-on", "gpu"],
            &["--output", "b.safetensors"],
        ]
        .concat(),
    );
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    // The same parameters, bit for bit (the files' records differ: b's inputs were scaled by
    // training's --scale, a's by convert's).
    let read = |n: &str| {
        wgfit::checkpoint::read_tensors(&tmp.path().join(n))
            .unwrap()
            .into_iter()
            .map(|t| {
                (
                    t.name,
                    t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(
        read("a.safetensors") == read("b.safetensors"),
        "the same bits"
    );

    let same = wgfit(&["convert", "d.csv", "d.csv"]);
    assert_eq!(same.status.code(), Some(2));
    let missing = wgfit(&["convert", "nope.csv", "n.safetensors"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.csv"));
}

#[test]
fn an_npy_pair_reads_as_the_same_data_set_mapped() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = common::data();
    let x: Vec<u8> = expected.x().iter().flat_map(|v| v.to_le_bytes()).collect();
    let labels: Vec<u8> = (0..90i64).flat_map(|i| (i % 3).to_le_bytes()).collect();
    npy(&tmp.path().join("train_x.npy"), "<f4", "(90, 6)", false, &x);
    npy(
        &tmp.path().join("train_y.npy"),
        "<i8",
        "(90,)",
        false,
        &labels,
    );
    let d = Dataset::load(tmp.path().join("train_x.npy"), &CsvOptions::default()).unwrap();
    assert!(d.is_mapped());
    assert_eq!(d.x(), expected.x());
    assert_eq!(d.targets(), expected.targets());
    assert_eq!(d.content_hash(), expected.content_hash());

    // f64 inputs are decoded (not mapped) to the same values.
    let x64: Vec<u8> = expected
        .x()
        .iter()
        .flat_map(|v| f64::from(*v).to_le_bytes())
        .collect();
    npy(&tmp.path().join("x.npy"), "<f8", "(90, 6)", false, &x64);
    npy(&tmp.path().join("y.npy"), "<i8", "(90,)", false, &labels);
    let d = Dataset::from_npy(tmp.path().join("x.npy")).unwrap();
    assert!(!d.is_mapped());
    assert_eq!(d.x(), expected.x());

    // What cannot be read is named.
    let err = |f: &str| {
        Dataset::from_npy(tmp.path().join(f))
            .unwrap_err()
            .to_string()
    };
    npy(&tmp.path().join("fx.npy"), "<f4", "(90, 6)", true, &x);
    npy(&tmp.path().join("fy.npy"), "<i8", "(90,)", false, &labels);
    assert!(err("fx.npy").contains("Fortran order"), "{}", err("fx.npy"));
    npy(&tmp.path().join("sx.npy"), "<f4", "(91, 6)", false, &x);
    npy(&tmp.path().join("sy.npy"), "<i8", "(90,)", false, &labels);
    assert!(
        err("sx.npy").contains("needs 2184 bytes"),
        "{}",
        err("sx.npy")
    );
    assert!(err("nx.npy").contains("nx.npy"), "{}", err("nx.npy"));
    std::fs::write(tmp.path().join("data.npy"), b"\x93NUMPY").unwrap();
    assert!(
        err("data.npy").contains("`<name>x.npy`"),
        "{}",
        err("data.npy")
    );
    npy(&tmp.path().join("ux.npy"), "<f4", "(90, 6)", false, &x);
    npy(&tmp.path().join("uy.npy"), "<c8", "(90,)", false, &labels);
    assert!(
        err("ux.npy").contains("\"<c8\" is not supported"),
        "{}",
        err("ux.npy")
    );
}

/// The names in `dir`, sorted, but for hash caches (recorded or not, as the clock has it).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".wgfit-cache"))
        .collect();
    names.sort();
    names
}

/// `wgfit convert INPUT out.st` in `dir`, reading its input from the named pipe `input`: it
/// converts what the pipe gives and waits for more. Returns it with the pipe's write end.
/// Each conversion gets a pipe of its own: what one left unread in a pipe could otherwise
/// reach the next reader (while a child another test forks holds a copy of the write end).
fn convert_from_pipe(dir: &Path, input: &str) -> (std::process::Child, std::fs::File) {
    let fifo = dir.join(input);
    if !fifo.exists() {
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wgfit"))
        .current_dir(dir)
        .args(["convert", input, "out.st"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the write end waits for the conversion to open the read end.
    let pipe = std::fs::File::options().write(true).open(&fifo).unwrap();
    (child, pipe)
}

/// Waits until a conversion's temporary in `dir` other than `known` holds at least `bytes`.
fn wait_for_temporary(dir: &Path, known: &[String], bytes: u64) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let found = names_in(dir).into_iter().find(|n| {
            n.starts_with(".wgfit-convert-")
                && !known.contains(n)
                && std::fs::metadata(dir.join(n)).is_ok_and(|m| m.len() >= bytes)
        });
        if let Some(name) = found {
            return name;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn a_conversion_killed_mid_write_leaves_nothing_once_the_next_one_ran() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 2 MiB of rows: more than the writer buffers, so the temporary has data on disk.
    let rows = "0.5,0.25,1\n".repeat(200_000);

    let (mut killed, mut pipe) = convert_from_pipe(dir, "in.csv");
    pipe.write_all(rows.as_bytes()).unwrap();
    let left = wait_for_temporary(dir, &[], 1 << 20);
    killed.kill().unwrap(); // SIGKILL: no handler runs, nothing is cleaned up.
    killed.wait().unwrap();
    drop(pipe);
    assert!(dir.join(&left).exists(), "the kill left {left}");

    // A live conversion to the same name (waiting on its pipe) keeps its temporary.
    let (mut live, mut live_pipe) = convert_from_pipe(dir, "live.csv");
    if let Err(e) = live_pipe.write_all(rows.as_bytes()) {
        let out = live.wait_with_output().unwrap();
        panic!(
            "{e}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let live_temporary = wait_for_temporary(dir, std::slice::from_ref(&left), 1 << 20);

    std::fs::write(dir.join("other.csv"), "1,2,0\n3,4,1\n").unwrap();
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_wgfit"))
        .current_dir(dir)
        .args(["convert", "other.csv", "out.st"])
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let names = names_in(dir);
    assert!(
        !names.contains(&left),
        "the killed one's is gone: {names:?}"
    );
    assert!(
        names.contains(&live_temporary),
        "the live one's stays: {names:?}"
    );

    // The live one finishes as if nothing happened.
    drop(live_pipe);
    assert!(live.wait().unwrap().success());
    assert_eq!(names_in(dir), ["in.csv", "live.csv", "other.csv", "out.st"]);
    assert_eq!(
        Dataset::from_safetensors(dir.join("out.st")).unwrap().len(),
        200_000
    );
}

#[cfg(unix)]
#[test]
fn a_conversion_stopped_by_sigterm_removes_its_temporary() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut stopped, mut pipe) = convert_from_pipe(dir, "in.csv");
    pipe.write_all("0.5,0.25,1\n".repeat(200_000).as_bytes())
        .unwrap();
    wait_for_temporary(dir, &[], 1 << 20);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &stopped.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(stopped.wait().unwrap().code(), Some(128 + 15));
    drop(pipe);
    assert_eq!(names_in(dir), ["in.csv"]);
}
