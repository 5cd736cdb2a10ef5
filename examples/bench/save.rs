//! S: one save of a ~100 M-parameter model (time, loop blocked, peak host memory) against
//! the disk's raw `dd` speed, and the resume in a fresh process.

use super::clock::HookClock;
use super::resume::Resumed;
use super::{Bench, BenchResult, median};
use serde_json::json;
use std::time::Instant;
use wgfit::{
    BackupAndRestore, Callback, Context, Dataset, Dense, FitOptions, Loss, SaveFreq, Sequential,
    Sgd,
};

/// 10 × 3162² ≈ 100 M parameters (400 MB). Adapters whose largest binding is smaller (lavapipe:
/// 128 MiB, and wgfit keeps all parameters in one buffer) run the largest width that fits,
/// `S_WIDTH_SMALL` (32 M parameters, 130 MB); the report says which.
const S_WIDTH: usize = 3162;
const S_WIDTH_SMALL: usize = 1800;
const S_LAYERS: usize = 10;
pub(crate) const S_SAMPLES: usize = 8;

pub(crate) fn s_model(width: usize) -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut model = Sequential::new(width).seed(3);
    for _ in 0..S_LAYERS {
        model = model.add(Dense::new(width));
    }
    model.compile(Loss::MeanSquaredError, Sgd::new(1e-4))?;
    Ok(model)
}

/// The S width this adapter can hold.
pub(crate) fn s_width() -> usize {
    if s_model(S_WIDTH).is_ok() {
        S_WIDTH
    } else {
        S_WIDTH_SMALL
    }
}

pub(crate) fn s_data(width: usize) -> Result<Dataset, Box<dyn std::error::Error>> {
    let x = (0..S_SAMPLES * width)
        .map(|i| (i % 97) as f32 / 97.0)
        .collect();
    Ok(Dataset::regression(x, width, vec![0.0; S_SAMPLES], 1)?)
}

pub(crate) fn s_options(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: S_SAMPLES,
        seed: 1,
        ..Default::default()
    }
}

/// Seconds of a shell command (`dd`), which must succeed.
fn timed_shell(cmd: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()?;
    if !out.status.success() {
        return Err(format!("{cmd}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// One measured save with its `dd` baseline and the resume that follows.
struct SaveRun {
    /// Bytes in the backup directory.
    bytes: u64,
    /// Epoch end to the save committed: `latest.json` in place and the directory synced.
    save_s: f64,
    /// Epoch end to `fit` returning: the save committed and the file it superseded removed.
    returned_s: f64,
    /// Epoch end to the next epoch's start, less the gap without a backup.
    blocked_s: f64,
    /// Peak resident memory during the last epoch and its save, above the resident memory at
    /// its start (the training loop's own).
    save_peak_bytes: u64,
    /// `dd` of the same byte count: write with fsync, and read.
    raw_write_s: f64,
    raw_read_s: f64,
    /// The resume in a fresh process, reading the backup in `fit` ...
    plain: Resumed,
    /// ... and reading it ahead, beside opening the GPU context.
    ahead: Resumed,
    /// SHA-256 of the weights file, in this process.
    hash_s: f64,
    /// With the backup on object storage: boto3's upload and download of as many bytes to
    /// and from the same server (`bench/boto3_baseline.py`).
    boto3: Option<(f64, f64)>,
}

/// boto3's multipart upload and download of `bytes` bytes beside the backup at `url`
/// (`s3://bucket/...`), in seconds; `None` for a backup that is not on S3.
fn boto3_baseline(
    url: &std::path::Path,
    bytes: u64,
) -> Result<Option<(f64, f64)>, Box<dyn std::error::Error>> {
    let url = url.to_string_lossy();
    let Some(bucket) = url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split('/').next())
    else {
        return Ok(None);
    };
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/bench/boto3_baseline.py"
        ))
        .arg(bytes.to_string())
        .arg(format!(
            "s3://{bucket}/boto3-baseline-{}",
            std::process::id()
        ))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let figure = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    match (figure("upload_s"), figure("download_s")) {
        (Some(up), Some(down)) => Ok(Some((up, down))),
        _ => Err(format!(
            "boto3 baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into()),
    }
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`); 0 where there is none.
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// At the start of the last epoch: resets the process's peak resident memory (Linux
/// `clear_refs` 5) and records the resident memory, so that the peak after `fit` is the
/// epoch's and its save's.
#[derive(Default)]
struct HostMemory {
    at_last_epoch: u64,
}

impl Callback for HostMemory {
    fn name(&self) -> &str {
        "bench_host_memory"
    }
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        if epoch == 1 {
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            self.at_last_epoch = proc_status_bytes("VmRSS");
        }
        Ok(())
    }
}

fn save_run(
    data: &Dataset,
    width: usize,
    base_gap: f64,
    rep: usize,
) -> Result<SaveRun, Box<dyn std::error::Error>> {
    // A backup at each epoch end, kept afterwards for the resume. The clock runs first, so its
    // epoch-end instant is before the backup's hook and the snapshot.
    let work = tempfile::tempdir_in(".")?;
    let dir = super::backup_location(&work.path().join("backup"), "s");
    let mut model = s_model(width)?;
    let mut clock = HookClock::default();
    let mut memory = HostMemory::default();
    let mut backup = BackupAndRestore::new(&dir)?
        .save_freq(SaveFreq::Epoch)?
        .delete_checkpoint(false);
    model.fit(
        data,
        s_options(2),
        &mut [&mut clock, &mut memory, &mut backup],
    )?;
    let returned = Instant::now();
    let peak = proc_status_bytes("VmHWM");
    let blocked_s = (clock.after[1] - clock.epoch_end[0]).as_secs_f64() - base_gap;
    let committed = backup
        .last_commit_at()
        .ok_or("the last save was not committed")?;
    let save_s = (committed - clock.epoch_end[1]).as_secs_f64();
    let returned_s = (returned - clock.epoch_end[1]).as_secs_f64();
    let bytes = weights_bytes(&dir)?;
    drop(model);
    // A completed fit that keeps its backup holds the directory until the callback goes.
    drop(backup);

    let raw = work.path().join("raw.bin");
    let mib = bytes.div_ceil(1 << 20).max(1);
    let raw_write_s = timed_shell(&format!(
        "dd if=/dev/zero of={} bs=1M count={mib} oflag=direct conv=fsync status=none",
        raw.display()
    ))? * bytes as f64
        / (mib << 20) as f64;
    let raw_read_s = timed_shell(&format!(
        "dd if={} of=/dev/null bs=16M iflag=direct status=none",
        raw.display()
    ))? * bytes as f64
        / (mib << 20) as f64;

    // The resume target: one raw read plus hashing (timed here on as many bytes, as restore
    // verifies them: a SHA-256 per part, on every core).
    let weights = vec![0x5au8; bytes as usize];
    let hashing = Instant::now();
    wgfit::checksum::parts_hex(&weights, wgfit::checksum::PART_BYTES);
    let hash_s = hashing.elapsed().as_secs_f64();
    drop(weights);

    // Resumes in fresh processes, without and with the read ahead (in turns first), each
    // from a cold page cache; each trains one more epoch than the backup holds, and keeps it.
    let ahead_first = rep % 2 == 1;
    let first = super::resume::in_child(&dir, ahead_first, 3)?;
    let second = super::resume::in_child(&dir, !ahead_first, 4)?;
    let (plain, ahead) = match ahead_first {
        true => (second, first),
        false => (first, second),
    };
    let boto3 = boto3_baseline(&dir, bytes)?;
    Ok(SaveRun {
        bytes,
        save_s,
        returned_s,
        blocked_s: blocked_s.max(0.0),
        save_peak_bytes: peak.saturating_sub(memory.at_last_epoch),
        raw_write_s,
        raw_read_s,
        plain,
        ahead,
        hash_s,
        boto3,
    })
}

/// The length of the weights file `latest.json` in `dir` (a directory or a URL) references.
fn weights_bytes(dir: &std::path::Path) -> Result<u64, Box<dyn std::error::Error>> {
    let report = wgfit::checkpoint::inspect(dir)?;
    let state = report
        .sidecars
        .iter()
        .find_map(|s| s.state.as_ref())
        .ok_or("the backup holds no verified state")?;
    Ok(state.weights_bytes)
}

pub fn bench_s(bench: &mut Bench, reps: usize) -> BenchResult {
    let width = s_width();
    let params = S_LAYERS * (width * width + width);
    bench.report(
        "S",
        "model parameters",
        params as f64 / 1e6,
        "M",
        json!({"width": width, "layers": S_LAYERS}),
    );
    let data = s_data(width)?;
    // Without a backup: the epoch-end to next-hook gap the loop has anyway.
    let mut model = s_model(width)?;
    let mut clock = HookClock::default();
    model.fit(&data, s_options(2), &mut [&mut clock])?;
    let base_gap = (clock.after[1] - clock.epoch_end[0]).as_secs_f64();
    drop(model);

    let runs = (0..reps.max(1))
        .map(|rep| save_run(&data, width, base_gap, rep))
        .collect::<Result<Vec<_>, _>>()?;
    let med = |f: &dyn Fn(&SaveRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let all = |f: &dyn Fn(&SaveRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let bytes = runs[0].bytes as f64;
    let mb = bytes / 1e6;
    bench.report(
        "S",
        "checkpoint size",
        mb,
        "MB",
        json!({"bytes": runs[0].bytes}),
    );
    bench.report(
        "S",
        "save (commit + fsync)",
        med(&|r| r.save_s),
        "s",
        json!({"runs": all(&|r| r.save_s)}),
    );
    bench.report(
        "S",
        "save to fit returned (superseded file removed)",
        med(&|r| r.returned_s),
        "s",
        json!({"runs": all(&|r| r.returned_s)}),
    );
    bench.report(
        "S",
        "loop blocked by save",
        med(&|r| r.blocked_s),
        "s",
        json!({"base_gap_s": base_gap, "runs": all(&|r| r.blocked_s)}),
    );
    bench.report(
        "S",
        "save peak host memory / state",
        med(&|r| r.save_peak_bytes as f64) / bytes,
        "ratio",
        json!({"peak_bytes_above_loop": all(&|r| r.save_peak_bytes as f64)}),
    );
    bench.report(
        "S",
        "raw dd write+fsync",
        mb / med(&|r| r.raw_write_s),
        "MB/s",
        json!({"seconds": all(&|r| r.raw_write_s)}),
    );
    bench.report(
        "S",
        "raw dd read",
        mb / med(&|r| r.raw_read_s),
        "MB/s",
        json!({"seconds": all(&|r| r.raw_read_s)}),
    );
    bench.report(
        "S",
        "save speed / raw write",
        med(&|r| r.raw_write_s / r.save_s),
        "ratio",
        json!({"runs": all(&|r| r.raw_write_s / r.save_s)}),
    );
    report_resumes(bench, &runs);
    if runs.iter().all(|r| r.boto3.is_some()) {
        let up = |r: &SaveRun| r.boto3.map_or(f64::NAN, |b| b.0);
        let down = |r: &SaveRun| r.boto3.map_or(f64::NAN, |b| b.1);
        bench.report(
            "S",
            "boto3 upload",
            mb / med(&|r| up(r)),
            "MB/s",
            json!({"runs_s": all(&|r| up(r))}),
        );
        bench.report(
            "S",
            "boto3 download",
            mb / med(&|r| down(r)),
            "MB/s",
            json!({"runs_s": all(&|r| down(r))}),
        );
        bench.report(
            "S",
            "save speed / boto3 upload",
            med(&|r| up(r) / r.save_s),
            "ratio",
            json!({"runs": all(&|r| up(r) / r.save_s)}),
        );
        bench.report(
            "S",
            "resume less open, kernels: speed / boto3 download",
            med(&|r| down(r) / (r.plain.resume_s - r.plain.open_s - r.plain.kernels_s)),
            "ratio",
            json!({"runs": all(&|r| down(r) / (r.plain.resume_s - r.plain.open_s - r.plain.kernels_s))}),
        );
    }
    Ok(())
}

/// The resumes, read in `fit` and read ahead, against one read + hash (and the opening).
fn report_resumes(bench: &mut Bench, runs: &[SaveRun]) {
    let med = |f: &dyn Fn(&SaveRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let all = |f: &dyn Fn(&SaveRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let read_hash = |r: &SaveRun| r.raw_read_s + r.hash_s;
    let pieces = |r: &Resumed| json!({"open_s": r.open_s, "kernels_s": r.kernels_s, "build_s": r.build_s, "restore_in_fit_s": r.restore_s});
    for (label, pick) in [
        ("", (|r: &SaveRun| r.plain) as fn(&SaveRun) -> Resumed),
        (", read ahead", |r: &SaveRun| r.ahead),
    ] {
        bench.report(
            "S",
            format!("resume{label}: start to first batch"),
            med(&|r| pick(r).resume_s),
            "s",
            json!({"runs": all(&|r| pick(r).resume_s), "pieces": runs.iter().map(|r| pieces(&pick(r))).collect::<Vec<_>>()}),
        );
        bench.report(
            "S",
            format!("restore in fit{label} (read, verify, upload)"),
            med(&|r| pick(r).restore_s),
            "s",
            json!({"runs": all(&|r| pick(r).restore_s)}),
        );
        bench.report(
            "S",
            format!("resume{label} less open, kernels / (read + hash)"),
            med(&|r| pick(r).io_ratio(read_hash(r))),
            "ratio",
            json!({
                "runs": all(&|r| pick(r).io_ratio(read_hash(r))),
                "hash_s": all(&|r| r.hash_s),
                "raw_read_s": all(&|r| r.raw_read_s),
            }),
        );
        bench.report(
            "S",
            format!("resume{label} less kernels, build / (open + read + hash)"),
            med(&|r| pick(r).open_ratio(read_hash(r))),
            "ratio",
            json!({"runs": all(&|r| pick(r).open_ratio(read_hash(r)))}),
        );
        bench.report(
            "S",
            format!("resume{label} / (open + kernels + build + read + hash)"),
            med(&|r| pick(r).whole_ratio(read_hash(r))),
            "ratio",
            json!({"runs": all(&|r| pick(r).whole_ratio(read_hash(r)))}),
        );
    }
}
