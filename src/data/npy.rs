//! Loading a data set from a pair of NumPy `.npy` files: `<name>x.npy` (the inputs) and
//! `<name>y.npy` beside it (labels or targets), e.g. `x.npy`/`y.npy` or
//! `train_x.npy`/`train_y.npy`. As with safetensors, an `<f4` `x` is mapped, not read.

use super::tensors::{decode_floats, targets_from};
use super::{Dataset, Rows, cache, invalid_in};
use crate::{Error, Result};
use safetensors::Dtype;
use std::path::{Path, PathBuf};

/// An `.npy` array's header: dtype, shape, and where its data starts.
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
    data_start: usize,
}

impl Dataset {
    /// Loads `x_path` (a C-order `.npy` array `[n, features]` or `[n]`, `<f4` or `<f8`) and
    /// the `y` array beside it (its name with the final `x.npy` replaced by `y.npy`): integer
    /// labels `[n]` or `[n, 1]`, or float targets `[n]` or `[n, k]`. An `<f4` `x` is mapped as
    /// [`Dataset::from_safetensors`] maps one, with the same cache of its content hash.
    pub fn from_npy(x_path: impl AsRef<Path>) -> Result<Self> {
        let x_path = x_path.as_ref();
        let y_path = y_path_of(x_path)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::DataIo { path, source }
        };
        let file = std::fs::File::open(x_path).map_err(io(x_path))?;
        let mut y_file = std::fs::File::open(&y_path).map_err(io(&y_path))?;
        // Both files enter the hash, so both key the cache; stamped before they are read.
        let stamp = cache::Stamp::of(&[&file, &y_file]).map_err(io(x_path))?;
        // SAFETY: as in `from_safetensors`: the map is only read.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(x_path))?;
        let (x, features) = x_header(&map, x_path)?;
        let values: usize = x.shape.iter().product();
        let rows = match x.dtype {
            Dtype::F32 => match Rows::mapped(map, x.data_start, values) {
                Ok(rows) => rows,
                Err(map) => Rows::Owned(decode_x(&map, &x, x_path)?),
            },
            _ => Rows::Owned(decode_x(&map, &x, x_path)?),
        };
        if rows.is_empty() {
            return Err(Error::EmptyData {
                path: x_path.to_path_buf(),
            });
        }
        let mut y_bytes = Vec::new();
        std::io::Read::read_to_end(&mut y_file, &mut y_bytes).map_err(io(&y_path))?;
        let targets = y_targets(&y_bytes, &y_path)?;
        let cached = cache::read(x_path, stamp.as_ref());
        let data = Self::from_rows(rows, features, targets, cached.is_some())
            .map_err(|e| super::attach_path(e, x_path))?;
        match cached {
            Some(hash) => data.set_content_hash(hash),
            None => cache::write(x_path, stamp.as_ref(), data.content_hash()),
        }
        // The one sequential pass (the hash) is done; training reads rows in batch order.
        data.x.expect_random_reads();
        Ok(data)
    }
}

/// Reads an `.npy` pair's bytes as [`Dataset::from_npy`] reads the files, with the same checks
/// and errors, into memory (no map, no cache).
pub(super) fn from_bytes(x_bytes: &[u8], y_bytes: &[u8], x_path: &Path) -> Result<Dataset> {
    let y_path = x_path.with_file_name("y.npy");
    let (x, features) = x_header(x_bytes, x_path)?;
    let values = decode_x(x_bytes, &x, x_path)?;
    if values.is_empty() {
        return Err(Error::EmptyData {
            path: x_path.to_path_buf(),
        });
    }
    let targets = y_targets(y_bytes, &y_path)?;
    Dataset::from_rows(Rows::Owned(values), features, targets, false)
        .map_err(|e| super::attach_path(e, x_path))
}

/// The header of an `x` array and its feature count.
fn x_header(bytes: &[u8], x_path: &Path) -> Result<(Header, usize)> {
    let x = header(bytes, x_path)?;
    let features = match x.shape[..] {
        [_] => 1,
        // Images `(n, H, W, C)` (channels_last) are rows of H·W·C features.
        [_, ref sample @ ..] if !sample.is_empty() => sample.iter().product(),
        ref s => {
            return Err(invalid_in(
                x_path,
                format!("x must have shape (n, features), (n, H, W, C) or (n,), found {s:?}"),
            ));
        }
    };
    Ok((x, features))
}

fn y_targets(y_bytes: &[u8], y_path: &Path) -> Result<super::Targets> {
    let y = header(y_bytes, y_path)?;
    targets_from(y.dtype, &y.shape, &y_bytes[y.data_start..], y_path)
}

/// `…x.npy` → `…y.npy`.
fn y_path_of(x_path: &Path) -> Result<PathBuf> {
    let name = x_path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.strip_suffix("x.npy") {
        Some(stem) => Ok(x_path.with_file_name(format!("{stem}y.npy"))),
        None => Err(invalid_in(
            x_path,
            "an .npy data set is a pair `<name>x.npy` and `<name>y.npy`; give the x file",
        )),
    }
}

fn decode_x(bytes: &[u8], x: &Header, path: &Path) -> Result<Vec<f32>> {
    if !matches!(x.dtype, Dtype::F32 | Dtype::F64) {
        return Err(invalid_in(
            path,
            format!("x has dtype {:?}; expected <f4 or <f8", x.dtype),
        ));
    }
    decode_floats(x.dtype, &bytes[x.data_start..], &x.shape, "x", path)
}

/// Parses the header of an `.npy` file (format versions 1 to 3).
fn header(bytes: &[u8], path: &Path) -> Result<Header> {
    let bad = |reason: String| invalid_in(path, format!("not a readable .npy file: {reason}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("it does not start with \\x93NUMPY".into()));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("format version {v} is not supported"))),
    };
    let text = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("its header is cut short or not text".into()))?;
    let field = |key: &str| -> Option<&str> {
        let at = text.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| bad("no 'descr' in its header".into()))?;
    let dtype = match descr {
        "<f4" => Dtype::F32,
        "<f8" => Dtype::F64,
        "|u1" => Dtype::U8,
        "|i1" => Dtype::I8,
        "<u2" => Dtype::U16,
        "<i2" => Dtype::I16,
        "<u4" => Dtype::U32,
        "<i4" => Dtype::I32,
        "<u8" => Dtype::U64,
        "<i8" => Dtype::I64,
        other => {
            return Err(bad(format!(
                "dtype {other:?} is not supported (little-endian floats or integers)"
            )));
        }
    };
    if field("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err(bad(
            "it is in Fortran order; save it in C order (numpy.ascontiguousarray)".into(),
        ));
    }
    let shape_text = field("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| bad("no 'shape' in its header".into()))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| bad(format!("shape ({shape_text}) is not a list of sizes")))?;
    let data_start = start + len;
    let elem: usize = match dtype {
        Dtype::U8 | Dtype::I8 => 1,
        Dtype::U16 | Dtype::I16 => 2,
        Dtype::F32 | Dtype::U32 | Dtype::I32 => 4,
        _ => 8,
    };
    let want = shape
        .iter()
        .try_fold(elem, |acc, &d| acc.checked_mul(d))
        .and_then(|b| b.checked_add(data_start));
    if want != Some(bytes.len()) {
        return Err(bad(format!(
            "shape {shape:?} of {descr} needs {} bytes after the header, the file has {}",
            want.map_or("too many".into(), |w| (w - data_start).to_string()),
            bytes.len().saturating_sub(data_start)
        )));
    }
    Ok(Header {
        dtype,
        shape,
        data_start,
    })
}
