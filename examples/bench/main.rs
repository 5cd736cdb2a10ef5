//! The benchmark workloads of `bench/WORKLOADS.md`.
//!
//! ```text
//! cargo run --release --example bench -- <m|m-kernels|w1|w0|w1-backup|w1-backup-alt|w1-backup-alt4|w1-backup-cpu|w1-stream|s|history|mem|profile|all>
//!     [--json PATH] [--sizes 4096,8192] [--reps N]
//! ```
//!
//! Every figure is printed as one line with the adapter's name and written, all together, as
//! JSON to `bench.json` (or `--json PATH`).

mod alternating;
mod clock;
mod convnet;
#[cfg(feature = "mpi")]
mod dp;
mod history;
mod matmul;
mod memory;
mod profile;
mod resume;
mod save;
mod save_cpu;
mod training;
mod transformer;

use serde_json::{Value, json};
use std::time::Instant;
use wgfit::Gpu;

/// What a workload returns.
pub type BenchResult = Result<(), Box<dyn std::error::Error>>;

/// One reported number.
struct Figure {
    workload: &'static str,
    name: String,
    value: f64,
    unit: &'static str,
    extra: Value,
}

pub struct Bench {
    adapter: String,
    figures: Vec<Figure>,
    /// Seconds `Gpu::shared()` took (device and kernel compilation), at process start.
    pub open_s: f64,
}

impl Bench {
    pub fn report(
        &mut self,
        workload: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        extra: Value,
    ) {
        let name = name.into();
        println!(
            "{workload:<10} {name:<34} {value:>12.4} {unit:<10} [{}]",
            self.adapter
        );
        self.figures.push(Figure {
            workload,
            name,
            value,
            unit,
            extra,
        });
    }
}

pub struct Args {
    workload: String,
    pub json: String,
    sizes: Vec<usize>,
    reps: usize,
}

pub fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut backup_every_batch = false;
    let mut args = Args {
        workload: String::new(),
        json: "bench.json".into(),
        sizes: Vec::new(),
        reps: 3,
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => args.json = it.next().ok_or("--json needs a path")?,
            "--sizes" => {
                let list = it.next().ok_or("--sizes needs a list, e.g. 4096,8192")?;
                for s in list.split(',').filter(|s| !s.is_empty()) {
                    args.sizes
                        .push(s.parse().map_err(|_| format!("bad size {s:?}"))?);
                }
            }
            "--reps" => {
                let r = it.next().ok_or("--reps needs a number")?;
                args.reps = r.parse().map_err(|_| format!("bad --reps {r:?}"))?;
            }
            "--optimizer" => {
                let o = it.next().ok_or("--optimizer needs sgd or adam")?;
                if o != "sgd" && o != "adam" {
                    return Err(format!("bad --optimizer {o:?} (sgd or adam)"));
                }
                // Read where the W1 model is built (training.rs); set before any thread.
                // SAFETY: argument parsing runs first in main, on the only thread.
                unsafe { std::env::set_var("WGFIT_BENCH_OPTIMIZER", o) };
            }
            "--global-clipnorm" => {
                let c = it.next().ok_or("--global-clipnorm needs a bound")?;
                c.parse::<f32>()
                    .map_err(|_| format!("bad --global-clipnorm {c:?}"))?;
                // Read where the W1 model is built, as --optimizer is.
                // SAFETY: argument parsing runs first in main, on the only thread.
                unsafe { std::env::set_var("WGFIT_BENCH_GLOBAL_CLIPNORM", c) };
            }
            "--backup-every-batch" => {
                backup_every_batch = true;
                // Read by `bench w1`, which then trains with a backup saving every batch
                // (scripts/profile-w1-backup.sh profiles it against the plain run).
                // SAFETY: argument parsing runs first in main, on the only thread.
                unsafe { std::env::set_var("WGFIT_BENCH_W1_BACKUP", "batch") };
            }
            w if !w.starts_with('-') && args.workload.is_empty() => args.workload = w.to_string(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if backup_every_batch && args.workload != "w1" {
        return Err("--backup-every-batch is an option of bench w1 only".into());
    }
    if args.workload.is_empty() {
        return Err(
            "usage: bench <m|m-kernels|w1|c1|t1|w0|w1-backup|w1-backup-alt|w1-backup-alt4|w1-backup-cpu|w1-stream|s|history|mem|profile|dp|all> [--json PATH] [--sizes 4096] [--reps N] [--optimizer sgd|adam] [--global-clipnorm C] [--backup-every-batch]"
                .into(),
        );
    }
    Ok(args)
}

/// Where a workload's backups go: a new prefix under `WGFIT_BENCH_BACKUP_URL` when it is set
/// (an object store, e.g. `s3://bench/runs` with the `AWS_*` variables of README "Backups on
/// object storage"; `scripts/bench-object-store.sh` starts a local one), else `local`.
pub fn backup_location(local: &std::path::Path, name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    match std::env::var("WGFIT_BENCH_BACKUP_URL") {
        Ok(url) => format!(
            "{}/{name}-{}-{}",
            url.trim_end_matches('/'),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
        .into(),
        Err(_) => local.to_path_buf(),
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median of `ratios` and its 95 % range over resamples of them (a bootstrap with a fixed
/// generator, so that a rerun on the same figures prints the same range).
pub fn median_and_interval(ratios: &[f64]) -> (f64, f64, f64) {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut medians: Vec<f64> = (0..2000)
        .map(|_| {
            let resample: Vec<f64> = (0..ratios.len())
                .map(|_| ratios[next(ratios.len())])
                .collect();
            median(&resample)
        })
        .collect();
    medians.sort_by(|a, b| a.total_cmp(b));
    (median(ratios), medians[50], medians[1949])
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    // The child process of workload S's resume measurement.
    if args.workload == "s-resume-child" {
        return resume::s_resume_child();
    }
    // Opening the context compiles every kernel; W0 reports it beside its cold fit.
    let opened = Instant::now();
    let gpu = Gpu::shared()?;
    let open_s = opened.elapsed().as_secs_f64();
    let mut bench = Bench {
        adapter: gpu.adapter().to_string(),
        figures: Vec::new(),
        open_s,
    };
    println!("adapter: {}", bench.adapter);
    let all = args.workload == "all";
    let mut ran = false;
    // W0 first: it measures launch latency, which on a 2-core CPU adapter stays high for about
    // a second after both cores were busy (figures: bench/NOTES.md "Training step").
    if all || args.workload == "w0" {
        training::bench_w0(&mut bench)?;
        ran = true;
    }
    if all || args.workload == "m" {
        matmul::bench_m(&mut bench, &gpu, &args.sizes)?;
        ran = true;
    }
    // Not part of `all`: every kernel on every M product, for choosing kernels per adapter.
    if args.workload == "m-kernels" {
        matmul::bench_m_kernels(&mut bench, &gpu, &args.sizes)?;
        ran = true;
    }
    if all || args.workload == "w1" {
        training::bench_w1(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "c1" {
        convnet::bench_c1(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "t1" {
        transformer::bench_t1(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "w1-backup" {
        training::bench_w1_backup(&mut bench, args.reps)?;
        ran = true;
    }
    // Not part of `all`: its figures are those of w1-backup, measured within one fit.
    if args.workload == "w1-backup-alt" {
        alternating::bench_w1_backup_alternating(&mut bench, args.reps, 2)?;
        ran = true;
    }
    if args.workload == "w1-backup-alt4" {
        alternating::bench_w1_backup_alternating(&mut bench, args.reps, 4)?;
        ran = true;
    }
    if args.workload == "w1-backup-cpu" {
        save_cpu::bench_w1_backup_cpu(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "w1-stream" {
        training::bench_w1_stream(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "s" {
        save::bench_s(&mut bench, args.reps)?;
        ran = true;
    }
    // Not part of `all`: ten thousand epochs take minutes on lavapipe.
    if args.workload == "history" {
        history::bench_history(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "profile" {
        profile::bench_profile(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "mem" {
        memory::bench_memory(&mut bench)?;
        ran = true;
    }
    // Not part of `all`: it needs the `mpi` feature, and is run alone and under mpirun.
    if args.workload == "dp" {
        #[cfg(feature = "mpi")]
        dp::bench_dp(&mut bench, args.reps)?;
        #[cfg(not(feature = "mpi"))]
        return Err(
            "dp needs the mpi feature: cargo run --release --features mpi --example bench -- dp"
                .into(),
        );
        #[cfg(feature = "mpi")]
        {
            ran = true;
        }
    }
    if !ran {
        return Err(format!(
            "unknown workload {:?} (m, m-kernels, w1, w0, c1, w1-backup, w1-backup-alt, w1-stream, s, history, mem, profile, all)",
            args.workload
        )
        .into());
    }
    let figures: Vec<Value> = bench
        .figures
        .iter()
        .map(|f| {
            json!({
                "workload": f.workload,
                "name": f.name,
                "value": f.value,
                "unit": f.unit,
                "extra": f.extra,
            })
        })
        .collect();
    let doc = json!({
        "adapter": bench.adapter,
        "adapter_name": gpu.adapter().name,
        "device_type": gpu.adapter().device_type,
        "workload": args.workload,
        "figures": figures,
    });
    // Under mpirun (`bench dp`) rank 0 alone writes the file.
    if !wgfit::distributed::is_writer() {
        return Ok(());
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("wrote {}", args.json);
    Ok(())
}
