//! Drawing [`Curves`] as SVG with `plotters`.
//!
//! `plotters` writes bare SVG elements with no ids. To keep the picture's structure readable
//! by programs (and tests), every panel, series and mark is drawn into an SVG of its own with
//! the same size and axes, so that all map epochs to the same pixels, and the elements of each
//! are then wrapped in a `<g>` that says what they are (see the module documentation).

use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::curves::short_number;
use super::layout::{label_lines, y_range};
use super::markup::{escape, open_group, wrap};
use super::{Curves, Mark, MarkKind, Panel, Series};
use crate::{Error, Result};

/// Width of [`write_svg`]'s pictures, in pixels.
pub const DEFAULT_WIDTH: u32 = 900;
/// Height of each panel of [`write_svg`]'s pictures, in pixels.
pub const DEFAULT_PANEL_HEIGHT: u32 = 300;
/// The narrowest picture [`render_svg`] draws: narrower leaves no room for the plot.
pub const MIN_WIDTH: u32 = 300;
/// The lowest panel [`render_svg`] draws.
pub const MIN_PANEL_HEIGHT: u32 = 150;
/// The largest width or height [`render_svg`] accepts (a typo guard; SVG has no real limit).
pub const MAX_SIZE: u32 = 100_000;

/// Room above each panel's plot for its caption.
const CAPTION_HEIGHT: u32 = 32;
/// Room around each panel's plot.
const MARGIN: u32 = 12;
/// Room below the plot for the epoch numbers and the axis title.
const X_LABEL_AREA: u32 = 42;
/// Room left of the plot for the metric's values.
const Y_LABEL_AREA: u32 = 72;
/// Height of one line of mark labels; labels that would overlap go on the next line.
const LABEL_LINE: i32 = 15;
/// Series with more points than this are drawn as lines alone: dots would merge into a band.
const MAX_DOTS: usize = 60;
/// Room right of the last epoch, as a share of the epochs shown, so its dots are not cut.
const RIGHT_PAD: f64 = 0.02;
const FONT: &str = "sans-serif";
const FONT_SIZE: u32 = 15;
const CAPTION_SIZE: u32 = 20;

const TRAINING: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);
const GRID: RGBColor = RGBColor(232, 232, 232);

type DrawResult<T = ()> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws `curves` as an SVG document of `width` × `height` pixels, its panels stacked top to
/// bottom, each `height / panels` high.
///
/// Fails with [`Error::InvalidData`] when there is no panel to draw, and with
/// [`Error::Config`] when the size is outside [`MIN_WIDTH`]..=[`MAX_SIZE`] or leaves a panel
/// lower than [`MIN_PANEL_HEIGHT`].
pub fn render_svg(curves: &Curves, width: u32, height: u32) -> Result<String> {
    let panels = curves.panels();
    if panels.is_empty() {
        return Err(Error::InvalidData {
            path: None,
            reason: "nothing to plot: no metric has a finite value".into(),
        });
    }
    if !(MIN_WIDTH..=MAX_SIZE).contains(&width) {
        return Err(Error::config(
            "plot width",
            format!("{width} px; pass {MIN_WIDTH} to {MAX_SIZE}"),
        ));
    }
    let panel_height = height / panels.len() as u32;
    if height > MAX_SIZE || panel_height < MIN_PANEL_HEIGHT {
        return Err(Error::config(
            "plot height",
            format!(
                "{height} px for {} panels; pass {MIN_PANEL_HEIGHT} to {MAX_SIZE} px per panel, \
                 at most {MAX_SIZE} in all",
                panels.len()
            ),
        ));
    }

    let (lo, hi) = curves.x_range();
    let x = (lo, hi + (hi - lo) * RIGHT_PAD);
    let plot_pixels = (
        f64::from(MARGIN + Y_LABEL_AREA),
        f64::from(width.saturating_sub(MARGIN)),
    );
    let lines = label_lines(curves.marks(), x, plot_pixels);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
    );
    let names: Vec<&str> = panels.iter().map(|p| p.metric.as_str()).collect();
    let _ = writeln!(
        svg,
        "<title>training curves: {}</title>",
        escape(&names.join(", "))
    );
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#FFFFFF"/>"##
    );
    for (i, panel) in panels.iter().enumerate() {
        let top = i as u32 * panel_height;
        let frame = Frame {
            x,
            y: y_range(panel),
            width,
            height: panel_height,
        };
        open_group(
            &mut svg,
            "wgfit-panel",
            &[
                ("data-metric", panel.metric.clone()),
                ("transform", format!("translate(0,{top})")),
            ],
        );
        draw_panel(&mut svg, panel, curves.marks(), &lines, &frame)?;
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Draws `curves` at [`DEFAULT_WIDTH`] × [`DEFAULT_PANEL_HEIGHT`] per panel and writes the SVG
/// to `path` atomically (a reader sees the old file or the whole new one).
pub fn write_svg(path: &Path, curves: &Curves) -> Result<()> {
    let panels = u32::try_from(curves.panels().len()).unwrap_or(u32::MAX);
    let height = DEFAULT_PANEL_HEIGHT.saturating_mul(panels.max(1));
    let svg = render_svg(curves, DEFAULT_WIDTH, height)?;
    crate::checkpoint::write_atomically(path, svg.as_bytes())?;
    Ok(())
}

/// What every layer of one panel shares, so that all map values to the same pixels.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
    width: u32,
    height: u32,
}

impl Frame {
    fn chart<'a, 'b>(&self, area: &'a Area<'b>) -> DrawResult<Chart<'a, 'b>> {
        ChartBuilder::on(area)
            .margin(MARGIN)
            .margin_top(CAPTION_HEIGHT)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(self.x.0..self.x.1, self.y.0..self.y.1)
    }

    /// Draws one layer into an SVG of the panel's size and returns its elements, without the
    /// `<svg>` element around them.
    fn layer(&self, draw: impl FnOnce(&Area<'_>) -> DrawResult) -> Result<String> {
        let fail = |e: DrawingAreaErrorKind<std::io::Error>| Error::encoding("the plot", e);
        let mut buf = String::new();
        {
            let area =
                SVGBackend::with_string(&mut buf, (self.width, self.height)).into_drawing_area();
            draw(&area).map_err(fail)?;
            area.present().map_err(fail)?;
        }
        // plotters opens the document with one `<svg …>` line and closes it with `</svg>`.
        buf.split_once('\n')
            .and_then(|(_, body)| body.strip_suffix("</svg>\n"))
            .map(str::to_string)
            .ok_or_else(|| Error::internal("plotters wrote an SVG of an unexpected shape"))
    }
}

fn draw_panel(
    svg: &mut String,
    panel: &Panel,
    marks: &[Mark],
    lines: &[Option<usize>],
    frame: &Frame,
) -> Result<()> {
    let body = frame.layer(|area| {
        let caption = TextStyle::from((FONT, CAPTION_SIZE).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center));
        let at = ((frame.width / 2) as i32, (CAPTION_HEIGHT / 2) as i32);
        area.draw(&Text::new(panel.metric.as_str(), at, caption))?;
        let span = (frame.x.1 - frame.x.0).ceil() as usize;
        frame
            .chart(area)?
            .configure_mesh()
            .x_desc("epochs")
            .x_labels((span + 1).clamp(2, 12))
            .y_labels(6)
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| short_number(*v))
            .light_line_style(GRID)
            .max_light_lines(1)
            .label_style((FONT, FONT_SIZE))
            .draw()
    })?;
    wrap(svg, "wgfit-frame", &[], &body);

    for series in &panel.series {
        let body = frame.layer(|area| draw_series(&mut frame.chart(area)?, series))?;
        let role = if series.validation {
            "validation"
        } else {
            "training"
        };
        let attrs = [
            ("data-name", series.name.clone()),
            ("data-role", role.to_string()),
        ];
        wrap(svg, "wgfit-series", &attrs, &body);
    }

    for (mark, &line) in marks.iter().zip(lines) {
        let body = frame.layer(|area| draw_mark(&mut frame.chart(area)?, frame, mark, line))?;
        let attrs = [
            ("data-kind", mark.kind.name().to_string()),
            ("data-x", mark.x.to_string()),
            ("data-label", mark.label.clone()),
        ];
        wrap(svg, "wgfit-mark", &attrs, &body);
    }

    // The legend last, so that no line crosses it.
    let body = frame.layer(|area| {
        let mut chart = frame.chart(area)?;
        for series in &panel.series {
            let style = series_color(series).stroke_width(2);
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(series.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(legend_position(panel, frame))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font((FONT, FONT_SIZE))
            .draw()
    })?;
    wrap(svg, "wgfit-legend", &[], &body);
    Ok(())
}

/// The upper right corner, unless the curves end high (accuracy does): then the lower right.
fn legend_position(panel: &Panel, frame: &Frame) -> SeriesLabelPosition {
    let right = frame.x.0 + (frame.x.1 - frame.x.0) * 0.6;
    let middle = (frame.y.0 + frame.y.1) / 2.0;
    let (high, low) = panel
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| p.0 >= right)
        .fold((0, 0), |(high, low), p| {
            if p.1 > middle {
                (high + 1, low)
            } else {
                (high, low + 1)
            }
        });
    if high > low {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

fn series_color(series: &Series) -> RGBColor {
    if series.validation {
        VALIDATION
    } else {
        TRAINING
    }
}

fn draw_series(chart: &mut Chart<'_, '_>, series: &Series) -> DrawResult {
    let color = series_color(series);
    // Points are finite by construction; a hand-built Series may not be.
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    chart.draw_series(LineSeries::new(
        points.iter().copied(),
        color.stroke_width(2),
    ))?;
    // Dots too: a lone value (one epoch, or validation every n epochs) has no line to show it.
    if points.len() <= MAX_DOTS {
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}

fn draw_mark(
    chart: &mut Chart<'_, '_>,
    frame: &Frame,
    mark: &Mark,
    line: Option<usize>,
) -> DrawResult {
    let color = mark_color(mark.kind);
    let (bottom, top) = (frame.y.0, frame.y.1);
    let ends = [(mark.x, bottom), (mark.x, top)];
    if mark.kind == MarkKind::LearningRate {
        chart.draw_series(DashedLineSeries::new(ends, 6, 4, color.stroke_width(1)))?;
    } else {
        chart.draw_series(LineSeries::new(ends, color.stroke_width(2)))?;
    }
    if let Some(line) = line {
        let font = TextStyle::from((FONT, FONT_SIZE).into_font()).color(&color);
        let offset = (4, 3 + LABEL_LINE * line as i32);
        chart.draw_series(std::iter::once(
            EmptyElement::at((mark.x, top)) + Text::new(mark.label.clone(), offset, font),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochLogs, EventKind, History, Logs, RunEvent};

    fn curves(metrics: &[(&str, f64)], events: &[RunEvent]) -> Curves {
        let logs: Logs = metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let history = History {
            epochs: (0..3)
                .map(|epoch| EpochLogs {
                    epoch,
                    logs: logs.clone(),
                })
                .collect(),
        };
        Curves::from_history(&history, events)
    }

    #[test]
    fn every_part_is_wrapped_in_a_group() {
        let resume = RunEvent {
            kind: EventKind::Resume,
            epoch: 1,
            step: 1,
            steps: 2,
            global_step: 3,
            unix_ms: 0,
        };
        let svg = render_svg(
            &curves(&[("loss", 1.0), ("val_<&>", 2.0)], &[resume]),
            600,
            400,
        )
        .unwrap();
        assert!(svg.starts_with("<svg xmlns="), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
        assert_eq!(
            svg.matches("<svg").count(),
            1,
            "layers lose their own <svg>"
        );
        assert_eq!(svg.matches("class=\"wgfit-panel\"").count(), 2);
        assert!(svg.contains(r#"data-metric="&lt;&amp;&gt;""#));
        assert!(svg.contains(r#"data-name="val_&lt;&amp;&gt;" data-role="validation""#));
        assert!(svg.contains(r#"data-kind="resumed" data-x="1.5""#));
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    }

    #[test]
    fn sizes_are_checked() {
        let c = curves(&[("loss", 1.0), ("accuracy", 0.5)], &[]);
        assert!(render_svg(&c, 900, 600).is_ok());
        assert!(matches!(
            render_svg(&c, 100, 600),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            render_svg(&c, 900, 250),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            render_svg(&c, 900, MAX_SIZE + 1),
            Err(Error::Config { .. })
        ));
        let empty = curves(&[("loss", f64::NAN)], &[]);
        assert!(matches!(
            render_svg(&empty, 900, 600),
            Err(Error::InvalidData { .. })
        ));
    }
}
