//! `wgfit plot HISTORY -o OUT.svg`: the training curves of a run as an SVG picture.

use crate::{CliResult, Failure};
use clap::Args;
use std::path::{Path, PathBuf};
use wgfit::plot::{Curves, MarkKind, render_svg};

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// The history file: the JSON or CSV of `wgfit train --history`, or a Keras CSVLogger file
    /// (the form is told from the content)
    #[arg(value_name = "HISTORY")]
    history: PathBuf,
    /// Where to write the SVG picture
    #[arg(short, long, value_name = "OUT.svg")]
    output: PathBuf,
    /// The run's backup directory: its latest.json's events (resumes, preemptions) are marked
    /// when the history file records none
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,
    /// Width of the picture, in pixels
    #[arg(long, value_name = "PX", default_value_t = wgfit::plot::DEFAULT_WIDTH)]
    width: u32,
    /// Height of each panel (one per metric), in pixels
    #[arg(long, value_name = "PX", default_value_t = wgfit::plot::DEFAULT_PANEL_HEIGHT)]
    height_per_panel: u32,
}

pub fn run(args: PlotArgs) -> CliResult {
    crate::arg_checks::check_stream_input("HISTORY", &args.history)?;
    crate::arg_checks::check_output("--output", &args.output)?;
    // `-o` naming the history itself (a slip of the shell history) must not destroy it.
    if same_file(&args.history, &args.output) {
        return Err(usage(format!(
            "-o {} is the history file itself; name another file for the picture",
            args.output.display()
        )));
    }
    crate::arg_checks::check_svg("--output", &args.output)?;
    let curves = Curves::read(&args.history, args.backup_dir.as_deref())?;
    let panels = curves.panels().len();
    let height = u32::try_from(panels)
        .ok()
        .and_then(|n| n.checked_mul(args.height_per_panel))
        .ok_or_else(|| {
            usage(format!(
                "--height-per-panel {} is too large",
                args.height_per_panel
            ))
        })?;
    // Sizes are a usage error (status 2), not a fault of the history.
    let svg = render_svg(&curves, args.width, height).map_err(|e| match e {
        wgfit::Error::Config { .. } => usage(format!(
            "--width {} --height-per-panel {}: {e}",
            args.width, args.height_per_panel
        )),
        e => e.into(),
    })?;
    wgfit::checkpoint::write_atomically(&args.output, svg.as_bytes())?;

    let resumes = curves.count(MarkKind::Resumed) + curves.count(MarkKind::Fallback);
    let preemptions = curves.count(MarkKind::Preempted);
    let mut line = format!(
        "wrote {}: {}, {}, {}",
        args.output.display(),
        plural(panels, "panel", "panels"),
        plural(curves.series_count(), "series", "series"),
        plural(resumes, "resume", "resumes"),
    );
    if preemptions > 0 {
        line.push_str(&format!(
            ", {}",
            plural(preemptions, "preemption", "preemptions")
        ));
    }
    let non_finite = curves.non_finite_count();
    if non_finite > 0 {
        line.push_str(&format!(
            ", {} marked",
            plural(non_finite, "value not finite", "values not finite")
        ));
    }
    println!("{line}");
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn usage(message: String) -> Failure {
    Failure { message, code: 2 }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
