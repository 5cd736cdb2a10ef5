//! Memory over a long run: the adapter's buffer memory and the process's resident memory at
//! every epoch end of 100 epochs with a backup every epoch, to show nothing grows.

use super::training::{W1_FEATURES, w1_model, w1_raw};
use super::{Bench, BenchResult};
use serde_json::json;
use wgfit::{BackupAndRestore, Callback, Context, Dataset, FitOptions, Gpu, Logs, SaveFreq};

const EPOCHS: usize = 100;
/// W1's model on the first 1024 of its samples: 8 steps an epoch keeps 100 epochs short.
const SAMPLES: usize = 1024;

/// GPU buffer memory (wgpu's counters) and resident host memory at every epoch end.
struct MemoryLog {
    gpu: std::sync::Arc<Gpu>,
    gpu_bytes: Vec<u64>,
    rss_bytes: Vec<u64>,
}

impl Callback for MemoryLog {
    fn name(&self) -> &str {
        "bench_memory_log"
    }
    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        _epoch: usize,
        _logs: &Logs,
    ) -> wgfit::Result<()> {
        self.gpu_bytes.push(self.gpu.memory().buffer_bytes);
        self.rss_bytes.push(rss_bytes());
        Ok(())
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

pub fn bench_memory(bench: &mut Bench) -> BenchResult {
    let gpu = Gpu::shared()?;
    let (mut x, mut labels) = w1_raw()?;
    x.truncate(SAMPLES * W1_FEATURES);
    labels.truncate(SAMPLES);
    let data = Dataset::classification(x, W1_FEATURES, labels)?;
    let mut model = w1_model()?;
    let before = gpu.memory();
    let work = tempfile::tempdir_in(".")?;
    let mut backup =
        BackupAndRestore::new(work.path().join("backup"))?.save_freq(SaveFreq::Epoch)?;
    let mut log = MemoryLog {
        gpu: gpu.clone(),
        gpu_bytes: Vec::new(),
        rss_bytes: Vec::new(),
    };
    let options = FitOptions {
        epochs: EPOCHS,
        batch_size: 128,
        seed: 1,
        ..Default::default()
    };
    model.fit(&data, options, &mut [&mut backup, &mut log])?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let state = model
        .parameters()?
        .iter()
        .map(|t| t.data.len() as u64 * 4)
        .sum::<u64>();
    let data_bytes = (SAMPLES * (W1_FEATURES + 1) * 4) as u64;
    // The staging pool grows to its working size in the first epochs (a save still being
    // written when the next is asked for takes a second buffer); growth is measured after.
    let steady = 10;
    let at = |v: &[u64], epoch: usize| v[epoch - 1];
    let changes: Vec<(usize, f64)> = log
        .gpu_bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] != w[1])
        .map(|(i, w)| (i + 2, mib(w[1])))
        .collect();
    println!("GPU buffer memory changed at (epoch, MiB): {changes:?}");
    bench.report(
        "MEM",
        "GPU buffers at epoch 100",
        mib(at(&log.gpu_bytes, EPOCHS)),
        "MiB",
        json!({
            "before_fit_MiB": mib(before.buffer_bytes),
            "epoch1_MiB": mib(at(&log.gpu_bytes, 1)),
            "parameters_MiB": mib(state),
            "data_MiB": mib(data_bytes),
            "changes_epoch_MiB": changes,
        }),
    );
    bench.report(
        "MEM",
        "GPU buffer growth, epoch 10 to 100",
        mib(at(&log.gpu_bytes, EPOCHS)) - mib(at(&log.gpu_bytes, steady)),
        "MiB",
        json!({"max_MiB": mib(log.gpu_bytes.iter().copied().max().unwrap_or(0))}),
    );
    bench.report(
        "MEM",
        "host resident growth, epoch 10 to 100",
        mib(at(&log.rss_bytes, EPOCHS)) - mib(at(&log.rss_bytes, steady)),
        "MiB",
        json!({
            "epoch1_MiB": mib(at(&log.rss_bytes, 1)),
            "epoch10_MiB": mib(at(&log.rss_bytes, steady)),
            "epoch100_MiB": mib(at(&log.rss_bytes, EPOCHS)),
        }),
    );
    Ok(())
}
