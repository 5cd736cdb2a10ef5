//! `CSVLogger`: Keras 3's callback of that name, written so that a killed and resumed run
//! leaves the same bytes as an uninterrupted one.
//!
//! Keras appends a row per epoch to an open file, so a run killed after a row was written
//! but before its state was saved writes that epoch twice when it resumes. Here the whole
//! file is rewritten (atomically) from the run's history, which every saved state holds: it
//! always has each finished epoch exactly once. It is rewritten at an epoch's end at the
//! [`RewritePace`] (every epoch unless epochs are short against a rewrite), at the end of
//! training, and when `fit` ends otherwise with the file behind. A process killed outright
//! (or stopped by a signal that no backup catches) leaves the epochs of the last rewrite,
//! where Keras's appended file has every finished epoch. With `append`, the
//! bytes the file had before the run began are kept in front, and checked on resume.

use super::FitOutcome;
use super::python_format::float_repr;
use super::rewrite_pace::RewritePace;
use super::{Callback, Context};
use crate::error::{Error, Result};
use crate::state::{History, Logs};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const NAME: &str = "CSVLogger";

/// Writes every epoch's logs to a CSV file, as Keras 3's `CSVLogger` (`filename`,
/// `separator`, `append`): a header `epoch,<metric names sorted>`, one row per epoch (0-based
/// epoch, values as Python writes floats, `NA` for a missing one), excel line ends (`\r\n`).
#[derive(Debug, Clone)]
pub struct CsvLogger {
    append: bool,
    file: CsvFile,
    pace: RewritePace,
}

/// What the log file's text is made of.
#[derive(Debug, Clone)]
struct CsvFile {
    path: PathBuf,
    separator: char,
    /// The file's bytes before the run began (with `append`), and whether a header follows.
    prefix: Vec<u8>,
    header: bool,
}

impl CsvLogger {
    /// Logs to `path`, comma-separated, replacing what the file held.
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvLogger {
            append: false,
            file: CsvFile {
                path: path.as_ref().to_path_buf(),
                separator: ',',
                prefix: Vec::new(),
                header: true,
            },
            pace: RewritePace::new(),
        }
    }

    /// The field separator.
    pub fn separator(mut self, separator: char) -> Self {
        self.file.separator = separator;
        self
    }

    /// Keep what the file held before the run and add to it (a header only if it was empty).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    /// The file's text for a run with this history.
    pub fn render(&self, history: &History, validates: bool) -> Vec<u8> {
        self.file.render(history, validates)
    }

    fn fail(&self, reason: String) -> Error {
        self.file.fail(reason)
    }
}

impl CsvFile {
    fn render(&self, history: &History, validates: bool) -> Vec<u8> {
        let mut out = self.prefix.clone();
        let Some(first) = history.first() else {
            return out;
        };
        let mut keys: Vec<String> = first.logs.keys().cloned().collect();
        // As Keras: validation every n epochs leaves the first epoch without `val_` values,
        // but they get their columns.
        if validates && !keys.iter().any(|k| k.starts_with("val_")) {
            let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
            keys.extend(val);
        }
        let sep = self.separator.to_string();
        let mut line = |fields: Vec<String>| {
            let fields: Vec<String> = fields.into_iter().map(|f| self.quote(f)).collect();
            out.extend_from_slice(fields.join(&sep).as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        if self.header {
            line(
                std::iter::once("epoch".to_string())
                    .chain(keys.iter().cloned())
                    .collect(),
            );
        }
        for e in history.iter() {
            line(row(e.epoch, &e.logs, &keys));
        }
        out
    }

    /// Quotes a field as Python's excel dialect does when it holds the separator, a quote or
    /// a line end.
    fn quote(&self, field: String) -> String {
        if field.contains([self.separator, '"', '\r', '\n']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field
        }
    }

    /// Rewrites the file from the run's history.
    fn write(&self, ctx: &Context<'_>) -> Result<()> {
        let text = self.render(ctx.history(), ctx.validates());
        crate::checkpoint::write_atomically(&self.path, &text)
            .map_err(|e| self.fail(e.to_string()))?;
        Ok(())
    }

    fn fail(&self, reason: String) -> Error {
        Error::Callback {
            callback: NAME.into(),
            reason: format!("{}: {reason}", self.path.display()),
        }
    }
}

fn row(epoch: usize, logs: &Logs, keys: &[String]) -> Vec<String> {
    std::iter::once(epoch.to_string())
        .chain(keys.iter().map(|k| {
            logs.get(k)
                .map_or_else(|| "NA".to_string(), |v| float_repr(*v))
        }))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Callback for CsvLogger {
    fn name(&self) -> &str {
        NAME
    }

    fn on_train_begin(&mut self, _ctx: &mut Context<'_>) -> Result<()> {
        // Each fit paces its own rewrites, its first epoch's due.
        self.pace = RewritePace::new();
        self.file.prefix.clear();
        self.file.header = true;
        if self.append {
            match std::fs::read(&self.file.path) {
                Ok(bytes) => {
                    // As Keras: a header only when the file is empty.
                    self.file.header = bytes.is_empty();
                    self.file.prefix = bytes;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.fail(format!("cannot read it: {e}"))),
            }
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, ctx: &mut Context<'_>, _epoch: usize, _logs: &Logs) -> Result<()> {
        self.pace.at_epoch_end(|| self.file.write(ctx))
    }

    /// Writes the file once more at the end, so that a resumed run with no epoch left to
    /// train (whose log was moved aside) still leaves the run's whole log.
    fn on_train_end(&mut self, ctx: &mut Context<'_>, _logs: &Logs) -> Result<()> {
        self.pace.at_train_end(|| self.file.write(ctx))
    }

    /// A run stopped by an error, or by a preemption a backup catches, leaves every epoch it
    /// finished.
    fn on_fit_exit(&mut self, ctx: &mut Context<'_>, _outcome: FitOutcome) -> Result<()> {
        self.pace.at_fit_exit(|| self.file.write(ctx))
    }

    fn state(&self) -> Option<Value> {
        Some(json!({
            "prefix_bytes": self.file.prefix.len(),
            "prefix_sha256": sha256_hex(&self.file.prefix),
            "header": self.file.header,
        }))
    }

    fn load_state(&mut self, state: Value) -> Result<()> {
        // `on_train_begin` read the whole file; the run's own rows follow its prefix.
        let (Some(len), Some(sha), Some(header)) = (
            state["prefix_bytes"].as_u64(),
            state["prefix_sha256"].as_str(),
            state["header"].as_bool(),
        ) else {
            return Err(self.fail(format!("the backup holds an unreadable state: {state}")));
        };
        let len = len as usize;
        if !self.append && len > 0 {
            return Err(self.fail(
                "the run began appending to this file (append, `wgfit train --csv-append`); \
                 resume it with append on"
                    .into(),
            ));
        }
        let file = &mut self.file;
        if self.append && len > 0 && file.prefix.is_empty() {
            // The file was removed (or emptied) since: the way out of a changed prefix. The
            // log starts over with this run's epochs, all of which the history holds.
            file.header = true;
            return Ok(());
        }
        if file.prefix.len() < len || sha256_hex(&file.prefix[..len]) != sha {
            return Err(file.fail(format!(
                "its first {len} bytes, there before the run began, have changed since; \
                 restore them, or move the file aside (to keep it) and rerun: the log then \
                 starts over with this run's epochs, and the backup's training is kept"
            )));
        }
        file.prefix.truncate(len);
        file.header = header;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A logger resuming with `append` as `on_train_begin` leaves it, the file now holding
    /// `now` (empty: removed).
    fn resuming(now: &[u8], append: bool) -> CsvLogger {
        let mut logger = CsvLogger::new("log.csv").append(append);
        logger.file.prefix = now.to_vec();
        logger.file.header = now.is_empty();
        logger
    }

    fn saved_state(prefix: &[u8]) -> Value {
        json!({
            "prefix_bytes": prefix.len(),
            "prefix_sha256": sha256_hex(prefix),
            "header": prefix.is_empty(),
        })
    }

    #[test]
    fn a_removed_file_resumes_with_this_runs_epochs() {
        let mut logger = resuming(b"", true);
        logger.load_state(saved_state(b"old,rows\r\n")).unwrap();
        assert!(logger.file.prefix.is_empty());
        assert!(logger.file.header);
    }

    #[test]
    fn a_changed_prefix_says_how_to_go_on_without_losing_anything() {
        let mut logger = resuming(b"edited\r\n", true);
        let e = logger
            .load_state(saved_state(b"old,rows\r\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("move the file aside") && e.contains("log.csv"),
            "{e}"
        );
        // The same bytes resume as before.
        let mut logger = resuming(b"old,rows\r\nepoch,loss\r\n", true);
        logger.load_state(saved_state(b"old,rows\r\n")).unwrap();
        assert_eq!(logger.file.prefix, b"old,rows\r\n");
    }

    #[test]
    fn resuming_without_append_names_the_flag() {
        let mut logger = resuming(b"old,rows\r\n", false);
        let e = logger
            .load_state(saved_state(b"old,rows\r\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--csv-append"), "{e}");
    }
}
