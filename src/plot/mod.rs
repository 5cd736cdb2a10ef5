//! Training-curve pictures: `wgfit plot` and `wgfit train --plot` (SVG, through `plotters`).
//!
//! [`Curves`] is what a picture shows: one [`Panel`] per metric (`loss` with `val_loss`,
//! `accuracy` with `val_accuracy`, ...), and vertical [`Mark`]s where the run was resumed,
//! fell back to the previous checkpoint, was preempted, or changed its learning rate (a rate
//! that changes more than [`MAX_RATE_MARKS`] times gets a panel instead). It is
//! built from a [`History`](crate::History) and its [`RunEvent`](crate::RunEvent)s
//! ([`Curves::from_history`]) or read from a history file ([`Curves::read`]: the JSON or CSV of
//! `wgfit train --history`, or a Keras `CSVLogger` file). [`render_svg`] draws it.
//!
//! The x axis counts finished epochs: the logs of epoch `e` (0-based) are drawn at `x = e + 1`,
//! so an event at [`RunEvent::epoch_position`](crate::RunEvent::epoch_position) `p` sits at
//! `x = p`, between the points of the epochs around it.
//!
//! The SVG carries its own structure for programs that read it back: every panel is a
//! `<g class="wgfit-panel" data-metric="loss">`, and inside it every series a
//! `<g class="wgfit-series" data-name="val_loss" data-role="validation">` and every mark a
//! `<g class="wgfit-mark" data-kind="resumed" data-x="2.25" data-label="resumed">` around what
//! `plotters` drew for it; every value that is NaN or infinite a
//! `<g class="wgfit-non-finite" data-name="loss" data-x="3" data-value="NaN">` (`inf`,
//! `-inf`) around its marker; the axes and caption are in `wgfit-frame`, the legend in
//! `wgfit-legend`.

mod axis;
mod curves;
mod json;
mod layout;
mod markup;
mod read;
mod render;
mod shapes;
mod table;

pub use curves::{Curves, MAX_EPOCH, MAX_RATE_MARKS, Mark, MarkKind, NotFinite, Panel, Series};
pub use read::MAX_HISTORY_BYTES;
pub use render::{
    DEFAULT_PANEL_HEIGHT, DEFAULT_WIDTH, MAX_PANELS, MAX_SIZE, MIN_PANEL_HEIGHT, MIN_WIDTH,
};
pub use render::{render_svg, write_svg};
