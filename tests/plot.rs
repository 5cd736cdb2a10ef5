//! `wgfit::plot` and `wgfit plot`: what the picture shows and where its marks sit. No GPU is
//! needed. (The history files it reads: `plot_files.rs`.)
//!
//! The SVG is checked through what it says about itself (`wgfit-panel`, `wgfit-series`,
//! `wgfit-mark` groups) and, so that a mark drawn at the wrong place cannot pass, through the
//! pixels: the epoch → pixel map is taken from the x axis's tick labels, which plotters draws
//! on its own, and every series point and mark line is checked against it.

mod common;

use common::plot_run::*;
use std::path::Path;
use std::process::Command;

use wgfit::plot::{Curves, MarkKind, render_svg, write_svg};
use wgfit::{EpochLogs, EventKind, History, Logs};

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
        // The legend says how many values have a marker instead of a point.
        let legend = if names[1] == "val_loss" {
            [names[0].to_string(), "val_loss (1 NaN)".to_string()]
        } else {
            names.map(str::to_string)
        };
        assert_eq!(p.legend, legend, "legend of panel {}", p.metric);

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
    let svg = render_svg(&c, 500, 400).unwrap();
    let panels = panels(&svg);
    assert_eq!(
        panels.iter().map(|p| p.metric.as_str()).collect::<Vec<_>>(),
        ["loss", "mae"],
        "mae has no finite value, but its NaN and inf are marked"
    );
    assert_eq!(panels[0].series.len(), 1);
    assert_eq!(panels[1].legend, ["mae (1 NaN)", "val_mae (1 inf)"]);
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
        "wrote curves.svg: 2 panels, 4 series, 2 resumes, 1 preemption, \
         1 value not finite marked\n"
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
