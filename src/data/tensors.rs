//! Loading a data set from a safetensors file with tensors `x` and `y`.

use std::path::Path;

use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::{Dataset, Rows, Targets, attach_path, cache, invalid_in};
use crate::{Error, Result};

impl Dataset {
    /// Loads a safetensors file with tensors `x` (F32 or F64, shape `[n, features]`, `[n, H, W,
    /// C]` (images, `channels_last`, read as rows of `H·W·C` features) or `[n]`
    /// for one feature) and `y`.
    ///
    /// An integer `y` (U8/I8/U16/I16/U32/I32/U64/I64, shape `[n]` or `[n, 1]`) gives class labels;
    /// negative labels and labels above `u32::MAX` are rejected. A float `y` (F32/F64) of shape
    /// `[n]` gives one value per sample, `[n, k]` gives `k`. A missing tensor is
    /// [`Error::MissingTensor`]; a bad dtype or shape, or a damaged file, is
    /// [`Error::InvalidData`].
    ///
    /// An F32 `x` is not read into memory: the file is mapped and training reads its rows from
    /// the map (so a data set may be larger than host memory; with
    /// [`crate::DataOn::Host`] or when it exceeds the GPU, each batch is gathered from it). The
    /// content hash and the check that every value is finite take one pass over the file; their
    /// results are kept beside it in `<file>.wgfit-cache` (keyed by its inode and change
    /// time), so a later load of the same file (a resume) does not read it all again.
    pub fn from_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::DataIo {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let stamp = cache::Stamp::of(&[&file]).map_err(io)?;
        // SAFETY: the map is only read. Another process changing the file while it is mapped
        // changes what is read (as with any reader); the cache notices a changed file by its
        // inode and change time at the next load.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let (region, features, targets) = parse(&map, path)?;
        let x = match region {
            XRegion::Mapped { start, len } => match Rows::mapped(map, start, len) {
                Ok(rows) => rows,
                Err(map) => Rows::Owned(read_x(&map, path)?.0),
            },
            XRegion::Decode => Rows::Owned(read_x(&map, path)?.0),
        };
        if x.is_empty() {
            return Err(Error::EmptyData {
                path: path.to_path_buf(),
            });
        }
        let cached = cache::read(path, stamp.as_ref());
        let data = Self::from_rows(x, features, targets, cached.is_some())
            .map_err(|e| attach_path(e, path))?;
        match cached {
            Some(hash) => data.set_content_hash(hash),
            None => cache::write(path, stamp.as_ref(), data.content_hash()),
        }
        // The one sequential pass (the hash) is done; training reads rows in batch order.
        data.x.expect_random_reads();
        Ok(data)
    }
}

/// Reads a safetensors file's bytes as [`Dataset::from_safetensors`] reads the mapped file,
/// with the same checks and errors, into memory (no map, no cache).
pub(super) fn from_bytes(bytes: &[u8], path: &Path) -> Result<Dataset> {
    let (_, features, targets) = parse(bytes, path)?;
    let x = read_x(bytes, path)?.0;
    if x.is_empty() {
        return Err(Error::EmptyData {
            path: path.to_path_buf(),
        });
    }
    Dataset::from_rows(Rows::Owned(x), features, targets, false).map_err(|e| attach_path(e, path))
}

/// The header's checks: where `x` is, the feature count, and the targets.
fn parse(bytes: &[u8], path: &Path) -> Result<(XRegion, usize, Targets)> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| invalid_in(path, format!("not a readable safetensors file: {e}")))?;
    let (region, features) = x_region(&st, bytes, path)?;
    Ok((region, features, read_y(&st, path)?))
}

/// Where `x` is: F32 values the map can serve as they are, or values to decode.
enum XRegion {
    Mapped { start: usize, len: usize },
    Decode,
}

/// Finds `x` in the mapped file and its feature count.
fn x_region(file: &SafeTensors<'_>, map: &[u8], path: &Path) -> Result<(XRegion, usize)> {
    let t = tensor(file, "x", path)?;
    let features = x_features(t.shape(), path)?;
    if t.dtype() == Dtype::F32 {
        check_byte_len(t.data(), t.shape(), 4, "x", path)?;
        let start = t.data().as_ptr() as usize - map.as_ptr() as usize;
        let len = t.data().len() / 4;
        return Ok((XRegion::Mapped { start, len }, features));
    }
    Ok((XRegion::Decode, features))
}

fn x_features(shape: &[usize], path: &Path) -> Result<usize> {
    match *shape {
        [_] => Ok(1),
        // Images `[n, H, W, C]` (channels_last) are rows of H·W·C features.
        [_, ref sample @ ..] if !sample.is_empty() => Ok(sample.iter().product()),
        ref s => Err(invalid_in(
            path,
            format!("tensor `x` must have shape [n, features], [n, H, W, C] or [n], found {s:?}"),
        )),
    }
}

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

/// Reads `x` of a safetensors file's bytes as f32 values, and the feature count.
fn read_x(bytes: &[u8], path: &Path) -> Result<(Vec<f32>, usize)> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| invalid_in(path, format!("not a readable safetensors file: {e}")))?;
    let t = tensor(&file, "x", path)?;
    let features = x_features(t.shape(), path)?;
    let x = decode_floats(t.dtype(), t.data(), t.shape(), "x", path)?;
    Ok((x, features))
}

/// Reads `y` as class labels (integer dtypes) or float targets.
fn read_y(file: &SafeTensors<'_>, path: &Path) -> Result<Targets> {
    let t = tensor(file, "y", path)?;
    targets_from(t.dtype(), t.shape(), t.data(), path)
}

/// Targets from `y`'s dtype, shape and bytes: class labels from an integer `y` of shape `[n]`
/// or `[n, 1]`, float targets from an F32/F64 `y` of shape `[n]` or `[n, k]`.
pub(super) fn targets_from(
    dtype: Dtype,
    shape: &[usize],
    data: &[u8],
    path: &Path,
) -> Result<Targets> {
    if matches!(dtype, Dtype::F32 | Dtype::F64) {
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
        let data = decode_floats(dtype, data, shape, "y", path)?;
        return Ok(Targets::Values { data, cols });
    }
    if !matches!(shape, [_] | [_, _]) {
        return Err(invalid_in(
            path,
            format!(
                "integer tensor `y` (class labels) must have shape [n], or [n, T] for a label \
                 per position, found {shape:?}"
            ),
        ));
    }
    let wide = decode_ints(dtype, data, shape, path)?;
    let per_sample = shape.get(1).copied().unwrap_or(1).max(1);
    let labels = wide
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                let (sample, position) = (i / per_sample, i % per_sample);
                let at = if per_sample > 1 {
                    format!("sample {sample}, position {position}")
                } else {
                    format!("sample {sample}")
                };
                invalid_in(
                    path,
                    format!(
                        "tensor `y` holds label {v} at {at}; class labels must be 0..={}",
                        u32::MAX
                    ),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(match *shape {
        [_, positions] if positions > 1 => Targets::Tokens { labels, positions },
        _ => Targets::Classes(labels),
    })
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

pub(super) fn decode_floats(
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
