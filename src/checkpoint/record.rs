//! The file-system operations of a backup directory, recorded in unit tests so that the
//! crash-state checker (`crash_states.rs`) can replay every state a crash may leave. Outside
//! tests nothing is recorded and this costs nothing.

/// One operation on a backup directory, as the crash-state checker models it.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// A new empty file `name`, inode `ino`.
    Create { name: String, ino: u64 },
    /// The whole contents of inode `ino`, written from offset 0.
    Write { ino: u64, bytes: Vec<u8> },
    /// fsync of inode `ino`.
    SyncFile { ino: u64 },
    /// rename within the directory.
    Rename { from: String, to: String },
    /// unlink within the directory.
    Unlink { name: String },
    /// fsync of the directory.
    SyncDir,
}

#[cfg(test)]
thread_local! {
    static LOG: std::cell::RefCell<Option<Vec<Op>>> = const { std::cell::RefCell::new(None) };
}

/// Appends an operation to this thread's log, if one is being recorded.
#[cfg(test)]
pub(crate) fn push(op: impl FnOnce() -> Op) {
    LOG.with(|log| {
        if let Some(ops) = log.borrow_mut().as_mut() {
            ops.push(op());
        }
    });
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn push(_op: impl FnOnce() -> Op) {}

/// The inode number of an open file, while recording.
#[cfg(test)]
pub(crate) fn ino(file: &std::fs::File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map(|m| m.ino()).unwrap_or(0)
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn ino(_file: &std::fs::File) -> u64 {
    0
}

/// Records the operations `f` performs on this thread.
#[cfg(test)]
pub(crate) fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<Op>) {
    LOG.with(|log| *log.borrow_mut() = Some(Vec::new()));
    let out = f();
    let ops = LOG.with(|log| log.borrow_mut().take()).unwrap_or_default();
    (out, ops)
}
