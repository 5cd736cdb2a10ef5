//! W1, W0 and W1-backup: training speed, dispatch latency and the cost of backups.

use super::clock::HookClock;
use super::{Bench, BenchResult, median};
use serde_json::json;
use std::time::Instant;
use wgfit::{
    Activation, BackupAndRestore, Callback, Context, DataOn, Dataset, Dense, FitOptions, Loss,
    SaveFreq, Sequential, Sgd,
};

const W1_SAMPLES: usize = 8192;
pub const W1_FEATURES: usize = 784;

/// W1's generator (bench/WORKLOADS.md): output k of the counter-based splitmix64 of `seed`.
pub fn splitmix64(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add((k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The W1 data set, checked against the values WORKLOADS.md gives.
pub fn w1_data() -> Result<Dataset, Box<dyn std::error::Error>> {
    let (x, labels) = w1_raw()?;
    Ok(Dataset::classification(x, W1_FEATURES, labels)?)
}

/// W1's first 128 samples: one batch, for the workloads that train many short epochs.
pub fn w1_one_batch() -> Result<Dataset, Box<dyn std::error::Error>> {
    let (x, labels) = w1_raw()?;
    let rows = 128;
    Ok(Dataset::classification(
        x[..rows * W1_FEATURES].to_vec(),
        W1_FEATURES,
        labels[..rows].to_vec(),
    )?)
}

/// W1's inputs (row-major, 784 features) and labels.
pub fn w1_raw() -> Result<(Vec<f32>, Vec<u32>), Box<dyn std::error::Error>> {
    let n = W1_SAMPLES * W1_FEATURES;
    let x: Vec<f32> = (0..n as u64)
        .map(|i| (splitmix64(42, i) >> 40) as f32 / (1u64 << 24) as f32)
        .collect();
    let labels: Vec<u32> = (0..W1_SAMPLES as u64)
        .map(|j| ((splitmix64(42, n as u64 + j) >> 32) % 10) as u32)
        .collect();
    let want_x = [0.741_564_9f32, 0.159_910_4, 0.278_601_1];
    let want_labels = [9u32, 7, 0, 5, 8, 9, 2, 6];
    if x[..3].iter().zip(want_x).any(|(a, b)| (a - b).abs() > 1e-6) || labels[..8] != want_labels {
        return Err(format!(
            "W1 generator mismatch: x[0,:3] = {:?} (want {want_x:?}), labels[:8] = {:?} (want {want_labels:?})",
            &x[..3],
            &labels[..8]
        )
        .into());
    }
    Ok((x, labels))
}

pub fn w1_model() -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut model = Sequential::new(W1_FEATURES)
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(42);
    // `bench w1 --optimizer adam` times W1 with Adam (Keras's defaults) in place of SGD, and
    // `--global-clipnorm C` clips its gradients.
    if std::env::var("WGFIT_BENCH_OPTIMIZER").as_deref() == Ok("adam") {
        model.compile(Loss::MeanSquaredError, clipped(wgfit::Adam::new(0.001))?)?;
    } else {
        model.compile(Loss::MeanSquaredError, clipped(Sgd::new(0.01))?)?;
    }
    Ok(model)
}

/// `optimizer`, clipped by `--global-clipnorm` if given.
fn clipped<O: wgfit::Optimizer + Clone + 'static>(
    optimizer: O,
) -> Result<wgfit::Configured<O>, Box<dyn std::error::Error>> {
    let configured = wgfit::Configured::new(optimizer);
    Ok(match std::env::var("WGFIT_BENCH_GLOBAL_CLIPNORM") {
        Ok(c) => configured.clipping(wgfit::Clipping::GlobalNorm(c.parse()?)),
        Err(_) => configured,
    })
}

pub struct W1Run {
    /// Seconds of the 3 timed epochs (from the end of the warm-up epoch to the end of the last).
    pub seconds: f64,
    /// Mean batch loss of the last epoch.
    loss: f64,
}

/// One W1 run: 1 warm-up epoch then 3 timed ones; `extra` callbacks run before the clock.
pub fn w1_run(
    data: &Dataset,
    extra: Option<&mut dyn Callback>,
) -> Result<W1Run, Box<dyn std::error::Error>> {
    w1_run_on(data, extra, DataOn::Gpu)
}

/// [`w1_run`] with the data resident on the GPU or streamed from host memory.
fn w1_run_on(
    data: &Dataset,
    extra: Option<&mut dyn Callback>,
    data_on: DataOn,
) -> Result<W1Run, Box<dyn std::error::Error>> {
    let mut model = w1_model()?;
    let mut clock = HookClock::default();
    let options = FitOptions {
        epochs: 4,
        batch_size: 128,
        seed: 42,
        data_on,
        ..Default::default()
    };
    let history = match extra {
        Some(cb) => model.fit(data, options, &mut [cb, &mut clock])?,
        None => model.fit(data, options, &mut [&mut clock])?,
    };
    let [warm, .., last] = clock.epoch_end[..] else {
        return Err("W1: the epoch clock saw fewer than 2 epochs".into());
    };
    let loss = history
        .last()
        .and_then(|l| l.get("loss").copied())
        .ok_or("W1: no loss in the history")?;
    Ok(W1Run {
        seconds: (last - warm).as_secs_f64(),
        loss,
    })
}

const W1_TIMED_STEPS: f64 = 192.0;

pub fn bench_w1(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = w1_data()?;
    let mut runs = Vec::new();
    let backup = std::env::var("WGFIT_BENCH_W1_BACKUP").as_deref() == Ok("batch");
    for _ in 0..reps.max(1) {
        if backup {
            let dir = tempfile::tempdir()?;
            let mut backup = BackupAndRestore::new(dir.path().join("backup"))?
                .save_freq(SaveFreq::Batches(1))?;
            runs.push(w1_run(&data, Some(&mut backup))?);
        } else {
            runs.push(w1_run(&data, None)?);
        }
    }
    let workload = if backup {
        "W1, a backup every batch"
    } else {
        "W1"
    };
    let secs: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    let t = median(&secs);
    let steps_per_s: Vec<f64> = secs.iter().map(|s| W1_TIMED_STEPS / s).collect();
    let extra = json!({"timed_seconds": secs, "steps_per_s_each": steps_per_s, "reps": runs.len()});
    bench.report(
        workload,
        "steps/s",
        W1_TIMED_STEPS / t,
        "steps/s",
        extra.clone(),
    );
    bench.report(
        workload,
        "samples/s",
        W1_TIMED_STEPS * 128.0 / t,
        "samples/s",
        extra,
    );
    let loss = runs.last().map(|r| r.loss).unwrap_or(f64::NAN);
    bench.report(workload, "final loss", loss, "mse", json!({}));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W1-stream: W1 with its data streamed from host memory, and an MNIST-sized epoch

pub fn bench_w1_stream(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = w1_data()?;
    let (mut resident, mut streamed) = (Vec::new(), Vec::new());
    // Interleaved, so that both share the machine's drift.
    for _ in 0..reps.max(1) {
        resident.push(w1_run_on(&data, None, DataOn::Gpu)?.seconds);
        streamed.push(w1_run_on(&data, None, DataOn::Host)?.seconds);
    }
    let extra = json!({"resident_s": resident, "streamed_s": streamed});
    bench.report(
        "W1-stream",
        "streamed steps/s",
        W1_TIMED_STEPS / median(&streamed),
        "steps/s",
        extra.clone(),
    );
    bench.report(
        "W1-stream",
        "streamed / resident time",
        median(&streamed) / median(&resident),
        "ratio",
        extra,
    );

    // 60 000 x 784 (MNIST's training set, 188 MB of f32), 784-128-10 with cross-entropy and
    // batch 32, as `wgfit train --data mnist.csv --layers 128,10` runs it: `Auto` streams it
    // where the adapter cannot hold it (lavapipe allows 128 MiB in one binding).
    const ROWS: usize = 60_000;
    let x: Vec<f32> = (0..(ROWS * W1_FEATURES) as u64)
        .map(|i| (splitmix64(7, i) >> 40) as f32 / (1u64 << 24) as f32)
        .collect();
    let labels: Vec<u32> = (0..ROWS as u64)
        .map(|j| (splitmix64(8, j) % 10) as u32)
        .collect();
    let mnist = Dataset::classification(x, W1_FEATURES, labels)?;
    let mut model = Sequential::new(W1_FEATURES)
        .add(Dense::new(128).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(42);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1).momentum(0.9))?;
    let (streams, limit) = model.data_placement(&mnist, DataOn::Auto)?;
    let mut clock = HookClock::default();
    let options = FitOptions {
        epochs: 2,
        batch_size: 32,
        ..Default::default()
    };
    model.fit(&mnist, options, &mut [&mut clock])?;
    let [first, second] = clock.epoch_end[..] else {
        return Err("W1-stream: the epoch clock did not see 2 epochs".into());
    };
    bench.report(
        "W1-stream",
        "60000x784 epoch (batch 32, 784-128-10)",
        (second - first).as_secs_f64(),
        "s",
        json!({"streamed": streams, "resident_limit_bytes": limit, "data_bytes": ROWS * W1_FEATURES * 4}),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W0: the Keras documentation toy (dispatch latency)

pub fn bench_w0(bench: &mut Bench) -> BenchResult {
    let data = Dataset::regression(vec![1.0; 5 * 20], 20, vec![0.0; 5], 1)?;
    let options = || FitOptions {
        epochs: 10,
        batch_size: 1,
        ..Default::default()
    };
    let new_model = || -> Result<Sequential, Box<dyn std::error::Error>> {
        let mut model = Sequential::new(20).add(Dense::new(10)).seed(1);
        model.compile(Loss::MeanSquaredError, Sgd::new(0.01))?;
        Ok(model)
    };
    // Cold: the first fit in this process, model construction and compile included (the
    // shared GPU context is already open, as for any fit after the first model's compile).
    let started = Instant::now();
    let mut model = new_model()?;
    model.fit(&data, options(), &mut [])?;
    let cold = started.elapsed().as_secs_f64();
    // Warm: further fits of the same model (WORKLOADS.md: "a second fit").
    let mut warm = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        model.fit(&data, options(), &mut [])?;
        warm.push(started.elapsed().as_secs_f64());
    }
    // For comparison: a fresh model each time, construction and compile included.
    let mut fresh = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        new_model()?.fit(&data, options(), &mut [])?;
        fresh.push(started.elapsed().as_secs_f64());
    }
    let w = median(&warm);
    let open = bench.open_s;
    bench.report(
        "W0",
        "gpu context open",
        open * 1e3,
        "ms",
        json!({"note": "Gpu::shared() at process start: device + kernel compilation"}),
    );
    bench.report(
        "W0",
        "fit cold",
        cold * 1e3,
        "ms",
        json!({"steps": 50, "note": "first fit in the process, context already open"}),
    );
    bench.report(
        "W0",
        "fit warm",
        w * 1e3,
        "ms",
        json!({"steps": 50, "each_s": warm, "fresh_model_each_s": fresh}),
    );
    bench.report(
        "W0",
        "per step cold",
        cold * 1e3 / 50.0,
        "ms/step",
        json!({}),
    );
    bench.report("W0", "per step warm", w * 1e3 / 50.0, "ms/step", json!({}));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W1-backup and S: need the BackupAndRestore callback.

pub fn bench_w1_backup(bench: &mut Bench, reps: usize) -> BenchResult {
    let data = w1_data()?;
    let mut plain = Vec::new();
    let mut epoch = Vec::new();
    let mut batch = Vec::new();
    let mut copy_only = Vec::new();
    for _ in 0..reps.max(1) {
        // The three runs side by side in each repetition, so that the ratios share the noise.
        plain.push(w1_run(&data, None)?.seconds);
        for (freq, out) in [
            (SaveFreq::Epoch, &mut epoch),
            (SaveFreq::Batches(1), &mut batch),
        ] {
            let dir = tempfile::tempdir()?;
            let location = super::backup_location(dir.path(), "w1-backup");
            let mut backup = BackupAndRestore::new(location)?.save_freq(freq)?;
            out.push(w1_run(&data, Some(&mut backup))?.seconds);
        }
        copy_only.push(w1_run(&data, Some(&mut SnapshotOnly))?.seconds);
    }
    let p = median(&plain);
    // Each repetition's ratio to its own run without backups, beside the ratio of medians.
    let mut paired = serde_json::Map::new();
    for (label, runs) in [
        ("every epoch", &epoch),
        ("every batch", &batch),
        ("every batch, GPU copy only", &copy_only),
    ] {
        let ratios: Vec<f64> = runs.iter().zip(&plain).map(|(r, p)| r / p).collect();
        let (m, low, high) = super::median_and_interval(&ratios);
        println!("  {label} ÷ no backup, per repetition: median {m:.4} (95 % {low:.4}–{high:.4})");
        paired.insert(
            label.into(),
            json!({"median": m, "interval_95": [low, high]}),
        );
    }
    let extra = json!({
        "no_backup_s": plain,
        "every_epoch_s": epoch,
        "every_batch_s": batch,
        "every_batch_snapshot_only_s": copy_only,
        "paired_ratios": paired,
    });
    bench.report(
        "W1-backup",
        "no backup steps/s",
        W1_TIMED_STEPS / p,
        "steps/s",
        extra.clone(),
    );
    bench.report(
        "W1-backup",
        "every epoch / no backup",
        median(&epoch) / p,
        "ratio",
        extra.clone(),
    );
    bench.report(
        "W1-backup",
        "every batch / no backup",
        median(&batch) / p,
        "ratio",
        extra.clone(),
    );
    bench.report(
        "W1-backup",
        "every batch, GPU copy only / none",
        median(&copy_only) / p,
        "ratio",
        extra,
    );
    Ok(())
}

/// Takes a snapshot after every batch and drops it: the cost of the GPU-side copy and its
/// submission alone, without the writer's hashing and disk writes.
pub struct SnapshotOnly;

impl Callback for SnapshotOnly {
    fn name(&self) -> &str {
        "bench_snapshot_only"
    }
    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        ctx.request_snapshot();
        Ok(())
    }
}
