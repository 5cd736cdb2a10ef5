//! Tests that mount file systems (tmpfs, ramfs) without root.
//!
//! Mounting needs CAP_SYS_ADMIN. Root has it; an ordinary user has it inside a user namespace
//! of their own, paired with a mount namespace whose mounts nobody else sees (what
//! `unshare --user --map-root-user --mount` sets up; Debian and Ubuntu allow it by default,
//! Ubuntu 24.04 only where AppArmor's `kernel.apparmor_restrict_unprivileged_userns` is 0).
//! The mounts must be seen by the test and by the worker processes it starts, so the whole
//! test runs in the namespace: [`mount_here`] runs the test binary again, filtered to the
//! calling test, under `unshare`.
//!
//! Where neither root nor a user namespace is available the test says so on stderr, outside
//! libtest's capture so that it shows in the output of a passing run, and passes without
//! running, unless `WGFIT_REQUIRE_ALL_TESTS=1` (set by `.ci/run`) makes that a failure.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Set for the test binary run inside the namespace.
const INNER: &str = "WGFIT_TEST_IN_MOUNT_NAMESPACE";

/// `=1` turns a test that could not run into a failure.
pub const REQUIRE_ALL: &str = "WGFIT_REQUIRE_ALL_TESTS";

const UNSHARE: [&str; 4] = ["unshare", "--user", "--map-root-user", "--mount"];

/// Whether the calling test `test` (its function name) runs its body in this process: true as
/// root, as before, and in the run inside the namespace. Otherwise it runs the test there and
/// returns false once it passed (it panics if it failed), or reports that the test cannot run
/// here and returns false (it panics under `WGFIT_REQUIRE_ALL_TESTS=1`).
pub fn mount_here(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return true;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    let crate_name = env!("CARGO_CRATE_NAME");
    if let Err(why) = namespace_available() {
        let notice = format!(
            "{crate_name}::{test} NOT RUN: it mounts a tmpfs, which needs root or an \
             unprivileged user namespace, and this user (uid {euid}) has neither: {why}"
        );
        let require_all = std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1");
        assert!(!require_all, "{notice} ({REQUIRE_ALL}=1)");
        loud(&format!(
            "{notice}\n  It passes without running; {REQUIRE_ALL}=1 (set by .ci/run) makes \
             this a failure."
        ));
        return false;
    }

    let exe = std::env::current_exe().unwrap();
    let mut inner = Command::new(UNSHARE[0]);
    inner
        .args(&UNSHARE[1..])
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1");
    // Inside, getuid() is 0, and Mesa finds its shader cache through the home directory of
    // that uid (/root/.cache, out of reach): without this, lavapipe recompiles every shader in
    // every process, and the test takes 30 s instead of 2.
    if std::env::var_os("XDG_CACHE_HOME").is_none()
        && let Some(home) = std::env::var_os("HOME")
    {
        inner.env("XDG_CACHE_HOME", Path::new(&home).join(".cache"));
    }
    let output = inner.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{test} failed inside the namespace ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // An exact filter that matches nothing passes too: make sure the test ran.
    assert!(
        stdout.contains(&format!("test {test} ... ok")),
        "{test} did not run inside the namespace:\n{stdout}\n{stderr}"
    );
    loud(&format!(
        "{crate_name}::{test} ran as uid {euid} in a user and mount namespace ({} ...), \
         mapped to root there: passed",
        UNSHARE.join(" ")
    ));
    false
}

/// Ok if this user can mount a tmpfs in a namespace of its own, else why not. Checked once
/// per process, by doing it.
fn namespace_available() -> Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE
        .get_or_init(|| {
            let at = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
            let output = Command::new(UNSHARE[0])
                .args(&UNSHARE[1..])
                .args(["mount", "-t", "tmpfs", "tmpfs"])
                .arg(at.path())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("`{}` could not start: {e}", UNSHARE[0]))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`{} mount -t tmpfs …` failed ({}): {}",
                    UNSHARE.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        })
        .clone()
}

/// Writes to stderr past libtest's capture (which takes only `print!` and `eprint!`), so
/// that the line shows in the output of a passing test.
fn loud(message: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** {message}\n");
}
