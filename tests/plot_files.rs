//! `wgfit::plot::Curves::read`: every form of history file (`--history` JSON old and new,
//! CSV, Keras's CSVLogger) reads as the same curves, events come from the file or the backup
//! directory, and what cannot be read is named with the place of the fault. No GPU is needed.

mod common;

use common::plot_run::*;

use wgfit::plot::{Curves, MarkKind};
use wgfit::{Error, EventKind};

#[test]
fn every_file_form_reads_as_the_same_curves() {
    let dir = tempfile::tempdir().unwrap();
    let backup = backup_dir(dir.path());
    let expected = curves();

    // The current form carries its own events.
    let new_json = format!(
        "{{\"epochs\": {}, \"events\": {}}}\n",
        json_rows(),
        events_json()
    );
    let path = write(dir.path(), "history.json", &new_json);
    assert_eq!(Curves::read(&path, None).unwrap(), expected, "new JSON");

    // The others take the events of the backup directory; the extension says nothing.
    for (name, text) in [
        ("old.json", json_rows()),
        ("history.csv", wgfit_csv()),
        ("keras.log", keras_csv()),
        ("tabs.txt", wgfit_csv().replace(',', "\t")),
    ] {
        let path = write(dir.path(), name, &text);
        assert_eq!(
            Curves::read(&path, Some(&backup)).unwrap(),
            expected,
            "{name}:\n{text}"
        );
        let without = Curves::read(&path, None).unwrap();
        assert_eq!(without.panels(), expected.panels(), "{name}");
        assert_eq!(without.count(MarkKind::Resumed), 0, "{name}");
    }
}

#[test]
fn events_in_the_file_win_over_the_backup_directory() {
    let dir = tempfile::tempdir().unwrap();
    let backup = backup_dir(dir.path());
    let own = format!(
        "{{\"epochs\": {}, \"events\": [{}]}}",
        json_rows(),
        serde_json::to_string(&event(EventKind::Fallback, 1, 6)).unwrap()
    );
    let path = write(dir.path(), "h.json", &own);
    let c = Curves::read(&path, Some(&backup)).unwrap();
    let marks: Vec<(MarkKind, f64)> = c.marks().iter().map(|m| (m.kind, m.x)).collect();
    assert_eq!(
        marks,
        [(MarkKind::Fallback, 1.5), (MarkKind::LearningRate, 3.0)]
    );
}

/// The error of reading `text` as a history, as text.
fn read_error(name: &str, text: &str) -> (Error, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, text);
    let e = Curves::read(&path, None).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(name),
        "the error names the file: {message}"
    );
    (e, message)
}

#[test]
fn malformed_files_are_refused_with_the_place_of_the_fault() {
    let (e, m) = read_error("bad.csv", "epoch,loss\n0,0.5\n1,0.4x\n");
    assert!(
        matches!(
            e,
            Error::DataParse {
                row: 3,
                column: 2,
                ..
            }
        ),
        "{m}"
    );
    assert!(m.contains("row 3") && m.contains("`0.4x`"), "{m}");

    let (e, m) = read_error("keras.csv", "epoch;loss\n0;0.5\n1;0,4\n");
    assert!(matches!(e, Error::DataParse { row: 3, .. }), "{m}");

    let (e, m) = read_error("noepoch.csv", "step,loss\n0,0.5\n");
    assert!(matches!(e, Error::DataParse { row: 1, .. }), "{m}");
    assert!(
        m.contains("no `epoch` column") && m.contains("`step`"),
        "{m}"
    );

    let (e, m) = read_error("ragged.csv", "epoch,loss\n0,0.5,0.1\n");
    assert!(matches!(e, Error::DataParse { row: 2, .. }), "{m}");
    assert!(m.contains("3 fields"), "{m}");

    let (e, m) = read_error("empty.csv", "");
    assert!(matches!(e, Error::EmptyData { .. }), "{m}");
    let (e, m) = read_error("blank.csv", "\n  \n");
    assert!(matches!(e, Error::EmptyData { .. }), "{m}");
    let (e, m) = read_error("header.csv", "epoch,loss\n");
    assert!(matches!(e, Error::EmptyData { .. }), "{m}");
    let (e, m) = read_error("none.json", "[]");
    assert!(matches!(e, Error::EmptyData { .. }), "{m}");

    let (e, m) = read_error(
        "cut.json",
        "{\"epochs\": [\n  {\"epoch\": 0, \"loss\": 0.5},\n",
    );
    assert!(matches!(e, Error::InvalidData { .. }), "{m}");
    assert!(m.contains("not valid JSON") && m.contains("line 3"), "{m}");

    let (_, m) = read_error("typed.json", r#"{"epochs": [{"epoch": 0, "loss": "low"}]}"#);
    assert!(m.contains("epochs[0].loss"), "{m}");
    let (_, m) = read_error("noepoch.json", r#"[{"loss": 0.5}]"#);
    assert!(m.contains("[0] has no `epoch`"), "{m}");
    let (_, m) = read_error(
        "event.json",
        r#"{"epochs": [{"epoch": 0, "loss": 1}], "events": [{"kind": "restart"}]}"#,
    );
    assert!(m.contains("events[0]"), "{m}");

    let (e, m) = read_error("nan.csv", "epoch,loss\n0,nan\n1,inf\n");
    assert!(matches!(e, Error::InvalidData { .. }), "{m}");
    assert!(m.contains("nothing to plot"), "{m}");

    let (e, m) = read_error("binary.csv", "epoch,loss\n0,\u{0}\u{1}\n");
    assert!(matches!(e, Error::DataParse { .. }), "{m}");
}

#[test]
fn unreadable_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let e = Curves::read(&missing, None).unwrap_err();
    assert!(
        matches!(e, Error::DataIo { .. }) && e.to_string().contains("missing.csv"),
        "{e}"
    );

    let csv = write(dir.path(), "h.csv", &wgfit_csv());
    let e = Curves::read(&csv, Some(&dir.path().join("no.backup"))).unwrap_err();
    assert!(matches!(e, Error::CheckpointIo { .. }), "{e}");
    assert!(e.to_string().contains("latest.json"), "{e}");

    let backup = dir.path().join("bad.backup");
    std::fs::create_dir(&backup).unwrap();
    std::fs::write(backup.join("latest.json"), "{\"events\": [{\"kind\": 3}]}").unwrap();
    let e = Curves::read(&csv, Some(&backup)).unwrap_err();
    assert!(matches!(e, Error::CorruptCheckpoint { .. }), "{e}");
    assert!(e.to_string().contains("events[0]"), "{e}");
}
