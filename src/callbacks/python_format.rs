//! Numbers and file names as Keras writes them, which is as Python formats them: `repr` of a
//! float for `CSVLogger`, and `str.format` fields (`{epoch:02d}`, `{val_loss:.2f}`) for
//! `ModelCheckpoint`'s file names.

use std::collections::BTreeMap;

/// A value a file-name field may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
}

/// Python's `repr` of a float: the shortest digits that read back to the same value, in
/// fixed notation for exponents -4..16 and scientific (`1e-05`, `1.5e+16`) otherwise.
pub(crate) fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{text}")
    } else {
        let frac = &digits[1..];
        let mantissa = if frac.is_empty() {
            digits[..1].to_string()
        } else {
            format!("{}.{frac}", &digits[..1])
        };
        format!(
            "{sign}{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// Python's `str.format` of `pattern` with named fields, for the specs file names use:
/// `{name}`, `{name:05d}`, `{name:.3f}`, `{name:.2e}`, `{name:8.4f}` (width, `0` padding,
/// precision, type `d`, `f`, `e` or none), and `{{`/`}}` for braces. An error names the
/// field and what went wrong.
pub(crate) fn format_fields(
    pattern: &str,
    values: &BTreeMap<String, Value>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => field.push(c),
                        None => return Err(format!("`{{{field}` is not closed")),
                    }
                }
                let (name, spec) = field.split_once(':').unwrap_or((&field, ""));
                let value = values.get(name).ok_or_else(|| {
                    let known: Vec<&str> = values.keys().map(String::as_str).collect();
                    format!("no value named `{name}` (there are: {})", known.join(", "))
                })?;
                out.push_str(&format_one(*value, spec).map_err(|e| format!("`{{{field}}}`: {e}"))?);
            }
            '}' => return Err("a single `}` (write `}}` for a brace)".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Formats a file name `pattern` as a save will, with `epoch` and the logs `names` (all
/// holding sample values), so that a program can refuse a pattern no save could format before
/// training starts: an unknown field, a bad spec, an unclosed brace, a trailing `/`. Returns
/// the sample name.
pub fn check_file_pattern(pattern: &str, names: &[&str]) -> Result<String, String> {
    if pattern.ends_with('/') {
        return Err(
            "it ends in /, so it names a directory; give a file name pattern, e.g. \
             ck/w-{epoch:02d}.safetensors"
                .into(),
        );
    }
    let mut values: BTreeMap<String, Value> = names
        .iter()
        .map(|n| (n.to_string(), Value::Float(0.5)))
        .collect();
    values.insert("epoch".into(), Value::Int(1));
    format_fields(pattern, &values)
}

/// The widest field and the most digits a spec may ask for. A file name component has at most
/// 255 bytes on the usual file systems, so nothing larger can name a file; the bound keeps a
/// spec like `{epoch:99999999999999}` from asking for terabytes (and Rust's formatter from
/// panicking on a precision past `u16::MAX`).
pub(crate) const MAX_WIDTH: usize = 255;

/// One field with a spec `[0][width][.precision][type]`.
fn format_one(value: Value, spec: &str) -> Result<String, String> {
    let (zero, rest) = match spec.strip_prefix('0') {
        Some(r) => (true, r),
        None => (false, spec),
    };
    let kind = rest.chars().last().filter(|c| c.is_ascii_alphabetic());
    let rest = kind.map_or(rest, |_| &rest[..rest.len() - 1]);
    let (width, precision) = match rest.split_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (rest, None),
    };
    let width: usize = if width.is_empty() {
        0
    } else {
        width
            .parse()
            .map_err(|_| format!("unsupported format spec `{spec}`"))?
    };
    let precision: Option<usize> = match precision {
        None => None,
        Some(p) => Some(
            p.parse()
                .map_err(|_| format!("unsupported format spec `{spec}`"))?,
        ),
    };
    if width > MAX_WIDTH || precision.is_some_and(|p| p > MAX_WIDTH) {
        return Err(format!(
            "`{spec}` asks for more than {MAX_WIDTH} characters, more than a file name can hold"
        ));
    }
    let text = match (value, kind) {
        (Value::Int(i), None | Some('d')) if precision.is_none() => i.to_string(),
        (Value::Int(i), Some('f')) => format!("{:.*}", precision.unwrap_or(6), i as f64),
        (Value::Int(i), Some('e')) => sci(i as f64, precision.unwrap_or(6)),
        (Value::Float(f), None) if precision.is_none() => float_repr(f),
        (Value::Float(f), Some('f')) => format!("{:.*}", precision.unwrap_or(6), f),
        (Value::Float(f), Some('e')) => sci(f, precision.unwrap_or(6)),
        (Value::Float(_), Some('d')) => {
            return Err("`d` formats integers; this value is a float".into());
        }
        _ => return Err(format!("unsupported format spec `{spec}`")),
    };
    Ok(pad(text, width, zero))
}

/// Python's `{:.{p}e}`: two exponent digits at least, with a sign.
fn sci(v: f64, precision: usize) -> String {
    let s = format!("{v:.precision$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s,
    }
}

/// Right-aligns to `width`, with zeros after the sign when `zero`.
fn pad(text: String, width: usize, zero: bool) -> String {
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if zero {
        match text.strip_prefix('-') {
            Some(rest) => format!("-{}{rest}", "0".repeat(fill)),
            None => format!("{}{text}", "0".repeat(fill)),
        }
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

/// Entry point for the fuzzer (`fuzz/`): `pattern` formatted as a file name the way
/// `ModelCheckpoint` formats one, with `epoch`, `batch` and a few float logs. Not part of the
/// supported API.
#[doc(hidden)]
pub fn format_file_name(pattern: &str, epoch: u64, value: f64) -> Result<String, String> {
    let mut values: BTreeMap<String, Value> = ["loss", "accuracy", "val_loss", "learning_rate"]
        .iter()
        .map(|k| (k.to_string(), Value::Float(value)))
        .collect();
    values.insert("epoch".into(), Value::Int(epoch));
    values.insert("batch".into(), Value::Int(epoch / 2));
    format_fields(pattern, &values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_python_repr_writes_them() {
        for (v, python) in [
            (0.5, "0.5"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (-2.25, "-2.25"),
            (0.0, "0.0"),
            (f64::from(0.1f32), "0.10000000149011612"),
            (1e-7, "1e-07"),
            (1234567890123456.0, "1234567890123456.0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(float_repr(v), python, "{v:e}");
        }
    }

    #[test]
    fn fields_format_as_python_str_format() {
        let values: BTreeMap<String, Value> = [
            ("epoch".to_string(), Value::Int(3)),
            ("val_loss".to_string(), Value::Float(0.123456)),
            ("loss".to_string(), Value::Float(-0.5)),
        ]
        .into();
        let f = |p: &str| format_fields(p, &values);
        assert_eq!(
            f("w-{epoch:02d}-{val_loss:.2f}.st").unwrap(),
            "w-03-0.12.st"
        );
        assert_eq!(f("{epoch}").unwrap(), "3");
        assert_eq!(f("{val_loss}").unwrap(), "0.123456");
        assert_eq!(f("{val_loss:.3e}").unwrap(), "1.235e-01");
        assert_eq!(f("{loss:07.2f}").unwrap(), "-000.50");
        assert_eq!(f("{epoch:4d}|{{x}}").unwrap(), "   3|{x}");
        assert!(f("{batch}").unwrap_err().contains("no value named `batch`"));
        assert!(f("{epoch:x}").unwrap_err().contains("unsupported"));
        assert!(f("{loss:d}").unwrap_err().contains("integers"));
        assert!(f("{epoch").unwrap_err().contains("not closed"));
    }

    #[test]
    fn widths_and_precisions_are_bounded() {
        let values: BTreeMap<String, Value> = [
            ("epoch".to_string(), Value::Int(3)),
            ("loss".to_string(), Value::Float(0.5)),
        ]
        .into();
        let f = |p: &str| format_fields(p, &values);
        for huge in [
            "w-{epoch:99999999999999}.st",
            "{loss:.99999999999999f}",
            "{loss:.70000e}",
            "{epoch:0256d}",
            "{loss:256.1f}",
        ] {
            let e = f(huge).unwrap_err();
            assert!(e.contains("more than 255 characters"), "{huge}: {e}");
        }
        // A width past usize is refused, not wrapped.
        assert!(f("{epoch:99999999999999999999999}").is_err());
        assert_eq!(f("{epoch:0255d}").unwrap().len(), 255);
        assert_eq!(f("{loss:.255f}").unwrap().len(), 257);
    }
}
