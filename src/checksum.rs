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
    let unchecked = parts_hex_checked(pieces, part_bytes, &|_: u64, _: &[u8]| Ok::<(), ()>(()));
    match unchecked {
        Ok(digests) => digests,
        Err(()) => unreachable!("a check that always passes failed"),
    }
}

/// A check of the bytes at an offset of a file (see [`parts_hex_checked`]).
pub type BlockCheck<'a, E> = dyn Fn(u64, &[u8]) -> Result<(), E> + Sync + 'a;

/// Bytes handed to the check of [`parts_hex_checked`] at a time, and hashed right after,
/// while they are still in the core's cache.
const CHECK_BLOCK: u64 = 256 << 10;

/// [`parts_hex_of`] with `check` run on every byte in the same pass, while each block is
/// hashed: `check(offset, bytes)` is handed the bytes at `offset` of the file (blocks of at
/// most 256 KiB, cut at multiples of 4 bytes when `part_bytes` is and the pieces are). The
/// error of the first failing block in file order is returned, after every thread stopped.
pub fn parts_hex_checked<E: Send>(
    pieces: &[&[u8]],
    part_bytes: u64,
    check: &BlockCheck<'_, E>,
) -> Result<Vec<String>, E> {
    assert!(part_bytes > 0, "a digest part of 0 bytes");
    let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let count = total.div_ceil(part_bytes) as usize;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, count.max(1));
    let mut digests: Vec<Result<String, E>> = (0..count).map(|_| Ok(String::new())).collect();
    // The first part that failed so far: the threads skip the parts after it.
    let failed = std::sync::atomic::AtomicUsize::new(usize::MAX);
    // Part k goes to thread k % threads, so every thread has parts all through the file.
    std::thread::scope(|scope| {
        let mut slots: Vec<Vec<(usize, &mut Result<String, E>)>> =
            (0..threads).map(|_| Vec::new()).collect();
        for (k, slot) in digests.iter_mut().enumerate() {
            slots[k % threads].push((k, slot));
        }
        let failed = &failed;
        for mine in slots {
            scope.spawn(move || {
                for (k, slot) in mine {
                    if k > failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let start = k as u64 * part_bytes;
                    let end = (start + part_bytes).min(total);
                    *slot = hash_part(&range_of(pieces, start, end), start, check);
                    if slot.is_err() {
                        failed.fetch_min(k, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    // Every part before the first failing one was checked, so the first error in the list
    // is the first in the file.
    digests.into_iter().collect()
}

/// [`parts_hex_checked`] for parts that arrive one at a time, as a reader fills them:
/// `next(k)` is called on this thread for parts `0..count` in order and returns part k's
/// pieces (`part_bytes` together; the last part may be shorter), which are checked and hashed
/// on up to every core while it reads the next. An error of `next` counts as its part's; the
/// reading stops at the first error, and the error of the first failing part in file order
/// is returned, after every thread stopped.
pub fn parts_hex_arriving<'a, E: Send>(
    count: usize,
    part_bytes: u64,
    mut next: impl FnMut(usize) -> Result<Vec<&'a [u8]>, E>,
    check: &BlockCheck<'_, E>,
) -> Result<Vec<String>, E> {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::{Mutex, mpsc};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, count.max(1));
    let failed = AtomicUsize::new(usize::MAX);
    // A part or two per thread waits in the queue: the reader stays ahead of the hashing
    // without holding more than that much unhashed.
    let (work, queue) = mpsc::sync_channel::<(usize, Vec<&'a [u8]>)>(threads);
    // The workers own the queue's receiving end: should they all stop, the reader's next send
    // fails instead of waiting for room forever.
    let queue = std::sync::Arc::new(Mutex::new(queue));
    let (done, results) = mpsc::channel::<(usize, Result<String, E>)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (done, queue, failed) = (done.clone(), queue.clone(), &failed);
            scope.spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((k, pieces)) = job else { return };
                    if k > failed.load(Relaxed) {
                        continue;
                    }
                    let digest = hash_part(&pieces, k as u64 * part_bytes, check);
                    if digest.is_err() {
                        failed.fetch_min(k, Relaxed);
                    }
                    if done.send((k, digest)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(queue);
        for k in 0..count {
            if failed.load(Relaxed) != usize::MAX {
                break;
            }
            match next(k) {
                Ok(pieces) => {
                    if work.send((k, pieces)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failed.fetch_min(k, Relaxed);
                    let _ = done.send((k, Err(e)));
                    break;
                }
            }
        }
        drop(work);
    });
    drop(done);
    let mut digests: Vec<Option<Result<String, E>>> = (0..count).map(|_| None).collect();
    for (k, digest) in results {
        digests[k] = Some(digest);
    }
    // Every part before the first failing one was read and hashed.
    let mut out = Vec::with_capacity(count);
    for digest in digests {
        match digest {
            Some(digest) => out.push(digest?),
            None => panic!("a part before the first failure was not hashed"),
        }
    }
    Ok(out)
}

/// The SHA-256 of `pieces` laid end to end, which begin at byte `at` of the file, each block
/// checked before it is hashed (blocks end at multiples of 256 KiB of the file).
fn hash_part<E>(pieces: &[&[u8]], at: u64, check: &BlockCheck<'_, E>) -> Result<String, E> {
    let mut hasher = Sha256::new();
    let end = at + pieces.iter().map(|p| p.len() as u64).sum::<u64>();
    let mut offset = at;
    while offset < end {
        let block_end = ((offset / CHECK_BLOCK + 1) * CHECK_BLOCK).min(end);
        for piece in range_of(pieces, offset - at, block_end - at) {
            check(offset, piece)?;
            hasher.update(piece);
            offset += piece.len() as u64;
        }
        offset = block_end;
    }
    Ok(to_hex(&hasher.finalize()))
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

    /// The check sees every byte once, at its offset, and its first failure in file order is
    /// the error, however the parts fall to the threads.
    #[test]
    fn the_check_sees_every_byte_at_its_offset_and_the_first_failure_wins() {
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 250) as u8).collect();
        let (a, b) = bytes.split_at(1_000_003);
        let seen = std::sync::Mutex::new(vec![0u8; bytes.len()]);
        let digests = parts_hex_checked(&[a, b], 1 << 20, &|at: u64, block: &[u8]| {
            let mut seen = seen.lock().unwrap();
            for (i, byte) in block.iter().enumerate() {
                assert_eq!(*byte, bytes[at as usize + i], "offset {}", at as usize + i);
                seen[at as usize + i] += 1;
            }
            Ok::<(), u64>(())
        })
        .unwrap();
        assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1));
        assert_eq!(digests, parts_hex(&bytes, 1 << 20));
        // Bytes 251 are planted at 1.5 MB and 2.5 MB: the first is reported.
        let mut bad = bytes.clone();
        bad[1_500_000] = 251;
        bad[2_500_000] = 251;
        let err = parts_hex_checked(&[&bad], 1 << 20, &|at: u64, block: &[u8]| match block
            .iter()
            .position(|&b| b == 251)
        {
            Some(i) => Err(at + i as u64),
            None => Ok(()),
        });
        assert_eq!(err, Err(1_500_000));
    }

    /// Parts that arrive one at a time hash as the whole does; a failure of the reader or of
    /// the check stops the reading, and the first in file order is the error.
    #[test]
    fn arriving_parts_hash_as_the_whole_and_stop_at_the_first_failure() {
        let bytes: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let part = 1 << 20;
        let chunks: Vec<&[u8]> = bytes.chunks(part as usize).collect();
        let pass = |_: u64, _: &[u8]| Ok::<(), u64>(());
        let got = parts_hex_arriving(chunks.len(), part, |k| Ok(vec![chunks[k]]), &pass);
        assert_eq!(got, Ok(parts_hex(&bytes, part)));
        // Each part in two pieces, with an empty one between.
        let split = |k: usize| {
            let (a, b) = chunks[k].split_at(chunks[k].len() / 3);
            Ok(vec![a, &[][..], b])
        };
        assert_eq!(
            parts_hex_arriving(chunks.len(), part, split, &pass),
            Ok(parts_hex(&bytes, part))
        );
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let reader_fails = parts_hex_arriving(
            chunks.len(),
            part,
            |k| {
                asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k == 2 {
                    Err(2_000_000)
                } else {
                    Ok(vec![chunks[k]])
                }
            },
            &pass,
        );
        assert_eq!(reader_fails, Err(2_000_000));
        assert_eq!(asked.into_inner(), 3, "the reading went on after a failure");
        let check = |at: u64, block: &[u8]| match block.iter().position(|&b| b == 251) {
            Some(i) => Err(at + i as u64),
            None => Ok(()),
        };
        let mut bad = bytes.clone();
        bad[1_500_000] = 251;
        bad[3_500_000] = 251;
        let bad_chunks: Vec<&[u8]> = bad.chunks(part as usize).collect();
        let checked =
            parts_hex_arriving(bad_chunks.len(), part, |k| Ok(vec![bad_chunks[k]]), &check);
        assert_eq!(checked, Err(1_500_000));
    }

    /// Hashing threads that all die (a check that panics) end the reading with their panic;
    /// the reader does not wait for room in the queue forever.
    #[test]
    fn hashing_threads_that_panic_do_not_leave_the_reader_waiting() {
        let (finished, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let bytes = vec![7u8; 64 << 10];
            let result = std::panic::catch_unwind(|| {
                let panics = |_: u64, _: &[u8]| -> Result<(), ()> { panic!("a check broke") };
                parts_hex_arriving(
                    64,
                    1 << 10,
                    |k| Ok(vec![&bytes[k << 10..(k + 1) << 10]]),
                    &panics,
                )
            });
            let _ = finished.send(result.is_err());
        });
        let panicked = outcome
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the reader still waits 30 s after every hashing thread died");
        assert!(panicked, "the hashing threads' panic was lost");
    }
}
