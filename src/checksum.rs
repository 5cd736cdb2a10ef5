//! The digests that verify backups and identify data sets: SHA-256, as lower-case hex.
//! Changing a digest is a change to this file (and the format's version).
//!
//! A backup's weights are verified part by part ([`parts_hex_of`]): one SHA-256 per
//! [`PART_BYTES`] of the file, computed on every core at once, so that hashing a large state
//! no longer runs at one core's speed. The parts are the object-store upload's parts too.

use sha2::{Digest, Sha256};

/// The size of a digest part (the last part may be shorter). 8 MiB: above S3's 5 MiB
/// minimum for a multipart upload's part, small enough to spread a 100 MB state over cores.
pub const PART_BYTES: u64 = 8 << 20;

/// The SHA-256 of `bytes`, as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    hex_of(&[bytes])
}

/// The SHA-256 of pieces laid end to end, as lower-case hex.
pub fn hex_of(pieces: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for piece in pieces {
        hasher.update(piece);
    }
    to_hex(&hasher.finalize())
}

fn to_hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One SHA-256 per `part_bytes` of `bytes` (none for no bytes), computed in parallel.
pub fn parts_hex(bytes: &[u8], part_bytes: u64) -> Vec<String> {
    parts_hex_of(&[bytes], part_bytes)
}

/// One SHA-256 per `part_bytes` of the pieces laid end to end (the last part may be shorter;
/// no bytes give no parts), computed on up to every core. `part_bytes` must not be 0.
pub fn parts_hex_of(pieces: &[&[u8]], part_bytes: u64) -> Vec<String> {
    assert!(part_bytes > 0, "a digest part of 0 bytes");
    let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let count = total.div_ceil(part_bytes) as usize;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, count.max(1));
    let mut digests = vec![String::new(); count];
    // Part k goes to thread k % threads, so every thread has parts all through the file.
    std::thread::scope(|scope| {
        let mut slots: Vec<Vec<(usize, &mut String)>> = (0..threads).map(|_| Vec::new()).collect();
        for (k, slot) in digests.iter_mut().enumerate() {
            slots[k % threads].push((k, slot));
        }
        for mine in slots {
            scope.spawn(move || {
                for (k, slot) in mine {
                    let start = k as u64 * part_bytes;
                    let end = (start + part_bytes).min(total);
                    let mut hasher = Sha256::new();
                    for piece in range_of(pieces, start, end) {
                        hasher.update(piece);
                    }
                    *slot = to_hex(&hasher.finalize());
                }
            });
        }
    });
    digests
}

/// The slices of `pieces` (laid end to end) that cover bytes `start..end`.
pub(crate) fn range_of<'a>(pieces: &[&'a [u8]], start: u64, end: u64) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for piece in pieces {
        let len = piece.len() as u64;
        let (from, to) = (start.max(offset), end.min(offset + len));
        if from < to {
            out.push(&piece[(from - offset) as usize..(to - offset) as usize]);
        }
        offset += len;
        if offset >= end {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts cut across pieces hash exactly the bytes of the part, in order.
    #[test]
    fn parts_follow_the_bytes_not_the_pieces() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, rest) = bytes.split_at(333);
        let (b, c) = rest.split_at(1);
        let parts = parts_hex_of(&[a, b, &[], c], 100);
        assert_eq!(parts.len(), 10);
        for (k, digest) in parts.iter().enumerate() {
            assert_eq!(*digest, hex(&bytes[k * 100..(k + 1) * 100]), "part {k}");
        }
        let odd = parts_hex(&bytes, 300);
        assert_eq!(odd.len(), 4);
        assert_eq!(odd[3], hex(&bytes[900..]));
        assert!(parts_hex(&[], 100).is_empty());
    }
}
