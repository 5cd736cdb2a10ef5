//! Where the marks' labels go: in a band above each plot, on as few lines as keep them apart.

use super::{Mark, MarkKind};

/// The most lines of mark labels above a plot.
pub(super) const LABEL_LINES: usize = 3;
/// A generous width of one label character: SVG leaves the font, so the real width, to the
/// viewer; DejaVu Sans, the usual `sans-serif`, averages about 7 px at the labels' size.
pub(super) const CHAR_WIDTH: f64 = 8.0;
/// Room between a mark's line and its label, and between two labels on one line.
pub(super) const GAP: f64 = 5.0;

/// The label drawn for a mark.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Label {
    /// The text: the mark's label, with `×N` when it stands for N marks of the same kind too
    /// close together to be labelled one by one (five resumes in five consecutive epochs).
    pub text: String,
    /// The line in the label band, 0 the top one.
    pub line: usize,
    /// True when the text ends left of the line (a mark near the right edge).
    pub leftward: bool,
}

/// The labels of a picture's marks and the lines of the band they take.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Labels {
    /// One per mark, in the order of the marks; `None` for a mark whose label another one
    /// stands for, or for which no line had room.
    pub of_mark: Vec<Option<Label>>,
    /// The lines of the band in use: the band's height in lines.
    pub lines: usize,
}

/// Lays out the labels of `marks` (sorted by x) so that no two overlap and none leaves the
/// picture. Run events come before learning-rate changes. Marks of one kind closer than their
/// label's width share one label, `resumed ×3`, at the first of them.
///
/// `x` is the range of epochs drawn and `pixels` the left and right pixel of the plot;
/// `width` the picture's.
pub(super) fn place_labels(
    marks: &[Mark],
    x: (f64, f64),
    pixels: (f64, f64),
    width: f64,
) -> Labels {
    let scale = (pixels.1 - pixels.0).max(1.0) / (x.1 - x.0);
    let pixel = |v: f64| pixels.0 + (v - x.0) * scale;
    let mut of_mark: Vec<Option<Label>> = vec![None; marks.len()];

    // Clusters: (first mark, count), events first.
    let mut clusters: Vec<(usize, usize)> = Vec::new();
    for rates in [false, true] {
        let mut open: Vec<(MarkKind, usize)> = Vec::new(); // kind -> index in `clusters`
        for (i, m) in marks.iter().enumerate() {
            if (m.kind == MarkKind::LearningRate) != rates {
                continue;
            }
            let joined = open
                .iter()
                .find(|(kind, _)| *kind == m.kind)
                .and_then(|&(_, c)| {
                    let (first, count) = clusters[c];
                    let text = cluster_text(&marks[first].label, count + 1);
                    let near = pixel(m.x) - pixel(marks[first].x) < text_width(&text) + GAP;
                    (near && !rates).then_some(c)
                });
            match joined {
                Some(c) => clusters[c].1 += 1,
                None => {
                    open.retain(|(kind, _)| *kind != m.kind);
                    open.push((m.kind, clusters.len()));
                    clusters.push((i, 1));
                }
            }
        }
    }

    let mut taken: [Vec<(f64, f64)>; LABEL_LINES] = Default::default();
    let mut lines = 0;
    for (first, count) in clusters {
        let text = cluster_text(&marks[first].label, count);
        let at = pixel(marks[first].x);
        let w = text_width(&text);
        let rightward = (at + GAP, at + GAP + w);
        let leftward = (at - GAP - w, at - GAP);
        let fits = |b: (f64, f64)| b.0 >= 0.0 && b.1 <= width;
        let free = |line: &Vec<(f64, f64)>, b: (f64, f64)| {
            line.iter().all(|&(s, e)| b.1 + GAP <= s || e + GAP <= b.0)
        };
        let place = (0..LABEL_LINES).find_map(|line| {
            [(rightward, false), (leftward, true)]
                .into_iter()
                .find(|&(b, _)| fits(b) && free(&taken[line], b))
                .map(|(b, left)| (line, b, left))
        });
        if let Some((line, bounds, left)) = place {
            taken[line].push(bounds);
            lines = lines.max(line + 1);
            of_mark[first] = Some(Label {
                text,
                line,
                leftward: left,
            });
        }
    }
    Labels { of_mark, lines }
}

fn cluster_text(label: &str, count: usize) -> String {
    if count == 1 {
        label.to_string()
    } else {
        format!("{label} ×{count}")
    }
}

/// The width the text of a label takes, at most.
pub(super) fn text_width(text: &str) -> f64 {
    CHAR_WIDTH * text.chars().count() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(kind: MarkKind, x: f64, label: &str) -> Mark {
        Mark {
            kind,
            x,
            label: label.into(),
        }
    }

    fn resumed(x: f64) -> Mark {
        mark(MarkKind::Resumed, x, "resumed")
    }

    fn texts(labels: &Labels) -> Vec<Option<(String, usize, bool)>> {
        labels
            .of_mark
            .iter()
            .map(|l| l.as_ref().map(|l| (l.text.clone(), l.line, l.leftward)))
            .collect()
    }

    #[test]
    fn close_labels_of_one_kind_share_a_label_and_other_kinds_take_other_lines() {
        let marks = [
            mark(MarkKind::LearningRate, 1.0, "lr 0.1"),
            resumed(1.0),
            resumed(1.1),
            mark(MarkKind::Preempted, 1.2, "preempted"),
            resumed(5.0),
        ];
        let labels = place_labels(&marks, (0.0, 10.0), (84.0, 888.0), 900.0);
        let some = |t: &str, line, left| Some((t.to_string(), line, left));
        assert_eq!(
            texts(&labels),
            [
                some("lr 0.1", 0, true),
                some("resumed ×2", 0, false),
                None,
                some("preempted", 1, false),
                some("resumed", 0, false),
            ]
        );
        assert_eq!(labels.lines, 2);
    }

    #[test]
    fn a_label_at_the_right_edge_ends_left_of_its_line() {
        let labels = place_labels(&[resumed(10.0)], (0.0, 10.0), (84.0, 888.0), 900.0);
        assert_eq!(texts(&labels), [Some(("resumed".into(), 0, true))]);
    }

    #[test]
    fn learning_rate_labels_without_room_are_left_out() {
        let marks: Vec<Mark> = (0..5)
            .map(|i| mark(MarkKind::LearningRate, 1.0 + i as f64 * 0.01, "lr 0.1"))
            .collect();
        let labels = place_labels(&marks, (0.0, 10.0), (84.0, 888.0), 900.0);
        let placed = labels.of_mark.iter().flatten().count();
        assert_eq!(
            placed,
            2 * LABEL_LINES - 1,
            "one each side per line, the first rightward"
        );
    }
}
