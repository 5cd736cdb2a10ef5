//! In-memory data sets and their loaders (CSV, gzip-compressed CSV, safetensors), plus the
//! per-epoch shuffle.
//!
//! Every loader validates what it reads and reports problems with the file, the 1-based row
//! (line number, counting a header line) and the 1-based column, so a user can open the file
//! in an editor and go straight to the fault.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Longest CSV line accepted, in bytes. Bounds the memory one malformed line can take.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Domain tag mixed into [`Dataset::content_hash`]; bump the version if the layout changes.
const HASH_TAG: &[u8] = b"wgfit.dataset.v1\0";

/// Targets of a data set.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One integer class label per sample.
    Classes(Vec<u32>),
    /// `cols` float targets per sample, row-major. `cols == 1` broadcasts to every model output.
    Values {
        /// The targets, `samples × cols`, row-major.
        data: Vec<f32>,
        /// Targets per sample.
        cols: usize,
    },
}

/// An in-memory data set: `len` samples of `features` f32 each, row-major, plus targets.
///
/// A `Dataset` is always valid: at least one sample, finite values, one target row per sample.
#[derive(Debug, Clone)]
pub struct Dataset {
    x: Vec<f32>,
    features: usize,
    targets: Targets,
}

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
    /// A first line with any non-numeric field is a header.
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
    /// Builds a data set from `x` (`samples × features`, row-major) and its targets.
    ///
    /// Fails with [`Error::InvalidData`] when `features` is 0, `x` is empty or not a multiple of
    /// `features`, the number of target rows differs from the number of samples, `cols` is 0,
    /// or any value is NaN or infinite.
    pub fn new(x: Vec<f32>, features: usize, targets: Targets) -> Result<Self> {
        if features == 0 {
            return Err(invalid("a data set needs at least one feature"));
        }
        if x.is_empty() {
            return Err(invalid("x holds no samples"));
        }
        if !x.len().is_multiple_of(features) {
            return Err(invalid(format!(
                "x has {} values, which is not a multiple of {features} features",
                x.len()
            )));
        }
        let samples = x.len() / features;
        check_target_rows(samples, &targets)?;
        check_finite_x(&x, features)?;
        if let Targets::Values { data, cols } = &targets {
            check_finite_y(data, *cols)?;
        }
        Ok(Self {
            x,
            features,
            targets,
        })
    }

    /// A classification data set: one class label per sample.
    pub fn classification(x: Vec<f32>, features: usize, labels: Vec<u32>) -> Result<Self> {
        Self::new(x, features, Targets::Classes(labels))
    }

    /// A regression data set: `cols` float targets per sample, row-major.
    pub fn regression(x: Vec<f32>, features: usize, y: Vec<f32>, cols: usize) -> Result<Self> {
        Self::new(x, features, Targets::Values { data: y, cols })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.len() / self.features
    }

    /// Whether there are no samples (never true for a constructed data set).
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Features per sample.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The inputs, `len × features`, row-major.
    pub fn x(&self) -> &[f32] {
        &self.x
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Width of one target row on the GPU: 1 for classes, `cols` for values.
    pub fn target_cols(&self) -> usize {
        match &self.targets {
            Targets::Classes(_) => 1,
            Targets::Values { cols, .. } => *cols,
        }
    }

    /// Targets as f32 row-major (class labels converted exactly to f32), for upload.
    ///
    /// The conversion is exact for labels below 2^24, which [`Dataset::check_model`] guarantees
    /// for any model narrower than 16 777 216 outputs.
    pub fn targets_f32(&self) -> Vec<f32> {
        match &self.targets {
            Targets::Classes(labels) => labels.iter().map(|&l| l as f32).collect(),
            Targets::Values { data, .. } => data.clone(),
        }
    }

    /// SHA-256 over a domain tag, the shapes, the target kind, and the little-endian bytes of x
    /// and targets.
    ///
    /// Identifies the exact training data, e.g. to refuse resuming a run on different data.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(HASH_TAG);
        h.update((self.len() as u64).to_le_bytes());
        h.update((self.features as u64).to_le_bytes());
        // The kind byte keeps class labels and float targets with equal bytes apart.
        match &self.targets {
            Targets::Classes(_) => h.update([0u8]),
            Targets::Values { .. } => h.update([1u8]),
        }
        h.update((self.target_cols() as u64).to_le_bytes());
        for v in &self.x {
            h.update(v.to_le_bytes());
        }
        match &self.targets {
            Targets::Classes(labels) => labels.iter().for_each(|l| h.update(l.to_le_bytes())),
            Targets::Values { data, .. } => data.iter().for_each(|v| h.update(v.to_le_bytes())),
        }
        h.finalize().into()
    }

    /// Checks the data against a model with `inputs` input features and `outputs` outputs.
    ///
    /// The input width must equal [`Dataset::features`] ([`Error::Shape`], what = "input
    /// features"); class labels must be below `outputs` ([`Error::LabelOutOfRange`] naming the
    /// first offending sample); float targets must have 1 or `outputs` columns ([`Error::Shape`],
    /// what = "target columns").
    pub fn check_model(&self, inputs: usize, outputs: usize) -> Result<()> {
        if inputs != self.features {
            return Err(Error::Shape {
                what: "input features".into(),
                expected: vec![inputs],
                got: vec![self.features],
            });
        }
        match &self.targets {
            Targets::Classes(labels) => {
                let bad = labels.iter().position(|&l| l as usize >= outputs);
                if let Some(sample) = bad {
                    return Err(Error::LabelOutOfRange {
                        sample,
                        label: labels[sample],
                        classes: outputs,
                    });
                }
            }
            Targets::Values { cols, .. } => {
                if *cols != 1 && *cols != outputs {
                    return Err(Error::Shape {
                        what: "target columns".into(),
                        expected: vec![outputs],
                        got: vec![*cols],
                    });
                }
            }
        }
        Ok(())
    }

    /// Splits off the last `fraction` (0 < fraction < 1) of samples as a validation set:
    /// returns (train, validation). The validation part has `round(len × fraction)` samples.
    ///
    /// Fails with [`Error::Config`] if `fraction` is out of range or either part would be empty.
    pub fn split_tail(&self, fraction: f64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::config(
                "validation split",
                format!("{fraction} is not between 0 and 1 (exclusive)"),
            ));
        }
        let n = self.len();
        let n_val = (n as f64 * fraction).round() as usize;
        if n_val == 0 || n_val >= n {
            return Err(Error::config(
                "validation split",
                format!(
                    "a fraction of {fraction} of {n} samples leaves {} for training and {n_val} \
                     for validation; both need at least one",
                    n.saturating_sub(n_val)
                ),
            ));
        }
        let n_train = n - n_val;
        Ok((self.slice(0, n_train), self.slice(n_train, n)))
    }

    /// Loads a CSV file (plain or gzip — detected by its magic bytes 1f 8b, not by extension).
    ///
    /// Fields are split on ',' and trimmed; empty lines are skipped but counted for row numbers;
    /// a trailing "\r" is tolerated. The last column(s) are the targets as `options` says.
    pub fn from_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        let target_cols = match options.targets {
            CsvTargets::Class => 1,
            CsvTargets::Values(0) => {
                return Err(Error::config(
                    "CSV targets",
                    "Values(0): at least one target column is needed",
                ));
            }
            CsvTargets::Values(n) => n,
        };
        let mut lines = LineReader::new(open_maybe_gzip(path)?, path);
        let mut parser = CsvParser::new(path, options, target_cols);
        while let Some((row, line)) = lines.next_line()? {
            parser.line(row, line)?;
        }
        parser.finish()
    }

    /// Loads a safetensors file with tensors `x` (F32 or F64, shape `[n, features]`, or `[n]`
    /// for one feature) and `y`.
    ///
    /// An integer `y` (U8/I8/U16/I16/U32/I32/U64/I64, shape `[n]` or `[n, 1]`) gives class labels;
    /// negative labels and labels above `u32::MAX` are rejected. A float `y` (F32/F64) of shape
    /// `[n]` gives one value per sample, `[n, k]` gives `k`. A missing tensor is
    /// [`Error::MissingTensor`]; a bad dtype or shape, or a damaged file, is
    /// [`Error::InvalidData`].
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::DataIo {
            path: path.to_path_buf(),
            source,
        })?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| invalid_in(path, format!("not a readable safetensors file: {e}")))?;
        let (x, features) = read_x(&file, path)?;
        if x.is_empty() {
            return Err(Error::EmptyData {
                path: path.to_path_buf(),
            });
        }
        let targets = read_y(&file, path)?;
        Self::new(x, features, targets).map_err(|e| attach_path(e, path))
    }

    /// Dispatches on extension: `.safetensors` → [`Dataset::from_safetensors`], anything else →
    /// [`Dataset::from_csv`].
    pub fn load(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        let is_safetensors = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
        if is_safetensors {
            Self::from_safetensors(path)
        } else {
            Self::from_csv(path, options)
        }
    }

    /// Samples `start..end` as a new data set (already validated, so no checks).
    fn slice(&self, start: usize, end: usize) -> Dataset {
        let f = self.features;
        let targets = match &self.targets {
            Targets::Classes(l) => Targets::Classes(l[start..end].to_vec()),
            Targets::Values { data, cols } => Targets::Values {
                data: data[start * cols..end * cols].to_vec(),
                cols: *cols,
            },
        };
        Dataset {
            x: self.x[start * f..end * f].to_vec(),
            features: f,
            targets,
        }
    }
}

/// The permutation of `0..n` for one epoch: a function of `(seed, epoch)` alone.
///
/// ChaCha8 seeded with `seed` (`seed_from_u64`), stream `epoch`, then a Fisher–Yates shuffle
/// drawing with an unbiased rejection sampler. Written out by hand so the order never changes
/// with a library's shuffle algorithm: resumed runs must see exactly the batches they would have
/// seen.
///
/// # Panics
/// If `n` exceeds 2^32 (indices would not fit `u32`).
pub fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Vec<u32> {
    assert!(
        n as u64 <= u64::from(u32::MAX) + 1,
        "epoch_permutation: {n} samples do not fit u32 indices"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    let mut perm: Vec<u32> = (0..n).map(|i| i as u32).collect();
    for i in (1..n).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// A uniform integer in `0..bound` (`bound > 0`) by rejection: draws falling in the last,
/// incomplete copy of `0..bound` within the u64 range are redrawn, so there is no modulo bias.
fn uniform_below(rng: &mut impl Rng, bound: u64) -> u64 {
    // 2^64 mod bound: the count of draws at the top of the range that would bias the result.
    let excess = bound.wrapping_neg() % bound;
    loop {
        let draw = rng.next_u64();
        if draw <= u64::MAX - excess {
            return draw % bound;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation helpers

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidData {
        path: None,
        reason: reason.into(),
    }
}

fn invalid_in(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidData {
        path: Some(path.to_path_buf()),
        reason: reason.into(),
    }
}

/// Names the source file in an in-memory validation error.
fn attach_path(e: Error, path: &Path) -> Error {
    match e {
        Error::InvalidData { path: None, reason } => invalid_in(path, reason),
        other => other,
    }
}

fn check_target_rows(samples: usize, targets: &Targets) -> Result<()> {
    let rows = match targets {
        Targets::Classes(labels) => labels.len(),
        Targets::Values { cols: 0, .. } => {
            return Err(invalid(
                "float targets need at least one column (cols is 0)",
            ));
        }
        Targets::Values { data, cols } => {
            if !data.len().is_multiple_of(*cols) {
                return Err(invalid(format!(
                    "y has {} values, which is not a multiple of {cols} target columns",
                    data.len()
                )));
            }
            data.len() / cols
        }
    };
    if rows != samples {
        return Err(invalid(format!("x has {samples} samples but y has {rows}")));
    }
    Ok(())
}

fn check_finite_x(x: &[f32], features: usize) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(invalid(format!(
            "x is not finite at sample {}, feature {} (0-based): {}",
            i / features,
            i % features,
            x[i]
        ))),
        None => Ok(()),
    }
}

fn check_finite_y(y: &[f32], cols: usize) -> Result<()> {
    match y.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(invalid(format!(
            "y is not finite at sample {}, column {} (0-based): {}",
            i / cols,
            i % cols,
            y[i]
        ))),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// CSV reading

/// Opens `path` and, if it starts with the gzip magic bytes, wraps it in a decoder.
fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    let io_err = |source| Error::DataIo {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
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
struct CsvParser<'p> {
    path: &'p Path,
    header: Header,
    class_targets: bool,
    target_cols: usize,
    /// Column count of the first data row; every later row must match it.
    columns: Option<usize>,
    /// Whether the first non-empty line has been seen (header decision made).
    started: bool,
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
            // silently dropped. "nan" and "inf" parse as numbers, so they count as data too.
            Header::Auto => line
                .split(',')
                .map(str::trim)
                .any(|f| !f.is_empty() && f.parse::<f64>().is_err()),
        }
    }

    fn data_row(&mut self, row: usize, line: &str) -> Result<()> {
        let found = line.split(',').count();
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

    fn finish(self) -> Result<Dataset> {
        let Some(columns) = self.columns else {
            return Err(Error::EmptyData {
                path: self.path.to_path_buf(),
            });
        };
        let features = columns - self.target_cols;
        let targets = if self.class_targets {
            Targets::Classes(self.labels)
        } else {
            Targets::Values {
                data: self.values,
                cols: self.target_cols,
            }
        };
        Dataset::new(self.x, features, targets).map_err(|e| attach_path(e, self.path))
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

// ---------------------------------------------------------------------------------------------
// safetensors reading

/// Fetches tensor `name`, telling a missing tensor apart from a damaged file.
fn tensor<'a>(
    file: &SafeTensors<'a>,
    name: &str,
    path: &Path,
) -> Result<safetensors::tensor::TensorView<'a>> {
    file.tensor(name).map_err(|e| match e {
        SafeTensorError::TensorNotFound(_) => Error::MissingTensor {
            name: name.to_string(),
            context: format!(" in {}", path.display()),
        },
        other => invalid_in(path, format!("tensor `{name}`: {other}")),
    })
}

/// Reads `x` as f32 values and the feature count.
fn read_x(file: &SafeTensors<'_>, path: &Path) -> Result<(Vec<f32>, usize)> {
    let t = tensor(file, "x", path)?;
    let features = match *t.shape() {
        [_] => 1,
        [_, f] => f,
        ref s => {
            return Err(invalid_in(
                path,
                format!("tensor `x` must have shape [n, features] or [n], found {s:?}"),
            ));
        }
    };
    let x = decode_floats(t.dtype(), t.data(), t.shape(), "x", path)?;
    Ok((x, features))
}

/// Reads `y` as class labels (integer dtypes) or float targets.
fn read_y(file: &SafeTensors<'_>, path: &Path) -> Result<Targets> {
    let t = tensor(file, "y", path)?;
    let shape = t.shape();
    if matches!(t.dtype(), Dtype::F32 | Dtype::F64) {
        let cols = match *shape {
            [_] => 1,
            [_, k] => k,
            ref s => {
                return Err(invalid_in(
                    path,
                    format!("float tensor `y` must have shape [n] or [n, k], found {s:?}"),
                ));
            }
        };
        let data = decode_floats(t.dtype(), t.data(), shape, "y", path)?;
        return Ok(Targets::Values { data, cols });
    }
    if !matches!(shape, [_] | [_, 1]) {
        return Err(invalid_in(
            path,
            format!(
                "integer tensor `y` (class labels) must have shape [n] or [n, 1], found {shape:?}"
            ),
        ));
    }
    let wide = decode_ints(t.dtype(), t.data(), shape, path)?;
    let labels = wide
        .iter()
        .enumerate()
        .map(|(sample, &v)| {
            u32::try_from(v).map_err(|_| {
                invalid_in(
                    path,
                    format!(
                        "tensor `y` holds label {v} at sample {sample}; class labels must be \
                         0..={}",
                        u32::MAX
                    ),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(Targets::Classes(labels))
}

/// Checks that a tensor's bytes match its shape and dtype, so decoding cannot drop or invent
/// values even if the library's own validation changes.
fn check_byte_len(
    data: &[u8],
    shape: &[usize],
    elem: usize,
    name: &str,
    path: &Path,
) -> Result<()> {
    let want = shape.iter().try_fold(elem, |acc, &d| acc.checked_mul(d));
    if want != Some(data.len()) {
        return Err(invalid_in(
            path,
            format!(
                "tensor `{name}` holds {} bytes, which does not match shape {shape:?}",
                data.len()
            ),
        ));
    }
    Ok(())
}

fn decode_floats(
    dtype: Dtype,
    data: &[u8],
    shape: &[usize],
    name: &str,
    path: &Path,
) -> Result<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => {
            check_byte_len(data, shape, 4, name, path)?;
            le_chunks::<4>(data).map(f32::from_le_bytes).collect()
        }
        Dtype::F64 => {
            // Out-of-range values become infinite here and are rejected by Dataset::new.
            check_byte_len(data, shape, 8, name, path)?;
            le_chunks::<8>(data)
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect()
        }
        other => {
            return Err(invalid_in(
                path,
                format!("tensor `{name}` has dtype {other:?}; expected F32 or F64"),
            ));
        }
    };
    Ok(values)
}

/// Decodes any integer dtype into i128, which holds every u64 and i64 value.
fn decode_ints(dtype: Dtype, data: &[u8], shape: &[usize], path: &Path) -> Result<Vec<i128>> {
    let size = match dtype {
        Dtype::U8 | Dtype::I8 => 1,
        Dtype::U16 | Dtype::I16 => 2,
        Dtype::U32 | Dtype::I32 => 4,
        Dtype::U64 | Dtype::I64 => 8,
        other => {
            return Err(invalid_in(
                path,
                format!(
                    "tensor `y` has dtype {other:?}; expected an integer type \
                     (U8, I8, U16, I16, U32, I32, U64, I64) or F32/F64"
                ),
            ));
        }
    };
    check_byte_len(data, shape, size, "y", path)?;
    let values = match dtype {
        Dtype::U8 => le_chunks::<1>(data)
            .map(|b| u8::from_le_bytes(b).into())
            .collect(),
        Dtype::I8 => le_chunks::<1>(data)
            .map(|b| i8::from_le_bytes(b).into())
            .collect(),
        Dtype::U16 => le_chunks::<2>(data)
            .map(|b| u16::from_le_bytes(b).into())
            .collect(),
        Dtype::I16 => le_chunks::<2>(data)
            .map(|b| i16::from_le_bytes(b).into())
            .collect(),
        Dtype::U32 => le_chunks::<4>(data)
            .map(|b| u32::from_le_bytes(b).into())
            .collect(),
        Dtype::I32 => le_chunks::<4>(data)
            .map(|b| i32::from_le_bytes(b).into())
            .collect(),
        Dtype::U64 => le_chunks::<8>(data)
            .map(|b| u64::from_le_bytes(b).into())
            .collect(),
        _ => le_chunks::<8>(data)
            .map(|b| i64::from_le_bytes(b).into())
            .collect(),
    };
    Ok(values)
}

/// The bytes as fixed-size chunks (the length was checked by [`check_byte_len`]).
fn le_chunks<const N: usize>(data: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    data.as_chunks::<N>().0.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts draws to check the rejection bound: with bound 3, 2^64 mod 3 = 1, so only
    /// u64::MAX is rejected.
    struct Fixed(Vec<u64>);
    impl rand_core::TryRng for Fixed {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> std::result::Result<u32, Self::Error> {
            Ok(self.0.remove(0) as u32)
        }
        fn try_next_u64(&mut self) -> std::result::Result<u64, Self::Error> {
            Ok(self.0.remove(0))
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> std::result::Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn uniform_below_rejects_the_biased_tail() {
        let mut rng = Fixed(vec![u64::MAX, u64::MAX - 1]);
        assert_eq!(uniform_below(&mut rng, 3), (u64::MAX - 1) % 3);
        let mut rng = Fixed(vec![u64::MAX]);
        assert_eq!(uniform_below(&mut rng, 4), 3); // 2^64 is a multiple of 4: nothing rejected
    }

    #[test]
    fn quote_shortens_long_fields() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert!(quote(&"x".repeat(100)).ends_with("(100 bytes)"));
    }
}
