//! A run's per-epoch logs, as Keras's `History`, kept so that copying it costs the same at
//! epoch 10 000 as at epoch 10: full chunks of [`HISTORY_CHUNK`] epochs are sealed and
//! shared, so a snapshot taken at every batch copies at most one chunk's worth of logs, and
//! a backup writes each sealed chunk once (docs/FORMAT.md, "History chunks").

use super::{EpochLogs, Logs};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// Epochs per sealed chunk of a [`History`], and per history chunk file of a backup. Small
/// enough that the inline tail of a sidecar stays a few kilobytes, large enough that a
/// history of 10 000 epochs is 156 files (bench/NOTES.md, "Saves at epoch 10 000").
pub const HISTORY_CHUNK: usize = 64;

/// The per-epoch logs of a run, as Keras's `History`: entry `i` is the logs of epoch `i` of
/// the run (or of `initial_epoch + i` when the run started later).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Full chunks of [`HISTORY_CHUNK`] epochs each, oldest first, never changed again.
    sealed: Vec<Arc<[EpochLogs]>>,
    /// The epochs after them, fewer than [`HISTORY_CHUNK`].
    tail: Vec<EpochLogs>,
}

impl History {
    /// Number of finished epochs recorded.
    pub fn len(&self) -> usize {
        self.sealed.len() * HISTORY_CHUNK + self.tail.len()
    }

    /// True when no epoch finished.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every recorded epoch, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &EpochLogs> + Clone {
        self.sealed
            .iter()
            .flat_map(|chunk| chunk.iter())
            .chain(self.tail.iter())
    }

    /// The `i`th recorded epoch.
    pub fn get(&self, i: usize) -> Option<&EpochLogs> {
        match self.sealed.get(i / HISTORY_CHUNK) {
            Some(chunk) => chunk.get(i % HISTORY_CHUNK),
            None => self.tail.get(i - self.sealed.len() * HISTORY_CHUNK),
        }
    }

    /// Records one more finished epoch.
    pub fn push(&mut self, epoch: EpochLogs) {
        self.tail.push(epoch);
        if self.tail.len() == HISTORY_CHUNK {
            self.sealed.push(std::mem::take(&mut self.tail).into());
        }
    }

    /// The recorded epochs as one vector.
    pub fn to_vec(&self) -> Vec<EpochLogs> {
        self.iter().cloned().collect()
    }

    /// The values of one metric, one per recorded epoch (missing values are skipped).
    pub fn metric(&self, name: &str) -> Vec<f64> {
        self.iter()
            .filter_map(|e| e.logs.get(name).copied())
            .collect()
    }

    /// The epoch numbers recorded.
    pub fn epoch_numbers(&self) -> Vec<usize> {
        self.iter().map(|e| e.epoch).collect()
    }

    /// The logs of the first recorded epoch.
    pub fn first(&self) -> Option<&EpochLogs> {
        self.iter().next()
    }

    /// The logs of the last recorded epoch.
    pub fn last(&self) -> Option<&Logs> {
        self.iter().next_back().map(|e| &e.logs)
    }

    /// The sealed chunks, oldest first.
    pub(crate) fn sealed(&self) -> &[Arc<[EpochLogs]>] {
        &self.sealed
    }

    /// The epochs after the sealed chunks.
    pub(crate) fn tail(&self) -> &[EpochLogs] {
        &self.tail
    }

    /// A history of sealed chunks (each [`HISTORY_CHUNK`] long) and the epochs after them
    /// (fewer than that); longer tails are sealed here.
    pub(crate) fn from_parts(sealed: Vec<Arc<[EpochLogs]>>, tail: Vec<EpochLogs>) -> History {
        assert!(
            sealed.iter().all(|c| c.len() == HISTORY_CHUNK),
            "a sealed history chunk of another length"
        );
        let mut history = History {
            sealed,
            tail: Vec::new(),
        };
        for epoch in tail {
            history.push(epoch);
        }
        history
    }
}

impl From<Vec<EpochLogs>> for History {
    fn from(epochs: Vec<EpochLogs>) -> History {
        History::from_parts(Vec::new(), epochs)
    }
}

impl FromIterator<EpochLogs> for History {
    fn from_iter<I: IntoIterator<Item = EpochLogs>>(iter: I) -> History {
        let mut history = History::default();
        for epoch in iter {
            history.push(epoch);
        }
        history
    }
}

impl std::ops::Index<usize> for History {
    type Output = EpochLogs;

    fn index(&self, i: usize) -> &EpochLogs {
        match self.get(i) {
            Some(epoch) => epoch,
            None => panic!("epoch {i} of a history of {}", self.len()),
        }
    }
}

impl PartialEq for History {
    fn eq(&self, other: &History) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

/// In JSON a history is `{"epochs": [...]}`, however it is held.
impl Serialize for History {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Epochs<'a>(&'a History);
        impl Serialize for Epochs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter())
            }
        }
        let mut out = s.serialize_struct("History", 1)?;
        out.serialize_field("epochs", &Epochs(self))?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<History, D::Error> {
        #[derive(Deserialize)]
        struct Plain {
            epochs: Vec<EpochLogs>,
        }
        Ok(Plain::deserialize(d)?.epochs.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(i: usize) -> EpochLogs {
        EpochLogs {
            epoch: i,
            logs: [("loss".to_string(), i as f64)].into(),
        }
    }

    #[test]
    fn chunks_seal_and_read_back_in_order() {
        for n in [
            0,
            1,
            HISTORY_CHUNK - 1,
            HISTORY_CHUNK,
            2 * HISTORY_CHUNK + 5,
        ] {
            let h: History = (0..n).map(epoch).collect();
            assert_eq!(h.len(), n);
            assert_eq!(h.sealed().len(), n / HISTORY_CHUNK);
            assert_eq!(h.tail().len(), n % HISTORY_CHUNK);
            assert_eq!(h.epoch_numbers(), (0..n).collect::<Vec<_>>());
            for i in 0..n {
                assert_eq!(h[i].epoch, i);
            }
            assert!(h.get(n).is_none());
            let json = serde_json::to_string(&h).unwrap();
            let back: History = serde_json::from_str(&json).unwrap();
            assert_eq!(back, h);
            let plain = serde_json::json!({ "epochs": (0..n).map(epoch).collect::<Vec<_>>() });
            assert_eq!(serde_json::to_value(&h).unwrap(), plain);
        }
    }

    #[test]
    fn log_values_read_numbers_and_the_names_of_non_finite_ones() {
        let json = r#"{"epochs": [{"epoch": 0, "logs": {"a": "NaN", "b": "Infinity",
            "c": "-Infinity", "d": 3, "e": -2, "f": 0.1, "g": 5e-324}}]}"#;
        let h: History = serde_json::from_str(json).unwrap();
        let logs = &h[0].logs;
        assert!(logs["a"].is_nan());
        assert_eq!(
            [
                logs["b"], logs["c"], logs["d"], logs["e"], logs["f"], logs["g"]
            ],
            [f64::INFINITY, f64::NEG_INFINITY, 3.0, -2.0, 0.1, 5e-324]
        );
        for (bad, says) in [("\"nan\"", "is not a number"), ("true", "invalid type")] {
            let json = format!(r#"{{"epochs": [{{"epoch": 0, "logs": {{"a": {bad}}}}}]}}"#);
            let err = serde_json::from_str::<History>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_copy_shares_the_sealed_chunks() {
        let h: History = (0..3 * HISTORY_CHUNK).map(epoch).collect();
        let copy = h.clone();
        for (a, b) in h.sealed().iter().zip(copy.sealed()) {
            assert!(Arc::ptr_eq(a, b));
        }
    }
}
