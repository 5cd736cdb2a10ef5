//! What one series, non-finite value or mark looks like, drawn on a panel's chart.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::layout::{GAP, Label};
use super::render::{Chart, DrawResult, FONT, FONT_SIZE, Frame, LABEL_LINE};
use super::{Mark, MarkKind, NotFinite, Series};

/// Series with more points than this are drawn as lines alone: dots would merge into a band.
const MAX_DOTS: usize = 60;
/// Half the width of a non-finite value's marker, in pixels.
const MARKER: i32 = 5;

const TRAINING: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

/// The colour of a series' line, dots and markers.
pub(super) fn color(series: &Series) -> RGBColor {
    if series.validation {
        VALIDATION
    } else {
        TRAINING
    }
}

/// The line of a series, broken where a value is not finite (a line across it would show a
/// value that was never logged), and its dots.
pub(super) fn series(chart: &mut Chart<'_, '_>, frame: &Frame, series: &Series) -> DrawResult {
    let color = color(series);
    // Points are finite by construction; a hand-built Series may not be.
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|&(x, y)| (x, frame.y_of(y)))
        .collect();
    let mut breaks: Vec<f64> = series.non_finite.iter().map(|p| p.0).collect();
    breaks.sort_by(f64::total_cmp);
    let mut start = 0;
    for end in 1..=points.len() {
        let broken = end == points.len()
            || breaks
                .iter()
                .any(|&b| points[end - 1].0 < b && b < points[end].0);
        if broken {
            chart.draw_series(LineSeries::new(
                points[start..end].iter().copied(),
                color.stroke_width(2),
            ))?;
            start = end;
        }
    }
    // Dots too: a lone value (one epoch, or one between two NaNs) has no line to show it.
    if points.len() <= MAX_DOTS {
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}

/// The marker of a value that is not finite, at epoch position `x`: a triangle pointing out
/// of the top of the plot for +inf, out of the bottom for -inf, and a cross at the bottom for
/// NaN.
pub(super) fn non_finite(
    chart: &mut Chart<'_, '_>,
    frame: &Frame,
    series: &Series,
    x: f64,
    value: NotFinite,
) -> DrawResult {
    let style = color(series).stroke_width(2);
    let m = MARKER;
    if value == NotFinite::Infinity {
        let tip = EmptyElement::at((x, frame.y.hi))
            + Polygon::new(
                vec![(0, 1), (-m, 2 * m), (m, 2 * m)],
                color(series).filled(),
            );
        chart.draw_series(std::iter::once(tip))?;
    } else if value == NotFinite::NegInfinity {
        let tip = EmptyElement::at((x, frame.y.lo))
            + Polygon::new(
                vec![(0, -1), (-m, -2 * m), (m, -2 * m)],
                color(series).filled(),
            );
        chart.draw_series(std::iter::once(tip))?;
    } else {
        let (top, bottom) = (-3 * m, -m);
        let cross = EmptyElement::at((x, frame.y.lo))
            + PathElement::new(vec![(-m, top), (m, bottom)], style)
            + PathElement::new(vec![(-m, bottom), (m, top)], style);
        chart.draw_series(std::iter::once(cross))?;
    }
    Ok(())
}

/// A mark's line across the plot and, if it has one, its label in the band above.
pub(super) fn mark(
    chart: &mut Chart<'_, '_>,
    frame: &Frame,
    mark: &Mark,
    label: Option<&Label>,
) -> DrawResult {
    let color = mark_color(mark.kind);
    let ends = [(mark.x, frame.y.lo), (mark.x, frame.y.hi)];
    if mark.kind == MarkKind::LearningRate {
        chart.draw_series(DashedLineSeries::new(ends, 6, 4, color.stroke_width(1)))?;
    } else {
        chart.draw_series(LineSeries::new(ends, color.stroke_width(2)))?;
    }
    if let Some(label) = label {
        let (h, dx) = if label.leftward {
            (HPos::Right, -(GAP as i32))
        } else {
            (HPos::Left, GAP as i32)
        };
        let font = TextStyle::from((FONT, FONT_SIZE).into_font())
            .color(&color)
            .pos(Pos::new(h, VPos::Top));
        let dy = (label.line as u32 * LABEL_LINE) as i32 - frame.band as i32;
        chart.draw_series(std::iter::once(
            EmptyElement::at((mark.x, frame.y.hi)) + Text::new(label.text.clone(), (dx, dy), font),
        ))?;
    }
    Ok(())
}

fn mark_color(kind: MarkKind) -> RGBColor {
    match kind {
        MarkKind::Resumed => RGBColor(44, 160, 44),
        MarkKind::Fallback => RGBColor(148, 103, 189),
        MarkKind::Preempted => RGBColor(214, 39, 40),
        MarkKind::LearningRate => RGBColor(110, 110, 110),
    }
}
