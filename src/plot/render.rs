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

use super::axis::Axis;
use super::layout::{Label, place_labels, text_width};
use super::markup::{escape, open_group, wrap};
use super::shapes;
use super::{Curves, Mark, NotFinite, Panel, Series};
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
/// The most panels one picture holds: [`MAX_SIZE`] / [`MIN_PANEL_HEIGHT`].
pub const MAX_PANELS: usize = (MAX_SIZE / MIN_PANEL_HEIGHT) as usize;

/// Room above each panel's plot for its caption.
const CAPTION_HEIGHT: u32 = 32;
/// Room around each panel's plot.
const MARGIN: u32 = 12;
/// Room below the plot for the epoch numbers and the axis title.
const X_LABEL_AREA: u32 = 42;
/// Room left of the plot for the metric's values.
const Y_LABEL_AREA: u32 = 72;
/// Height of one line of mark labels; labels that would overlap go on the next line.
pub(super) const LABEL_LINE: u32 = 16;
/// Room between the band of mark labels and the plot.
const BAND_PAD: u32 = 4;
/// Room right of the last epoch, as a share of the epochs shown, so its dots are not cut.
const RIGHT_PAD: f64 = 0.02;
pub(super) const FONT: &str = "sans-serif";
pub(super) const FONT_SIZE: u32 = 15;
const CAPTION_SIZE: u32 = 20;

const GRID: RGBColor = RGBColor(232, 232, 232);

pub(super) type DrawResult<T = ()> = std::result::Result<T, DrawingAreaErrorKind<std::io::Error>>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
pub(super) type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws `curves` as an SVG document of `width` × `height` pixels, its panels stacked top to
/// bottom, each `height / panels` high.
///
/// Fails with [`Error::InvalidData`] when no series has a finite value or there are more
/// panels than [`MAX_PANELS`], and with [`Error::Config`] when the size is outside
/// [`MIN_WIDTH`]..=[`MAX_SIZE`] or leaves a panel lower than [`MIN_PANEL_HEIGHT`].
pub fn render_svg(curves: &Curves, width: u32, height: u32) -> Result<String> {
    let panels = curves.panels();
    if !curves.has_finite_values() {
        return Err(Error::InvalidData {
            path: None,
            reason: "nothing to plot: no metric has a finite value".into(),
        });
    }
    if panels.len() > MAX_PANELS {
        return Err(Error::InvalidData {
            path: None,
            reason: format!(
                "{} metrics to plot, one panel each, but at most {MAX_PANELS} panels fit in \
                 one picture ({MAX_SIZE} px high, {MIN_PANEL_HEIGHT} px a panel)",
                panels.len()
            ),
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
    let x = Axis::of_range(lo, hi + (hi - lo) * RIGHT_PAD);
    let y_axes: Vec<Axis> = panels.iter().map(value_axis).collect();
    // One width of value labels for all panels, so that an epoch is one pixel in all.
    let y_area = y_axes
        .iter()
        .flat_map(|a| [a.label(a.lo), a.label(a.hi)])
        .map(|l| (text_width(&l) + 12.0) as u32)
        .fold(Y_LABEL_AREA, u32::max)
        .min(width / 3);
    let plot_pixels = (
        f64::from(MARGIN + y_area),
        f64::from(width.saturating_sub(MARGIN)),
    );
    let labels = place_labels(curves.marks(), (x.lo, x.hi), plot_pixels, f64::from(width));
    let band = if labels.lines == 0 {
        0
    } else {
        labels.lines as u32 * LABEL_LINE + BAND_PAD
    };
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
    for (i, (panel, y)) in panels.iter().zip(y_axes).enumerate() {
        let top = i as u32 * panel_height;
        let frame = Frame {
            x,
            y,
            width,
            height: panel_height,
            band,
            y_area,
        };
        open_group(
            &mut svg,
            "wgfit-panel",
            &[
                ("data-metric", panel.metric.clone()),
                ("transform", format!("translate(0,{top})")),
            ],
        );
        draw_panel(&mut svg, panel, curves.marks(), &labels.of_mark, &frame)?;
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

/// Draws `curves` at [`DEFAULT_WIDTH`] × [`DEFAULT_PANEL_HEIGHT`] per panel (lower when that
/// would pass [`MAX_SIZE`]) and writes the SVG to `path` atomically (a reader sees the old
/// file or the whole new one).
pub fn write_svg(path: &Path, curves: &Curves) -> Result<()> {
    let panels = u32::try_from(curves.panels().len().max(1)).unwrap_or(u32::MAX);
    let panel_height = DEFAULT_PANEL_HEIGHT.min(MAX_SIZE / panels);
    let svg = render_svg(curves, DEFAULT_WIDTH, panel_height.saturating_mul(panels))?;
    crate::checkpoint::write_atomically(path, svg.as_bytes())?;
    Ok(())
}

/// The value axis of a panel, over all its series.
fn value_axis(panel: &Panel) -> Axis {
    Axis::of_values(
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
    )
}

/// What every layer of one panel shares, so that all map values to the same pixels.
pub(super) struct Frame {
    pub x: Axis,
    pub y: Axis,
    pub width: u32,
    pub height: u32,
    /// Height of the band of mark labels above the plot.
    pub band: u32,
    /// Width of the value labels left of the plot.
    pub y_area: u32,
}

impl Frame {
    pub fn chart<'a, 'b>(&self, area: &'a Area<'b>) -> DrawResult<Chart<'a, 'b>> {
        ChartBuilder::on(area)
            .margin(MARGIN)
            .margin_top(CAPTION_HEIGHT + self.band)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(self.y_area)
            .build_cartesian_2d(self.x.lo..self.x.hi, self.y.lo..self.y.hi)
    }

    /// Where `value` is drawn on the value axis.
    pub fn y_of(&self, value: f64) -> f64 {
        value / self.y.scale
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
    labels: &[Option<Label>],
    frame: &Frame,
) -> Result<()> {
    let body = frame.layer(|area| {
        let caption = TextStyle::from((FONT, CAPTION_SIZE).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center));
        let at = ((frame.width / 2) as i32, (CAPTION_HEIGHT / 2) as i32);
        area.draw(&Text::new(panel.metric.as_str(), at, caption))?;
        let span = (frame.x.hi - frame.x.lo).ceil();
        let x_labels = if span.is_finite() && span < 11.0 {
            span as usize + 1
        } else {
            12
        };
        frame
            .chart(area)?
            .configure_mesh()
            .x_desc("epochs")
            .x_labels(x_labels.max(2))
            .y_labels(6)
            .x_label_formatter(&|v| frame.x.epoch_label(*v))
            .y_label_formatter(&|v| frame.y.label(*v))
            .light_line_style(GRID)
            .max_light_lines(1)
            .label_style((FONT, FONT_SIZE))
            .draw()
    })?;
    wrap(svg, "wgfit-frame", &[], &body);

    // Markers of non-finite values go on top of everything, the legend too: a marker it hid
    // would be a value gone without a trace.
    let mut markers = String::new();
    for series in &panel.series {
        let body = frame.layer(|area| shapes::series(&mut frame.chart(area)?, frame, series))?;
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
        for &(x, value) in &series.non_finite {
            let body = frame.layer(|area| {
                shapes::non_finite(&mut frame.chart(area)?, frame, series, x, value)
            })?;
            let attrs = [
                ("data-name", series.name.clone()),
                ("data-x", x.to_string()),
                ("data-value", value.name().to_string()),
            ];
            wrap(&mut markers, "wgfit-non-finite", &attrs, &body);
        }
    }

    for (mark, label) in marks.iter().zip(labels) {
        let body = frame
            .layer(|area| shapes::mark(&mut frame.chart(area)?, frame, mark, label.as_ref()))?;
        let attrs = [
            ("data-kind", mark.kind.name().to_string()),
            ("data-x", mark.x.to_string()),
            ("data-label", mark.label.clone()),
        ];
        wrap(svg, "wgfit-mark", &attrs, &body);
    }

    // The legend after the lines and marks, so that none crosses it.
    let body = frame.layer(|area| {
        let mut chart = frame.chart(area)?;
        for series in &panel.series {
            let style = shapes::color(series).stroke_width(2);
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(legend_text(series))
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
    svg.push_str(&markers);
    Ok(())
}

/// The series' name, with how many of its values are not finite, `val_loss (2 NaN, 1 inf)`:
/// they have markers but no point, and the legend says what the markers are.
fn legend_text(series: &Series) -> String {
    let parts: Vec<String> = [NotFinite::NaN, NotFinite::Infinity, NotFinite::NegInfinity]
        .into_iter()
        .map(|which| {
            let n = series.non_finite.iter().filter(|p| p.1 == which).count();
            (n, which.name())
        })
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if parts.is_empty() {
        series.name.clone()
    } else {
        format!("{} ({})", series.name, parts.join(", "))
    }
}

/// The corner of the plot whose area holds the fewest points and markers, the upper right
/// on a tie, so that the legend hides as little as it can.
fn legend_position(panel: &Panel, frame: &Frame) -> SeriesLabelPosition {
    let share = |v: f64, (lo, hi): (f64, f64)| (v - lo) / (hi - lo);
    let (x, y) = ((frame.x.lo, frame.x.hi), (frame.y.lo, frame.y.hi));
    let places: Vec<(f64, f64)> = panel
        .series
        .iter()
        .flat_map(|s| {
            let drawn = s.points.iter().map(|&(px, v)| (px, frame.y_of(v)));
            let markers = s
                .non_finite
                .iter()
                .map(|&(px, v)| (px, if v == NotFinite::Infinity { y.1 } else { y.0 }));
            drawn.chain(markers).collect::<Vec<_>>()
        })
        .map(|(px, py)| (share(px, x), share(py, y)))
        .collect();
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let covered = |right: bool, upper: bool| {
        places
            .iter()
            .filter(|&&(px, py)| {
                (if right { px >= 0.6 } else { px <= 0.4 })
                    && (if upper { py >= 0.65 } else { py <= 0.35 })
            })
            .count()
    };
    let mut best = (SeriesLabelPosition::UpperRight, usize::MAX);
    for (corner, right, upper) in corners {
        let n = covered(right, upper);
        if n < best.1 {
            best = (corner, n);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochLogs, EventKind, Logs, RunEvent};

    fn curves(metrics: &[(&str, f64)], events: &[RunEvent]) -> Curves {
        let logs: Logs = metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let history = (0..3)
            .map(|epoch| EpochLogs {
                epoch,
                logs: logs.clone(),
            })
            .collect();
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
