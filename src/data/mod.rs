//! In-memory data sets and their loaders (CSV, gzip-compressed CSV, safetensors), plus the
//! per-epoch shuffle.
//!
//! Every loader validates what it reads and reports problems with the file, the 1-based row
//! (line number, counting a header line) and the 1-based column, so a user can open the file
//! in an editor and go straight to the fault.

mod cache;
mod convert;
mod csv;
mod format;
mod fuzz;
mod images;
mod npy;
mod order;
mod rows;
pub(crate) use rows::Rows;
pub use rows::SharedValues;
mod tensors;
mod text;

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

pub use convert::{Converted, convert_csv, temporary_of};
pub use csv::{CsvOptions, CsvTargets, Header, MAX_LINE_BYTES};
pub use format::DataFormat;
pub use images::{ColorMode, ImageOptions, MAX_IMAGE_PIXELS, convert_images};
pub use order::epoch_permutation;
pub use text::{VOCABULARY_KEY, convert_text, read_vocabulary};

/// Domain tag mixed into [`Dataset::content_hash`]; bump the version if the layout changes.
const HASH_TAG: &[u8] = b"wgfit.dataset.v1\0";

/// Targets of a data set.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One integer class label per sample.
    Classes(Vec<u32>),
    /// A class label per position of each sample (a sequence model's next tokens): the
    /// model's output is `[positions, classes]` per sample and the loss is the mean over
    /// every token.
    Tokens {
        /// The labels, `samples × positions`, row-major.
        labels: Vec<u32>,
        /// Labels per sample.
        positions: usize,
    },
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
    /// Shared, so that a streamed workspace keeps the rows without a copy.
    x: std::sync::Arc<rows::Rows>,
    features: usize,
    targets: Targets,
    /// [`Dataset::content_hash`], once computed (or read from a file's cache).
    hash: std::sync::OnceLock<[u8; 32]>,
}

impl Dataset {
    /// The inputs, shared (no copy).
    pub(crate) fn shared_x(&self) -> std::sync::Arc<rows::Rows> {
        self.x.clone()
    }

    /// Builds a data set from `x` (`samples × features`, row-major) and its targets.
    ///
    /// Fails with [`Error::InvalidData`] when `features` is 0, `x` is empty or not a multiple of
    /// `features`, the number of target rows differs from the number of samples, `cols` is 0,
    /// or any value is NaN or infinite.
    pub fn new(x: Vec<f32>, features: usize, targets: Targets) -> Result<Self> {
        Self::from_rows(rows::Rows::Owned(x), features, targets, false)
    }

    /// [`Dataset::new`] for inputs another owner keeps (a NumPy array, a buffer shared with
    /// other code): read in place for as long as the data set, or a model's kept workspace
    /// made from it, lives. The same checks as [`Dataset::new`].
    pub fn from_shared(
        x: Box<dyn SharedValues>,
        features: usize,
        targets: Targets,
    ) -> Result<Self> {
        Self::from_rows(rows::Rows::Shared(x), features, targets, false)
    }

    /// The inputs' first value's address: where the data set reads them (in place for
    /// [`Dataset::from_shared`] and mapped files).
    pub fn x_address(&self) -> *const f32 {
        self.x.as_ptr()
    }

    /// [`Dataset::new`] for inputs in memory or mapped; `x_known_finite` skips the scan of the
    /// inputs for NaN and infinities (a cache recorded it for this very file).
    pub(crate) fn from_rows(
        x: rows::Rows,
        features: usize,
        targets: Targets,
        x_known_finite: bool,
    ) -> Result<Self> {
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
        if !x_known_finite {
            check_finite_x(&x, features)?;
        }
        if let Targets::Values { data, cols } = &targets {
            check_finite_y(data, *cols)?;
        }
        Ok(Self {
            x: std::sync::Arc::new(x),
            features,
            targets,
            hash: std::sync::OnceLock::new(),
        })
    }

    /// Whether the inputs are read from a memory-mapped file (not held in memory).
    pub fn is_mapped(&self) -> bool {
        self.x.is_mapped()
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
            Targets::Tokens { positions, .. } => *positions,
            Targets::Values { cols, .. } => *cols,
        }
    }

    /// Targets as f32 row-major (class labels converted exactly to f32), for upload.
    ///
    /// The conversion is exact for labels below 2^24, which [`Dataset::check_model`] guarantees
    /// for any model narrower than 16 777 216 outputs.
    pub fn targets_f32(&self) -> Vec<f32> {
        match &self.targets {
            Targets::Classes(labels) | Targets::Tokens { labels, .. } => {
                labels.iter().map(|&l| l as f32).collect()
            }
            Targets::Values { data, .. } => data.clone(),
        }
    }

    /// SHA-256 over a domain tag, the shapes, the target kind, and the little-endian bytes of x
    /// and targets.
    ///
    /// Identifies the exact training data, e.g. to refuse resuming a run on different data.
    pub fn content_hash(&self) -> [u8; 32] {
        *self.hash.get_or_init(|| self.compute_hash())
    }

    /// Records the content hash a cache gave for this data set's file.
    pub(crate) fn set_content_hash(&self, hash: [u8; 32]) {
        let _ = self.hash.set(hash);
    }

    fn compute_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(HASH_TAG);
        h.update((self.len() as u64).to_le_bytes());
        h.update((self.features as u64).to_le_bytes());
        // The kind byte keeps class labels and float targets with equal bytes apart.
        match &self.targets {
            Targets::Classes(_) => h.update([0u8]),
            Targets::Values { .. } => h.update([1u8]),
            Targets::Tokens { .. } => h.update([2u8]),
        }
        h.update((self.target_cols() as u64).to_le_bytes());
        if cfg!(target_endian = "little") {
            // The values' bytes, as below, in one call: hashing 4 bytes at a time is slow.
            h.update(bytemuck::cast_slice::<f32, u8>(&self.x));
        } else {
            for v in self.x.iter() {
                h.update(v.to_le_bytes());
            }
        }
        match &self.targets {
            Targets::Classes(labels) | Targets::Tokens { labels, .. } => {
                labels.iter().for_each(|l| h.update(l.to_le_bytes()))
            }
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
            Targets::Tokens { labels, positions } => {
                if !outputs.is_multiple_of(*positions) {
                    return Err(Error::Shape {
                        what: "outputs per sample (positions × classes) for sequence targets"
                            .into(),
                        expected: vec![*positions, outputs / positions + 1],
                        got: vec![outputs],
                    });
                }
                let classes = outputs / positions;
                let bad = labels.iter().position(|&l| l as usize >= classes);
                if let Some(i) = bad {
                    return Err(Error::LabelOutOfRange {
                        sample: i / positions,
                        label: labels[i],
                        classes,
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
    /// returns (train, validation). The training part has `floor(len × (1 − fraction))`
    /// samples, as Keras 3's `train_validation_split` computes it (so `validation_split` holds
    /// out the same rows as Keras's `fit`).
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
        let n_train = (n as f64 * (1.0 - fraction)).floor() as usize;
        let n_val = n - n_train.min(n);
        if n_val == 0 || n_train == 0 {
            return Err(Error::config(
                "validation split",
                format!(
                    "a fraction of {fraction} of {n} samples leaves {} for training and {n_val} \
                     for validation; both need at least one",
                    n.saturating_sub(n_val)
                ),
            ));
        }
        Ok((self.slice(0, n_train), self.slice(n_train, n)))
    }

    /// Loads a data file of any form wgfit reads, told by its content ([`DataFormat::of`]),
    /// not its name: safetensors → [`Dataset::from_safetensors`], `.npy` →
    /// [`Dataset::from_npy`] (the `x` file of a pair), anything else → [`Dataset::from_csv`].
    pub fn load(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let path = path.as_ref();
        match DataFormat::of(path)? {
            DataFormat::Safetensors => Self::from_safetensors(path),
            DataFormat::Npy => Self::from_npy(path),
            DataFormat::Csv => Self::from_csv(path, options),
        }
    }

    /// Samples `start..end` as a new data set (already validated, so no checks).
    fn slice(&self, start: usize, end: usize) -> Dataset {
        let f = self.features;
        let targets = match &self.targets {
            Targets::Classes(l) => Targets::Classes(l[start..end].to_vec()),
            Targets::Tokens { labels, positions } => Targets::Tokens {
                labels: labels[start * positions..end * positions].to_vec(),
                positions: *positions,
            },
            Targets::Values { data, cols } => Targets::Values {
                data: data[start * cols..end * cols].to_vec(),
                cols: *cols,
            },
        };
        Dataset {
            x: std::sync::Arc::new(rows::Rows::Owned(self.x[start * f..end * f].to_vec())),
            hash: std::sync::OnceLock::new(),
            features: f,
            targets,
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
        Targets::Tokens { positions: 0, .. } => {
            return Err(invalid("sequence targets need at least one position"));
        }
        Targets::Tokens { labels, positions } => {
            if !labels.len().is_multiple_of(*positions) {
                return Err(invalid(format!(
                    "y has {} labels, which is not a multiple of {positions} positions",
                    labels.len()
                )));
            }
            labels.len() / positions
        }
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
