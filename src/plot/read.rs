//! Reading [`Curves`] from a history file, with the events of a backup directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::{Curves, json, table};
use crate::checkpoint::LATEST;
use crate::{EpochLogs, Error, History, Result, RunEvent};

/// The largest history file read: some ten million epoch rows. A larger file is not a
/// history (a data set, a disk image, `/dev/zero` named by mistake), and reading it whole
/// would exhaust memory.
pub const MAX_HISTORY_BYTES: u64 = 256 << 20;

impl Curves {
    /// Reads a history file: the JSON (an object with `epochs` and `events`, or an array of
    /// epochs) or CSV of `wgfit train --history`, or a Keras `CSVLogger` file (separator `,`,
    /// `;` or tab). The form is told from the content, not the file name.
    ///
    /// When the file records no events, those of `backup_dir`'s `latest.json` are marked (a
    /// sidecar written before events were recorded has none). When an epoch appears twice,
    /// as in a `CSVLogger` file appended to by a rerun, its last line counts.
    ///
    /// Errors name the file and the fault: [`Error::DataIo`] when it cannot be read,
    /// [`Error::EmptyData`] when it holds no epochs, [`Error::DataParse`] with the line and
    /// column of a bad CSV cell, [`Error::InvalidData`] for bad JSON or a history without a
    /// single finite metric value, and [`Error::CheckpointIo`], [`Error::NotRegularFile`] or
    /// [`Error::CorruptCheckpoint`] for an unreadable `latest.json`; [`Error::InvalidData`]
    /// too for a file larger than [`MAX_HISTORY_BYTES`].
    pub fn read(path: &Path, backup_dir: Option<&Path>) -> Result<Curves> {
        let invalid = |reason: String| Error::InvalidData {
            path: Some(path.to_path_buf()),
            reason,
        };
        let bytes = read_bounded(path)?.ok_or_else(|| {
            invalid(format!(
                "larger than {} MiB, too large for a training history",
                MAX_HISTORY_BYTES >> 20
            ))
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| invalid(format!("not UTF-8 text, so neither JSON nor CSV ({e})")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (epochs, events) = match text.trim_start().chars().next() {
            None => {
                return Err(Error::EmptyData {
                    path: path.to_path_buf(),
                });
            }
            Some('{' | '[') => {
                let parsed = json::parse(text).map_err(invalid)?;
                (parsed.epochs, parsed.events)
            }
            Some(_) => (table::parse(path, text)?, None),
        };
        if epochs.is_empty() {
            return Err(Error::EmptyData {
                path: path.to_path_buf(),
            });
        }
        let events = match (events, backup_dir) {
            (Some(events), _) if !events.is_empty() => events,
            (_, Some(dir)) => backup_events(dir)?,
            _ => Vec::new(),
        };
        let curves = Curves::from_history(&history_of(epochs), &events);
        if !curves.has_finite_values() {
            return Err(invalid(
                "no metric has a single finite value, so there is nothing to plot".into(),
            ));
        }
        Ok(curves)
    }
}

/// The bytes of `path`, or `None` when it holds more than [`MAX_HISTORY_BYTES`]. A regular
/// file is judged by its length first; a device or pipe by reading one byte past the limit.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>> {
    let io = |source| Error::DataIo {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_file() && meta.len() > MAX_HISTORY_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_HISTORY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok((bytes.len() as u64 <= MAX_HISTORY_BYTES).then_some(bytes))
}

/// The history of rows in any order; a repeated epoch keeps its last row.
fn history_of(rows: Vec<EpochLogs>) -> History {
    let by_epoch: BTreeMap<usize, EpochLogs> = rows.into_iter().map(|r| (r.epoch, r)).collect();
    by_epoch.into_values().collect()
}

/// The events recorded in a backup directory's `latest.json` (none in an older sidecar).
/// Only that field is read, so any sidecar version with an `events` list will do.
fn backup_events(dir: &Path) -> Result<Vec<RunEvent>> {
    let path = dir.join(LATEST);
    // As everywhere in a backup, a link or special file is not followed or read.
    let bytes = match crate::checkpoint::read_latest_sidecar(dir) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(Error::corrupt(&path, "it is missing")),
        // A directory that cannot be opened: name the file wanted in it.
        Err(Error::CheckpointIo { source, .. }) => return Err(Error::ckpt_io(&path, source)),
        Err(e) => return Err(e),
    };
    let sidecar: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(&path, format!("not valid JSON: {e}")))?;
    let Value::Object(fields) = sidecar else {
        return Err(Error::corrupt(&path, "not a JSON object"));
    };
    match fields.get("events") {
        None => Ok(Vec::new()),
        Some(list) => json::events_of(list).map_err(|reason| Error::corrupt(&path, reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Logs;

    #[test]
    fn a_repeated_epoch_keeps_its_last_row() {
        let row = |epoch, loss| EpochLogs {
            epoch,
            logs: Logs::from([("loss".to_string(), loss)]),
        };
        let h = history_of(vec![row(1, 3.0), row(0, 1.0), row(1, 2.0)]);
        assert_eq!(h.epoch_numbers(), [0, 1]);
        assert_eq!(h.metric("loss"), [1.0, 2.0]);
    }
}
