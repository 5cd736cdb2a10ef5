//! What a picture shows, as plain data: panels of series and the vertical marks.

use std::collections::BTreeMap;

use crate::{EventKind, History, RunEvent};

/// Log names that hold the learning rate: Keras 3 and wgfit write `learning_rate`, Keras 2's
/// `ReduceLROnPlateau` wrote `lr`. The first one present in a history is used.
const LEARNING_RATE_KEYS: [&str; 2] = ["learning_rate", "lr"];

/// Prefix of the metrics computed on the validation data.
const VALIDATION_PREFIX: &str = "val_";

/// Panels drawn first, in this order; every other metric follows alphabetically.
const FIRST_PANELS: [&str; 2] = ["loss", "accuracy"];

/// The training curves of one run: what [`render_svg`](super::render_svg) draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    panels: Vec<Panel>,
    marks: Vec<Mark>,
    epochs: Option<(usize, usize)>,
}

/// One metric's panel: its training series and its validation series, whichever have values.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The metric, e.g. `loss`; the panel's caption.
    pub metric: String,
    /// The training series first, then the validation one; never empty.
    pub series: Vec<Series>,
}

/// The finite values of one logged name.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name as logged (`loss`, `val_loss`): the legend entry.
    pub name: String,
    /// True for a `val_` metric.
    pub validation: bool,
    /// `(x, value)` with `x = epoch + 1`, in epoch order; epochs whose value is missing or not
    /// finite have no point.
    pub points: Vec<(f64, f64)>,
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
        let mut rows: Vec<_> = history.epochs.iter().collect();
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
                let series = slot.get_or_insert_with(|| Series {
                    name: name.clone(),
                    validation,
                    points: Vec::new(),
                });
                if value.is_finite() {
                    series.points.push((x, value));
                }
            }
        }
        let mut panels: Vec<Panel> = metrics
            .into_iter()
            .map(|(metric, pair)| Panel {
                metric: metric.to_string(),
                series: pair
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.points.is_empty())
                    .collect(),
            })
            .filter(|p| !p.series.is_empty())
            .collect();
        panels.sort_by_key(|p| panel_rank(&p.metric));

        let mut marks: Vec<Mark> = events.iter().filter_map(event_mark).collect();
        if let Some(key) = lr_key {
            marks.extend(learning_rate_marks(
                rows.iter()
                    .filter_map(|e| e.logs.get(key).map(|&v| (e.epoch, v))),
            ));
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
    /// metrics alphabetically. A metric without a single finite value has none.
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
fn learning_rate_marks(rates: impl Iterator<Item = (usize, f64)>) -> Vec<Mark> {
    let mut marks = Vec::new();
    let mut previous: Option<f64> = None;
    for (epoch, rate) in rates.filter(|(_, r)| r.is_finite()) {
        if previous.is_some_and(|p| p != rate) {
            marks.push(Mark {
                kind: MarkKind::LearningRate,
                x: epoch as f64,
                label: format!("lr {}", short_number(rate)),
            });
        }
        previous = Some(rate);
    }
    marks
}

/// A number in at most four significant digits, without trailing zeros: the learning rate
/// 0.001 logged through an f32 reads `0.001`, not `0.0010000000474974513`.
pub(crate) fn short_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor();
    if !(-4.0..6.0).contains(&magnitude) {
        let s = format!("{v:.3e}");
        return match s.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => s,
        };
    }
    let decimals = (3.0 - magnitude).max(0.0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochLogs, Logs};

    fn history(rows: &[&[(&str, f64)]]) -> History {
        History {
            epochs: rows
                .iter()
                .enumerate()
                .map(|(epoch, logs)| EpochLogs {
                    epoch,
                    logs: logs
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect::<Logs>(),
                })
                .collect(),
        }
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
    fn panels_are_ordered_and_empty_ones_dropped() {
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
        assert_eq!(names, ["loss", "accuracy", "val_", "zeta"]);
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

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.001_f32 as f64), "0.001");
        assert_eq!(short_number(1e-5), "1e-5");
        assert_eq!(short_number(0.00025), "0.00025");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(-3.0), "-3");
        assert_eq!(short_number(123456.0), "123456");
        assert_eq!(short_number(1.5e7), "1.5e7");
        assert_eq!(short_number(0.0), "0");
    }
}
