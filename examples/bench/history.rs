//! `bench history`: what a backup costs late in a long run against early in it. W1's model
//! trains 10 000 epochs of one batch with a backup every epoch (a save per step), then the
//! backups of that run and of a 10-epoch one are committed and restored, interleaved: a save
//! and a restore at epoch 10 000 must cost what they cost at epoch 10.

use crate::clock::HookClock;
use crate::training::{w1_model, w1_one_batch};
use crate::{Bench, BenchResult, median};
use serde_json::json;
use std::path::Path;
use std::time::Instant;
use wgfit::checkpoint::{self, BackupDir, LATEST};
use wgfit::{BackupAndRestore, Dataset, FitOptions};

const LONG: usize = 10_000;
const SHORT: usize = 10;
/// Epochs in each block whose training speed is compared.
const BLOCK: usize = 1_000;

/// Trains up to `epochs` epochs of one batch with a backup every epoch in `dir` (resuming
/// what it holds), kept at the end; returns the instant `fit` was called and its hook clock.
fn train(
    dir: &Path,
    data: &Dataset,
    epochs: usize,
) -> Result<(Instant, HookClock), Box<dyn std::error::Error>> {
    train_with(backup(dir)?, data, epochs)
}

/// The callback `train` uses.
fn backup(dir: &Path) -> Result<BackupAndRestore, wgfit::Error> {
    Ok(BackupAndRestore::new(dir)?.delete_checkpoint(false))
}

/// [`train`] with a given callback.
fn train_with(
    mut backup: BackupAndRestore,
    data: &Dataset,
    epochs: usize,
) -> Result<(Instant, HookClock), Box<dyn std::error::Error>> {
    let mut model = w1_model()?;
    let mut clock = HookClock::default();
    let options = FitOptions {
        epochs,
        batch_size: data.len(),
        seed: 42,
        ..Default::default()
    };
    let called = Instant::now();
    model.fit(data, options, &mut [&mut backup, &mut clock])?;
    Ok((called, clock))
}

/// Resumes the kept backup in `dir` for one more epoch: seconds from calling `fit` (the
/// model built, the GPU context open) to the first trained batch.
fn resume(dir: &Path, data: &Dataset) -> Result<f64, Box<dyn std::error::Error>> {
    let epochs = checkpoint::load_sidecar(dir, LATEST)?.sidecar.epoch + 1;
    first_batch(train(dir, data, epochs)?)
}

/// [`resume`] with the backup read ahead while a second GPU context opens (as a fresh
/// process opens its own): seconds from calling `fit` to the first trained batch, and the
/// seconds the opening took.
fn resume_read_ahead(dir: &Path, data: &Dataset) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let epochs = checkpoint::load_sidecar(dir, LATEST)?.sidecar.epoch + 1;
    let opening = Instant::now();
    let backup = backup(dir)?.read_ahead();
    drop(wgfit::Gpu::new()?);
    let open_s = opening.elapsed().as_secs_f64();
    let resumed = first_batch(train_with(backup, data, epochs)?)?;
    Ok((resumed, open_s))
}

/// Seconds from calling `fit` to its first trained batch.
fn first_batch((called, clock): (Instant, HookClock)) -> Result<f64, Box<dyn std::error::Error>> {
    let first = clock
        .first_batch_begin
        .ok_or("the resumed run trained no batch")?;
    Ok((first - called).as_secs_f64())
}

/// Seconds per epoch over `BLOCK` epochs from `from`.
fn per_epoch(begins: &[Instant], from: usize) -> f64 {
    (begins[from + BLOCK] - begins[from]).as_secs_f64() / BLOCK as f64
}

pub fn bench_history(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = w1_one_batch()?;
    let tmp = tempfile::tempdir()?;
    let long = tmp.path().join("long");
    let short = tmp.path().join("short");
    let begins = train(&long, &data, LONG)?.1.after;
    train(&short, &data, SHORT)?;
    // Each block of BLOCK epochs (the first from epoch 1: epoch 0 compiles the kernels).
    let blocks: Vec<f64> = (0..LONG / BLOCK)
        .map(|b| per_epoch(&begins, (b * BLOCK).clamp(1, LONG - BLOCK)) * 1e3)
        .collect();
    let (early, late) = (blocks[0], blocks[blocks.len() - 1]);
    bench.report(
        "history",
        "epoch with a save, epochs 1-1000",
        early,
        "ms",
        json!({"every_block_ms": blocks}),
    );
    bench.report(
        "history",
        "epoch with a save, epochs 9000-10000",
        late,
        "ms",
        json!({"ratio_to_first_block": late / early}),
    );

    // Whole resumes, interleaved (each trains one more epoch: the history grows by one).
    let mut resume_s = [Vec::new(), Vec::new()];
    let mut ahead_s = [Vec::new(), Vec::new()];
    let mut open_s = Vec::new();
    for _ in 0..reps.max(5) {
        for (i, path) in [&short, &long].into_iter().enumerate() {
            resume_s[i].push(resume(path, &data)?);
            let (resumed, opened) = resume_read_ahead(path, &data)?;
            ahead_s[i].push(resumed);
            open_s.push(opened);
        }
    }
    for (i, epochs) in [SHORT, LONG].into_iter().enumerate() {
        let ratio = median(&resume_s[i]) / median(&resume_s[0]);
        bench.report(
            "history",
            format!("resume to first batch at epoch {epochs}"),
            median(&resume_s[i]) * 1e3,
            "ms",
            json!({"ratio_to_10": ratio, "min": min(&resume_s[i]) * 1e3, "max": max(&resume_s[i]) * 1e3}),
        );
        let ratio = median(&ahead_s[i]) / median(&ahead_s[0]);
        bench.report(
            "history",
            format!("resume read ahead beside a context opening, to first batch at epoch {epochs}"),
            median(&ahead_s[i]) * 1e3,
            "ms",
            json!({"ratio_to_10": ratio, "min": min(&ahead_s[i]) * 1e3, "max": max(&ahead_s[i]) * 1e3, "open_ms_median": median(&open_s) * 1e3}),
        );
    }

    // Commits and restores of each backup, interleaved. A commit writes the restored state
    // again (as a resumed run's first save does); the first, untimed, writes nothing new.
    let mut dirs = Vec::new();
    for path in [&short, &long] {
        let loaded = checkpoint::load_sidecar(path, LATEST)?;
        let state = &loaded.state;
        let tensors: Vec<wgfit::Tensor> = state
            .params
            .iter()
            .chain(&state.slots)
            .chain(std::iter::once(&state.batch_stats))
            .chain(&state.callback_tensors)
            .cloned()
            .collect();
        let bytes = checkpoint::encode_tensors(&tensors, None)?;
        let mut dir = BackupDir::take(path)?;
        let fingerprint = loaded.sidecar.fingerprint.clone();
        dir.commit(&[&bytes], &state.meta, &fingerprint, false, 0)?;
        let sidecar_bytes = std::fs::metadata(path.join(LATEST))?.len();
        let chunk_files = std::fs::read_dir(path)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("history-"))
            .count();
        dirs.push(Kept {
            path,
            dir,
            bytes,
            loaded,
            fingerprint,
            sidecar_bytes,
            chunk_files,
        });
    }
    let mut commit_s = [Vec::new(), Vec::new()];
    let mut restore_s = [Vec::new(), Vec::new()];
    let mut clone_us = [Vec::new(), Vec::new()];
    for _ in 0..reps.max(5) {
        for (i, k) in dirs.iter_mut().enumerate() {
            let loaded = &k.loaded;
            let t = Instant::now();
            k.dir
                .commit(&[&k.bytes], &loaded.state.meta, &k.fingerprint, false, 0)?;
            commit_s[i].push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let back = checkpoint::load_sidecar(k.path, LATEST)?;
            restore_s[i].push(t.elapsed().as_secs_f64());
            assert_eq!(
                back.state.meta.history.len(),
                loaded.state.meta.history.len()
            );
            // What the training loop copies at every save: the host-side state.
            let t = Instant::now();
            for _ in 0..100 {
                std::hint::black_box(loaded.state.meta.clone());
            }
            clone_us[i].push(t.elapsed().as_secs_f64() * 1e4);
        }
    }
    for (i, epochs) in [SHORT, LONG].into_iter().enumerate() {
        let Kept {
            loaded,
            sidecar_bytes,
            chunk_files,
            ..
        } = &dirs[i];
        let ratio = |v: &[f64], base: &[f64]| {
            if i == 0 {
                1.0
            } else {
                median(v) / median(base)
            }
        };
        let extra = json!({
            "epochs": epochs,
            "sidecar_bytes": sidecar_bytes,
            "chunk_files": chunk_files,
            "history_len": loaded.state.meta.history.len(),
        });
        bench.report(
            "history",
            format!("commit at epoch {epochs}"),
            median(&commit_s[i]) * 1e3,
            "ms",
            json!({"ratio_to_10": ratio(&commit_s[i], &commit_s[0]), "min": min(&commit_s[i]) * 1e3, "max": max(&commit_s[i]) * 1e3, "state": extra}),
        );
        bench.report(
            "history",
            format!("restore at epoch {epochs}"),
            median(&restore_s[i]) * 1e3,
            "ms",
            json!({"ratio_to_10": ratio(&restore_s[i], &restore_s[0]), "min": min(&restore_s[i]) * 1e3, "max": max(&restore_s[i]) * 1e3}),
        );
        bench.report(
            "history",
            format!("state copy at epoch {epochs}"),
            median(&clone_us[i]),
            "us",
            json!({"ratio_to_10": ratio(&clone_us[i], &clone_us[0])}),
        );
        bench.report(
            "history",
            format!("latest.json at epoch {epochs}"),
            *sidecar_bytes as f64,
            "bytes",
            json!({"chunk_files": chunk_files}),
        );
    }
    Ok(())
}

/// A kept backup, taken for commits, with the state restored from it.
struct Kept<'a> {
    path: &'a Path,
    dir: BackupDir,
    /// The state's weights file.
    bytes: Vec<u8>,
    loaded: checkpoint::Loaded,
    fingerprint: wgfit::Fingerprint,
    sidecar_bytes: u64,
    chunk_files: usize,
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
