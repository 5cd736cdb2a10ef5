//! Files written for people and other tools (a model, a history, predictions): whole, to a
//! temporary file renamed into place, so that a crash leaves the old file or the new one.

use super::DirHandle;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// How [`write_atomically`] wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Whether the bytes went past the page cache (`O_DIRECT`; files of 16 MiB and more, on
    /// file systems that accept it).
    pub direct_io: bool,
}

/// The file an output named `path` is written to: `path` itself, or for a symbolic link the
/// regular file it points to (the link stays). Anything else in its place is refused: a
/// directory, a device (`/dev/null`, `/dev/stdout`'s terminal), a pipe, a socket, or a link to
/// one or to nothing. Outputs are written whole to a temporary file and renamed into place,
/// which would put a regular file where the device or link was.
pub fn output_file(path: &Path) -> std::io::Result<PathBuf> {
    let refuse = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "it is {what}; outputs are written as whole files renamed into place, so name a \
                 regular file (or a new one)"
            ),
        )
    };
    let link = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(e),
        Ok(m) if m.is_file() => return Ok(path.to_path_buf()),
        Ok(m) if m.is_dir() => return Err(refuse("a directory")),
        Ok(m) => m.file_type().is_symlink(),
    };
    if !link {
        return Err(refuse("not a regular file (a device, pipe or socket)"));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => std::fs::canonicalize(path),
        Ok(_) => Err(refuse("a link to something other than a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(refuse("a link to nothing (a dangling symbolic link)"))
        }
        Err(e) => Err(e),
    }
}

/// Writes a file atomically: a new temporary file beside it, fsync, rename, fsync of the
/// directory. A crash leaves either the old file or the new one, never a torn one. A symbolic
/// link is written through, and anything but a regular file refused ([`output_file`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<Written> {
    let fail = |source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    let path = &output_file(path).map_err(fail)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| fail(std::io::Error::other("not a file name wgfit can write")))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = DirHandle::open(parent).map_err(fail)?;
    let tmp = format!(".wgfit-out-{}-{name}", std::process::id());
    let _ = dir.remove(&tmp);
    remove_stale_temporaries(&dir, name);
    let direct_io = dir.write_atomic(name, &tmp, &[bytes], true).map_err(fail)?;
    dir.sync()?;
    Ok(Written { direct_io })
}

/// Removes the temporary files of earlier writes of `name` by processes that no longer run
/// (`.wgfit-out-<pid>-<name>`, left behind when a process was killed mid-write). A file whose
/// process still runs is another write in progress and stays; failures are ignored (a stale
/// temporary file costs only its space).
fn remove_stale_temporaries(dir: &DirHandle, name: &str) {
    let Ok(names) = dir.names() else {
        return;
    };
    let suffix = format!("-{name}");
    for entry in names {
        let pid = entry
            .strip_prefix(".wgfit-out-")
            .and_then(|rest| rest.strip_suffix(&suffix))
            .and_then(|pid| pid.parse::<i32>().ok());
        let Some(pid) = pid.filter(|p| *p > 0) else {
            continue;
        };
        // Signal 0 checks that the process exists; ESRCH says it does not.
        let gone = rustix::process::Pid::from_raw(pid)
            .map(|p| rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH))
            .unwrap_or(false);
        if gone {
            let _ = dir.remove(&entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn anything_but_a_regular_file_is_refused_and_a_link_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fifo = d.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::os::unix::fs::symlink("fifo", d.join("to-fifo")).unwrap();
        std::os::unix::fs::symlink("nowhere/x", d.join("dangling")).unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        for (name, why) in [
            ("fifo", "not a regular file"),
            ("to-fifo", "a link to something other than a regular file"),
            ("dangling", "a link to nothing"),
            ("dir", "a directory"),
        ] {
            let e = write_atomically(&d.join(name), b"model").unwrap_err();
            assert!(e.to_string().contains(why), "{name}: {e}");
        }
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        std::fs::write(d.join("file"), "old").unwrap();
        std::os::unix::fs::symlink("file", d.join("link")).unwrap();
        write_atomically(&d.join("link"), b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(d.join("link"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(std::fs::read(d.join("file")).unwrap(), b"new");
    }
}
