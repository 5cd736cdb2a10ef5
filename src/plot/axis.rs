//! Axis ranges that plotters can draw whatever the values, and tick labels precise enough to
//! tell neighbouring ticks apart.
//!
//! plotters divides by an axis's span and searches for round tick values by shrinking a step
//! until enough ticks fit: an infinite span (values of ±1e308) never ends that search, a zero
//! span maps every value to NaN, and a span below 2.2e-16 (it compares with `f64::EPSILON`)
//! gets a single tick. So every axis here has a finite span, neither zero nor below what an
//! f64 can resolve at the size of its values, and values whose spread is very large or very
//! small are drawn divided by a power of ten ([`Axis::scale`]) and labelled with their true
//! size.

/// The smallest span of an axis, relative to the largest magnitude on it: a finer difference
/// is rounding, so a series that varies less is drawn flat.
const MIN_RELATIVE_SPAN: f64 = 1e-12;
/// The smallest span of an axis in drawn units: far above plotters' `f64::EPSILON`.
const MIN_SPAN: f64 = 1e-9;
/// Values spread over less than the first or more than the second are drawn divided by a
/// power of ten near their spread: plotters could not tick the first, nor hold the padded
/// span of values near ±1.8e308 in an f64.
const UNSCALED: (f64, f64) = (1e-5, 1e10);
/// The powers of ten a scale is chosen from: 1e-300 and below lose digits to subnormals.
const SCALE_EXPONENTS: (i32, i32) = (-290, 300);
/// Room above and below a series, as a share of its span.
const PAD: f64 = 0.08;
/// Roughly how many ticks plotters draws on an axis: a label needs the digits that tell one
/// tick from the next, a step of about span / TICKS apart.
const TICKS: f64 = 10.0;
/// The most significant digits an f64 has to show.
const MAX_DIGITS: i32 = 17;

/// The range an axis spans, in drawn units: a value `v` is drawn at `v / scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Axis {
    pub lo: f64,
    pub hi: f64,
    /// 1, or a power of ten that brings huge values into a drawable range.
    pub scale: f64,
}

impl Axis {
    /// The axis of some values, padded a little above and below. Non-finite values are left
    /// out (they are marked at the edges); with no finite value the axis spans 0 to 1.
    pub fn of_values(values: impl Iterator<Item = f64>) -> Axis {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if lo > hi {
            return Axis {
                lo: 0.0,
                hi: 1.0,
                scale: 1.0,
            };
        }
        // Halves, so that the spread of -1e308 and 1e308 does not overflow.
        let half_spread = hi / 2.0 - lo / 2.0;
        let spread = if half_spread > 0.0 {
            half_spread
        } else if lo != 0.0 {
            lo.abs()
        } else {
            1.0
        };
        let scale = if (UNSCALED.0..=UNSCALED.1).contains(&spread) {
            1.0
        } else {
            let exponent = spread.log10().floor() as i32;
            let exponent = exponent.clamp(SCALE_EXPONENTS.0, SCALE_EXPONENTS.1);
            // Parsed, as `powi` is a few ulps off: the labels multiply back by it.
            format!("1e{exponent}").parse().unwrap_or(1.0)
        };
        let (lo, hi) = (lo / scale, hi / scale);
        let pad = if hi > lo {
            (hi - lo) * PAD
        } else if lo != 0.0 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        // Padding stops at the largest f64, so that no tick stands for more.
        let most = f64::MAX / scale;
        let (lo, hi) = widened((lo - pad).max(-most), (hi + pad).min(most));
        Axis { lo, hi, scale }
    }

    /// The axis of a span of epochs, unpadded and at least one epoch wide. Epoch counts are
    /// whole numbers up to 2^53, exact in an f64, so no wider span is needed.
    pub fn of_range(lo: f64, hi: f64) -> Axis {
        let lo = lo.clamp(-f64::MAX / 4.0, f64::MAX / 4.0);
        let mut hi = hi.max(lo + 1.0).min(f64::MAX / 2.0);
        if hi <= lo {
            // Far beyond 2^53 (a hand-built History), lo + 1 is lo.
            hi = lo + lo.abs() * MIN_RELATIVE_SPAN;
        }
        Axis { lo, hi, scale: 1.0 }
    }

    /// The label of the tick at `v` (in drawn units): its true value, with as many digits as
    /// it takes to differ from the ticks beside it.
    pub fn label(&self, v: f64) -> String {
        // The axis ends at the largest f64, which v * scale may round past.
        let value = (v * self.scale).clamp(-f64::MAX, f64::MAX);
        let step = (self.hi - self.lo) / TICKS * self.scale;
        if value == 0.0 || !value.is_finite() || !step.is_finite() || step <= 0.0 {
            return number(value, 4);
        }
        // plotters computes a tick at zero as a rounding error of the step's size.
        if value.abs() < step * 1e-6 {
            return "0".into();
        }
        let digits = value.abs().log10().floor() - step.log10().floor() + 1.0;
        number(value, (digits as i32).clamp(4, MAX_DIGITS) as usize)
    }

    /// The label of an epoch tick: in full, with the decimals that tell it from the ticks
    /// beside it (epoch counts are below 2^53, so never in exponent form).
    pub fn epoch_label(&self, v: f64) -> String {
        let step = (self.hi - self.lo) / TICKS;
        let decimals = if v.fract() == 0.0 || step.is_nan() || step <= 0.0 {
            0
        } else {
            (-step.log10().floor()).clamp(0.0, 6.0) as usize
        };
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

/// `(lo, hi)` made finite, with `lo < hi` and a span plotters can divide by.
fn widened(lo: f64, hi: f64) -> (f64, f64) {
    let lo = lo.clamp(-f64::MAX / 4.0, f64::MAX / 4.0);
    let hi = hi.clamp(-f64::MAX / 4.0, f64::MAX / 4.0);
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let least = (lo.abs().max(hi.abs()) * MIN_RELATIVE_SPAN).max(MIN_SPAN);
    if hi - lo >= least {
        return (lo, hi);
    }
    let middle = lo / 2.0 + hi / 2.0;
    (middle - least / 2.0, middle + least / 2.0)
}

/// `v` in `digits` significant digits, without trailing zeros; in exponent form when it is
/// very small or large.
pub(crate) fn number(v: f64, digits: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = digits.max(1);
    let magnitude = v.abs().log10().floor();
    if !(-4.0..6.0).contains(&magnitude) {
        let s = format!("{v:.*e}", digits - 1);
        return match s.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => s,
        };
    }
    let decimals = (digits as f64 - 1.0 - magnitude).max(0.0) as usize;
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

    fn axis(values: &[f64]) -> Axis {
        Axis::of_values(values.iter().copied())
    }

    #[test]
    fn every_axis_has_a_finite_span_plotters_can_divide_by() {
        for values in [
            &[1e308, -1e308][..],
            &[f64::MAX, f64::MAX],
            &[f64::MIN, f64::MAX],
            &[5e-324, 5e-324],
            &[5e-324, 1e-323],
            &[1.0, 1.0000000000000002],
            &[1e20, 1.0000000000000002e20],
            &[0.0],
            &[f64::NAN, f64::INFINITY],
        ] {
            let a = axis(values);
            let span = a.hi - a.lo;
            assert!(
                a.lo.is_finite() && a.hi.is_finite() && span.is_finite() && span > 0.0,
                "{values:?}: {a:?}"
            );
            for v in values.iter().filter(|v| v.is_finite()) {
                let drawn = v / a.scale;
                assert!(a.lo <= drawn && drawn <= a.hi, "{v} outside {a:?}");
            }
        }
        assert_eq!(
            axis(&[0.0]),
            Axis {
                lo: -1.0,
                hi: 1.0,
                scale: 1.0
            }
        );
        assert_eq!(
            axis(&[2.0]),
            Axis {
                lo: 1.8,
                hi: 2.2,
                scale: 1.0
            }
        );
    }

    #[test]
    fn labels_tell_neighbouring_ticks_apart() {
        let a = axis(&[1e20, 1.00000001e20]);
        assert_ne!(a.label(1e20), a.label(1.000000005e20));
        let a = axis(&[0.0, 1.0]);
        assert_eq!(a.label(0.30000000000000004), "0.3");
        let a = axis(&[1e308, -1e308]);
        assert_eq!(a.scale, 1e300);
        assert_eq!(a.label(1e8), "1e308");
        assert_eq!(a.label(1.352e-15), "0", "zero as plotters rounds it");
        let a = axis(&[5e-324, 1e-323]);
        assert!(a.scale <= 1e-290 && a.hi - a.lo >= MIN_SPAN, "{a:?}");
        let a = axis(&[f64::MAX, f64::MAX]);
        assert_eq!(a.label(a.hi), "1.798e308", "{a:?}");
        let epochs = Axis::of_range(1234567.0, 1234570.0);
        assert_eq!(epochs.epoch_label(1234568.0), "1234568");
        assert_eq!(epochs.epoch_label(1234568.5), "1234568.5");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(0.001_f32 as f64, 4), "0.001");
        assert_eq!(number(1e-5, 4), "1e-5");
        assert_eq!(number(0.00025, 4), "0.00025");
        assert_eq!(number(2.5, 4), "2.5");
        assert_eq!(number(-3.0, 4), "-3");
        assert_eq!(number(123456.0, 4), "123456");
        assert_eq!(number(1.5e7, 4), "1.5e7");
        assert_eq!(number(0.0, 4), "0");
        assert_eq!(number(1.0000000001, 11), "1.0000000001");
    }
}
