//! Telling a data file's form from its first bytes, not its name: a file `wgfit convert`
//! wrote is safetensors whatever it is called (`reg.st`, `data.bin`), and a CSV named
//! `x.safetensors` is still read as CSV.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The forms of data file wgfit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// A safetensors file: an 8-byte little-endian header length, then a JSON header.
    Safetensors,
    /// A NumPy `.npy` array (the `x` of a pair): magic bytes `\x93NUMPY`.
    Npy,
    /// CSV text, plain or gzip-compressed: anything else.
    Csv,
}

impl DataFormat {
    /// The form of the file at `path`, from its first bytes and its size. Fails with
    /// [`Error::DataIo`] naming the file when it cannot be opened or read, or is not a regular
    /// file (a pipe would lose the bytes read here).
    pub fn of(path: &Path) -> Result<DataFormat> {
        let io = |source| Error::DataIo {
            path: path.to_path_buf(),
            source,
        };
        // Asked before opening it: opening a named pipe waits for a writer.
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() && !meta.is_dir() {
            // Its form is told from its first bytes, then it is read again: a pipe would lose
            // them (and a named pipe wait forever for a second writer).
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a pipe or a device, not a regular file: save it to a file first",
            )));
        }
        let file = std::fs::File::open(path).map_err(io)?;
        let size = meta.len();
        let mut head = Vec::with_capacity(9);
        file.take(9).read_to_end(&mut head).map_err(io)?;
        Ok(Self::of_bytes(&head, size))
    }

    /// The form of a file of `size` bytes that starts with `head` (its first 9 bytes or all).
    pub fn of_bytes(head: &[u8], size: u64) -> DataFormat {
        if head.starts_with(b"\x93NUMPY") {
            return DataFormat::Npy;
        }
        if let (Some(len), Some(b'{')) = (head.get(..8), head.get(8)) {
            // Text has printable bytes in the length's high end: a length beyond any file.
            let len = u64::from_le_bytes(len.try_into().unwrap_or([0xff; 8]));
            if len.checked_add(8).is_some_and(|end| end <= size) {
                return DataFormat::Safetensors;
            }
        }
        DataFormat::Csv
    }
}
