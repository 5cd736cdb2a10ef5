//! What a picture shows, as plain data: panels of series and the vertical marks.

use std::collections::BTreeMap;

use super::axis::number;
use crate::{EventKind, History, RunEvent};

/// Log names that hold the learning rate: Keras 3 and wgfit write `learning_rate`, Keras 2's
/// `ReduceLROnPlateau` wrote `lr`. The first one present in a history is used.
const LEARNING_RATE_KEYS: [&str; 2] = ["learning_rate", "lr"];

/// Prefix of the metrics computed on the validation data.
const VALIDATION_PREFIX: &str = "val_";

/// Panels drawn first, in this order; every other metric follows alphabetically.
const FIRST_PANELS: [&str; 2] = ["loss", "accuracy"];

/// The largest epoch number a history may hold: 2^53, the last up to which every whole number
/// is an exact f64, so that each epoch keeps a place of its own on the x axis.
pub const MAX_EPOCH: usize = 1 << 53;

/// The most learning-rate changes drawn as marks. A rate that changes more often (a
/// schedule, which changes it every epoch) gets a panel of its own instead: a mark and a
/// label at every epoch would hide the curves behind a wall of grey.
pub const MAX_RATE_MARKS: usize = 4;

/// The training curves of one run: what [`render_svg`](super::render_svg) draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    panels: Vec<Panel>,
    marks: Vec<Mark>,
    epochs: Option<(usize, usize)>,
}

/// One metric's panel: its training series and its validation series, whichever have values;
/// or the learning rate's panel, when it changes more than [`MAX_RATE_MARKS`] times.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The metric, e.g. `loss`, or the learning rate's log name (`learning_rate`, `lr`);
    /// the panel's caption.
    pub metric: String,
    /// The training series first, then the validation one; never empty.
    pub series: Vec<Series>,
}

/// The values of one logged name.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name as logged (`loss`, `val_loss`): the legend entry.
    pub name: String,
    /// True for a `val_` metric.
    pub validation: bool,
    /// The finite values: `(x, value)` with `x = epoch + 1`, in epoch order; epochs whose value
    /// is missing or not finite have no point.
    pub points: Vec<(f64, f64)>,
    /// The values that are NaN or infinite, `(x, which)` with `x` as in `points`: the line
    /// breaks there and a marker shows each.
    pub non_finite: Vec<(f64, NotFinite)>,
}

/// A logged value that has no place on a value axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFinite {
    /// NaN: marked with a cross at the bottom of the plot.
    NaN,
    /// +inf: marked with a triangle pointing out of the top.
    Infinity,
    /// -inf: marked with a triangle pointing out of the bottom.
    NegInfinity,
}

impl NotFinite {
    /// Which one `v` is, or `None` for a finite value.
    pub fn of(v: f64) -> Option<NotFinite> {
        if v.is_nan() {
            Some(NotFinite::NaN)
        } else if v == f64::INFINITY {
            Some(NotFinite::Infinity)
        } else if v == f64::NEG_INFINITY {
            Some(NotFinite::NegInfinity)
        } else {
            None
        }
    }

    /// The name the SVG (`data-value`) and the legend give it: `NaN`, `inf`, `-inf`.
    pub fn name(self) -> &'static str {
        match self {
            NotFinite::NaN => "NaN",
            NotFinite::Infinity => "inf",
            NotFinite::NegInfinity => "-inf",
        }
    }
}

impl Series {
    /// A series without values yet.
    pub fn new(name: &str, validation: bool) -> Series {
        Series {
            name: name.to_string(),
            validation,
            points: Vec::new(),
            non_finite: Vec::new(),
        }
    }

    /// Adds the value of the epoch drawn at `x`, to the points or to the non-finite values.
    pub fn push(&mut self, x: f64, value: f64) {
        match NotFinite::of(value) {
            None => self.points.push((x, value)),
            Some(which) => self.non_finite.push((x, which)),
        }
    }

    /// True when the series holds no value at all.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.non_finite.is_empty()
    }
}

/// A vertical line across every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// What happened there.
    pub kind: MarkKind,
    /// Where: in finished epochs, on the same axis as [`Series::points`].
    pub x: f64,
    /// The text drawn beside the line, e.g. `resumed` or `lr 0.001`.
    pub label: String,
}

/// What a [`Mark`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// The run resumed from `latest.json` ([`EventKind::Resume`]).
    Resumed,
    /// The run resumed from `previous.json` ([`EventKind::Fallback`]).
    Fallback,
    /// A signal stopped the run and its state was saved ([`EventKind::Preempted`]).
    Preempted,
    /// The learning rate differs from the previous epoch's; the mark sits at the start of the
    /// first epoch logged with the new rate (a dashed line).
    LearningRate,
}

impl MarkKind {
    /// The name the SVG gives it (`data-kind`): `resumed`, `fallback`, `preempted`,
    /// `learning-rate`.
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Resumed => "resumed",
            MarkKind::Fallback => "fallback",
            MarkKind::Preempted => "preempted",
            MarkKind::LearningRate => "learning-rate",
        }
    }
}

impl Curves {
    /// The curves of a run's history and events. Only resume, fallback and preemption events
    /// are marked: every run starts, so a start says nothing.
    pub fn from_history(history: &History, events: &[RunEvent]) -> Curves {
        let mut rows: Vec<_> = history.iter().collect();
        // Sorted by epoch so that lines run left to right whatever order the file had.
        rows.sort_by_key(|e| e.epoch);
        let lr_key = LEARNING_RATE_KEYS
            .into_iter()
            .find(|k| rows.iter().any(|e| e.logs.contains_key(*k)));

        // metric -> (training values, validation values), each name -> points.
        let mut metrics: BTreeMap<&str, [Option<Series>; 2]> = BTreeMap::new();
        for row in &rows {
            let x = row.epoch as f64 + 1.0;
            for (name, &value) in &row.logs {
                if Some(name.as_str()) == lr_key {
                    continue;
                }
                let (metric, validation) = split_name(name);
                let slot = &mut metrics.entry(metric).or_default()[usize::from(validation)];
                slot.get_or_insert_with(|| Series::new(name, validation))
                    .push(x, value);
            }
        }
        let mut panels: Vec<Panel> = metrics
            .into_iter()
            .map(|(metric, pair)| Panel {
                metric: metric.to_string(),
                series: pair
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .collect(),
            })
            .filter(|p| !p.series.is_empty())
            .collect();
        panels.sort_by_key(|p| panel_rank(&p.metric));

        let mut marks: Vec<Mark> = events.iter().filter_map(event_mark).collect();
        if let Some(key) = lr_key {
            let rates: Vec<(usize, f64)> = rows
                .iter()
                .filter_map(|e| e.logs.get(key).map(|&v| (e.epoch, v)))
                .collect();
            let changes = learning_rate_marks(&rates);
            if changes.len() <= MAX_RATE_MARKS {
                marks.extend(changes);
            } else {
                let mut series = Series::new(key, false);
                for &(epoch, rate) in &rates {
                    series.push(epoch as f64 + 1.0, rate);
                }
                panels.push(Panel {
                    metric: key.to_string(),
                    series: vec![series],
                });
            }
        }
        marks.sort_by(|a, b| a.x.total_cmp(&b.x));

        let epochs = match (rows.first(), rows.last()) {
            (Some(first), Some(last)) => Some((first.epoch, last.epoch)),
            _ => None,
        };
        Curves {
            panels,
            marks,
            epochs,
        }
    }

    /// The panels, in drawing order (top to bottom): `loss`, `accuracy`, then the other
    /// metrics alphabetically, then the learning rate's when it changes more than
    /// [`MAX_RATE_MARKS`] times. A metric never logged with a value has none.
    pub fn panels(&self) -> &[Panel] {
        &self.panels
    }

    /// The marks, left to right.
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    /// The first and last epoch (0-based) of the history, if it has any.
    pub fn epochs(&self) -> Option<(usize, usize)> {
        self.epochs
    }

    /// The number of series over all panels.
    pub fn series_count(&self) -> usize {
        self.panels.iter().map(|p| p.series.len()).sum()
    }

    /// True when some series has a finite value: without one there is nothing to draw.
    pub fn has_finite_values(&self) -> bool {
        self.panels
            .iter()
            .flat_map(|p| &p.series)
            .any(|s| !s.points.is_empty())
    }

    /// The number of values over all series that are NaN or infinite, each drawn as a marker.
    pub fn non_finite_count(&self) -> usize {
        self.panels
            .iter()
            .flat_map(|p| &p.series)
            .map(|s| s.non_finite.len())
            .sum()
    }

    /// The number of marks of one kind.
    pub fn count(&self, kind: MarkKind) -> usize {
        self.marks.iter().filter(|m| m.kind == kind).count()
    }

    /// The x range a picture spans: from the start of the first epoch to the end of the last,
    /// widened to every mark.
    pub(crate) fn x_range(&self) -> (f64, f64) {
        let (mut lo, mut hi) = match self.epochs {
            Some((first, last)) => (first as f64, last as f64 + 1.0),
            None => (0.0, 1.0),
        };
        for m in &self.marks {
            lo = lo.min(m.x);
            hi = hi.max(m.x);
        }
        (lo, hi)
    }
}

/// `val_loss` → (`loss`, true); `loss` → (`loss`, false). A bare `val_` is a metric of its own.
fn split_name(name: &str) -> (&str, bool) {
    match name.strip_prefix(VALIDATION_PREFIX) {
        Some(base) if !base.is_empty() => (base, true),
        _ => (name, false),
    }
}

fn panel_rank(metric: &str) -> (usize, String) {
    let first = FIRST_PANELS
        .iter()
        .position(|m| *m == metric)
        .unwrap_or(FIRST_PANELS.len());
    (first, metric.to_string())
}

fn event_mark(e: &RunEvent) -> Option<Mark> {
    let (kind, label) = match e.kind {
        EventKind::Start => return None,
        EventKind::Resume => (MarkKind::Resumed, "resumed"),
        EventKind::Fallback => (MarkKind::Fallback, "fallback to previous"),
        EventKind::Preempted => (MarkKind::Preempted, "preempted"),
    };
    Some(Mark {
        kind,
        x: e.epoch_position(),
        label: label.to_string(),
    })
}

/// A mark at every epoch whose learning rate differs from the last finite one before it. The
/// rate logged for epoch `e` is the one its updates used, so the change took effect at the
/// start of epoch `e`: `x = e`, left of that epoch's point at `e + 1`.
fn learning_rate_marks(rates: &[(usize, f64)]) -> Vec<Mark> {
    let mut marks = Vec::new();
    let mut previous: Option<f64> = None;
    for &(epoch, rate) in rates.iter().filter(|(_, r)| r.is_finite()) {
        if previous.is_some_and(|p| p != rate) {
            marks.push(Mark {
                kind: MarkKind::LearningRate,
                x: epoch as f64,
                label: format!("lr {}", number(rate, 4)),
            });
        }
        previous = Some(rate);
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochLogs, Logs};

    fn history(rows: &[&[(&str, f64)]]) -> History {
        rows.iter()
            .enumerate()
            .map(|(epoch, logs)| EpochLogs {
                epoch,
                logs: logs
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect::<Logs>(),
            })
            .collect()
    }

    #[test]
    fn values_of_epoch_e_sit_at_e_plus_one_and_nan_is_skipped() {
        let h = history(&[
            &[("loss", 1.0)],
            &[("loss", f64::NAN)],
            &[("loss", 0.5), ("val_loss", 0.7)],
        ]);
        let c = Curves::from_history(&h, &[]);
        assert_eq!(c.panels().len(), 1);
        let p = &c.panels()[0];
        assert_eq!(p.metric, "loss");
        assert_eq!(p.series[0].points, vec![(1.0, 1.0), (3.0, 0.5)]);
        assert_eq!(p.series[1].name, "val_loss");
        assert!(p.series[1].validation);
        assert_eq!(p.series[1].points, vec![(3.0, 0.7)]);
        assert_eq!(c.x_range(), (0.0, 3.0));
    }

    #[test]
    fn panels_are_ordered_and_metrics_without_finite_values_kept() {
        let h = history(&[&[
            ("zeta", 1.0),
            ("accuracy", 0.5),
            ("loss", 1.0),
            ("mae", f64::NAN),
            ("val_mae", f64::INFINITY),
            ("val_", 2.0),
            ("learning_rate", 0.1),
        ]]);
        let c = Curves::from_history(&h, &[]);
        let names: Vec<_> = c.panels().iter().map(|p| p.metric.as_str()).collect();
        assert_eq!(names, ["loss", "accuracy", "mae", "val_", "zeta"]);
        let mae = &c.panels()[2].series;
        assert!(mae[0].points.is_empty());
        assert_eq!(mae[0].non_finite, [(1.0, NotFinite::NaN)]);
        assert_eq!(mae[1].non_finite, [(1.0, NotFinite::Infinity)]);
        assert_eq!(c.non_finite_count(), 2);
    }

    #[test]
    fn learning_rate_changes_are_marked_at_the_start_of_their_epoch() {
        let h = history(&[
            &[("loss", 1.0), ("lr", 0.01)],
            &[("loss", 1.0), ("lr", 0.01)],
            &[("loss", 1.0), ("lr", f64::NAN)],
            &[("loss", 1.0), ("lr", 0.0010000000474974513)],
        ]);
        let c = Curves::from_history(&h, &[]);
        assert_eq!(c.panels().len(), 1, "lr has no panel of its own");
        assert_eq!(
            c.marks(),
            [Mark {
                kind: MarkKind::LearningRate,
                x: 3.0,
                label: "lr 0.001".into()
            }]
        );
    }

    #[test]
    fn events_become_marks_at_their_epoch_position() {
        let event = |kind, epoch, step| RunEvent {
            kind,
            epoch,
            step,
            steps: 8,
            global_step: 0,
            unix_ms: 0,
        };
        let events = [
            event(EventKind::Start, 0, 0),
            event(EventKind::Preempted, 1, 2),
            event(EventKind::Fallback, 1, 6),
            event(EventKind::Resume, 7, 0),
        ];
        let c = Curves::from_history(&history(&[&[("loss", 1.0)]]), &events);
        let marks: Vec<_> = c.marks().iter().map(|m| (m.kind, m.x)).collect();
        assert_eq!(
            marks,
            [
                (MarkKind::Preempted, 1.25),
                (MarkKind::Fallback, 1.75),
                (MarkKind::Resumed, 7.0)
            ]
        );
        assert_eq!(c.marks()[1].label, "fallback to previous");
        assert_eq!(c.x_range(), (0.0, 7.0), "marks widen the axis");
    }
}
