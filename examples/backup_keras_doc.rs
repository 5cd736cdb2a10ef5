//! The example of Keras's `BackupAndRestore` documentation, ported to wgfit.
//!
//! One `Dense(10)` on `x = ones(5, 20)`, `y = zeros(5)`, SGD, MSE, batch size 1. A callback
//! fails at the start of epoch 4, so the first `fit` stops with epochs 0–3 done. A second `fit`
//! (a fresh process would do the same) restores the backup and runs only epochs 4–9; its
//! History covers all 10 epochs. Keras replays nothing here either, but returns only the 6 new
//! epochs; wgfit returns the whole run.
//!
//! Run with `cargo run --example backup_keras_doc`.

use wgfit::{
    BackupAndRestore, Callback, Context, Dataset, Dense, Error, FitOptions, Loss, Sequential, Sgd,
};

/// Fails at the start of epoch 4, as Keras's `InterruptingCallback`.
struct InterruptingCallback;

impl Callback for InterruptingCallback {
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        if epoch == 4 {
            return Err(Error::Callback {
                callback: "InterruptingCallback".into(),
                reason: "Interrupting!".into(),
            });
        }
        Ok(())
    }
}

/// Counts the epochs that really run.
#[derive(Default)]
struct EpochCounter {
    epochs: Vec<usize>,
}

impl Callback for EpochCounter {
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        self.epochs.push(epoch);
        Ok(())
    }
}

fn model() -> wgfit::Result<Sequential> {
    let mut model = Sequential::new(20).add(Dense::new(10)).seed(0);
    model.compile(Loss::MeanSquaredError, Sgd::new(0.01))?;
    Ok(model)
}

/// Runs the example in `backup_dir`; returns the epochs each fit ran and the final History's
/// epoch numbers.
pub fn run(backup_dir: &std::path::Path) -> wgfit::Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    let data = Dataset::regression(vec![1.0; 5 * 20], 20, vec![0.0; 5], 1)?;
    let options = FitOptions {
        epochs: 10,
        batch_size: 1,
        ..Default::default()
    };

    let mut first = EpochCounter::default();
    let mut backup = BackupAndRestore::new(backup_dir)?;
    let interrupted = model()?.fit(
        &data,
        options.clone(),
        &mut [&mut backup, &mut InterruptingCallback, &mut first],
    );
    match interrupted {
        Err(Error::Callback { .. }) => {}
        other => panic!("the first fit should stop with the callback's error, got {other:?}"),
    }

    let mut second = EpochCounter::default();
    let mut backup = BackupAndRestore::new(backup_dir)?;
    let history = model()?.fit(&data, options, &mut [&mut backup, &mut second])?;
    Ok((first.epochs, second.epochs, history.epoch_numbers()))
}

#[allow(dead_code)]
fn main() -> wgfit::Result<()> {
    let dir = std::env::temp_dir().join(format!("wgfit-keras-doc-{}", std::process::id()));
    let (first, second, history) = run(&dir)?;
    println!("first fit ran epochs {first:?} (stopped at the start of epoch 4)");
    println!("second fit ran epochs {second:?}");
    println!(
        "the returned History has {} epochs: {history:?}",
        history.len()
    );
    assert_eq!(first, vec![0, 1, 2, 3]);
    assert_eq!(second, (4..10).collect::<Vec<_>>());
    assert_eq!(history, (0..10).collect::<Vec<_>>());
    assert!(!dir.exists(), "a successful run removes its backup");
    Ok(())
}
