//! Who holds a lease, for certain: a process named by its host, boot, pid namespace, pid and
//! start time, so that a rerun on the same machine can tell that a killed owner is gone and
//! take its lease at once (docs/FORMAT.md, "Object storage").

use serde::{Deserialize, Serialize};

/// What makes a pid name one process for certain: the kernel's boot (its random boot id), the
/// pid namespace, and the process's start time (a pid is reused by a later process, which
/// starts later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ProcessIdentity {
    boot_id: String,
    pid_namespace: u64,
    /// Clock ticks after boot (`/proc/<pid>/stat`, field 22).
    start_ticks: u64,
}

impl ProcessIdentity {
    /// Process `pid`'s identity as this process sees it; `None` where /proc cannot say (not
    /// Linux, or no such process).
    pub(super) fn of(pid: u32) -> Option<ProcessIdentity> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = rustix::fs::stat("/proc/self/ns/pid").ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: count from its end.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let start_ticks = after_name.split_whitespace().nth(19)?.parse().ok()?;
        Some(ProcessIdentity {
            boot_id: boot_id.trim().to_string(),
            pid_namespace: ns.st_ino,
            start_ticks,
        })
    }
}

/// Whether a lease's owner (`pid` on `host`, with its identity where the lease records one)
/// is certainly gone: it ran on this host, in this boot and pid namespace, and no process with
/// its pid and start time runs now.
pub(super) fn is_gone(owner_host: &str, pid: u32, identity: Option<&ProcessIdentity>) -> bool {
    let Some(theirs) = identity else {
        return false;
    };
    let Some(mine) = ProcessIdentity::of(std::process::id()) else {
        return false;
    };
    if owner_host != host() || theirs.boot_id != mine.boot_id {
        return false;
    }
    if theirs.pid_namespace != mine.pid_namespace {
        return false;
    }
    // Signal 0 asks the kernel whether the pid exists, even where /proc hides other users'
    // processes; only "no such process" is certain.
    let Some(raw) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(raw) {
        Err(rustix::io::Errno::SRCH) => true,
        // A process of that pid runs: the owner if it started when the owner did.
        _ => ProcessIdentity::of(pid).is_some_and(|now| now.start_ticks != theirs.start_ticks),
    }
}

/// This machine's host name, as leases record it.
pub(super) fn host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
