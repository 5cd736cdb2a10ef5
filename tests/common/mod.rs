//! Helpers shared by the backup and crash tests: a small deterministic data set and model,
//! counting and interrupting callbacks, and byte-level comparison of parameters.
//!
//! The submodules hold what several other test files share (inputs, references, fixtures).
#![allow(dead_code)]

pub mod callback_suite;
pub mod cli;
pub mod cli_run;
pub mod cpu_reference;
pub mod data_files;
pub mod fault_proxy;
pub mod finite_differences;
pub mod gpu;
pub mod interop_models;
pub mod layers_reference;
pub mod mount_ns;
pub mod plot_run;
pub mod python_clients;
pub mod rng;
pub mod s3;
pub mod storm;
pub mod training;
pub mod worker;

use std::collections::BTreeMap;
use std::path::Path;
use wgfit::{
    Activation, BackupAndRestore, Callback, Context, Dataset, Dense, Error, FitOptions, Loss,
    Sequential, Sgd,
};

/// 90 samples of 6 features in 3 classes, from a fixed LCG: 90 is not a multiple of the
/// batch sizes used, so epochs end with a short batch.
pub fn data() -> Dataset {
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32) / (1u64 << 24) as f32
    };
    let x: Vec<f32> = (0..90 * 6).map(|_| next()).collect();
    let y: Vec<u32> = (0..90).map(|i| (i % 3) as u32).collect();
    Dataset::classification(x, 6, y).expect("valid data")
}

/// A compiled 6-8-3 tanh model with momentum.
pub fn model() -> Sequential {
    model_on(gpu::gpu())
}

/// Like [`model`] with two 2048-wide hidden layers: 4.2 M parameters plus momentum, whose
/// backup files (34 MB) are big enough to be written past the page cache.
pub fn wide_model() -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(2048).activation(Activation::Tanh))
        .add(Dense::new(2048).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    m.compile(Loss::CrossEntropy, Sgd::new(0.01).momentum(0.9))
        .expect("compile");
    m
}

/// [`model`] on a given GPU context.
pub fn model_on(gpu: std::sync::Arc<wgfit::Gpu>) -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    m.compile_on(gpu, Loss::CrossEntropy, Sgd::new(0.05).momentum(0.9))
        .expect("compile");
    m
}

pub fn options(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 8,
        seed: 11,
        ..Default::default()
    }
}

/// Every parameter and optimizer slot by name, as raw bits.
pub type Bits = Vec<(String, Vec<u32>)>;

/// Parameters and momentum as raw bits, for byte-for-byte comparison.
pub fn bits(model: &Sequential) -> Bits {
    model
        .parameters()
        .expect("parameters")
        .into_iter()
        .chain(model.optimizer_slots().expect("slots"))
        .map(|t| (t.name, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// Records every (epoch, batch) that runs.
#[derive(Default)]
pub struct Counter {
    pub batches: Vec<(usize, usize)>,
}

impl Callback for Counter {
    fn on_train_batch_begin(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        self.batches.push((ctx.position().epoch, batch));
        Ok(())
    }
}

/// Fails when the run reaches a global step (at the start of the batch after it: the batch
/// end's hooks, and any save they asked for, are done) or an epoch's start. (A failure inside a
/// round of hooks saves nothing of that round: `fit` delivers a round's snapshots only when
/// every hook of it succeeded.)
pub struct Interrupt {
    pub at_global_step: Option<u64>,
    pub at_epoch_begin: Option<usize>,
}

impl Callback for Interrupt {
    fn on_train_batch_begin(&mut self, ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        if Some(ctx.position().global_step) == self.at_global_step {
            return Err(interrupted());
        }
        Ok(())
    }

    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        if Some(epoch) == self.at_epoch_begin {
            return Err(interrupted());
        }
        Ok(())
    }
}

pub fn interrupted() -> Error {
    Error::Callback {
        callback: "Interrupt".into(),
        reason: "interrupted by the test".into(),
    }
}

/// Every file of a directory with its bytes, to prove a directory was left untouched.
pub fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

/// Runs the whole training without interruption; returns the final bits and history.
pub fn uninterrupted(epochs: usize) -> (Vec<(String, Vec<u32>)>, wgfit::History) {
    let mut m = model();
    let h = m.fit(&data(), options(epochs), &mut []).unwrap();
    (bits(&m), h)
}

/// Trains 3 of 4 epochs with double_checkpoint and stops with an error, keeping the backup:
/// latest = epoch 3, previous = epoch 2. In two runs (2 epochs, then the third), so that the
/// save of epoch 2 is committed whatever the pace of the writer thread (in one run, a slow
/// commit of epoch 1 lets epoch 3's save supersede epoch 2's).
pub fn kept_backup(dir: &Path) {
    for epoch in [2, 3] {
        let mut backup = BackupAndRestore::new(dir).unwrap().double_checkpoint(true);
        let mut stop = Interrupt {
            at_global_step: None,
            at_epoch_begin: Some(epoch),
        };
        assert!(
            model()
                .fit(&data(), options(4), &mut [&mut backup, &mut stop])
                .is_err()
        );
    }
}

/// What `fit` of [`model`] for 4 epochs with a backup in `dir` fails with.
pub fn resume_error(dir: &Path) -> Error {
    let mut backup = BackupAndRestore::new(dir).expect("a backup directory path");
    model()
        .fit(&data(), options(4), &mut [&mut backup])
        .expect_err("the restore is refused")
}

/// A backup in `dir` that saves after every batch.
pub fn backup_every_batch(dir: &Path) -> BackupAndRestore {
    BackupAndRestore::new(dir)
        .unwrap()
        .save_freq(wgfit::SaveFreq::Batches(1))
        .unwrap()
}

/// The bits of `make()` trained for `epochs` without interruption, and of the same run killed
/// at the end of global step `at` (saves every batch) and resumed in a new model: a test of
/// exact resume compares the two.
pub fn uninterrupted_and_resumed(
    make: impl Fn() -> Sequential,
    epochs: usize,
    at: u64,
) -> (Bits, Bits) {
    let mut reference = make();
    let mut all = Counter::default();
    reference
        .fit(&data(), options(epochs), &mut [&mut all])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let backup = || backup_every_batch(&dir);
    let mut stop = Interrupt {
        at_global_step: Some(at),
        at_epoch_begin: None,
    };
    make()
        .fit(&data(), options(epochs), &mut [&mut backup(), &mut stop])
        .expect_err("interrupted");
    let mut resumed = make();
    let mut rest = Counter::default();
    resumed
        .fit(&data(), options(epochs), &mut [&mut backup(), &mut rest])
        .unwrap();
    // A rerun that ignored the backup would end with the same bits: it must have run only
    // the batches after the last save.
    assert_eq!(
        rest.batches[..],
        all.batches[at as usize..],
        "the rerun resumed from global step {at}"
    );
    (bits(&reference), bits(&resumed))
}
