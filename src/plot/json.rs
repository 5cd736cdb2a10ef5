//! JSON histories of `wgfit train --history`, and the event lists of backup sidecars.
//!
//! The history is either an object `{"epochs": [row, ...], "events": [event, ...]}` or, as
//! older versions wrote it, the bare array of rows. A row is an object with an `epoch` and the
//! epoch's logs; a non-finite value is one of the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"` (docs/FORMAT.md), or `null` where an older writer lost it.

use serde_json::Value;

use super::curves::MAX_EPOCH;
use crate::{EpochLogs, Logs, RunEvent};

/// A parsed JSON history: its epochs and, when the file has them, its events.
pub(super) struct JsonHistory {
    pub epochs: Vec<EpochLogs>,
    pub events: Option<Vec<RunEvent>>,
}

/// Parses a JSON history; the error says what is wrong and where (a JSON syntax error's line
/// and column, or the path to the offending value such as `epochs[3].loss`).
pub(super) fn parse(text: &str) -> Result<JsonHistory, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    match value {
        Value::Array(rows) => Ok(JsonHistory {
            epochs: rows_of(&rows, "")?,
            events: None,
        }),
        Value::Object(map) => {
            let rows = match map.get("epochs") {
                Some(Value::Array(rows)) => rows,
                Some(other) => {
                    return Err(format!("`epochs` is {}, not an array", kind(other)));
                }
                None => {
                    return Err(
                        "a JSON object without an `epochs` array is not a training history".into(),
                    );
                }
            };
            let events = match map.get("events") {
                None | Some(Value::Null) => None,
                Some(list) => Some(events_of(list)?),
            };
            Ok(JsonHistory {
                epochs: rows_of(rows, "epochs")?,
                events,
            })
        }
        other => Err(format!(
            "the file holds {}, not a training history (an array of epochs or an object with `epochs`)",
            kind(&other)
        )),
    }
}

/// The run events of an `events` array (a history's or a sidecar's). An event must fall
/// where a history's epochs can: at an epoch up to [`MAX_EPOCH`], at a step within it (one
/// far outside would stretch the x axis until the curves are a dot).
pub(super) fn events_of(list: &Value) -> Result<Vec<RunEvent>, String> {
    let Value::Array(items) = list else {
        return Err(format!("`events` is {}, not an array", kind(list)));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let event: RunEvent =
                serde_json::from_value(item.clone()).map_err(|e| format!("events[{i}]: {e}"))?;
            if event.epoch > MAX_EPOCH {
                return Err(format!(
                    "events[{i}].epoch is {}, more than {MAX_EPOCH} (2^53)",
                    event.epoch
                ));
            }
            if event.step > event.steps.max(1) {
                return Err(format!(
                    "events[{i}].step is {}, past the {} steps of its epoch",
                    event.step, event.steps
                ));
            }
            Ok(event)
        })
        .collect()
}

fn rows_of(rows: &[Value], name: &str) -> Result<Vec<EpochLogs>, String> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| row_of(row, &format!("{name}[{i}]")))
        .collect()
}

fn row_of(row: &Value, at: &str) -> Result<EpochLogs, String> {
    let Value::Object(fields) = row else {
        return Err(format!("{at} is {}, not an object", kind(row)));
    };
    let epoch = match fields.get("epoch") {
        Some(v) => v
            .as_u64()
            .and_then(|e| usize::try_from(e).ok())
            .filter(|e| *e <= MAX_EPOCH)
            .ok_or_else(|| {
                format!("{at}.epoch is {v}, not a whole number from 0 to {MAX_EPOCH} (2^53)")
            })?,
        None => return Err(format!("{at} has no `epoch`")),
    };
    let mut logs = Logs::new();
    for (name, value) in fields.iter().filter(|(name, _)| *name != "epoch") {
        let v = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                _ => None,
            },
            Value::Null => continue,
            _ => None,
        };
        let v = v.ok_or_else(|| {
            format!(
                "{at}.{name} is {value}, not a number, \"NaN\", \"Infinity\", \"-Infinity\" or null"
            )
        })?;
        logs.insert(name.clone(), v);
    }
    Ok(EpochLogs { epoch, logs })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_and_non_finite_values() {
        let old =
            parse(r#"[{"epoch": 0, "loss": "NaN", "val_loss": null, "x": "-Infinity"}]"#).unwrap();
        assert!(old.events.is_none());
        let logs = &old.epochs[0].logs;
        assert!(logs["loss"].is_nan());
        assert!(!logs.contains_key("val_loss"));
        assert_eq!(logs["x"], f64::NEG_INFINITY);

        let new = parse(
            r#"{"epochs": [{"epoch": 2, "loss": 1}], "events": [{"kind": "resume", "epoch": 1,
                "step": 3, "steps": 4, "global_step": 7, "unix_ms": 5}]}"#,
        )
        .unwrap();
        assert_eq!(new.epochs[0].epoch, 2);
        assert_eq!(new.events.unwrap()[0].epoch_position(), 1.75);
    }

    #[test]
    fn errors_say_where() {
        let e = |t| parse(t).err().unwrap();
        assert!(e("[{\"epoch\": 0,").contains("line 1 column"));
        assert!(e(r#"[{"epoch": 0}, {"loss": 1}]"#).contains("[1] has no `epoch`"));
        assert!(
            e(r#"{"epochs": [{"epoch": 0, "loss": true}]}"#).contains("epochs[0].loss is true")
        );
        assert!(e(r#"{"epochs": [{"epoch": -1}]}"#).contains("epochs[0].epoch is -1"));
        assert!(e(r#"{"epochs": [], "events": [{"kind": "x"}]}"#).contains("events[0]"));
        let event = |epoch: &str, step| {
            format!(
                r#"{{"epochs": [], "events": [{{"kind": "resume", "epoch": {epoch}, "step": {step},
                    "steps": 4, "global_step": 0, "unix_ms": 0}}]}}"#
            )
        };
        let error = |t: String| parse(&t).err().unwrap();
        assert!(error(event("18446744073709551615", 0)).contains("events[0].epoch"));
        assert!(error(event("1", 5)).contains("events[0].step is 5, past the 4 steps"));
        assert!(parse(&event("1", 4)).is_ok());
        assert!(e(r#"{"loss": [1]}"#).contains("without an `epochs` array"));
        assert!(e("3").contains("a number"));
    }
}
