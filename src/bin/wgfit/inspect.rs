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
    if args.dir.is_file() {
        return Err(crate::arg_checks::usage(format!(
            "DIR {} is a file: inspect reads a backup directory (<output stem>.backup); a \
             weights file is read by `wgfit evaluate --weights` and `wgfit predict --weights`",
            args.dir.display()
        )));
    }
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
            let at = format!("{}, global step {global_step}", position(*epoch, *step));
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
                if st.step == 0 {
                    println!(
                        "  epoch:        {} finished (the next is epoch {})",
                        st.epoch,
                        st.epoch + 1
                    );
                } else {
                    println!(
                        "  epoch:        {} in progress ({} finished)",
                        st.epoch + 1,
                        st.epoch
                    );
                }
                println!(
                    "  step:         {} (batches done in epoch {})",
                    st.step,
                    st.epoch + 1
                );
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
                    "  skipped:      {} superseded before reaching the disk",
                    count(st.superseded_saves, "save point", "save points")
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
        e.epoch + 1,
        e.step,
        e.steps,
        e.global_step,
        saved_at(e.unix_ms)
    )
}

/// A position (0-based epoch, batches of it done) in words, epochs 1-based as the progress
/// lines count them: "at the end of epoch 8", "in epoch 9 after batch 34".
fn position(epoch: usize, step: usize) -> String {
    match (epoch, step) {
        (0, 0) => "before epoch 1".into(),
        (e, 0) => format!("at the end of epoch {e}"),
        (e, s) => format!("in epoch {} after batch {s}", e + 1),
    }
}

/// `n` and the noun in the right number: "1 save point", "2 save points".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time as a UTC date and how long ago it was: `2026-12-05 04:58:07 UTC (3 s ago)`.
fn saved_at(unix_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let ago = if unix_ms > now {
        "in the future: this machine's clock is behind the one that saved it".to_string()
    } else {
        format!("{} ago", duration_words((now - unix_ms) / 1000))
    };
    format!("{} ({ago})", utc_date(unix_ms / 1000))
}

/// Seconds as the largest units that fit, at most two: "3 s", "5 min 2 s", "2 h 10 min",
/// "3 d 4 h".
fn duration_words(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss UTC` (the proleptic Gregorian
/// calendar; Howard Hinnant's `civil_from_days`).
fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(utc_date(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc_date(1_795_691_190), "2026-11-26 11:06:30 UTC");
    }

    #[test]
    fn counts_take_the_right_number() {
        assert_eq!(count(1, "save point", "save points"), "1 save point");
        assert_eq!(count(0, "save point", "save points"), "0 save points");
        assert_eq!(duration_words(3), "3 s");
        assert_eq!(duration_words(302), "5 min 2 s");
        assert_eq!(duration_words(7_800), "2 h 10 min");
    }
}
