//! The CSV reader: plain or gzip-compressed files, bounded line length, header detection,
//! and row/column-precise parse errors.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{Dataset, Targets, attach_path};
use crate::{Error, Result};

/// Longest CSV line accepted, in bytes. Bounds the memory one malformed line can take.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CsvOptions {
    /// Whether the first line is a header.
    pub header: Header,
    /// What the last column(s) hold.
    pub targets: CsvTargets,
}

/// Whether the first line is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Header {
    /// A first line with a field that is neither a number nor a missing-value marker ("NA",
    /// "null", ...) is a header; it must have as many fields as the data's rows.
    #[default]
    Auto,
    /// The first non-empty line is a header and is skipped.
    Yes,
    /// There is no header; every non-empty line is data.
    No,
}

/// What the last column(s) hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvTargets {
    /// The last column is an integer class label (e.g. "3" or "3.0"; negative or fractional is
    /// an error naming row/column).
    #[default]
    Class,
    /// The last `n` columns are float targets.
    Values(usize),
}

impl Dataset {
    /// Loads a CSV file (plain or gzip — detected by its magic bytes 1f 8b, not by extension).
    ///
    /// Fields are split on ',' and trimmed; empty lines are skipped but counted for row numbers;
    /// a trailing "\r" is tolerated. The last column(s) are the targets as `options` says.
    pub fn from_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        Self::from_csv_with_progress(path, options, |_| {})
    }

    /// [`Dataset::from_csv`], calling `progress` with the bytes of (decompressed) text read so
    /// far as it goes (for a progress bar).
    pub fn from_csv_with_progress(
        path: impl AsRef<Path>,
        options: &CsvOptions,
        progress: impl FnMut(u64),
    ) -> Result<Self> {
        let path = path.as_ref();
        let mut x = Vec::new();
        let (features, targets) = stream_csv(
            path,
            options,
            |row| {
                x.extend_from_slice(row);
                Ok(())
            },
            progress,
        )?;
        Dataset::new(x, features, targets).map_err(|e| attach_path(e, path))
    }
}

fn target_cols(options: &CsvOptions) -> Result<usize> {
    match options.targets {
        CsvTargets::Class => Ok(1),
        CsvTargets::Values(0) => Err(Error::config(
            "CSV targets",
            "Values(0): at least one target column is needed",
        )),
        CsvTargets::Values(n) => Ok(n),
    }
}

/// Reads a CSV file as [`Dataset::from_csv`] does, with the same checks and errors, but hands
/// the inputs of each row to `row` as it goes instead of keeping them: memory stays at one line
/// and the targets. `progress` gets the bytes of the (decompressed) text read so far. Returns
/// the feature count and the targets.
pub(crate) fn stream_csv(
    path: &Path,
    options: &CsvOptions,
    row: impl FnMut(&[f32]) -> Result<()>,
    progress: impl FnMut(u64),
) -> Result<(usize, Targets)> {
    let file = File::open(path).map_err(|source| Error::DataIo {
        path: path.to_path_buf(),
        source,
    })?;
    stream_from(file, path, options, row, progress)
}

/// Reads CSV text (plain or gzip) as [`Dataset::from_csv`] reads a file, with the same checks
/// and errors; `path` names it in them.
pub(super) fn from_bytes(bytes: &[u8], path: &Path, options: &CsvOptions) -> Result<Dataset> {
    let mut x = Vec::new();
    let reader = std::io::Cursor::new(bytes.to_vec());
    let (features, targets) = stream_from(
        reader,
        path,
        options,
        |row| {
            x.extend_from_slice(row);
            Ok(())
        },
        |_| {},
    )?;
    Dataset::new(x, features, targets).map_err(|e| attach_path(e, path))
}

/// [`stream_csv`] over any reader of the file's bytes.
fn stream_from(
    reader: impl Read + 'static,
    path: &Path,
    options: &CsvOptions,
    mut row: impl FnMut(&[f32]) -> Result<()>,
    mut progress: impl FnMut(u64),
) -> Result<(usize, Targets)> {
    let mut lines = LineReader::new(maybe_gunzip(reader, path)?, path);
    let mut parser = CsvParser::new(path, options, target_cols(options)?);
    let mut read = 0u64;
    while let Some((number, line)) = lines.next_line()? {
        read += line.len() as u64 + 1;
        parser.line(number, line)?;
        if !parser.x.is_empty() {
            row(&parser.x)?;
            parser.x.clear();
        }
        // Every 4096 lines: a call per line would cost more than a progress bar shows.
        if number % 4096 == 0 {
            progress(read);
        }
    }
    progress(read);
    parser.finish()
}

/// The file's bytes, through a decoder if they start with the gzip magic bytes.
fn maybe_gunzip(mut file: impl Read + 'static, path: &Path) -> Result<Box<dyn Read>> {
    let io_err = |source| Error::DataIo {
        path: path.to_path_buf(),
        source,
    };
    // Read the first two bytes by hand (a single read may return fewer), then put them back in
    // front of the rest of the file.
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    let whole = std::io::Cursor::new(magic[..got].to_vec()).chain(file);
    if got == 2 && magic == [0x1f, 0x8b] {
        // Multi-member, like `gzip -d`: concatenated .gz files decode as one stream.
        Ok(Box::new(flate2::read::MultiGzDecoder::new(whole)))
    } else {
        Ok(Box::new(whole))
    }
}

/// Reads lines with a bounded length and counts them, 1-based.
struct LineReader<'p> {
    reader: BufReader<Box<dyn Read>>,
    buf: Vec<u8>,
    row: usize,
    path: &'p Path,
}

impl<'p> LineReader<'p> {
    fn new(reader: Box<dyn Read>, path: &'p Path) -> Self {
        Self {
            reader: BufReader::new(reader),
            buf: Vec::new(),
            row: 0,
            path,
        }
    }

    /// The next line without its "\n" or "\r\n", with its 1-based number; `None` at the end.
    fn next_line(&mut self) -> Result<Option<(usize, &str)>> {
        self.buf.clear();
        // At most one byte more than the limit (the newline), so an endless line costs no more
        // than MAX_LINE_BYTES of memory before it is refused.
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| Error::DataIo {
                path: self.path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.row += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > MAX_LINE_BYTES {
            return Err(self.parse_error(0, "line longer than 16 MiB"));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = match std::str::from_utf8(&self.buf) {
            Ok(line) => line,
            Err(e) => {
                let good = &self.buf[..e.valid_up_to()];
                let column = 1 + good.iter().filter(|&&b| b == b',').count();
                let reason = format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1);
                return Err(self.parse_error(column, reason));
            }
        };
        Ok(Some((self.row, line)))
    }

    fn parse_error(&self, column: usize, reason: impl Into<String>) -> Error {
        Error::DataParse {
            path: self.path.to_path_buf(),
            row: self.row,
            column,
            reason: reason.into(),
        }
    }
}

/// Accumulates parsed CSV rows.
/// Fields a first line may hold and still be data, not a header: the missing-value markers
/// pandas reads (`read_csv`'s `na_values`), so that such a row is reported as not numbers
/// rather than silently dropped as column names.
const MISSING_MARKERS: &[&str] = &[
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "None", "n/a", "null",
];

struct CsvParser<'p> {
    path: &'p Path,
    header: Header,
    class_targets: bool,
    target_cols: usize,
    /// Column count of the first data row; every later row must match it.
    columns: Option<usize>,
    /// Whether the first non-empty line has been seen (header decision made).
    started: bool,
    /// The row and field count of a first line taken for a header by `Header::Auto`: the
    /// data's rows must have as many fields, or the guess is refused.
    guessed_header: Option<(usize, usize)>,
    x: Vec<f32>,
    labels: Vec<u32>,
    values: Vec<f32>,
}

impl<'p> CsvParser<'p> {
    fn new(path: &'p Path, options: &CsvOptions, target_cols: usize) -> Self {
        Self {
            path,
            header: options.header,
            class_targets: options.targets == CsvTargets::Class,
            target_cols,
            columns: None,
            started: false,
            guessed_header: None,
            x: Vec::new(),
            labels: Vec::new(),
            values: Vec::new(),
        }
    }

    fn line(&mut self, row: usize, line: &str) -> Result<()> {
        // Excel and friends may start a UTF-8 file with a byte-order mark.
        let line = if row == 1 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        if line.trim().is_empty() {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            if self.is_header(line) {
                if self.header == Header::Auto {
                    self.guessed_header = Some((row, line.split(',').count()));
                }
                return Ok(());
            }
        }
        self.data_row(row, line)
    }

    fn is_header(&self, line: &str) -> bool {
        match self.header {
            Header::Yes => true,
            Header::No => false,
            // Empty fields do not make a header: a data row with a gap should be reported, not
            // silently dropped. "nan" and "inf" parse as numbers, so they count as data too,
            // and so do the other missing-value markers pandas reads ("NA", "null", ...).
            Header::Auto => line.split(',').map(str::trim).any(|f| {
                !f.is_empty() && f.parse::<f64>().is_err() && !MISSING_MARKERS.contains(&f)
            }),
        }
    }

    fn data_row(&mut self, row: usize, line: &str) -> Result<()> {
        let found = line.split(',').count();
        if self.columns.is_none()
            && let Some((header_row, names)) = self.guessed_header
            && names != found
        {
            return Err(self.error(
                header_row,
                0,
                format!(
                    "taken for a header (a field is not a number), it has {names} fields, but \
                     row {row} has {found}; if it is data, correct it; if a header, give it \
                     {found} names (CsvOptions::header says whether there is one)"
                ),
            ));
        }
        let expected = *self.columns.get_or_insert(found);
        if found < self.target_cols + 1 {
            return Err(self.error(
                row,
                0,
                format!(
                    "expected at least {} columns ({} target(s) after at least one feature), \
                     found {found}",
                    self.target_cols + 1,
                    self.target_cols
                ),
            ));
        }
        if found != expected {
            return Err(self.error(
                row,
                0,
                format!("expected {expected} columns, found {found}"),
            ));
        }
        let n_features = found - self.target_cols;
        for (i, field) in line.split(',').map(str::trim).enumerate() {
            let column = i + 1;
            if i < n_features {
                let v = self.parse_f32(row, column, field)?;
                self.x.push(v);
            } else if self.class_targets {
                let label = self.parse_label(row, column, field)?;
                self.labels.push(label);
            } else {
                let v = self.parse_f32(row, column, field)?;
                self.values.push(v);
            }
        }
        Ok(())
    }

    fn parse_f32(&self, row: usize, column: usize, field: &str) -> Result<f32> {
        let v: f32 = self.parse_number(row, column, field)?;
        if !v.is_finite() {
            // Also catches finite text beyond f32's range, e.g. "1e39".
            return Err(self.error(row, column, format!("not finite: {}", quote(field))));
        }
        Ok(v)
    }

    fn parse_label(&self, row: usize, column: usize, field: &str) -> Result<u32> {
        // f64 holds every u32 exactly, so "3", "3.0" and "3e0" all read as 3.
        let v: f64 = self.parse_number(row, column, field)?;
        let reason = if !v.is_finite() {
            format!("class label is not finite: {}", quote(field))
        } else if v < 0.0 {
            format!("class label is negative: {}", quote(field))
        } else if v.fract() != 0.0 {
            format!("class label is not an integer: {}", quote(field))
        } else if v > f64::from(u32::MAX) {
            format!("class label {} exceeds {}", quote(field), u32::MAX)
        } else {
            return Ok(v as u32);
        };
        Err(self.error(row, column, reason))
    }

    fn parse_number<T: std::str::FromStr>(
        &self,
        row: usize,
        column: usize,
        field: &str,
    ) -> Result<T> {
        if field.is_empty() {
            return Err(self.error(row, column, "empty field, expected a number"));
        }
        field
            .parse()
            .map_err(|_| self.error(row, column, format!("not a number: {}", quote(field))))
    }

    fn error(&self, row: usize, column: usize, reason: impl Into<String>) -> Error {
        Error::DataParse {
            path: self.path.to_path_buf(),
            row,
            column,
            reason: reason.into(),
        }
    }

    /// The feature count and targets (the inputs were handed on row by row).
    fn finish(self) -> Result<(usize, Targets)> {
        let Some(columns) = self.columns else {
            return Err(Error::EmptyData {
                path: self.path.to_path_buf(),
            });
        };
        let targets = if self.class_targets {
            Targets::Classes(self.labels)
        } else {
            Targets::Values {
                data: self.values,
                cols: self.target_cols,
            }
        };
        Ok((columns - self.target_cols, targets))
    }
}

/// Quotes a field for an error message, shortened so a huge field cannot flood the terminal.
fn quote(field: &str) -> String {
    const MAX_CHARS: usize = 40;
    if field.chars().count() <= MAX_CHARS {
        format!("{field:?}")
    } else {
        let head: String = field.chars().take(MAX_CHARS).collect();
        format!("{head:?}… ({} bytes)", field.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_shortens_long_fields() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert!(quote(&"x".repeat(100)).ends_with("(100 bytes)"));
    }
}
