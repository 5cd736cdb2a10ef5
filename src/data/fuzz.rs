//! Entry points for the fuzzer (`fuzz/`) and its corpus test: the file readers over bytes in
//! memory, with every check and error of the path-based loaders but no map and no cache.
//! Not part of the supported API.

use super::{CsvOptions, Dataset};
use crate::Result;
use std::path::Path;

impl Dataset {
    /// [`Dataset::from_csv`] over the bytes of a file (plain or gzip).
    #[doc(hidden)]
    pub fn from_csv_bytes(bytes: &[u8], options: &CsvOptions) -> Result<Dataset> {
        super::csv::from_bytes(bytes, Path::new("fuzz.csv"), options)
    }

    /// [`Dataset::from_safetensors`] over the bytes of a file.
    #[doc(hidden)]
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Dataset> {
        super::tensors::from_bytes(bytes, Path::new("fuzz.safetensors"))
    }

    /// [`Dataset::from_npy`] over the bytes of an `x` and a `y` file.
    #[doc(hidden)]
    pub fn from_npy_bytes(x: &[u8], y: &[u8]) -> Result<Dataset> {
        super::npy::from_bytes(x, y, Path::new("x.npy"))
    }
}
