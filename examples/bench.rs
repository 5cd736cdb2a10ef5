//! The benchmark workloads of `/work/shared/bench/WORKLOADS.md`.
//!
//! ```text
//! cargo run --release --example bench -- <m|w1|w0|w1-backup|s|all> [--json PATH]
//!     [--sizes 4096,8192] [--reps N]
//! ```
//!
//! Every figure is printed as one line with the adapter's name and written, all together, as
//! JSON to `bench.json` (or `--json PATH`).

use serde_json::{Value, json};
use std::time::Instant;
use wgfit::gpu::ops::{self, Layout, MatmulShape};
use wgfit::{
    Activation, BackupAndRestore, Callback, Context, Dataset, Dense, FitOptions, Gpu, Logs, Loss,
    SaveFreq, Sequential, Sgd,
};

/// One reported number.
struct Figure {
    workload: &'static str,
    name: String,
    value: f64,
    unit: &'static str,
    extra: Value,
}

struct Bench {
    adapter: String,
    figures: Vec<Figure>,
    /// Seconds `Gpu::shared()` took (device and kernel compilation), at process start.
    open_s: f64,
}

impl Bench {
    fn report(
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

struct Args {
    workload: String,
    json: String,
    sizes: Vec<usize>,
    reps: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
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
            w if !w.starts_with('-') && args.workload.is_empty() => args.workload = w.to_string(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.workload.is_empty() {
        return Err(
            "usage: bench <m|w1|w0|w1-backup|s|all> [--json PATH] [--sizes 4096] [--reps N]".into(),
        );
    }
    Ok(args)
}

fn median(values: &[f64]) -> f64 {
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
        return s_resume_child();
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
    if all || args.workload == "m" {
        bench_m(&mut bench, &gpu, &args.sizes)?;
        ran = true;
    }
    if all || args.workload == "w1" {
        bench_w1(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "w0" {
        bench_w0(&mut bench)?;
        ran = true;
    }
    if all || args.workload == "w1-backup" {
        bench_w1_backup(&mut bench, args.reps)?;
        ran = true;
    }
    if all || args.workload == "s" {
        bench_s(&mut bench)?;
        ran = true;
    }
    if !ran {
        return Err(format!(
            "unknown workload {:?} (m, w1, w0, w1-backup, s, all)",
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
    std::fs::write(&args.json, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("wrote {}", args.json);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// M: matmul GFLOP/s

fn bench_m(
    bench: &mut Bench,
    gpu: &Gpu,
    extra_sizes: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut shapes: Vec<(String, MatmulShape)> = Vec::new();
    for &s in [256, 512, 1024, 2048].iter().chain(extra_sizes) {
        shapes.push((
            format!("square {s}"),
            MatmulShape {
                m: s,
                n: s,
                k: s,
                a: Layout::Normal,
                b: Layout::Normal,
            },
        ));
    }
    // The first layer of W1 (784 → 256, batch 128), as the training step launches it.
    let w1 = [
        // Z = X · Wᵀ: X [128, 784], W [256, 784]
        (
            "w1 forward 128x256x784",
            128,
            256,
            784,
            Layout::Normal,
            Layout::Transposed,
        ),
        // dX = dZ · W: dZ [128, 256], W [256, 784]
        (
            "w1 dX 128x784x256",
            128,
            784,
            256,
            Layout::Normal,
            Layout::Normal,
        ),
        // dW = dZᵀ · X: dZ [128, 256], X [128, 784]
        (
            "w1 dW 256x784x128",
            256,
            784,
            128,
            Layout::Transposed,
            Layout::Normal,
        ),
    ];
    for (name, m, n, k, a, b) in w1 {
        shapes.push((name.to_string(), MatmulShape { m, n, k, a, b }));
    }
    for (name, shape) in shapes {
        let flop = 2.0 * (shape.m * shape.n * shape.k) as f64;
        // At least 5 runs, and enough of them to take about a second for small shapes.
        let first = ops::time_matmul(gpu, shape, 1)?[0];
        let reps = ((1.0 / first.max(1e-6)) as usize).clamp(5, 200);
        let times = ops::time_matmul(gpu, shape, reps)?;
        let t = median(&times);
        bench.report(
            "M",
            name,
            flop / t / 1e9,
            "GFLOP/s",
            json!({"m": shape.m, "n": shape.n, "k": shape.k, "a": format!("{:?}", shape.a),
                   "b": format!("{:?}", shape.b), "median_s": t, "runs": times.len()}),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W1: small MLP, plain SGD

const W1_SAMPLES: usize = 8192;
const W1_FEATURES: usize = 784;

fn splitmix64(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add((k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The W1 data set, checked against the values WORKLOADS.md gives.
fn w1_data() -> Result<Dataset, Box<dyn std::error::Error>> {
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
    Ok(Dataset::classification(x, W1_FEATURES, labels)?)
}

fn w1_model() -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut model = Sequential::new(W1_FEATURES)
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(256).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(42);
    model.compile(Loss::MeanSquaredError, Sgd::new(0.01))?;
    Ok(model)
}

/// Records when every epoch ended (after fit's epoch-end readback of the losses).
#[derive(Default)]
struct EpochClock {
    ends: Vec<Instant>,
}

impl Callback for EpochClock {
    fn name(&self) -> &str {
        "bench_epoch_clock"
    }
    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        _epoch: usize,
        _logs: &Logs,
    ) -> wgfit::Result<()> {
        self.ends.push(Instant::now());
        Ok(())
    }
}

struct W1Run {
    /// Seconds of the 3 timed epochs (from the end of the warm-up epoch to the end of the last).
    seconds: f64,
    /// Mean batch loss of the last epoch.
    loss: f64,
}

/// One W1 run: 1 warm-up epoch then 3 timed ones; `extra` callbacks run before the clock.
fn w1_run(
    data: &Dataset,
    extra: Option<&mut dyn Callback>,
) -> Result<W1Run, Box<dyn std::error::Error>> {
    let mut model = w1_model()?;
    let mut clock = EpochClock::default();
    let options = FitOptions {
        epochs: 4,
        batch_size: 128,
        seed: 42,
        ..Default::default()
    };
    let history = match extra {
        Some(cb) => model.fit(data, options, &mut [cb, &mut clock])?,
        None => model.fit(data, options, &mut [&mut clock])?,
    };
    let [warm, .., last] = clock.ends[..] else {
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

fn bench_w1(bench: &mut Bench, reps: usize) -> Result<(), Box<dyn std::error::Error>> {
    let data = w1_data()?;
    let mut runs = Vec::new();
    for _ in 0..reps.max(1) {
        runs.push(w1_run(&data, None)?);
    }
    let secs: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    let t = median(&secs);
    let steps_per_s: Vec<f64> = secs.iter().map(|s| W1_TIMED_STEPS / s).collect();
    let extra = json!({"timed_seconds": secs, "steps_per_s_each": steps_per_s, "reps": runs.len()});
    bench.report(
        "W1",
        "steps/s",
        W1_TIMED_STEPS / t,
        "steps/s",
        extra.clone(),
    );
    bench.report(
        "W1",
        "samples/s",
        W1_TIMED_STEPS * 128.0 / t,
        "samples/s",
        extra,
    );
    let loss = runs.last().map(|r| r.loss).unwrap_or(f64::NAN);
    bench.report("W1", "final loss", loss, "mse", json!({}));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// W0: the Keras documentation toy (dispatch latency)

fn bench_w0(bench: &mut Bench) -> Result<(), Box<dyn std::error::Error>> {
    let data = Dataset::regression(vec![1.0; 5 * 20], 20, vec![0.0; 5], 1)?;
    let fit_once = || -> Result<f64, Box<dyn std::error::Error>> {
        let started = Instant::now();
        let mut model = Sequential::new(20).add(Dense::new(10)).seed(1);
        model.compile(Loss::MeanSquaredError, Sgd::new(0.01))?;
        let options = FitOptions {
            epochs: 10,
            batch_size: 1,
            ..Default::default()
        };
        model.fit(&data, options, &mut [])?;
        Ok(started.elapsed().as_secs_f64())
    };
    // Cold: the first fit in this process that trains this model shape (the shared GPU
    // context is already open, as for any fit after the first model's compile).
    let cold = fit_once()?;
    let mut warm = Vec::new();
    for _ in 0..5 {
        warm.push(fit_once()?);
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
        json!({"steps": 50, "each_s": warm}),
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

fn bench_w1_backup(bench: &mut Bench, reps: usize) -> Result<(), Box<dyn std::error::Error>> {
    let data = w1_data()?;
    let mut plain = Vec::new();
    let mut epoch = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..reps.max(1) {
        // The three runs side by side in each repetition, so that the ratios share the noise.
        plain.push(w1_run(&data, None)?.seconds);
        for (freq, out) in [
            (SaveFreq::Epoch, &mut epoch),
            (SaveFreq::Batches(1), &mut batch),
        ] {
            let dir = tempfile::tempdir()?;
            let mut backup = BackupAndRestore::new(dir.path())?.save_freq(freq)?;
            out.push(w1_run(&data, Some(&mut backup))?.seconds);
        }
    }
    let p = median(&plain);
    let extra = json!({"no_backup_s": plain, "every_epoch_s": epoch, "every_batch_s": batch});
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
        extra,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// S: save and restore of a ~100 M parameter model (10 layers of 3162 × 3162)

/// 10 × 3162² ≈ 100 M parameters (400 MB). Adapters whose largest binding is smaller (lavapipe:
/// 128 MiB, and wgfit keeps all parameters in one buffer) run the largest width that fits,
/// `S_WIDTH_SMALL` (32 M parameters, 130 MB); the report says which.
const S_WIDTH: usize = 3162;
const S_WIDTH_SMALL: usize = 1800;
const S_LAYERS: usize = 10;
const S_SAMPLES: usize = 8;

fn s_model(width: usize) -> Result<Sequential, Box<dyn std::error::Error>> {
    let mut model = Sequential::new(width).seed(3);
    for _ in 0..S_LAYERS {
        model = model.add(Dense::new(width));
    }
    model.compile(Loss::MeanSquaredError, Sgd::new(1e-4))?;
    Ok(model)
}

/// The S width this adapter can hold.
fn s_width() -> usize {
    if s_model(S_WIDTH).is_ok() {
        S_WIDTH
    } else {
        S_WIDTH_SMALL
    }
}

fn s_data(width: usize) -> Result<Dataset, Box<dyn std::error::Error>> {
    let x = (0..S_SAMPLES * width)
        .map(|i| (i % 97) as f32 / 97.0)
        .collect();
    Ok(Dataset::regression(x, width, vec![0.0; S_SAMPLES], 1)?)
}

fn s_options(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: S_SAMPLES,
        seed: 1,
        ..Default::default()
    }
}

/// Instants of the hooks around an epoch end, for the time the loop is blocked by a save.
#[derive(Default)]
struct HookClock {
    epoch_end: Vec<Instant>,
    after: Vec<Instant>,
    first_batch: Option<Instant>,
}

impl Callback for HookClock {
    fn name(&self) -> &str {
        "bench_hook_clock"
    }
    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        _epoch: usize,
        _logs: &Logs,
    ) -> wgfit::Result<()> {
        self.epoch_end.push(Instant::now());
        Ok(())
    }
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, _epoch: usize) -> wgfit::Result<()> {
        self.after.push(Instant::now());
        Ok(())
    }
    fn on_train_end(&mut self, _ctx: &mut Context<'_>, _logs: &Logs) -> wgfit::Result<()> {
        self.after.push(Instant::now());
        Ok(())
    }
    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        self.first_batch.get_or_insert_with(Instant::now);
        Ok(())
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

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn bench_s(bench: &mut Bench) -> Result<(), Box<dyn std::error::Error>> {
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

    // With a backup at each epoch end, kept afterwards for the resume below. The clock runs
    // first, so its epoch-end instant is before the backup's hook and the snapshot.
    let work = tempfile::tempdir_in(".")?;
    let dir = work.path().join("backup");
    let mut model = s_model(width)?;
    let mut clock = HookClock::default();
    let mut backup = BackupAndRestore::new(&dir)?
        .save_freq(SaveFreq::Epoch)?
        .delete_checkpoint(false);
    model.fit(&data, s_options(2), &mut [&mut clock, &mut backup])?;
    let returned = Instant::now();
    let blocked = (clock.after[1] - clock.epoch_end[0]).as_secs_f64() - base_gap;
    // fit returns once the last save is committed: epoch end → return is one whole save.
    let save = (returned - clock.epoch_end[1]).as_secs_f64();
    let bytes = dir_bytes(&dir);

    // The same disk's raw speed for the same byte count.
    let raw = work.path().join("raw.bin");
    let mib = bytes.div_ceil(1 << 20).max(1);
    let write_s = timed_shell(&format!(
        "dd if=/dev/zero of={} bs=1M count={mib} oflag=direct conv=fsync status=none",
        raw.display()
    ))?;
    let read_s = timed_shell(&format!(
        "dd if={} of=/dev/null bs=16M iflag=direct status=none",
        raw.display()
    ))?;
    let raw_write = (mib << 20) as f64 / write_s;
    let raw_read = (mib << 20) as f64 / read_s;

    // Resume in a fresh process: process start to the first trained batch.
    let started = Instant::now();
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("s-resume-child")
        .arg("--json")
        .arg(dir.as_os_str())
        .output()?;
    let spawn_to_exit = started.elapsed().as_secs_f64();
    let child = String::from_utf8_lossy(&out.stdout);
    let first_batch: f64 = child
        .lines()
        .find_map(|l| l.strip_prefix("first_batch_s "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "resume child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;

    let mb = bytes as f64 / 1e6;
    bench.report("S", "checkpoint size", mb, "MB", json!({"bytes": bytes}));
    bench.report(
        "S",
        "save (commit + fsync)",
        save,
        "s",
        json!({"MB_per_s": mb / save}),
    );
    bench.report(
        "S",
        "loop blocked by save",
        blocked.max(0.0),
        "s",
        json!({"base_gap_s": base_gap}),
    );
    bench.report(
        "S",
        "resume: start to first batch",
        first_batch,
        "s",
        json!({"child_total_s": spawn_to_exit}),
    );
    bench.report(
        "S",
        "raw dd write+fsync",
        raw_write / 1e6,
        "MB/s",
        json!({"seconds": write_s}),
    );
    bench.report(
        "S",
        "raw dd read",
        raw_read / 1e6,
        "MB/s",
        json!({"seconds": read_s}),
    );
    bench.report(
        "S",
        "save speed / raw write",
        bytes as f64 / save / raw_write,
        "ratio",
        json!({}),
    );
    Ok(())
}

/// `bench s-resume-child --json DIR`: resumes from the backup in DIR and prints the seconds
/// from process start (approximately: from main) to the end of the first trained batch.
fn s_resume_child() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let dir = parse_args()?.json;
    let width = s_width();
    let data = s_data(width)?;
    let mut model = s_model(width)?;
    let mut clock = HookClock::default();
    let mut backup = BackupAndRestore::new(&dir)?.save_freq(SaveFreq::Epoch)?;
    model.fit(&data, s_options(3), &mut [&mut backup, &mut clock])?;
    let first = clock.first_batch.ok_or("no batch was trained")?;
    println!("first_batch_s {}", (first - started).as_secs_f64());
    Ok(())
}
