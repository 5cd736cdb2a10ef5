//! `wgfit convert`: a CSV data set turned once into a safetensors file that later runs map
//! instead of parsing (`Dataset::from_safetensors`), in one streaming pass with bounded memory.
//!
//! The file is written as the rows are read: a header of fixed size first (safetensors lets a
//! header end in spaces), the inputs row by row, the targets, and then the real header over
//! the reserved one. It goes to a temporary name beside the output and is renamed into place
//! once complete and synced, so a failure or a kill leaves no partial file under that name;
//! the temporary a killed conversion leaves is removed by the next conversion to that name.

use super::csv::stream_csv;
use super::{CsvOptions, Dataset, Targets};
use crate::{Error, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
    /// The shape of one sample's inputs (`[features]`, or `[H, W, C]` for images).
    pub input_shape: Vec<usize>,
    /// The class names, label 0 first (images: the sub-folders' names; empty for CSV).
    pub class_names: Vec<String>,
}

/// Converts the CSV file `input` (plain or gzip, read as [`Dataset::from_csv`] reads it, with
/// its errors naming row and column) to a safetensors file `output` with `x` (F32, `[n,
/// features]`) and `y` (U32 class labels `[n]`, or F32 `[n, k]` targets). Memory stays at one
/// line plus the targets however large the file; `progress` gets the bytes of text read so far.
/// Every input is multiplied by `scale` (1 keeps them), so that training on the mapped file
/// needs no scaled copy. The output is written atomically, then loaded once as a check. A
/// temporary file (`.wgfit-convert-<pid>-<output name>`) left beside the output by a killed
/// conversion is removed first.
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
    write_atomically(output, |file| {
        write_file(input, file, options, scale, progress)
    })
}

/// Writes `output` through `write` to a temporary beside it, renames it into place once
/// complete and synced, and loads it once as a check: what every conversion shares. A
/// temporary left by a killed conversion to the same name is removed first.
pub(super) fn write_atomically(
    output: &Path,
    write: impl FnOnce(File) -> std::result::Result<Converted, WriteError>,
) -> Result<Converted> {
    let write_err = |source| Error::WriteFile {
        path: output.to_path_buf(),
        source,
    };
    let output = &crate::checkpoint::output_file(output).map_err(write_err)?;
    let (dir, name) = dir_and_name(output)
        .ok_or_else(|| write_err(std::io::Error::other("not a file name wgfit can write")))?;
    let (tmp, lock) = create_temporary(dir, name).map_err(write_err)?;
    let result = lock
        .try_clone()
        .map_err(WriteError::Io)
        .and_then(write)
        .map_err(|e| match e {
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
    // Held until the rename: while it is, no other conversion takes the file for a leftover.
    drop(lock);
    let check = Dataset::from_safetensors(output)?;
    if check.len() != converted.samples || check.features() != converted.features {
        return Err(Error::internal(
            "a converted file reads back with another shape",
        ));
    }
    Ok(converted)
}

/// A buffered writer over `file` that has written the safetensors header `header` (a JSON
/// object), padded with spaces to a multiple of 8 so that the tensors after it are aligned;
/// the header's padded length too.
pub(super) fn start_safetensors(
    file: File,
    header: &serde_json::Value,
) -> std::io::Result<(std::io::BufWriter<File>, usize)> {
    let mut header = header.to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    Ok((out, header.len()))
}

/// Why writing a converted file failed: the disk, or the data read.
pub(super) enum WriteError {
    Io(std::io::Error),
    Data(Error),
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// The directory and the name of `output`, if it names a file.
fn dir_and_name(output: &Path) -> Option<(&Path, &str)> {
    let name = output.file_name().and_then(|n| n.to_str())?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some((dir, name))
}

/// The temporary file a [`convert_csv`] to `output` by this process writes before renaming it
/// into place (`None` if `output` names no file), for a signal handler to remove.
pub fn temporary_of(output: &Path) -> Option<PathBuf> {
    let output = &crate::checkpoint::output_file(output).ok()?;
    let (dir, name) = dir_and_name(output)?;
    Some(dir.join(temporary_name(std::process::id(), name)))
}

/// The name of the temporary a conversion by process `pid` to `name` writes.
fn temporary_name(pid: u32, name: &str) -> String {
    format!("{TEMPORARY_PREFIX}{pid}-{name}")
}

const TEMPORARY_PREFIX: &str = ".wgfit-convert-";

/// Whether `file_name` is [`temporary_name`] of some process for `name`.
fn is_temporary_of(file_name: &str, name: &str) -> bool {
    file_name
        .strip_prefix(TEMPORARY_PREFIX)
        .and_then(|rest| rest.strip_suffix(name))
        .and_then(|rest| rest.strip_suffix('-'))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Creates this process's temporary for `name` in `dir`, locked (`flock`) for as long as the
/// returned handle or a clone of it lives, after removing what killed conversions to the
/// same name left: a temporary nobody holds a lock on. A conversion killed by SIGKILL or a
/// power cut cannot remove its own; the next one does.
fn create_temporary(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    remove_stale_temporaries(dir, name);
    let path = dir.join(temporary_name(std::process::id(), name));
    // Another conversion's cleanup may remove the file between its creation and the lock
    // (then it has no name any more): create it again.
    for _ in 0..3 {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.lock()?;
        if names_file(&path, &file)? {
            return Ok((path, file));
        }
    }
    Err(std::io::Error::other(
        "another conversion keeps removing this conversion's temporary file",
    ))
}

/// Removes every temporary of a conversion to `name` in `dir` whose writer is gone (its lock
/// went with its process). Only a cleanup: what cannot be listed, opened or removed stays.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        if !file_name.to_str().is_some_and(|n| is_temporary_of(n, name)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether `path` still names the open `file` (and not nothing, or a newer file).
#[cfg(unix)]
fn names_file(path: &Path, file: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    Ok(match std::fs::symlink_metadata(path) {
        Ok(named) => named.dev() == open.dev() && named.ino() == open.ino(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

#[cfg(not(unix))]
fn names_file(path: &Path, _file: &File) -> std::io::Result<bool> {
    Ok(path.exists())
}

fn write_file(
    input: &Path,
    file: File,
    options: &CsvOptions,
    scale: f32,
    progress: impl FnMut(u64),
) -> std::result::Result<Converted, WriteError> {
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
            Targets::Tokens { labels, positions } => (
                bytemuck::cast_slice(labels).to_vec(),
                "U32",
                vec![samples, *positions],
                true,
                *positions,
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
        input_shape: vec![features],
        class_names: Vec::new(),
    })
}
