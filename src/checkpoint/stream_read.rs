//! A local weights file read straight into its tensors: the safetensors header first, then
//! each digest part of the file read into the tensors' own memory and hashed (and its
//! parameters checked for finiteness) on the other cores while the next part is read. One
//! pass over the bytes and no copy of the file, so a resume costs about one read beside the
//! hashing (bench/NOTES.md, "A resume at one read").
//!
//! Files this cannot take apart before reading them (a header that does not parse, one
//! SHA-256 of the whole file as versions 2 and 3 record) are left to the whole-file path,
//! which gives the same verdicts in the same order: the digests first, then the decoding.

use super::format::must_be_finite;
use super::weights_ref::WeightsRef;
use crate::checksum::parts_hex_arriving;
use crate::error::{Error, Result};
use crate::state::Tensor;
use safetensors::Dtype;
use safetensors::tensor::Metadata;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The safetensors crate's limit on a header's length.
const MAX_HEADER_BYTES: u64 = 100_000_000;
/// The length prefix of a safetensors header.
const PREFIX: u64 = 8;

/// The tensors of a verified weights file, in name order.
pub(super) struct Read {
    pub tensors: Vec<Tensor>,
    /// The header's `__metadata__` (the position the file was written at).
    pub metadata: std::collections::HashMap<String, String>,
    /// Whether every tensor that must be finite was seen to be as it was read (otherwise the
    /// decoding checks them, and names the first value that is not).
    pub finite: bool,
}

/// A run of bytes of the file at offset `at`, to be read into `bytes` unless it was read
/// with the header.
struct Piece<'a> {
    at: u64,
    bytes: &'a mut [u8],
    read: bool,
}

/// Reads `file` (of the length `expected` records, checked by the caller) into its tensors,
/// verified against `expected`'s part digests. `Ok(None)` when the file is not one this
/// path takes apart; `path` names it in errors.
pub(super) fn read(file: &File, expected: &WeightsRef, path: &Path) -> Result<Option<Read>> {
    let (Some(part_bytes), None) = (expected.part_bytes, &expected.sha256) else {
        return Ok(None);
    };
    let len = expected.bytes;
    let Some((head, metadata)) = read_header(file, len, path)? else {
        return Ok(None);
    };
    let names = metadata.offset_keys();
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        let Some(info) = metadata.info(name) else {
            return Ok(None);
        };
        if info.dtype != Dtype::F32 {
            return Ok(None);
        }
        let (start, end) = info.data_offsets;
        tensors.push(Tensor {
            name: name.clone(),
            shape: info.shape.clone(),
            data: vec![0.0; (end - start) / 4],
        });
    }
    let head_len = head.len() as u64;
    // The finiteness check runs on whole values: blocks reach it cut at multiples of 4 bytes
    // of the file when the header's length and the parts' size are.
    let aligned = head_len.is_multiple_of(4) && part_bytes.is_multiple_of(4);
    let mut finite_ranges = Vec::new();
    let mut at = head_len;
    for t in &tensors {
        let end = at + 4 * t.data.len() as u64;
        if must_be_finite(&t.name) {
            finite_ranges.push(at..end);
        }
        at = end;
    }
    let not_finite = AtomicBool::new(false);
    let check = |at: u64, block: &[u8]| -> Result<()> {
        let i = finite_ranges.partition_point(|r| r.end <= at);
        if aligned && finite_ranges.get(i).is_some_and(|r| r.contains(&at)) {
            let finite = block
                .chunks_exact(4)
                .all(|v| f32::from_le_bytes([v[0], v[1], v[2], v[3]]).is_finite());
            if !finite {
                not_finite.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    };

    let mut head = head;
    let mut regions = vec![Piece {
        at: 0,
        bytes: &mut head[..],
        read: false,
    }];
    let mut at = head_len;
    for t in &mut tensors {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut t.data);
        let n = bytes.len() as u64;
        regions.push(Piece {
            at,
            bytes,
            read: true,
        });
        at += n;
    }
    let mut parts = into_parts(regions, part_bytes).into_iter();
    let count = len.div_ceil(part_bytes) as usize;
    let shrank = || Error::corrupt(path, "it shrank while being read");
    let next = move |_k: usize| -> Result<Vec<&[u8]>> {
        let part = parts.next().ok_or_else(shrank)?;
        let mut pieces: Vec<&[u8]> = Vec::with_capacity(part.len());
        for piece in part {
            if piece.read {
                file.read_exact_at(piece.bytes, piece.at).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        shrank()
                    } else {
                        Error::ckpt_io(path, e)
                    }
                })?;
            }
            pieces.push(piece.bytes);
        }
        Ok(pieces)
    };
    let digests = parts_hex_arriving(count, part_bytes, next, &check)?;
    expected
        .check_parts(&digests)
        .map_err(|reason| Error::corrupt(path, reason))?;
    for t in &mut tensors {
        // The file is little-endian, as the host almost always is.
        if cfg!(target_endian = "big") {
            for v in &mut t.data {
                *v = f32::from_bits(u32::from_le(v.to_bits()));
            }
        }
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(Read {
        tensors,
        metadata: metadata.metadata().clone().unwrap_or_default(),
        finite: aligned && !not_finite.load(Ordering::Relaxed),
    }))
}

/// The file's header bytes (length prefix included) and what they describe, when they are a
/// safetensors header whose tensors end exactly at the file's end.
fn read_header(file: &File, len: u64, path: &Path) -> Result<Option<(Vec<u8>, Metadata)>> {
    let read_at = |bytes: &mut [u8], at: u64| match file.read_exact_at(bytes, at) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Error::ckpt_io(path, e)),
    };
    let mut prefix = [0u8; PREFIX as usize];
    if len < PREFIX || !read_at(&mut prefix, 0)? {
        return Ok(None);
    }
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER_BYTES || PREFIX + n > len {
        return Ok(None);
    }
    let mut head = vec![0u8; (PREFIX + n) as usize];
    // The prefix hashed is the one parsed: a file changed since is not taken apart here.
    if !read_at(&mut head, 0)? || head[..PREFIX as usize] != prefix {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(&head[PREFIX as usize..]) else {
        return Ok(None);
    };
    let Ok(metadata) = serde_json::from_str::<Metadata>(text) else {
        return Ok(None);
    };
    if PREFIX + n + metadata.data_len() as u64 != len {
        return Ok(None);
    }
    Ok(Some((head, metadata)))
}

/// The pieces of `regions` (consecutive in the file, from its start) cut into parts of
/// `part_bytes`.
fn into_parts(regions: Vec<Piece<'_>>, part_bytes: u64) -> Vec<Vec<Piece<'_>>> {
    let mut parts = Vec::new();
    let mut part = Vec::new();
    let mut room = part_bytes;
    for region in regions {
        let (mut at, mut bytes, read) = (region.at, region.bytes, region.read);
        while !bytes.is_empty() {
            let take = room.min(bytes.len() as u64);
            let (head, rest) = bytes.split_at_mut(take as usize);
            part.push(Piece {
                at,
                bytes: head,
                read,
            });
            (at, bytes, room) = (at + take, rest, room - take);
            if room == 0 {
                parts.push(std::mem::take(&mut part));
                room = part_bytes;
            }
        }
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::parts_hex;
    use safetensors::tensor::TensorView;
    use std::io::Write;

    /// A weights file of these tensors, as safetensors writes it.
    fn file_of(tensors: &[(&str, Vec<f32>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(name, data)| {
                let view =
                    TensorView::new(Dtype::F32, vec![data.len()], bytemuck::cast_slice(data));
                (name.to_string(), view.unwrap())
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn on_disk(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(bytes).unwrap();
        let file = tmp.reopen().unwrap();
        (tmp, file)
    }

    fn reference(bytes: &[u8], part: u64) -> WeightsRef {
        WeightsRef::with_parts("w".into(), bytes.len() as u64, part, parts_hex(bytes, part))
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
    }

    fn sample() -> Vec<u8> {
        file_of(&[
            ("model.layers.0.kernel", values(1031, 1.0)),
            ("model.layers.0.bias", values(1, 2.0)),
            ("optimizer.model.layers.0.kernel.m", values(1031, 3.0)),
            ("train.batch_stats", values(14, 4.0)),
        ])
    }

    /// Parts of any size, cut anywhere in the header or the tensors, give the tensors the
    /// whole-file decoder gives, verified.
    #[test]
    fn parts_of_any_size_read_what_the_decoder_reads() {
        let bytes = sample();
        let want = super::super::format::read_tensors_from(&bytes, Path::new("w")).unwrap();
        let (_tmp, file) = on_disk(&bytes);
        for part in [1, 3, 8, 100, 4096, 5000, bytes.len() as u64, 1 << 30] {
            let read = read(&file, &reference(&bytes, part), Path::new("w"))
                .unwrap()
                .unwrap_or_else(|| panic!("part {part}: not streamed"));
            assert_eq!(read.tensors, want, "part {part}");
            assert_eq!(read.finite, part.is_multiple_of(4), "part {part}");
        }
    }

    /// A changed byte is found in its part, with the whole-file check's words.
    #[test]
    fn a_changed_byte_is_named_by_its_part() {
        let bytes = sample();
        let expected = reference(&bytes, 1000);
        let head = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for at in [head, head + 4100, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let (_tmp, file) = on_disk(&bad);
            let err = read(&file, &expected, Path::new("w"))
                .map(|_| ())
                .expect_err("a changed byte passed");
            let reason = expected.verify(&bad).unwrap_err();
            assert!(err.to_string().contains(&reason), "{err} / {reason}");
            assert!(reason.contains(&format!("part {} ", at / 1000)), "{reason}");
        }
    }

    /// A value that is not finite is seen in a parameter, not in an optimizer slot.
    #[test]
    fn a_parameter_that_is_not_finite_is_seen() {
        for (name, seen) in [("model.layers.0.kernel", true), ("optimizer.x", false)] {
            let mut data = values(100, 0.5);
            data[77] = f32::NAN;
            let bytes = file_of(&[(name, data), ("train.batch_stats", values(2, 0.0))]);
            let (_tmp, file) = on_disk(&bytes);
            let read = read(&file, &reference(&bytes, 64), Path::new("w"))
                .unwrap()
                .unwrap();
            assert_eq!(read.finite, !seen, "{name}");
        }
    }

    /// A file that shrinks after its length was checked is refused; one with a whole-file
    /// digest or a header this path cannot parse is left to the whole-file reader.
    #[test]
    fn what_it_does_not_take_apart_it_leaves() {
        let bytes = sample();
        let (tmp, file) = on_disk(&bytes);
        tmp.as_file().set_len(bytes.len() as u64 - 10).unwrap();
        let err = read(&file, &reference(&bytes, 4096), Path::new("w"))
            .map(|_| ())
            .expect_err("a short file passed");
        assert!(err.to_string().contains("shrank"), "{err}");

        let (_tmp, file) = on_disk(&bytes);
        let mut whole = reference(&bytes, 4096);
        (whole.part_bytes, whole.parts) = (None, Vec::new());
        whole.sha256 = Some(crate::checksum::hex(&bytes));
        assert!(read(&file, &whole, Path::new("w")).unwrap().is_none());

        for (at, byte) in [(0usize, 0xff), (7, 1), (8, b'}'), (9, b'{')] {
            let mut bad = bytes.clone();
            bad[at] = byte;
            let (_tmp, file) = on_disk(&bad);
            let got = read(&file, &reference(&bad, 4096), Path::new("w")).unwrap();
            assert!(got.is_none(), "a broken header at {at} was streamed");
        }
    }
}
