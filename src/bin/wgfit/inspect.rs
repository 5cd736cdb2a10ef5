//! `wgfit inspect DIR`: a read-only report on a backup directory.

use crate::{CliResult, Failure};
use clap::Args;
use std::path::PathBuf;
use wgfit::checkpoint::{Inspection, LOCK, TMP_PREFIX, inspect};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit inspect wgfit-model.backup
  wgfit inspect --json wgfit-model.backup | jq .usable

Exit status: 0 when a usable checkpoint exists (a rerun of the same `wgfit train` resumes from
it), 1 otherwise. The directory is never changed.")]
pub struct InspectArgs {
    /// The backup directory (by default `wgfit train` uses <output stem>.backup)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> CliResult {
    let report = inspect(&args.dir)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(format!("cannot encode the report: {e}")))?;
        println!("{text}");
    } else {
        print_report(&report);
    }
    match report.usable {
        Some(_) => Ok(()),
        // The report says why; no extra error line.
        None => Err(Failure {
            message: String::new(),
            code: 1,
        }),
    }
}

fn print_report(r: &Inspection) {
    println!("backup directory: {}", r.dir);
    match &r.usable {
        Some(name) => {
            let state = r
                .sidecars
                .iter()
                .find(|s| &s.name == name)
                .and_then(|s| s.state.as_ref());
            match state {
                Some(s) => println!(
                    "committed: {name} (epoch {}, step {}, global step {}); a rerun resumes from it",
                    s.epoch, s.step, s.global_step
                ),
                None => println!("committed: {name}"),
            }
        }
        None => {
            println!("committed: none (no usable checkpoint; a rerun starts from the beginning)")
        }
    }
    for s in &r.sidecars {
        println!();
        if !s.present {
            println!("{}: absent", s.name);
            continue;
        }
        match (&s.state, &s.error) {
            (Some(st), _) => {
                println!("{}: verified", s.name);
                println!(
                    "  epoch:        {} (0-based; {} finished)",
                    st.epoch, st.epochs_done
                );
                println!("  step:         {} (batches done in this epoch)", st.step);
                println!("  global step:  {}", st.global_step);
                println!(
                    "  weights:      {} ({} bytes, sha256 {})",
                    st.weights_file, st.weights_bytes, st.weights_sha256
                );
                if let Some(logs) = &st.last_logs {
                    println!("  last epoch:   {}", crate::format_logs(logs));
                }
                println!("  model:        {}", st.layers.join(", "));
                println!("  saved:        {}", saved_at(st.saved_at_unix_ms));
            }
            (None, Some(e)) => println!("{}: UNUSABLE: {e}", s.name),
            (None, None) => println!("{}: UNUSABLE", s.name),
        }
    }
    println!();
    println!("files:");
    if r.files.is_empty() {
        println!("  (none)");
    }
    for f in &r.files {
        println!("  {f:<32} {}", file_status(r, f));
    }
}

/// What one file of the directory is, and whether it verifies.
fn file_status(r: &Inspection, file: &str) -> String {
    if let Some(s) = r.sidecars.iter().find(|s| s.name == file) {
        return match &s.state {
            Some(_) => "sidecar, verified".into(),
            None => "sidecar, UNUSABLE (see above)".into(),
        };
    }
    let users: Vec<&str> = r
        .sidecars
        .iter()
        .filter(|s| s.state.as_ref().is_some_and(|st| st.weights_file == file))
        .map(|s| s.name.as_str())
        .collect();
    if !users.is_empty() {
        return format!("weights, verified (sha256 matches {})", users.join(", "));
    }
    if file == LOCK {
        return "lock file".into();
    }
    if file.starts_with(TMP_PREFIX) {
        return "unfinished write (removed by the next run)".into();
    }
    if wgfit::checkpoint::check_file_name(file).is_ok() {
        let failed = r.sidecars.iter().any(|s| s.present && s.state.is_none());
        return if failed {
            "weights, NOT verified (see the unusable sidecar above)".into()
        } else {
            "weights, unreferenced (removed by the next run)".into()
        };
    }
    "not a wgfit file".into()
}

fn saved_at(unix_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let ago = now.saturating_sub(unix_ms) / 1000;
    format!("{unix_ms} ms after the Unix epoch ({ago} s ago)")
}
