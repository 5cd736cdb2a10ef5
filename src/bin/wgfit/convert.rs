//! `wgfit convert`: a CSV data set to a safetensors file that training maps instead of parsing.

use crate::{CliResult, Failure};
use clap::Args;
use std::path::PathBuf;
use wgfit::{CsvOptions, CsvTargets};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit convert mnist.csv mnist.safetensors --scale 0.00392
      784 pixel columns and a label per row; training then maps the file (no parsing, no copy)
  wgfit train --data mnist.safetensors --layers 128,10

The conversion streams: memory stays at one line plus the labels, whatever the file's size.
Errors name the row and column, as `wgfit train --data file.csv` would.")]
pub struct ConvertArgs {
    /// The CSV file (plain or gzip; class label in the last column; a header line is detected)
    pub input: PathBuf,
    /// The safetensors file to write (tensors `x` F32 [n, features] and `y`)
    pub output: PathBuf,
    /// Multiply every input by F (e.g. 0.00392 for pixels of 0..255), once, here
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub scale: f32,
    /// The last N columns are float targets (regression) instead of one class label
    #[arg(long, value_name = "N")]
    pub targets: Option<usize>,
}

pub fn run(args: ConvertArgs) -> CliResult {
    crate::arg_checks::check_scale(Some(args.scale))?;
    if let Some(n) = args.targets {
        crate::arg_checks::check_at_least_one("--targets", n)?;
    }
    crate::arg_checks::check_input("INPUT", &args.input)?;
    crate::arg_checks::check_output("OUTPUT", &args.output)?;
    crate::arg_checks::refuse_overwriting_input("OUTPUT", &args.output, "INPUT", &args.input)?;
    let options = CsvOptions {
        targets: args.targets.map_or(CsvTargets::Class, CsvTargets::Values),
        ..Default::default()
    };
    remove_temporary_on_signal(&args.output)?;
    let size = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    let bar = crate::byte_progress(size, "converting");
    let converted =
        wgfit::data::convert_csv(&args.input, &args.output, &options, args.scale, |read| {
            bar.set_position(read.min(size))
        });
    bar.finish_and_clear();
    let c = converted?;
    println!(
        "wrote {}: {} samples x {} features, {} ({} bytes)",
        args.output.display(),
        c.samples,
        c.features,
        if c.classes {
            "class labels".to_string()
        } else {
            format!("{} target columns", c.target_cols)
        },
        c.bytes
    );
    Ok(())
}

/// On SIGINT or SIGTERM, removes the temporary the conversion writes (a partial file of use to
/// nobody) and exits with 128 + the signal number. A SIGKILL cannot be caught: the next
/// conversion to the same name removes what it left.
fn remove_temporary_on_signal(output: &std::path::Path) -> CliResult {
    use std::os::unix::ffi::OsStrExt;
    let Some(temporary) = wgfit::data::temporary_of(output) else {
        return Ok(());
    };
    let Ok(temporary) = std::ffi::CString::new(temporary.as_os_str().as_bytes()) else {
        return Ok(());
    };
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let temporary = temporary.clone();
        // SAFETY: the action calls only unlink(2) and _exit(2), both async-signal-safe, on a
        // string made beforehand.
        let registered = unsafe {
            signal_hook::low_level::register(signal, move || {
                libc::unlink(temporary.as_ptr());
                libc::_exit(128 + signal);
            })
        };
        registered.map_err(|e| Failure::new(format!("cannot install a signal handler: {e}")))?;
    }
    Ok(())
}
