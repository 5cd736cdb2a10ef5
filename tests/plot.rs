//! `wgfit::plot` and `wgfit plot`: what the picture shows, where its marks sit, and every form
//! of history file it reads. No GPU is needed.
//!
//! The SVG is checked through what it says about itself (`wgfit-panel`, `wgfit-series`,
//! `wgfit-mark` groups) and, so that a mark drawn at the wrong place cannot pass, through the
//! pixels: the epoch → pixel map is taken from the x axis's tick labels, which plotters draws
//! on its own, and every series point and mark line is checked against it.

use std::path::{Path, PathBuf};
use std::process::Command;

use wgfit::plot::{Curves, MarkKind, render_svg, write_svg};
use wgfit::{EpochLogs, Error, EventKind, History, Logs, RunEvent};

/// Batches per epoch of the test run.
const STEPS: usize = 12;

fn event(kind: EventKind, epoch: usize, step: usize) -> RunEvent {
    RunEvent {
        kind,
        epoch,
        step,
        steps: STEPS,
        global_step: (epoch * STEPS + step) as u64,
        unix_ms: 1_700_000_000_000 + epoch as u64,
    }
}

/// Start, a resume a quarter into epoch 2, and a preemption at the end of epoch 3 followed by
/// its resume.
fn events() -> Vec<RunEvent> {
    vec![
        event(EventKind::Start, 0, 0),
        event(EventKind::Resume, 2, 3),
        event(EventKind::Preempted, 4, 0),
        event(EventKind::Resume, 4, 0),
    ]
}

const LOSS: [f64; 6] = [1.2, 0.9, 0.7, 0.5, 0.45, 0.42];
const VAL_LOSS: [f64; 6] = [1.3, 1.0, f64::NAN, 0.7, 0.66, 0.65];
const ACCURACY: [f64; 6] = [0.55, 0.68, 0.75, 0.82, 0.85, 0.86];
const VAL_ACCURACY: [f64; 6] = [0.5, 0.62, 0.7, 0.77, 0.8, 0.81];

/// The learning rate of epoch `e`: 0.01, then 0.001 from epoch 3 on (as an f32 logs it).
fn learning_rate(e: usize) -> f64 {
    f64::from(if e < 3 { 0.01f32 } else { 0.001f32 })
}

/// Six epochs, `val_loss` NaN in epoch 2.
fn history() -> History {
    History {
        epochs: (0..6)
            .map(|e| EpochLogs {
                epoch: e,
                logs: Logs::from([
                    ("loss".to_string(), LOSS[e]),
                    ("val_loss".to_string(), VAL_LOSS[e]),
                    ("accuracy".to_string(), ACCURACY[e]),
                    ("val_accuracy".to_string(), VAL_ACCURACY[e]),
                    ("learning_rate".to_string(), learning_rate(e)),
                ]),
            })
            .collect(),
    }
}

fn curves() -> Curves {
    Curves::from_history(&history(), &events())
}

// ---- reading the SVG back ----

/// The value of attribute `name` in the first tag of `s`.
fn attr<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let tag = &s[..s.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The pieces of `s` that start with `<g class="CLASS"`, each up to the next one.
fn groups<'a>(s: &'a str, class: &str) -> Vec<&'a str> {
    let open = format!("<g class=\"{class}\"");
    s.match_indices(&open)
        .map(|(i, _)| {
            let rest = &s[i..];
            let end = rest[open.len()..]
                .find(&open)
                .map_or(rest.len(), |e| e + open.len());
            &rest[..end]
        })
        .collect()
}

/// The first group of `class` with its content, up to its own `</g>` (groups of one kind do
/// not nest).
fn group<'a>(s: &'a str, class: &str) -> &'a str {
    let g = groups(s, class)[0];
    &g[..g.find("</g>").expect("a closed group")]
}

/// Every `(x, y)` of the `points` of the polylines in `s`.
fn polyline_points(s: &str) -> Vec<(f64, f64)> {
    s.match_indices("<polyline")
        .flat_map(|(i, _)| {
            attr(&s[i..], "points")
                .expect("points")
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').expect("x,y");
                    (x.parse().expect("x"), y.parse().expect("y"))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The `(text, x)` of the `<text>` elements of `s` with the given anchor.
fn texts(s: &str, anchor: &str) -> Vec<(String, f64)> {
    s.match_indices("<text")
        .filter(|(i, _)| attr(&s[*i..], "text-anchor") == Some(anchor))
        .map(|(i, _)| {
            let t = &s[i..];
            let body = &t[t.find('>').expect(">") + 1..t.find("</text>").expect("</text>")];
            let x = attr(t, "x").expect("x").parse().expect("x number");
            (body.trim().to_string(), x)
        })
        .collect()
}

/// A `wgfit-series` group.
struct SeriesView {
    name: String,
    role: String,
    /// Pixels of its line's points.
    points: Vec<(f64, f64)>,
}

impl SeriesView {
    fn pixels_x(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.0).collect()
    }
}

/// A `wgfit-mark` group.
struct MarkView {
    kind: String,
    /// Its `data-x`: the epoch count it says it marks.
    x: f64,
    label: String,
    /// The x pixel of every point of its lines.
    pixels: Vec<f64>,
}

/// A `wgfit-panel` group.
struct PanelView {
    metric: String,
    series: Vec<SeriesView>,
    marks: Vec<MarkView>,
    legend: Vec<String>,
    /// (epoch count, pixel) of the x axis's tick labels, left to right.
    ticks: Vec<(f64, f64)>,
}

impl PanelView {
    fn pixel(&self, x: f64) -> f64 {
        let (&(x0, p0), &(x1, p1)) = (self.ticks.first().unwrap(), self.ticks.last().unwrap());
        p0 + (x - x0) * (p1 - p0) / (x1 - x0)
    }

    fn marks_of(&self, kind: &str) -> Vec<f64> {
        self.marks
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.x)
            .collect()
    }

    /// Every line of every mark of `kind` is at the pixel of its `data-x`, and that is `x`.
    #[track_caller]
    fn assert_marks_at(&self, kind: &str, xs: &[f64]) {
        assert_eq!(
            self.marks_of(kind),
            xs,
            "{kind} marks in panel {}",
            self.metric
        );
        for m in self.marks.iter().filter(|m| m.kind == kind) {
            assert!(
                !m.pixels.is_empty(),
                "mark {kind} {} draws no line",
                m.label
            );
            let want = self.pixel(m.x);
            for p in &m.pixels {
                assert!(
                    (p - want).abs() <= 1.5,
                    "mark {kind} at epoch {} is drawn at pixel {p}, that epoch is pixel {want} (panel {})",
                    m.x,
                    self.metric
                );
            }
        }
    }
}

fn panels(svg: &str) -> Vec<PanelView> {
    groups(svg, "wgfit-panel")
        .into_iter()
        .map(|p| {
            let mut ticks: Vec<(f64, f64)> = texts(group(p, "wgfit-frame"), "middle")
                .into_iter()
                .filter_map(|(t, x)| Some((t.parse::<f64>().ok()?, x)))
                .collect();
            ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
            PanelView {
                metric: attr(p, "data-metric").unwrap().to_string(),
                series: groups(p, "wgfit-series")
                    .into_iter()
                    .map(|s| {
                        let s = &s[..s.find("</g>").unwrap()];
                        SeriesView {
                            name: attr(s, "data-name").unwrap().to_string(),
                            role: attr(s, "data-role").unwrap().to_string(),
                            points: polyline_points(s),
                        }
                    })
                    .collect(),
                marks: groups(p, "wgfit-mark")
                    .into_iter()
                    .map(|m| {
                        let m = &m[..m.find("</g>").unwrap()];
                        MarkView {
                            kind: attr(m, "data-kind").unwrap().to_string(),
                            x: attr(m, "data-x").unwrap().parse().unwrap(),
                            label: attr(m, "data-label").unwrap().to_string(),
                            pixels: polyline_points(m).into_iter().map(|p| p.0).collect(),
                        }
                    })
                    .collect(),
                legend: texts(group(p, "wgfit-legend"), "start")
                    .into_iter()
                    .map(|t| t.0)
                    .collect(),
                ticks,
            }
        })
        .collect()
}

/// The checks of the six-epoch run's picture, for the library and the command alike.
fn check_picture(svg: &str) {
    let panels = panels(svg);
    let metrics: Vec<&str> = panels.iter().map(|p| p.metric.as_str()).collect();
    assert_eq!(metrics, ["loss", "accuracy"]);
    for (p, names) in panels
        .iter()
        .zip([["loss", "val_loss"], ["accuracy", "val_accuracy"]])
    {
        assert!(
            p.ticks.len() >= 3,
            "x axis tick labels of panel {}: {:?}",
            p.metric,
            p.ticks
        );
        let series: Vec<(&str, &str)> = p
            .series
            .iter()
            .map(|s| (s.name.as_str(), s.role.as_str()))
            .collect();
        assert_eq!(series, [(names[0], "training"), (names[1], "validation")]);
        assert_eq!(p.legend, names, "legend of panel {}", p.metric);

        // Epoch e's value at x = e + 1; the NaN of val_loss's epoch 2 has no point.
        let expected: Vec<f64> = if names[1] == "val_loss" {
            vec![1.0, 2.0, 4.0, 5.0, 6.0]
        } else {
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        };
        let want = |xs: &[f64]| -> Vec<f64> { xs.iter().map(|&x| p.pixel(x)).collect() };
        for (got, xs) in [
            (
                p.series[0].pixels_x(),
                want(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            ),
            (p.series[1].pixels_x(), want(&expected)),
        ] {
            assert_eq!(got.len(), xs.len(), "points of panel {}", p.metric);
            for (g, w) in got.iter().zip(&xs) {
                assert!((g - w).abs() <= 1.5, "point at pixel {g}, expected {w}");
            }
        }

        // A resume a quarter into epoch 2 is at 2.25, not 2; the other at 4.
        p.assert_marks_at("resumed", &[2.25, 4.0]);
        p.assert_marks_at("preempted", &[4.0]);
        p.assert_marks_at("fallback", &[]);
        // The rate changed for epoch 3: its mark is where epoch 3 began.
        p.assert_marks_at("learning-rate", &[3.0]);
        let labels: Vec<&str> = p.marks.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["resumed", "lr 0.001", "preempted", "resumed"]);
        assert!(svg.contains(">\nlr 0.001\n</text>"), "the rate is written");
    }
}

#[test]
fn the_picture_shows_panels_series_and_marks_where_they_belong() {
    let c = curves();
    assert_eq!(c.panels().len(), 2);
    assert_eq!(c.series_count(), 4);
    assert_eq!(c.count(MarkKind::Resumed), 2);
    let svg = render_svg(&c, 900, 600).unwrap();
    check_picture(&svg);
}

#[test]
fn marks_follow_the_step_within_the_epoch() {
    // The same resume, three quarters into epoch 2 instead of one.
    let mut events = events();
    events[1].step = 9;
    let svg = render_svg(&Curves::from_history(&history(), &events), 900, 600).unwrap();
    for p in panels(&svg) {
        p.assert_marks_at("resumed", &[2.75, 4.0]);
    }
}

#[test]
fn a_single_epoch_and_a_metric_without_values() {
    let h = History {
        epochs: vec![EpochLogs {
            epoch: 0,
            logs: Logs::from([
                ("loss".to_string(), 0.5),
                ("mae".to_string(), f64::NAN),
                ("val_mae".to_string(), f64::INFINITY),
            ]),
        }],
    };
    let c = Curves::from_history(&h, &[event(EventKind::Start, 0, 0)]);
    assert_eq!(c.marks(), [], "a start is not marked");
    let svg = render_svg(&c, 500, 200).unwrap();
    let panels = panels(&svg);
    assert_eq!(panels.len(), 1, "mae has no finite value, so no panel");
    assert_eq!(panels[0].series.len(), 1);
    let point = panels[0].series[0].points[0];
    assert!((point.0 - panels[0].pixel(1.0)).abs() <= 1.5);
}

#[test]
fn nothing_to_plot_is_an_error() {
    let h = History {
        epochs: vec![EpochLogs {
            epoch: 0,
            logs: Logs::from([("loss".to_string(), f64::NAN)]),
        }],
    };
    let e = render_svg(&Curves::from_history(&h, &[]), 900, 300).unwrap_err();
    assert!(e.to_string().contains("nothing to plot"), "{e}");
    let e = render_svg(&Curves::from_history(&History::default(), &[]), 900, 300).unwrap_err();
    assert!(e.to_string().contains("nothing to plot"), "{e}");
}

#[test]
fn write_svg_sizes_panels_and_writes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.svg");
    std::fs::write(&path, "old").unwrap();
    write_svg(&path, &curves()).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="600""#));
    check_picture(&svg);
}

// ---- the file forms ----

/// Writes a value as JSON does in wgfit's history files.
fn json_value(v: f64) -> String {
    if v.is_nan() {
        "\"NaN\"".into()
    } else {
        format!("{v}")
    }
}

fn json_rows() -> String {
    let rows: Vec<String> = (0..6)
        .map(|e| {
            format!(
                r#"{{"epoch": {e}, "accuracy": {}, "learning_rate": {}, "loss": {}, "val_accuracy": {}, "val_loss": {}}}"#,
                json_value(ACCURACY[e]),
                json_value(learning_rate(e)),
                json_value(LOSS[e]),
                json_value(VAL_ACCURACY[e]),
                json_value(VAL_LOSS[e]),
            )
        })
        .collect();
    format!("[\n  {}\n]", rows.join(",\n  "))
}

fn events_json() -> String {
    serde_json::to_string(&events()).unwrap()
}

/// `wgfit train --history run.csv`: commas, Rust's float text (`NaN`).
fn wgfit_csv() -> String {
    let mut s = String::from("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n");
    for e in 0..6 {
        s += &format!(
            "{e},{},{},{},{},{}\n",
            ACCURACY[e],
            learning_rate(e),
            LOSS[e],
            VAL_ACCURACY[e],
            VAL_LOSS[e]
        );
    }
    s
}

/// Keras's CSVLogger with `separator=';'`: Python's float text, a missing value as `NA`.
fn keras_csv() -> String {
    let mut s = String::from("epoch;accuracy;learning_rate;loss;val_accuracy;val_loss\r\n");
    for e in 0..6 {
        let val_loss = if VAL_LOSS[e].is_nan() {
            "NA".to_string()
        } else {
            format!("{}", VAL_LOSS[e])
        };
        s += &format!(
            "{e};{};{:e};{};{};{val_loss}\r\n",
            ACCURACY[e],
            learning_rate(e),
            LOSS[e],
            VAL_ACCURACY[e]
        );
    }
    s
}

/// A backup directory whose latest.json records the run's events (other fields as a real
/// sidecar has some, which the reader ignores).
fn backup_dir(root: &Path) -> PathBuf {
    let dir = root.join("run.backup");
    std::fs::create_dir(&dir).unwrap();
    let sidecar = format!(
        r#"{{"format": "wgfit-backup", "version": 2, "epoch": 4, "step": 0,
            "history": {{"epochs": []}}, "future_field": [1, 2], "events": {}}}"#,
        events_json()
    );
    std::fs::write(dir.join("latest.json"), sidecar).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

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

// ---- the command ----

fn wgfit(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wgfit"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn wgfit_plot_writes_the_picture_of_a_csv_history() {
    let dir = tempfile::tempdir().unwrap();
    backup_dir(dir.path());
    write(dir.path(), "history.csv", &wgfit_csv());
    let out = wgfit(
        dir.path(),
        &[
            "plot",
            "history.csv",
            "-o",
            "curves.svg",
            "--backup-dir",
            "run.backup",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "wrote curves.svg: 2 panels, 4 series, 2 resumes, 1 preemption\n"
    );
    let svg = std::fs::read_to_string(dir.path().join("curves.svg")).unwrap();
    assert!(svg.contains(r#"width="900" height="600""#), "default size");
    check_picture(&svg);

    let out = wgfit(
        dir.path(),
        &[
            "plot",
            "history.csv",
            "-o",
            "wide.svg",
            "--width",
            "1200",
            "--height-per-panel",
            "200",
        ],
    );
    assert!(out.status.success());
    let svg = std::fs::read_to_string(dir.path().join("wide.svg")).unwrap();
    assert!(svg.contains(r#"width="1200" height="400""#));
    assert_eq!(panels(&svg)[0].marks_of("resumed"), [0.0; 0]);
}

#[test]
fn wgfit_plot_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.csv", "epoch,loss\n0,0.5\n1,oops\n");
    let out = wgfit(dir.path(), &["plot", "bad.csv", "-o", "x.svg"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("wgfit: error: bad.csv: row 3, column 2: `oops`"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.svg").exists());

    write(dir.path(), "good.csv", &wgfit_csv());
    let out = wgfit(
        dir.path(),
        &["plot", "good.csv", "-o", "x.svg", "--width", "20"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--width 20"), "{stderr}");

    let out = wgfit(dir.path(), &["plot", "good.csv"]);
    assert_eq!(out.status.code(), Some(2), "-o is required");

    let out = wgfit(dir.path(), &["plot", "good.csv", "-o", "./good.csv"]);
    assert_eq!(out.status.code(), Some(2), "the history is not overwritten");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("good.csv")).unwrap(),
        wgfit_csv()
    );
}
