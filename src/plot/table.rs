//! History tables: the CSV of `wgfit train --history` and Keras's `CSVLogger` files.
//!
//! Both have a header line naming the columns, one of them `epoch`, and one line per epoch.
//! Keras lets the separator be chosen (`,` by default, `;` or a tab are common), writes
//! floats as Python does (`0.1`, `1e-05`, `nan`, `inf`), a missing value as `NA`, and quotes a
//! field that holds the separator. Blank lines, and a repeated header line (two logs put one
//! after the other), are skipped.

use std::collections::HashSet;
use std::path::Path;

use super::curves::MAX_EPOCH;
use crate::{EpochLogs, Error, Logs, Result};

/// The separators a header line is checked for, the default first.
const SEPARATORS: [char; 3] = [',', ';', '\t'];

/// How many column names, and how many characters of each, an error quotes.
const NAMES_QUOTED: usize = 8;
const NAME_CHARS_QUOTED: usize = 40;

/// Cells that mean "no value this epoch" besides an empty one (Keras's `CSVLogger`).
const MISSING: [&str; 1] = ["NA"];

/// The epochs of a history table. `path` names the file in errors; rows and columns in them
/// are 1-based, as an editor counts them.
pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<EpochLogs>> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.trim().is_empty());
    let (header_row, header) = lines.next().ok_or_else(|| Error::EmptyData {
        path: path.to_path_buf(),
    })?;
    let separator = detect_separator(header);
    let names: Vec<String> = split(header, separator)
        .map_err(|reason| parse_error(path, header_row, 0, reason))?
        .into_iter()
        .map(|n| n.trim().to_string())
        .collect();
    let epoch_column = names.iter().position(|n| n == "epoch").ok_or_else(|| {
        // A file that is no table may have a "name" of megabytes: quote a few, cut short.
        let mut found = names
            .iter()
            .take(NAMES_QUOTED)
            .map(|n| match n.char_indices().nth(NAME_CHARS_QUOTED) {
                Some((cut, _)) => format!("`{}…`", &n[..cut]),
                None => format!("`{n}`"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > NAMES_QUOTED {
            found += &format!(" and {} more", names.len() - NAMES_QUOTED);
        }
        parse_error(
            path,
            header_row,
            0,
            format!(
                "the header has no `epoch` column (it names {found}, separated by {})",
                separator_name(separator)
            ),
        )
    })?;
    // A set, not a scan of the names before each: a header may have many thousands.
    let mut seen = HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if !name.is_empty() && !seen.insert(name.as_str()) {
            let reason = format!("the header names `{name}` twice");
            return Err(parse_error(path, header_row, i + 1, reason));
        }
    }

    let mut epochs = Vec::new();
    for (row, line) in lines {
        let cells = split(line, separator).map_err(|reason| parse_error(path, row, 0, reason))?;
        // Logs of two runs put one after the other repeat the header.
        if cells
            .iter()
            .map(|c| c.trim())
            .eq(names.iter().map(String::as_str))
        {
            continue;
        }
        if cells.len() != names.len() {
            let reason = format!(
                "{} fields, but the header has {} (separated by {})",
                cells.len(),
                names.len(),
                separator_name(separator)
            );
            return Err(parse_error(path, row, 0, reason));
        }
        let epoch_cell = cells[epoch_column].trim();
        let epoch = epoch_cell
            .parse::<usize>()
            .ok()
            .filter(|e| *e <= MAX_EPOCH)
            .ok_or_else(|| {
                let reason = format!(
                    "epoch `{epoch_cell}` is not a whole number from 0 to {MAX_EPOCH} (2^53)"
                );
                parse_error(path, row, epoch_column + 1, reason)
            })?;
        let mut logs = Logs::new();
        for (column, (name, cell)) in names.iter().zip(&cells).enumerate() {
            // An unnamed column is an index a data-frame library added, not a metric.
            if column == epoch_column || name.is_empty() {
                continue;
            }
            let cell = cell.trim();
            if cell.is_empty() || MISSING.contains(&cell) {
                continue;
            }
            // Rust's float syntax takes Python's `nan`, `inf` and `-inf` and wgfit's `NaN`.
            let value = cell.parse::<f64>().map_err(|_| {
                let reason = format!("`{cell}` in column `{name}` is not a number");
                parse_error(path, row, column + 1, reason)
            })?;
            logs.insert(name.clone(), value);
        }
        epochs.push(EpochLogs { epoch, logs });
    }
    if epochs.is_empty() {
        return Err(Error::EmptyData {
            path: path.to_path_buf(),
        });
    }
    Ok(epochs)
}

fn parse_error(path: &Path, row: usize, column: usize, reason: impl Into<String>) -> Error {
    Error::DataParse {
        path: path.to_path_buf(),
        row,
        column,
        reason: reason.into(),
    }
}

/// The separator the header uses most, outside quotes; `,` when it uses none (a lone
/// `epoch` column).
fn detect_separator(header: &str) -> char {
    let mut counts = [0usize; SEPARATORS.len()];
    let mut quoted = false;
    for c in header.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = SEPARATORS.iter().position(|s| *s == c) {
            counts[i] += 1;
        }
    }
    let mut best = 0;
    for i in 1..SEPARATORS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    SEPARATORS[best]
}

fn separator_name(separator: char) -> &'static str {
    match separator {
        ',' => "commas",
        ';' => "semicolons",
        _ => "tabs",
    }
}

/// The fields of one line. A field that starts with `"` runs to the next lone `"`, so it may
/// hold the separator; `""` inside it is one `"` (Python's `csv` module writes this).
fn split(line: &str, separator: char) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c != '"' {
                field.push(c);
            } else if chars.peek() == Some(&'"') {
                chars.next();
                field.push('"');
            } else {
                quoted = false;
            }
        } else if c == separator {
            fields.push(std::mem::take(&mut field));
        } else if c == '"' && field.trim().is_empty() {
            field.clear();
            quoted = true;
        } else {
            field.push(c);
        }
    }
    if quoted {
        return Err(format!(
            "a quoted field is not closed on this line (field {})",
            fields.len() + 1
        ));
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Vec<EpochLogs>> {
        parse(Path::new("h.csv"), text)
    }

    #[test]
    fn keras_csv_logger_with_semicolons_quotes_and_missing_values() {
        let text = "epoch;loss;\"odd;name\";val_loss\r\n0;0.5;1e-05;NA\r\n\r\n\
                    epoch;loss;\"odd;name\";val_loss\r\n1;nan;-inf;1e+20\r\n";
        let rows = parse_text(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].logs["loss"], 0.5);
        assert_eq!(rows[0].logs["odd;name"], 1e-5);
        assert!(!rows[0].logs.contains_key("val_loss"));
        assert!(rows[1].logs["loss"].is_nan());
        assert_eq!(rows[1].logs["odd;name"], f64::NEG_INFINITY);
        assert_eq!(rows[1].logs["val_loss"], 1e20);
        assert_eq!(rows[1].epoch, 1);
    }

    #[test]
    fn separators_are_detected_from_the_header() {
        assert_eq!(detect_separator("epoch,loss"), ',');
        assert_eq!(detect_separator("epoch;loss;val_loss"), ';');
        assert_eq!(detect_separator("epoch\tloss"), '\t');
        assert_eq!(detect_separator("\"a,b\";epoch"), ';');
        assert_eq!(detect_separator("epoch"), ',');
    }

    #[test]
    fn quoted_fields() {
        assert_eq!(
            split("a,\"b,c\",\"d\"\"e\"", ',').unwrap(),
            ["a", "b,c", "d\"e"]
        );
        assert!(split("a,\"b", ',').unwrap_err().contains("field 2"));
    }

    #[test]
    fn errors_name_the_row_and_column() {
        let e = parse_text("epoch,loss\n0,0.5\n1,zero\n").unwrap_err();
        assert!(
            matches!(
                e,
                Error::DataParse {
                    row: 3,
                    column: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_text("epoch,loss\n0,0.5,7\n").unwrap_err();
        assert!(matches!(e, Error::DataParse { row: 2, .. }), "{e}");
        let e = parse_text("epoch,loss\n-1,0.5\n").unwrap_err();
        assert!(e.to_string().contains("epoch `-1`"), "{e}");
        let e = parse_text("epoch,loss,loss\n").unwrap_err();
        assert!(e.to_string().contains("`loss` twice"), "{e}");
        let e = parse_text("epoch,loss\n").unwrap_err();
        assert!(matches!(e, Error::EmptyData { .. }), "{e}");
    }
}
