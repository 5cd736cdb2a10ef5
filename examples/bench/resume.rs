//! The resume of `bench s`: a fresh process resuming the kept backup, timed from its start to
//! its first trained batch, with the backup read in `fit` or read ahead
//! (`BackupAndRestore::read_ahead`) while the GPU context opens.

use super::clock::HookClock;
use super::save::{S_SAMPLES, s_data, s_model, s_options, s_width};
use super::{BenchResult, parse_args};
use std::path::Path;
use std::time::Instant;
use wgfit::gpu::ops::{self, Layout, MatmulShape};
use wgfit::{BackupAndRestore, SaveFreq};

/// The environment variable that tells the child to read the backup ahead.
const READ_AHEAD: &str = "WGFIT_BENCH_READ_AHEAD";

/// One resume, in seconds from the child process's start.
#[derive(Debug, Clone, Copy)]
pub struct Resumed {
    /// To the first trained batch.
    pub resume_s: f64,
    /// Of the resume: `fit` called to its training begun (the backup read, or taken from the
    /// read ahead, verified and uploaded).
    pub restore_s: f64,
    /// Opening the GPU context (device, the kernels every model uses) ...
    pub open_s: f64,
    /// ... and the first use of the S model's three matmul kernels (created on first use:
    /// parsing, pipeline creation, llvmpipe's compilation or its disk cache, and one run).
    pub kernels_s: f64,
    /// Building the model and its data (with a probe of the width the adapter holds) and
    /// anything else before `fit` is called.
    pub build_s: f64,
}

impl Resumed {
    /// The resume less opening the context and the kernels, as a part of (one read + hash).
    pub fn io_ratio(&self, read_hash_s: f64) -> f64 {
        (self.resume_s - self.open_s - self.kernels_s) / read_hash_s
    }

    /// The resume less the kernels and the build, as a part of (one read + hash + opening
    /// the context): the goal's formula, which a read beside the opening can meet.
    pub fn open_ratio(&self, read_hash_s: f64) -> f64 {
        (self.resume_s - self.kernels_s - self.build_s) / (read_hash_s + self.open_s)
    }

    /// The whole resume as a part of the sum of its pieces run one after another.
    pub fn whole_ratio(&self, read_hash_s: f64) -> f64 {
        self.resume_s / (read_hash_s + self.open_s + self.kernels_s + self.build_s)
    }
}

/// Resumes the backup at `dir` in a child process for a run of `epochs` epochs (one more
/// than the backup holds), keeping the backup; reading it ahead or not, after dropping
/// its local files from the page cache (the save wrote them past it; a resume after a
/// restart finds them on the disk).
pub fn in_child(
    dir: &Path,
    ahead: bool,
    epochs: usize,
) -> Result<Resumed, Box<dyn std::error::Error>> {
    drop_from_page_cache(dir)?;
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child
        .arg("s-resume-child")
        .arg("--json")
        .arg(dir.as_os_str())
        .arg("--reps")
        .arg(epochs.to_string());
    if ahead {
        child.env(READ_AHEAD, "1");
    }
    let out = child.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let figure = |name: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                format!(
                    "resume child failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    let (open_s, kernels_s) = (figure("open_s")?, figure("kernels_s")?);
    Ok(Resumed {
        resume_s: figure("first_batch_s")?,
        restore_s: figure("restored_s")? - figure("fit_start_s")?,
        open_s,
        kernels_s,
        build_s: figure("fit_start_s")? - open_s - kernels_s,
    })
}

/// Drops the files of a local directory from the page cache (`POSIX_FADV_DONTNEED`, which
/// needs no privilege for clean pages); nothing for an object-store URL.
fn drop_from_page_cache(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let file = std::fs::File::open(entry?.path())?;
        file.sync_all()?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    }
    Ok(())
}

/// `bench s-resume-child --json DIR --reps EPOCHS`: resumes a run of EPOCHS epochs from the
/// backup in DIR, keeping the backup, and prints the seconds from process start
/// (approximately: from main) to the end of the first trained batch.
/// With `WGFIT_BENCH_READ_AHEAD` set, the callback starts reading the backup first thing.
pub fn s_resume_child() -> BenchResult {
    let started = Instant::now();
    let args = parse_args()?;
    let mut backup = BackupAndRestore::new(&args.json)?
        .save_freq(SaveFreq::Epoch)?
        .delete_checkpoint(false);
    if std::env::var_os(READ_AHEAD).is_some() {
        backup = backup.read_ahead();
    }
    // Opening the context and compiling kernels are reported apart: they are not I/O, and
    // cost the same whatever the checkpoint. The large matmul kernels are created on first
    // use, so the S model's three products (forward, input and weight gradient) run once
    // here, before the resume, and that time is reported as `kernels_s`.
    let opening = Instant::now();
    let gpu = wgfit::Gpu::shared()?;
    println!("open_s {}", opening.elapsed().as_secs_f64());
    let width = s_width();
    let compiling = Instant::now();
    for (m, n, k, a, b) in [
        (S_SAMPLES, width, width, Layout::Normal, Layout::Transposed),
        (S_SAMPLES, width, width, Layout::Normal, Layout::Normal),
        (width, width, S_SAMPLES, Layout::Transposed, Layout::Normal),
    ] {
        ops::time_matmul(&gpu, MatmulShape { m, n, k, a, b }, 0)?;
    }
    println!("kernels_s {}", compiling.elapsed().as_secs_f64());
    let data = s_data(width)?;
    let mut model = s_model(width)?;
    println!("model_s {}", started.elapsed().as_secs_f64());
    let fit_started = Instant::now();
    let mut clock = HookClock::default();
    model.fit(&data, s_options(args.reps), &mut [&mut backup, &mut clock])?;
    let since = |at: Option<Instant>| at.map(|t| (t - started).as_secs_f64()).ok_or("no batch");
    println!("fit_start_s {}", (fit_started - started).as_secs_f64());
    println!("restored_s {}", since(clock.train_begin)?);
    println!("first_batch_begin_s {}", since(clock.first_batch_begin)?);
    println!("first_batch_s {}", since(clock.first_batch)?);
    Ok(())
}
