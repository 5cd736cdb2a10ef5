//! `wgfit convert`: a CSV data set turned once into a safetensors file that later runs map
//! instead of parsing (`Dataset::from_safetensors`), in one streaming pass with bounded memory.
//!
//! The file is written as the rows are read: a header of fixed size first (safetensors lets a
//! header end in spaces), the inputs row by row, the targets, and then the real header over
//! the reserved one. It goes to a temporary name beside the output and is renamed into place
//! once complete and synced, so a failure or a kill leaves no partial file under that name.

use super::csv::stream_csv;
use super::{CsvOptions, Dataset, Targets};
use crate::{Error, Result};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes reserved for the safetensors header (a multiple of 8, so the inputs are aligned).
const HEADER_BYTES: usize = 1024;

/// What [`convert_csv`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Rows.
    pub samples: usize,
    /// Inputs per row.
    pub features: usize,
    /// Target columns per row (1 for class labels).
    pub target_cols: usize,
    /// Whether the targets are class labels (`y` U32) rather than values (`y` F32).
    pub classes: bool,
    /// Bytes of the output file.
    pub bytes: u64,
}

/// Converts the CSV file `input` (plain or gzip, read as [`Dataset::from_csv`] reads it, with
/// its errors naming row and column) to a safetensors file `output` with `x` (F32, `[n,
/// features]`) and `y` (U32 class labels `[n]`, or F32 `[n, k]` targets). Memory stays at one
/// line plus the targets however large the file; `progress` gets the bytes of text read so far.
/// Every input is multiplied by `scale` (1 keeps them), so that training on the mapped file
/// needs no scaled copy. The output is written atomically, then loaded once as a check (which
/// also records its content hash beside it, for the first training run).
pub fn convert_csv(
    input: &Path,
    output: &Path,
    options: &CsvOptions,
    scale: f32,
    progress: impl FnMut(u64),
) -> Result<Converted> {
    if !scale.is_finite() || scale == 0.0 {
        return Err(Error::config(
            "scale",
            format!("{scale} is not usable; give a finite, non-zero factor"),
        ));
    }
    let write_err = |source| Error::WriteFile {
        path: output.to_path_buf(),
        source,
    };
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| write_err(std::io::Error::other("not a file name wgfit can write")))?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(".wgfit-convert-{}-{name}", std::process::id()));
    let result = write_file(input, &tmp, options, scale, progress).map_err(|e| match e {
        WriteError::Io(source) => write_err(source),
        WriteError::Data(e) => e,
    });
    let converted = match result.and_then(|c| {
        std::fs::rename(&tmp, output).map_err(write_err)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err)?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let check = Dataset::from_safetensors(output)?;
    if check.len() != converted.samples || check.features() != converted.features {
        return Err(Error::internal(
            "a converted file reads back with another shape",
        ));
    }
    Ok(converted)
}

enum WriteError {
    Io(std::io::Error),
    Data(Error),
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

fn write_file(
    input: &Path,
    tmp: &Path,
    options: &CsvOptions,
    scale: f32,
    progress: impl FnMut(u64),
) -> std::result::Result<Converted, WriteError> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0u8; 8 + HEADER_BYTES])?;
    let mut x_values = 0u64;
    let mut io_error = None;
    let mut scaled = Vec::new();
    let streamed = stream_csv(
        input,
        options,
        |row| {
            x_values += row.len() as u64;
            let row = if scale == 1.0 {
                row
            } else {
                scaled.clear();
                scaled.extend(row.iter().map(|v| v * scale));
                if let Some(bad) = scaled.iter().position(|v| !v.is_finite()) {
                    return Err(Error::config(
                        "scale",
                        format!("{} times {scale} is not finite", row[bad]),
                    ));
                }
                &scaled
            };
            out.write_all(bytemuck::cast_slice(row)).map_err(|e| {
                let message = e.to_string();
                io_error = Some(e);
                Error::internal(message)
            })
        },
        progress,
    );
    let (features, targets) = match (streamed, io_error) {
        (_, Some(e)) => return Err(WriteError::Io(e)),
        (Err(e), None) => return Err(WriteError::Data(e)),
        (Ok(v), None) => v,
    };
    let samples = (x_values / features as u64) as usize;
    let (y_bytes, y_dtype, y_shape, classes, target_cols): (Vec<u8>, _, Vec<usize>, _, _) =
        match &targets {
            Targets::Classes(labels) => (
                bytemuck::cast_slice(labels).to_vec(),
                "U32",
                vec![samples],
                true,
                1,
            ),
            Targets::Values { data, cols } => (
                bytemuck::cast_slice(data).to_vec(),
                "F32",
                vec![samples, *cols],
                false,
                *cols,
            ),
        };
    out.write_all(&y_bytes)?;
    let x_bytes = x_values * 4;
    let header = serde_json::json!({
        "x": {"dtype": "F32", "shape": [samples, features], "data_offsets": [0, x_bytes]},
        "y": {"dtype": y_dtype, "shape": y_shape, "data_offsets": [x_bytes, x_bytes + y_bytes.len() as u64]},
    })
    .to_string();
    if header.len() > HEADER_BYTES {
        return Err(WriteError::Data(Error::internal(
            "a safetensors header outgrew its reserved space",
        )));
    }
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&(HEADER_BYTES as u64).to_le_bytes())?;
    file.write_all(format!("{header:<HEADER_BYTES$}").as_bytes())?;
    file.sync_all()?;
    Ok(Converted {
        samples,
        features,
        target_cols,
        classes,
        bytes: 8 + HEADER_BYTES as u64 + x_bytes + y_bytes.len() as u64,
    })
}
