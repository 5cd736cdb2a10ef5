//! Writing a large file past the page cache (`O_DIRECT`), as `dd oflag=direct` does: the
//! bytes go from an aligned bounce buffer to the device, with no second copy in the kernel
//! and no dirty pages for `fsync` to chase.

use rustix::fs::{self as rfs, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The alignment `O_DIRECT` needs for addresses, lengths and file offsets.
const BLOCK: usize = 4096;
/// The bounce buffer: 1 MiB, big enough that each write keeps the device busy, small beside
/// the state it streams.
const BLOCKS: usize = 256;

/// One aligned block of the bounce buffer.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

/// Files smaller than this are written the ordinary way.
pub const MIN_BYTES: u64 = 16 << 20;

/// Writes `pieces` end to end into `file` (new and empty, opened for writing), past the page
/// cache: `O_DIRECT` is switched on for this very descriptor, so the bytes go nowhere but
/// the file the caller created. Returns `Ok(false)`, leaving the file empty, where the file
/// system refuses `O_DIRECT` (ramfs, tmpfs before Linux 6.6, some network file systems), at
/// the switch or at a write: the caller then writes the ordinary way.
pub fn write(file: &mut File, pieces: &[&[u8]]) -> std::io::Result<bool> {
    let flags = rfs::fcntl_getfl(&*file)?;
    match rfs::fcntl_setfl(&*file, flags | OFlags::DIRECT) {
        Ok(()) => {}
        Err(Errno::INVAL) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let streamed = stream(file, pieces);
    rfs::fcntl_setfl(&*file, flags)?;
    match streamed {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            file.set_len(0)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Copies the pieces through an aligned bounce buffer into `file` at aligned offsets
/// (positioned writes: the descriptor's own offset stays 0 for a fallback).
fn stream(file: &mut File, pieces: &[&[u8]]) -> std::io::Result<()> {
    let mut blocks = vec![Block([0; BLOCK]); BLOCKS];
    let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut blocks);
    let mut used = 0;
    let mut total = 0u64;
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() {
            let n = rest.len().min(buf.len() - used);
            buf[used..used + n].copy_from_slice(&rest[..n]);
            used += n;
            rest = &rest[n..];
            if used == buf.len() {
                file.write_all_at(buf, total)?;
                total += used as u64;
                used = 0;
            }
        }
    }
    if used > 0 {
        // The tail goes out padded to a whole block and is cut back to its length after.
        let padded = used.next_multiple_of(BLOCK);
        buf[used..padded].fill(0);
        file.write_all_at(&buf[..padded], total)?;
        total += used as u64;
        file.set_len(total)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_straddling_blocks_and_the_buffer_come_back_exactly() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("f");
        let mut file = std::fs::File::create(&path).unwrap();
        let a: Vec<u8> = (0..4097u32).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..(BLOCK * BLOCKS + 13) as u32)
            .map(|i| (i * 7) as u8)
            .collect();
        let c = [0xEEu8; 1];
        let direct = write(&mut file, &[&a, &b, &[], &c]).unwrap();
        let back = std::fs::read(&path).unwrap();
        if direct {
            assert_eq!(back, [a, b, c.to_vec()].concat());
        } else {
            // This file system refused O_DIRECT; nothing may have been written.
            assert!(back.is_empty());
        }
    }
}
