//! DP: data-parallel training of W1 over MPI (`--features mpi`): per step, the compute time
//! (this rank's share forward and backward, gradients read back), the communication time (the
//! reduce-scatter of the gradients and the all-gather of the summed shards), the part of it
//! made while the backward pass still ran (buckets: `WGFIT_BUCKET_BYTES`), the ordered sum
//! of the rank's shard with the update, and the bytes each rank sends. Run it alone (1 rank, the same code path) and under `mpirun -np 2 ... bench dp`;
//! rank 0 reports. With `--optimizer adam` the optimizer keeps slots, sharded over the ranks
//! (the update covers the rank's shard, then the parameters are all-gathered). Last, the
//! bytes of Adam's slots each rank keeps for a model of 3.7 M parameters (784-2048-1024-10),
//! after one step. And the time of a save of that model's state (parameters and Adam's slots,
//! 44 MB) at each rank count: rank 0's epoch end to its backup's commit, with the part of it
//! spent gathering the slots' shards from the other ranks.

use crate::{Bench, BenchResult, median};
use serde_json::json;
use wgfit::FitOptions;

/// Timed epochs per repetition (64 steps each at W1's batch of 128).
const EPOCHS: usize = 2;

pub fn bench_dp(bench: &mut Bench, reps: usize) -> BenchResult {
    let mpi = wgfit::distributed::Mpi::init()?;
    let group = mpi.group();
    let ranks = group.size();
    let data = crate::training::w1_data()?;
    let options = |epochs| FitOptions {
        epochs,
        batch_size: 128,
        seed: 42,
        distributed: Some(group.clone()),
        ..Default::default()
    };
    let mut per_step = Vec::new();
    for _ in 0..reps.max(1) {
        let mut model = crate::training::w1_model()?;
        // The warm-up epoch compiles the pipelines and fills the caches.
        model.fit(&data, options(1), &mut [])?;
        wgfit::distributed::reset_timings();
        model.fit(&data, options(EPOCHS), &mut [])?;
        per_step.push(wgfit::distributed::timings());
    }
    // Collective: every rank trains the memory probe and the save probe.
    let (kept, whole) = adam_slot_bytes(&group)?;
    let saves = (0..reps.max(1))
        .map(|_| sharded_save(&group))
        .collect::<Result<Vec<_>, _>>()?;
    if group.rank() != 0 {
        return Ok(());
    }
    let steps = |t: &wgfit::distributed::Timings| t.steps.max(1) as f64;
    let ms = |f: fn(&wgfit::distributed::Timings) -> f64| -> Vec<f64> {
        per_step.iter().map(|t| 1e3 * f(t) / steps(t)).collect()
    };
    let (compute, comm, reduce) = (ms(|t| t.compute_s), ms(|t| t.comm_s), ms(|t| t.reduce_s));
    let overlap = ms(|t| t.overlap_s);
    let bytes = per_step
        .first()
        .map_or(0.0, |t| t.sent_bytes as f64 / steps(t));
    let total = median(&compute) + median(&comm) + median(&reduce);
    let extra = json!({
        "ranks": ranks,
        "compute_ms_each": compute,
        "comm_ms_each": comm,
        "reduce_ms_each": reduce,
        "overlap_ms_each": overlap,
        "bucket_bytes": std::env::var("WGFIT_BUCKET_BYTES").ok(),
        "steps_each": per_step.iter().map(|t| t.steps).collect::<Vec<_>>(),
    });
    let name = |what: &str| format!("{ranks} ranks {what}");
    bench.report(
        "DP",
        name("compute/step"),
        median(&compute),
        "ms",
        extra.clone(),
    );
    bench.report("DP", name("comm/step"), median(&comm), "ms", extra.clone());
    bench.report(
        "DP",
        name("comm overlapped/step"),
        median(&overlap),
        "ms",
        extra.clone(),
    );
    bench.report("DP", name("step"), total, "ms", extra.clone());
    bench.report(
        "DP",
        name("sum+update/step"),
        median(&reduce),
        "ms",
        extra.clone(),
    );
    bench.report(
        "DP",
        name("comm share"),
        median(&comm) / total,
        "fraction",
        extra.clone(),
    );
    bench.report("DP", name("bytes out/step"), bytes, "bytes", extra);
    let extra = json!({"ranks": ranks, "parameters": ADAM_PARAMETERS, "whole_bytes": whole});
    bench.report(
        "DP",
        name("Adam slots/rank"),
        kept as f64,
        "bytes",
        extra.clone(),
    );
    bench.report(
        "DP",
        name("Adam slots/rank ÷ whole"),
        kept as f64 / whole as f64,
        "fraction",
        extra,
    );
    let save_s: Vec<f64> = saves.iter().map(|s| s.save_s).collect();
    let gather_s: Vec<f64> = saves.iter().map(|s| s.gather_s).collect();
    let extra = json!({
        "ranks": ranks,
        "state_bytes": saves.first().map_or(0, |s| s.state_bytes),
        "save_s_each": save_s,
        "gather_s_each": gather_s,
    });
    bench.report(
        "DP",
        name("Adam model save"),
        median(&save_s),
        "s",
        extra.clone(),
    );
    bench.report(
        "DP",
        name("Adam model save: slot gather"),
        median(&gather_s),
        "s",
        extra,
    );
    drop(mpi);
    Ok(())
}

/// The 784-2048-1024-10 model with Adam, its slots sharded over the ranks of a `fit`.
fn adam_model() -> Result<wgfit::Sequential, Box<dyn std::error::Error>> {
    let mut model = wgfit::Sequential::new(784)
        .add(wgfit::Dense::new(2048).activation(wgfit::Activation::Relu))
        .add(wgfit::Dense::new(1024).activation(wgfit::Activation::Relu))
        .add(wgfit::Dense::new(10))
        .seed(42);
    model.compile(wgfit::Loss::CrossEntropy, wgfit::Adam::new(0.001))?;
    Ok(model)
}

/// The first `rows` samples of W1's data.
fn w1_rows(rows: usize) -> Result<wgfit::Dataset, Box<dyn std::error::Error>> {
    let (x, labels) = crate::training::w1_raw()?;
    Ok(wgfit::Dataset::classification(
        x[..rows * 784].to_vec(),
        784,
        labels[..rows].to_vec(),
    )?)
}

/// One save of the Adam model's whole state at the end of its second epoch, timed on rank 0.
struct SavedAtRanks {
    /// From the epoch's end (rank 0's hook) to the commit of its backup.
    save_s: f64,
    /// Rank 0's time gathering the other ranks' shards of the slots, within `save_s`.
    gather_s: f64,
    /// The weights file's bytes.
    state_bytes: u64,
}

/// Trains the Adam model for 2 epochs of 4 steps over `group`, saving at each epoch's end
/// (rank 0 writes; the others send their shards), and times the second save. Collective.
fn sharded_save(
    group: &wgfit::distributed::Group,
) -> Result<SavedAtRanks, Box<dyn std::error::Error>> {
    let data = w1_rows(512)?;
    let mut model = adam_model()?;
    let work = tempfile::tempdir_in(".")?;
    let dir = work.path().join("backup");
    let mut clock = crate::clock::HookClock::default();
    let mut backup = wgfit::BackupAndRestore::new(&dir)?
        .save_freq(wgfit::SaveFreq::Epoch)?
        .delete_checkpoint(false);
    let options = FitOptions {
        epochs: 2,
        batch_size: 128,
        seed: 42,
        distributed: Some(group.clone()),
        ..Default::default()
    };
    wgfit::distributed::reset_timings();
    model.fit(&data, options, &mut [&mut clock, &mut backup])?;
    let gathers = wgfit::distributed::timings();
    if group.rank() != 0 {
        return Ok(SavedAtRanks {
            save_s: 0.0,
            gather_s: 0.0,
            state_bytes: 0,
        });
    }
    let committed = backup
        .last_commit_at()
        .ok_or("the last save was not committed")?;
    let epoch_end = *clock.epoch_end.last().ok_or("no epoch ended")?;
    // Both saves gathered when sharded; the second is timed.
    let gather_s = gathers.slot_gather_s / gathers.slot_gathers.max(1) as f64;
    let state_bytes = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .max()
        .unwrap_or(0);
    Ok(SavedAtRanks {
        save_s: (committed - epoch_end).as_secs_f64(),
        gather_s,
        state_bytes,
    })
}

/// Parameters of the model whose optimizer memory is measured.
const ADAM_PARAMETERS: usize = 784 * 2048 + 2048 + 2048 * 1024 + 1024 + 1024 * 10 + 10;

/// The bytes of Adam's slots this rank kept while training the 784-2048-1024-10 model for one
/// step over `group`, and the bytes of both slots whole (as one rank keeps them).
fn adam_slot_bytes(
    group: &wgfit::distributed::Group,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let rows = 128;
    let data = w1_rows(rows)?;
    let mut model = adam_model()?;
    let options = FitOptions {
        epochs: 1,
        batch_size: rows,
        distributed: Some(group.clone()),
        ..Default::default()
    };
    model.fit(&data, options, &mut [])?;
    let whole: usize = model
        .optimizer_slots()?
        .iter()
        .map(|t| t.data.len() * 4)
        .sum();
    Ok((
        wgfit::distributed::timings().optimizer_slot_bytes,
        whole as u64,
    ))
}
