//! Where things go: the value range of a panel, and which line each mark's label takes.

use super::{Mark, MarkKind, Panel};

/// Lines of mark labels at the top of a panel.
const LABEL_LINES: usize = 4;
/// A rough width of one label character (SVG leaves the font, so the real width, to the
/// viewer).
const CHAR_WIDTH: f64 = 7.5;

/// The line of label text each mark gets: the first where it overlaps no other label, so
/// that marks close together (a preemption and the resume after it) stay legible. Events are
/// placed before learning-rate changes, which a schedule may make every epoch; a label that
/// finds no free line is left out (its line and its `data-label` remain).
///
/// `x` is the range of epochs drawn and `pixels` the left and right pixel of the plot.
pub(super) fn label_lines(marks: &[Mark], x: (f64, f64), pixels: (f64, f64)) -> Vec<Option<usize>> {
    let scale = (pixels.1 - pixels.0).max(1.0) / (x.1 - x.0);
    let pixel = |v: f64| pixels.0 + (v - x.0) * scale;
    let mut taken: [Vec<(f64, f64)>; LABEL_LINES] = Default::default();
    let mut lines = vec![None; marks.len()];
    let events = marks
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind != MarkKind::LearningRate);
    let rates = marks
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == MarkKind::LearningRate);
    for (i, m) in events.chain(rates) {
        let start = pixel(m.x);
        let end = start + 8.0 + CHAR_WIDTH * m.label.chars().count() as f64;
        let free = |line: &Vec<(f64, f64)>| line.iter().all(|&(a, b)| end <= a || b <= start);
        if let Some(line) = taken.iter().position(free) {
            taken[line].push((start, end));
            lines[i] = Some(line);
        }
    }
    lines
}

/// The value range of a panel, with a little room above and below.
pub(super) fn y_range(panel: &Panel) -> (f64, f64) {
    let values = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else if lo != 0.0 {
        lo.abs() * 0.1
    } else {
        1.0
    };
    let padded = (lo - pad, hi + pad);
    if padded.0.is_finite() && padded.1.is_finite() && padded.1 - padded.0 > 0.0 {
        padded
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::Series;

    #[test]
    fn close_labels_go_on_separate_lines() {
        let mark = |x: f64| Mark {
            kind: MarkKind::Resumed,
            x,
            label: "resumed".into(),
        };
        let lr = Mark {
            kind: MarkKind::LearningRate,
            x: 1.0,
            label: "lr 0.1".into(),
        };
        let crowd: Vec<Mark> = std::iter::once(lr)
            .chain((0..4).map(|_| mark(1.0)))
            .collect();
        assert_eq!(
            label_lines(&crowd, (0.0, 10.0), (84.0, 888.0)),
            [None, Some(0), Some(1), Some(2), Some(3)],
            "events first; no room, no label"
        );
        let lines = label_lines(
            &[mark(1.0), mark(1.01), mark(5.0), mark(5.0)],
            (0.0, 10.0),
            (84.0, 888.0),
        );
        assert_eq!(lines, [Some(0), Some(1), Some(0), Some(1)]);
    }

    #[test]
    fn flat_series_get_a_range() {
        let panel = |v: f64| Panel {
            metric: "m".into(),
            series: vec![Series {
                name: "m".into(),
                validation: false,
                points: vec![(1.0, v)],
            }],
        };
        assert_eq!(y_range(&panel(0.0)), (-1.0, 1.0));
        assert_eq!(y_range(&panel(2.0)), (1.8, 2.2));
    }
}
