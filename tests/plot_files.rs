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

// ---- hostile inputs: no hang, no panic, nothing drawn silently wrong ----

/// The numbers of attribute `name` (`points="x,y x,y"`, `cx="3"`) everywhere in `svg`.
fn attr_numbers(svg: &str, name: &str) -> Vec<f64> {
    let key = format!(" {name}=\"");
    svg.match_indices(&key)
        .flat_map(|(i, _)| {
            let rest = &svg[i + key.len()..];
            rest[..rest.find('"').unwrap()]
                .split([' ', ','])
                .filter(|t| !t.is_empty())
                .map(|t| t.parse::<f64>().unwrap_or(f64::NAN))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The texts of the `<text>` elements with `text-anchor="ANCHOR"` in the frames of `svg`:
/// the value labels (`end`) or the epoch labels and axis title (`middle`).
fn frame_labels(svg: &str, anchor: &str) -> Vec<String> {
    svg.split("<g class=\"wgfit-frame\"")
        .skip(1)
        .flat_map(|frame| {
            let frame = &frame[..frame.find("</g>").unwrap()];
            frame
                .split("<text")
                .skip(1)
                .filter(|t| t.contains(&format!("text-anchor=\"{anchor}\"")))
                .map(|t| {
                    t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]
                        .trim()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Reads and draws `text` as a history, bounded in time; returns the SVG.
fn draw_file(name: &'static str, text: String) -> String {
    bounded(name, 60, move || {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), name, &text);
        let curves = Curves::read(&path, None).unwrap();
        let panels = curves.panels().len() as u32;
        wgfit::plot::render_svg(&curves, 900, 300 * panels).unwrap()
    })
}

#[test]
fn extreme_values_and_epochs_are_drawn_in_bounded_time_with_labels_that_differ() {
    let late = wgfit::plot::MAX_EPOCH - 3;
    let cases: [(&'static str, usize, Vec<f64>); 9] = [
        ("huge.csv", 0, vec![1e308, -1e308]),
        ("max.csv", 0, vec![f64::MAX, f64::MAX]),
        ("min_max.csv", 0, vec![f64::MIN, f64::MAX]),
        ("subnormal.csv", 0, vec![5e-324, 1e-323]),
        ("near.csv", 0, vec![1.0, 1.0000000000000002]),
        ("constant.csv", 0, vec![0.5; 5]),
        ("single.csv", 0, vec![0.5]),
        ("late.csv", late, vec![1.0, 2.0, 3.0]),
        (
            "many.csv",
            0,
            (0..20_000).map(|i| 1.0 / (1.0 + i as f64)).collect(),
        ),
    ];
    for (name, first, values) in cases {
        let svg = draw_file(name, loss_csv(first, &values));
        // Everything drawn lies in the picture.
        for n in attr_numbers(&svg, "points")
            .into_iter()
            .chain(attr_numbers(&svg, "cx"))
            .chain(attr_numbers(&svg, "cy"))
        {
            assert!((0.0..=900.0).contains(&n), "{name}: a point drawn at {n}");
        }
        // The value and epoch labels (besides the caption and axis title) are numbers, no two
        // alike.
        for (anchor, what) in [("end", "value"), ("middle", "epoch")] {
            let labels: Vec<String> = frame_labels(&svg, anchor)
                .into_iter()
                .filter(|l| l != "epochs" && l != "loss")
                .collect();
            assert!(labels.len() >= 2, "{name}: {what} labels {labels:?}");
            for (i, l) in labels.iter().enumerate() {
                let v: f64 = l.parse().unwrap_or(f64::NAN);
                assert!(v.is_finite(), "{name}: {what} label {l}");
                assert!(!labels[..i].contains(l), "{name}: {what} labels {labels:?}");
            }
        }
        if name == "huge.csv" {
            // The axis holds the values: not cut at some smaller bound, the points pinned to
            // its edges.
            let values = frame_labels(&svg, "end");
            assert!(values.contains(&"1e308".to_string()), "{values:?}");
            assert!(values.contains(&"-1e308".to_string()), "{values:?}");
        }
        if name == "late.csv" {
            let epochs = frame_labels(&svg, "middle");
            assert!(epochs.contains(&late.to_string()), "{epochs:?}");
        }
    }
}

#[test]
fn a_header_of_many_columns_is_read_in_bounded_time_and_refused_by_the_picture() {
    const COLUMNS: usize = 300_000;
    let curves = bounded("a header of 300 000 columns", 60, || {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("epoch");
        for i in 0..COLUMNS {
            text += &format!(",m{i}");
        }
        text += "\n0";
        text += &",1".repeat(COLUMNS);
        text += "\n";
        Curves::read(&write(dir.path(), "wide.csv", &text), None).unwrap()
    });
    assert_eq!(curves.panels().len(), COLUMNS);
    let e = wgfit::plot::render_svg(&curves, 900, 100_000).unwrap_err();
    assert!(matches!(e, Error::InvalidData { .. }), "{e}");
    assert!(e.to_string().contains("300000 metrics"), "{e}");
    assert!(e.to_string().contains("at most 666 panels"), "{e}");
}

#[test]
fn files_too_large_for_a_history_are_refused_without_reading_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("data.bin");
    let file = std::fs::File::create(&big).unwrap();
    // Sparse: no disk space is used.
    file.set_len(wgfit::plot::MAX_HISTORY_BYTES + 1).unwrap();
    let e = Curves::read(&big, None).unwrap_err();
    assert!(matches!(e, Error::InvalidData { .. }), "{e}");
    assert!(e.to_string().contains("larger than 256 MiB"), "{e}");

    // A device without a length: read up to the limit, not forever.
    let e = bounded("/dev/zero", 60, || {
        Curves::read(std::path::Path::new("/dev/zero"), None)
            .unwrap_err()
            .to_string()
    });
    assert!(
        e.contains("/dev/zero") && e.contains("larger than 256 MiB"),
        "{e}"
    );

    let e = Curves::read(dir.path(), None).unwrap_err();
    assert!(matches!(e, Error::DataIo { .. }), "{e}");
}

#[test]
fn missing_cells_are_gaps_not_non_finite_values_and_epochs_past_2_53_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = "epoch,loss,val_loss\n0,1.0,NA\n1,,0.9\n2,0.8,\n3,nan,0.7\n";
    let c = Curves::read(&write(dir.path(), "gaps.csv", text), None).unwrap();
    let series = &c.panels()[0].series;
    assert_eq!(series[0].points, [(1.0, 1.0), (3.0, 0.8)]);
    assert_eq!(series[0].non_finite, [(4.0, wgfit::plot::NotFinite::NaN)]);
    assert_eq!(series[1].points, [(2.0, 0.9), (4.0, 0.7)]);
    assert_eq!(series[1].non_finite, []);

    let (e, m) = read_error("short.csv", "epoch,loss,val_loss\n0,1.0,0.9\n1,0.8\n");
    assert!(matches!(e, Error::DataParse { row: 3, .. }), "{m}");
    assert!(m.contains("2 fields, but the header has 3"), "{m}");

    let past = wgfit::plot::MAX_EPOCH + 1;
    let (e, m) = read_error("past.csv", &format!("epoch,loss\n{past},1\n"));
    assert!(
        matches!(
            e,
            Error::DataParse {
                row: 2,
                column: 1,
                ..
            }
        ),
        "{m}"
    );
    assert!(m.contains(&past.to_string()) && m.contains("2^53"), "{m}");
    let (_, m) = read_error("past.json", &format!(r#"[{{"epoch": {past}, "loss": 1}}]"#));
    assert!(m.contains("[0].epoch") && m.contains("2^53"), "{m}");

    let (_, m) = read_error("noise.csv", &format!("{}\n0\n", "x".repeat(100_000)));
    assert!(m.len() < 400, "the error quotes the header cut short: {m}");
}
