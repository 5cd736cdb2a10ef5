//! `wgfit inspect DIR`: a read-only report on a backup directory, and what a rerun will do.

use crate::{CliResult, Failure};
use clap::Args;
use std::path::PathBuf;
use wgfit::checkpoint::{Inspection, Outlook, inspect};

/// Exit status when a rerun starts from the beginning.
const EXIT_FRESH: u8 = 3;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit inspect wgfit-model.backup
  wgfit inspect --double-checkpoint --json wgfit-model.backup | jq .rerun

Exit status, for a rerun of the same `wgfit train` with the flags given here: 0 it resumes
(from latest.json, or from previous.json with --double-checkpoint), 1 it refuses (the report
says why), 3 it starts from the beginning (nothing is committed). The directory is never
changed. A reader that stops early (`| head`) ends wgfit by SIGPIPE (141 in a shell).")]
pub struct InspectArgs {
    /// The backup directory (by default `wgfit train` uses <output stem>.backup), or an
    /// object-store URL such as s3://bucket/prefix
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Report for a rerun with --double-checkpoint (which may fall back to previous.json)
    #[arg(long)]
    double_checkpoint: bool,
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
        print_report(&report, args.double_checkpoint);
    }
    let code = match outlook(&report, args.double_checkpoint) {
        Outlook::Resume { .. } => return Ok(()),
        Outlook::Refuse { .. } => 1,
        Outlook::Fresh => EXIT_FRESH,
    };
    // The report says why; no extra error line.
    Err(Failure {
        message: String::new(),
        code,
    })
}

fn outlook(r: &Inspection, double: bool) -> &Outlook {
    if double {
        &r.rerun_with_double_checkpoint
    } else {
        &r.rerun
    }
}

fn flags(double: bool) -> &'static str {
    if double {
        "with --double-checkpoint"
    } else {
        "without --double-checkpoint"
    }
}

/// One sentence on what a rerun does.
fn sentence(o: &Outlook) -> String {
    match o {
        Outlook::Resume {
            sidecar,
            epoch,
            step,
            global_step,
            fallback_reason,
        } => {
            let at = format!("epoch {epoch}, step {step}, global step {global_step}");
            match fallback_reason {
                None => format!("resumes from {sidecar} ({at})"),
                Some(why) => format!(
                    "falls back to {sidecar} ({at}), because latest.json is unusable: {why}"
                ),
            }
        }
        Outlook::Refuse { reason } => format!("refuses to start: {reason}"),
        Outlook::Fresh => "starts from the beginning (nothing is committed)".into(),
    }
}

fn print_report(r: &Inspection, double: bool) {
    println!("backup directory: {}", r.dir);
    let asked = outlook(r, double);
    println!("a rerun {} {}", flags(double), sentence(asked));
    let other = outlook(r, !double);
    if other != asked {
        println!("a rerun {} {}", flags(!double), sentence(other));
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
                    "  weights:      {} ({} bytes, {})",
                    st.weights_file, st.weights_bytes, st.weights_digest
                );
                if let Some(logs) = &st.last_logs {
                    println!("  last epoch:   {}", wgfit::callbacks::format_logs(logs));
                }
                println!("  model:        {}", st.layers.join(", "));
                println!("  saved:        {}", saved_at(st.saved_at_unix_ms));
                println!(
                    "  skipped:      {} save points superseded before reaching the disk",
                    st.superseded_saves
                );
                if !st.callbacks.is_empty() {
                    println!(
                        "  callbacks:    {} (their state is saved)",
                        st.callbacks.join(", ")
                    );
                }
                if st.stop_training {
                    println!("  stopped:      a callback asked to stop; a rerun only ends the run");
                }
                if !st.events.is_empty() {
                    println!("  events:");
                    for e in &st.events {
                        println!("    {}", event_line(e));
                    }
                }
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
        println!("  {:<32} {}", f.name, f.role);
    }
}
/// One event of the timeline: what, where, when.
fn event_line(e: &wgfit::RunEvent) -> String {
    let what = match e.kind {
        wgfit::EventKind::Start => "start",
        wgfit::EventKind::Resume => "resume",
        wgfit::EventKind::Fallback => "fallback to previous.json",
        wgfit::EventKind::Preempted => "preempted",
    };
    format!(
        "{what:<26} epoch {} step {}/{} (global step {}), {}",
        e.epoch,
        e.step,
        e.steps,
        e.global_step,
        saved_at(e.unix_ms)
    )
}

fn saved_at(unix_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let ago = now.saturating_sub(unix_ms) / 1000;
    format!("{unix_ms} ms after the Unix epoch ({ago} s ago)")
}
