//! Bad training input fails before any GPU work and writes nothing to the backup directory;
//! divergence stops the run and never commits a non-finite state; a model too large for the
//! adapter is a clear error; a device lost mid-run is an error that leaves the backup valid.

mod common;

use common::{bits, data, model, model_on, options, uninterrupted};
use std::sync::Arc;
use wgfit::checkpoint::{self, LATEST};
use wgfit::{
    Activation, BackupAndRestore, Callback, Context, Dataset, Dense, Error, FitOptions, Gpu, Loss,
    SaveFreq, Sequential, Sgd,
};

/// Runs `fit` with a backup in a fresh directory and checks it fails and writes nothing.
fn fails_before_training(data: &Dataset, options: FitOptions, what: &str) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(data, options, &mut [&mut backup])
        .expect_err(what);
    assert!(!dir.exists(), "{what}: nothing is written to backup_dir");
    err
}

#[test]
fn bad_options_and_data_fail_before_any_work() {
    let mut o = options(2);
    o.batch_size = 0;
    let e = fails_before_training(&data(), o, "batch size 0");
    assert!(e.to_string().contains("batch size"), "{e}");

    let mut o = options(2);
    o.batch_size = 91;
    let e = fails_before_training(&data(), o, "batch larger than the data");
    assert!(
        e.to_string()
            .contains("larger than the data set (90 samples)"),
        "{e}"
    );

    let e = fails_before_training(&data(), options(0), "zero epochs");
    assert!(e.to_string().contains("0 epochs"), "{e}");

    let labels: Vec<u32> = (0..90).map(|i| if i == 41 { 7 } else { 0 }).collect();
    let bad = Dataset::classification(data().x().to_vec(), 6, labels).unwrap();
    let e = fails_before_training(&bad, options(2), "label out of range");
    assert!(
        matches!(
            e,
            Error::LabelOutOfRange {
                sample: 41,
                label: 7,
                classes: 3
            }
        ),
        "{e}"
    );

    let narrow = Dataset::classification(vec![0.5; 90 * 5], 5, vec![0; 90]).unwrap();
    let e = fails_before_training(&narrow, options(2), "width mismatch");
    assert!(matches!(e, Error::Shape { .. }), "{e}");

    let floats = Dataset::regression(vec![0.5; 90 * 6], 6, vec![0.0; 90], 1).unwrap();
    let e = fails_before_training(&floats, options(2), "float targets with cross-entropy");
    assert!(e.to_string().contains("class labels"), "{e}");
}

#[test]
fn non_finite_data_is_refused_when_the_data_set_is_made() {
    let mut x = vec![0.5; 12];
    x[7] = f32::NAN;
    let e = Dataset::classification(x.clone(), 6, vec![0, 1]).unwrap_err();
    assert!(e.to_string().contains("NaN"), "{e}");
    x[7] = f32::INFINITY;
    assert!(Dataset::classification(x, 6, vec![0, 1]).is_err());
}

#[test]
fn divergence_stops_with_an_error_and_commits_only_finite_states() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut m = Sequential::new(6)
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(3))
        .seed(1);
    // A learning rate this large overflows to inf and NaN within a few batches.
    m.compile(Loss::MeanSquaredError, Sgd::new(1e12)).unwrap();
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(1))
        .unwrap();
    let err = m.fit(&data(), options(3), &mut [&mut backup]).unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
    // The last committed state verifies (verification refuses non-finite parameters), and
    // it is older than the divergence.
    let committed = checkpoint::load_sidecar(&dir, LATEST).expect("a finite state is committed");
    eprintln!(
        "divergence: {err}; committed global step {}",
        committed.sidecar.global_step
    );
    match err {
        Error::Diverged { global_step, .. } => assert!(committed.sidecar.global_step < global_step),
        _ => unreachable!(),
    }
    // The refused state's file was written beside its hashing, then taken away: the only
    // weights file left is the committed one.
    let weights: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors"))
        .collect();
    assert_eq!(
        weights,
        vec![committed.sidecar.weights.file.clone()],
        "{weights:?}"
    );
}

#[test]
fn a_model_too_large_for_the_adapter_is_a_clear_error() {
    let mut m = Sequential::new(200_000).add(Dense::new(200_000));
    let err = m
        .compile(Loss::MeanSquaredError, Sgd::new(0.1))
        .unwrap_err();
    assert!(matches!(err, Error::TooLargeForAdapter { .. }), "{err}");
    assert!(err.to_string().contains("allows at most"), "{err}");
}

/// Destroys the device at the end of one batch, as a driver reset would, once the backup in
/// `committed` holds a commit (saves are written behind the training: on a loaded machine the
/// first may not have reached the disk by that batch, and a snapshot not yet read back from
/// the device is lost with it).
struct LoseDevice {
    gpu: Arc<Gpu>,
    committed: std::path::PathBuf,
    epoch: usize,
    batch: usize,
    current_epoch: usize,
}

impl Callback for LoseDevice {
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        self.current_epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        if (self.current_epoch, batch) == (self.epoch, self.batch) {
            let waited = std::time::Instant::now();
            while !self.committed.join(LATEST).exists() {
                assert!(
                    waited.elapsed() < std::time::Duration::from_secs(60),
                    "no commit within 60 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            self.gpu.destroy();
        }
        Ok(())
    }
}

#[test]
fn a_device_lost_mid_run_is_an_error_and_the_backup_resumes_exactly() {
    let epochs = 4;
    let (expected, _) = uninterrupted(epochs);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");

    // A context of its own: the shared one must survive for the resume.
    let lost = Arc::new(Gpu::new().unwrap());
    let mut backup = BackupAndRestore::new(&dir)
        .unwrap()
        .save_freq(SaveFreq::Batches(1))
        .unwrap()
        .delete_checkpoint(false);
    let mut lose = LoseDevice {
        gpu: lost.clone(),
        committed: dir.clone(),
        epoch: 2,
        batch: 4,
        current_epoch: 0,
    };
    let err = model_on(lost)
        .fit(&data(), options(epochs), &mut [&mut backup, &mut lose])
        .expect_err("training on a destroyed device fails");
    assert!(matches!(err, Error::DeviceLost { .. }), "{err}");
    assert!(err.to_string().contains("rerun to resume"), "{err}");

    let committed = checkpoint::load_sidecar(&dir, LATEST).expect("the backup verifies");
    let step = committed.sidecar.global_step;
    assert!(step > 0 && step <= 2 * 12 + 5, "committed step {step}");
    eprintln!("lost device: {err}; committed global step {step}");

    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let mut m = model();
    m.fit(&data(), options(epochs), &mut [&mut backup]).unwrap();
    assert_eq!(bits(&m), expected, "the resumed run ends exactly");
}
