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
    let h: History = vec![EpochLogs {
        epoch: 0,
        logs: Logs::from([
            ("loss".to_string(), 0.5),
            ("mae".to_string(), f64::NAN),
            ("val_mae".to_string(), f64::INFINITY),
        ]),
    }]
    .into();
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
    let h: History = vec![EpochLogs {
        epoch: 0,
        logs: Logs::from([("loss".to_string(), f64::NAN)]),
    }]
    .into();
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

// ---- a schedule, crowded marks, values that are not finite ----

/// A history of `epochs` epochs of `loss`, with `learning_rate(e)` logged.
fn history_with_rate(epochs: usize, rate: impl Fn(usize) -> f64) -> History {
    (0..epochs)
        .map(|e| EpochLogs {
            epoch: e,
            logs: Logs::from([
                ("loss".to_string(), 1.0 / (1.0 + e as f64)),
                ("learning_rate".to_string(), rate(e)),
            ]),
        })
        .collect()
}

#[test]
fn a_schedule_gets_a_learning_rate_panel_not_a_mark_at_every_epoch() {
    // Cosine decay over 60 epochs: a new rate every epoch.
    let cosine = |e: usize| 0.001 * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / 60.0).cos());
    let c = Curves::from_history(&history_with_rate(60, cosine), &[]);
    assert_eq!(c.count(MarkKind::LearningRate), 0, "no wall of rate marks");
    let svg = render_svg(&c, 900, 600).unwrap();
    let panels = panels(&svg);
    let metrics: Vec<&str> = panels.iter().map(|p| p.metric.as_str()).collect();
    assert_eq!(metrics, ["loss", "learning_rate"]);
    let rate = &panels[1];
    assert_eq!(rate.series.len(), 1);
    assert_eq!(rate.series[0].name, "learning_rate");
    let want: Vec<f64> = (1..=60).map(|x| rate.pixel(x as f64)).collect();
    let got = rate.series[0].pixels_x();
    assert_eq!(got.len(), 60, "a point per epoch");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1.5,
            "rate point at pixel {g}, expected {w}"
        );
    }
    assert!(!svg.contains("class=\"wgfit-mark\""), "{svg}");

    // A few steps (ReduceLROnPlateau) stay marks, without a panel.
    let steps = |e: usize| 0.1 / 2f64.powi((e / 10) as i32);
    let c = Curves::from_history(&history_with_rate(40, steps), &[]);
    assert_eq!(c.count(MarkKind::LearningRate), 3);
    assert_eq!(c.panels().len(), 1);
}

/// A label of a mark: its text and its box, `(left, top, right, bottom)` in pixels.
struct LabelBox {
    text: String,
    bounds: (f64, f64, f64, f64),
}

/// The labels of the marks of one panel. The width is a generous estimate (SVG leaves the
/// font to the viewer): 0.65 of the font size a character, more than DejaVu Sans takes.
fn mark_labels(panel_svg: &str) -> Vec<LabelBox> {
    groups(panel_svg, "wgfit-mark")
        .into_iter()
        .flat_map(|m| {
            let m = &m[..m.find("</g>").unwrap()];
            m.match_indices("<text")
                .map(|(i, _)| {
                    let t = &m[i..];
                    let text = t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()]
                        .trim()
                        .to_string();
                    let num = |name| attr(t, name).unwrap().parse::<f64>().unwrap();
                    let (x, y, size) = (num("x"), num("y"), num("font-size"));
                    assert_eq!(attr(t, "dy"), Some("0.76em"), "labels hang from y");
                    let width = 0.65 * size * text.chars().count() as f64;
                    let (left, right) = match attr(t, "text-anchor") {
                        Some("end") => (x - width, x),
                        _ => (x, x + width),
                    };
                    LabelBox {
                        text,
                        bounds: (left, y, right, y + size),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn labels_of_marks_are_apart_above_the_plot_and_inside_the_picture() {
    // Resumed in five consecutive epochs, then a preemption, its resume and a fallback in one
    // epoch, a rate change, and a resume at the very end.
    let mut events: Vec<_> = (5..10).map(|e| event(EventKind::Resume, e, 3)).collect();
    events.extend([
        event(EventKind::Preempted, 30, 0),
        event(EventKind::Resume, 30, 0),
        event(EventKind::Fallback, 30, 6),
        event(EventKind::Resume, 60, 0),
    ]);
    let h = history_with_rate(60, |e| if e < 31 { 0.01 } else { 0.001 });
    let c = Curves::from_history(&h, &events);
    let svg = render_svg(&c, 900, 300).unwrap();
    let panel = groups(&svg, "wgfit-panel")[0];
    let labels = mark_labels(panel);
    let texts: Vec<&str> = labels.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts.contains(&"resumed ×5"),
        "one label for the five: {texts:?}"
    );
    for kind in ["preempted", "fallback to previous", "lr 0.001"] {
        assert!(texts.contains(&kind), "{kind} has its label: {texts:?}");
    }
    assert_eq!(
        texts.iter().filter(|t| **t == "resumed").count(),
        2,
        "{texts:?}"
    );
    // Every mark keeps its own line and data-label.
    let view = &panels(&svg)[0];
    view.assert_marks_at("resumed", &[5.25, 6.25, 7.25, 8.25, 9.25, 30.0, 60.0]);

    let top_of_lines = polyline_ys(panel, "wgfit-mark")
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    for (i, a) in labels.iter().enumerate() {
        let (l, t, r, b) = a.bounds;
        assert!(
            l >= 0.0 && r <= 900.0,
            "{} leaves the picture: {l}..{r}",
            a.text
        );
        assert!(
            b <= top_of_lines,
            "{} is over the plot: {t}..{b}, plot from {top_of_lines}",
            a.text
        );
        for o in &labels[..i] {
            let (l2, t2, r2, b2) = o.bounds;
            let apart = r <= l2 || r2 <= l || b <= t2 || b2 <= t;
            assert!(
                apart,
                "{} {:?} overlaps {} {:?}",
                a.text, a.bounds, o.text, o.bounds
            );
        }
    }
}

/// The y of every polyline point in the groups of `class` in `s`.
fn polyline_ys(s: &str, class: &str) -> Vec<f64> {
    groups(s, class)
        .into_iter()
        .flat_map(|g| polyline_points(&g[..g.find("</g>").unwrap()]))
        .map(|p| p.1)
        .collect()
}

#[test]
fn values_that_are_not_finite_get_a_marker_and_break_the_line() {
    let loss = [1.0, 0.9, f64::NAN, 0.8, 0.7, f64::INFINITY, 0.6, 0.5];
    let val_loss = [1.1, 1.0, 0.95, f64::NEG_INFINITY, 0.85, 0.8, 0.75, 0.7];
    let h = (0..8)
        .map(|e| EpochLogs {
            epoch: e,
            logs: Logs::from([
                ("loss".to_string(), loss[e]),
                ("val_loss".to_string(), val_loss[e]),
            ]),
        })
        .collect();
    let svg = render_svg(&Curves::from_history(&h, &[]), 900, 300).unwrap();
    let view = &panels(&svg)[0];
    assert_eq!(view.legend, ["loss (1 NaN, 1 inf)", "val_loss (1 -inf)"]);
    // Drawn after the legend, which cannot hide them.
    assert!(
        svg.find("class=\"wgfit-legend\"") < svg.find("class=\"wgfit-non-finite\""),
        "{svg}"
    );

    let markers: Vec<(String, f64, String, Vec<f64>)> = groups(&svg, "wgfit-non-finite")
        .into_iter()
        .map(|g| {
            let g = &g[..g.find("</g>").unwrap()];
            // Crosses are polylines, triangles polygons: the x of every point drawn.
            let mut xs: Vec<f64> = polyline_points(g).into_iter().map(|p| p.0).collect();
            for (i, _) in g.match_indices("<polygon") {
                for p in attr(&g[i..], "points").unwrap().split_whitespace() {
                    xs.push(p.split_once(',').unwrap().0.parse().unwrap());
                }
            }
            (
                attr(g, "data-name").unwrap().to_string(),
                attr(g, "data-x").unwrap().parse().unwrap(),
                attr(g, "data-value").unwrap().to_string(),
                xs,
            )
        })
        .collect();
    let kinds: Vec<(&str, f64, &str)> = markers
        .iter()
        .map(|m| (m.0.as_str(), m.1, m.2.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("loss", 3.0, "NaN"),
            ("loss", 6.0, "inf"),
            ("val_loss", 4.0, "-inf")
        ]
    );
    for (name, x, value, xs) in &markers {
        assert!(!xs.is_empty(), "the {value} of {name} draws nothing");
        for px in xs {
            let want = view.pixel(*x);
            assert!(
                (px - want).abs() <= 6.5,
                "{value} of {name} drawn at {px}, epoch at {want}"
            );
        }
    }

    // No segment of a line spans an epoch whose value is not finite.
    for (series, gaps) in view.series.iter().zip([[3.0, 6.0], [4.0, 4.0]]) {
        let segments = groups(&svg, "wgfit-series")
            .into_iter()
            .find(|g| attr(g, "data-name") == Some(series.name.as_str()))
            .unwrap();
        let segments = &segments[..segments.find("</g>").unwrap()];
        for (i, _) in segments.match_indices("<polyline") {
            let xs: Vec<f64> =
                polyline_points(&segments[i..segments[i..].find("/>").unwrap() + i + 2])
                    .into_iter()
                    .map(|p| p.0)
                    .collect();
            for gap in gaps {
                let at = view.pixel(gap);
                let (lo, hi) = (xs[0], xs[xs.len() - 1]);
                assert!(
                    !(lo < at && at < hi),
                    "{} crosses epoch {gap}: {xs:?}",
                    series.name
                );
            }
        }
    }
}

#[test]
fn wgfit_plot_of_values_near_the_f64_limits_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "huge.csv", "epoch,loss\n0,1e308\n1,-1e308\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgfit"))
        .args(["plot", "huge.csv", "-o", "huge.svg"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("wgfit plot of ±1e308 is still running after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
    let svg = std::fs::read_to_string(dir.path().join("huge.svg")).unwrap();
    assert!(
        svg.contains(">\n1e308\n</text>") && svg.contains(">\n-1e308\n</text>"),
        "{svg}"
    );
}
