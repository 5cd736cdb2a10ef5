//! Writing a large file past the page cache (`O_DIRECT`), as `dd oflag=direct` does: the
//! bytes go from an aligned bounce buffer to the device, with no second copy in the kernel
//! and no dirty pages for `fsync` to chase.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// Writes `pieces` end to end into the empty file at `path`, past the page cache. Returns
/// `Ok(false)`, leaving the file empty, where the file system refuses `O_DIRECT` (ramfs,
/// tmpfs before Linux 6.6, some network file systems), at open or at a write: the caller
/// then writes the ordinary way.
pub fn write(path: &Path, pieces: &[&[u8]]) -> std::io::Result<bool> {
    let mut file = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(false),
        Err(e) => return Err(e),
    };
    match stream(&mut file, pieces) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            file.set_len(0)?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Copies the pieces through an aligned bounce buffer into `file` (opened with `O_DIRECT`).
fn stream(file: &mut std::fs::File, pieces: &[&[u8]]) -> std::io::Result<()> {
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
                file.write_all(buf)?;
                total += used as u64;
                used = 0;
            }
        }
    }
    if used > 0 {
        // The tail goes out padded to a whole block and is cut back to its length after.
        let padded = used.next_multiple_of(BLOCK);
        buf[used..padded].fill(0);
        file.write_all(&buf[..padded])?;
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
        std::fs::File::create(&path).unwrap();
        let a: Vec<u8> = (0..4097u32).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..(BLOCK * BLOCKS + 13) as u32)
            .map(|i| (i * 7) as u8)
            .collect();
        let c = [0xEEu8; 1];
        let direct = write(&path, &[&a, &b, &[], &c]).unwrap();
        let back = std::fs::read(&path).unwrap();
        if direct {
            assert_eq!(back, [a, b, c.to_vec()].concat());
        } else {
            // This file system refused O_DIRECT; nothing may have been written.
            assert!(back.is_empty());
        }
    }
}
