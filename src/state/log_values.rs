//! Log values in JSON. Finite values are numbers; NaN and the infinities, which JSON has no
//! numbers for, are the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (docs/FORMAT.md), so
//! that every value a run logs survives a save and a restore.

use super::Logs;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

struct Value(f64);

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("Infinity"),
            _ => s.serialize_str("-Infinity"),
        }
    }
}

/// Reads a value straight from the parser's number or string (an untagged enum would
/// buffer every value first: restoring a long history spends its time here).
struct ValueVisitor;

impl serde::de::Visitor<'_> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value(v as f64))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value(v as f64))
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Value, E> {
        match name {
            "NaN" => Ok(Value(f64::NAN)),
            "Infinity" => Ok(Value(f64::INFINITY)),
            "-Infinity" => Ok(Value(f64::NEG_INFINITY)),
            _ => Err(E::custom(format!(
                "{name:?} is not a number, \"NaN\", \"Infinity\" or \"-Infinity\""
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Serializes logs with non-finite values as strings.
pub fn serialize<S: Serializer>(logs: &Logs, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(logs.len()))?;
    for (k, v) in logs {
        map.serialize_entry(k, &Value(*v))?;
    }
    map.end()
}

/// Reads logs written by [`serialize`], straight into the map (a map of the values' wrapper
/// first, converted after, built and freed a second map per epoch of a restored history).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Logs, D::Error> {
    d.deserialize_map(LogsVisitor)
}

struct LogsVisitor;

impl<'de> serde::de::Visitor<'de> for LogsVisitor {
    type Value = Logs;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of metric names to values")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Logs, A::Error> {
        let mut logs = Logs::new();
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            logs.insert(name, value.0);
        }
        Ok(logs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::EpochLogs;

    // The values themselves: state/history.rs, `log_values_read_numbers_and_...`.
    #[test]
    fn logs_are_a_map_of_values_and_a_repeated_name_keeps_the_last() {
        let e: EpochLogs =
            serde_json::from_str(r#"{"epoch": 0, "logs": {"a": 1, "a": 2}}"#).unwrap();
        assert_eq!(e.logs.len(), 1);
        assert_eq!(e.logs["a"], 2.0);
        for bad in [
            r#"{"epoch": 0, "logs": [1.0]}"#,
            r#"{"epoch": 0, "logs": {"loss": null}}"#,
            r#"{"epoch": 0, "logs": 3}"#,
        ] {
            assert!(serde_json::from_str::<EpochLogs>(bad).is_err(), "{bad}");
        }
    }
}
