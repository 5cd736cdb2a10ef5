//! Checks of single flag values that every command shares (input and output files, scale
//! factors, counts), each a usage error (exit 2) that names the flag.

use crate::{CliResult, Failure};
use std::path::Path;

/// A usage error: the command line asks for something that cannot work.
pub fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

/// Refuses a --scale that is not a finite, non-zero factor (every command that takes one).
pub fn check_scale(scale: Option<f32>) -> CliResult {
    match scale {
        Some(s) if !(s.is_finite() && s != 0.0) => Err(usage(format!(
            "--scale {s}: pass a finite, non-zero factor"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a count flag of 0 where at least 1 is needed.
pub fn check_at_least_one(flag: &str, n: usize) -> CliResult {
    if n == 0 {
        return Err(usage(format!("{flag} 0: give 1 or more")));
    }
    Ok(())
}

/// Refuses an input that is not there or is a directory, for a command that reads it once,
/// from start to end: a pipe (`wgfit convert <(zcat d.csv.gz) d.safetensors`) is read too.
pub fn check_stream_input(flag: &str, path: &Path) -> CliResult {
    refuse_input(flag, path, true)
}

/// Refuses an input file that is not there, is a directory, or is not a regular file, for
/// every command that reads one (a usage error, as any bad value of a flag).
pub fn check_input(flag: &str, path: &Path) -> CliResult {
    refuse_input(flag, path, false)
}

fn refuse_input(flag: &str, path: &Path, stream: bool) -> CliResult {
    let what = if !path.exists() {
        "does not exist"
    } else if path.is_dir() {
        "is a directory"
    } else if !stream && !path.is_file() {
        // A pipe (`<(zcat d.csv.gz)`) cannot be read twice: its form is told from its first
        // bytes before it is read, which a second read of a pipe would lose.
        "is a pipe or a device, not a regular file: save it to a file first (wgfit reads a \
         .csv.gz itself)"
    } else {
        return Ok(());
    };
    Err(usage(format!("{flag} {}: {what}", path.display())))
}

/// Refuses an output that is the very file an input flag reads (compared by identity, not
/// by name), for every command that writes a file.
pub fn refuse_overwriting_input(
    flag: &str,
    output: &Path,
    input_flag: &str,
    input: &Path,
) -> CliResult {
    if same_file(output, input) {
        return Err(usage(format!(
            "{flag} {} is the file {input_flag} reads; writing it would destroy the input: \
             give another path",
            output.display()
        )));
    }
    Ok(())
}

/// Whether two paths name one place: one existing file ([`same_file`]), or the same path once
/// made absolute (`./o` and `o`, neither of which exists yet).
pub fn same_place(a: &Path, b: &Path) -> bool {
    same_file(a, b)
        || matches!((std::path::absolute(a), std::path::absolute(b)), (Ok(a), Ok(b)) if a == b)
}

/// Whether two paths name one existing file (by device and inode, so that `./d.csv`, a link
/// and `d.csv` are the same file).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Refuses a picture named other than `.svg`: the curves are drawn as SVG only.
pub fn check_svg(flag: &str, path: &Path) -> CliResult {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        return Ok(());
    }
    Err(usage(format!(
        "{flag} {}: the curves are drawn as SVG; name the file .svg",
        path.display()
    )))
}

/// Refuses an output `path` that cannot be written as wgfit writes files: it must be a file
/// (not a directory) in an existing directory where a new file can be made (outputs are
/// written to a temporary file there, then renamed into place). For every command that writes.
pub fn check_output(flag: &str, path: &Path) -> CliResult {
    if path.is_dir() {
        return Err(usage(format!(
            "{flag} {} is a directory; give a file path",
            path.display()
        )));
    }
    let path = &wgfit::checkpoint::output_file(path)
        .map_err(|e| usage(format!("{flag} {}: {e}", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(usage(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    tempfile::Builder::new()
        .prefix(".wgfit-write-check-")
        .tempfile_in(parent)
        .map(drop)
        .map_err(|e| {
            usage(format!(
                "{flag} {}: cannot write in {}: {e}",
                path.display(),
                parent.display()
            ))
        })
}
