//! Determinism, exact continuation through `read_state` / `set_state`, and partial last
//! batches.

mod common;

use common::rng::Rng;
use common::training::{Probe, blob_model, blobs};
use wgfit::{
    Callback, Context, Dataset, Dense, FitOptions, History, Logs, Loss, Position, Sequential, Sgd,
    Tensor, TrainState,
};

fn bits(tensors: &[Tensor]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.data.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

/// Reads the full state at the end of training, or at a given batch end (and stops there).
#[derive(Default)]
struct StateReader {
    at_batch_end: Option<(usize, usize)>,
    epoch: usize,
    state: Option<TrainState>,
}

impl Callback for StateReader {
    fn name(&self) -> &str {
        "state-reader"
    }

    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        if self.at_batch_end == Some((self.epoch, batch)) {
            self.state = Some(ctx.read_state()?);
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>, _logs: &Logs) -> wgfit::Result<()> {
        if self.at_batch_end.is_none() {
            self.state = Some(ctx.read_state()?);
        }
        Ok(())
    }
}

/// Installs a state at the beginning of training.
struct StateWriter(Option<TrainState>);

impl Callback for StateWriter {
    fn name(&self) -> &str {
        "state-writer"
    }

    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> wgfit::Result<()> {
        if let Some(state) = self.0.take() {
            ctx.set_state(state)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// (b) determinism

/// The blob model compiled with Nesterov momentum (so the optimizer has slots to compare).
fn momentum_model(seed: u64) -> wgfit::Sequential {
    let mut model = blob_model(seed);
    model
        .compile(
            Loss::CrossEntropy,
            Sgd::new(0.05).momentum(0.9).nesterov(true),
        )
        .unwrap();
    model
}

/// Shuffled batches of 7 (60 samples: a short last batch) with a fixed data-order seed.
fn blob_options(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 7,
        shuffle: true,
        seed: 11,
        ..Default::default()
    }
}

fn train_blobs(epochs: usize) -> (Vec<Tensor>, Vec<Tensor>, History) {
    let data = blobs(60, 5);
    let mut model = momentum_model(3);
    let options = blob_options(epochs);
    let history = model.fit(&data, options, &mut []).unwrap();
    (
        model.parameters().unwrap(),
        model.optimizer_slots().unwrap(),
        history,
    )
}

#[test]
fn same_seed_same_bits() {
    let (p1, s1, h1) = train_blobs(4);
    let (p2, s2, h2) = train_blobs(4);
    assert!(bits(&p1) == bits(&p2), "parameters differ between two runs");
    assert!(!s1.is_empty(), "momentum slots exist");
    assert!(
        bits(&s1) == bits(&s2),
        "momentum slots differ between two runs"
    );
    assert_eq!(h1, h2);
    assert_eq!(h1.epoch_numbers(), vec![0, 1, 2, 3]);
}

// ------------------------------------------------------------------------------------------
// (c) continuation

fn continue_blobs(state: TrainState, initial_epoch: usize) -> (Vec<Tensor>, Vec<Tensor>, History) {
    let data = blobs(60, 5);
    // A different init seed: everything must come from the state.
    let mut model = momentum_model(99);
    let options = FitOptions {
        initial_epoch,
        ..blob_options(6)
    };
    let mut writer = StateWriter(Some(state));
    let history = model.fit(&data, options, &mut [&mut writer]).unwrap();
    (
        model.parameters().unwrap(),
        model.optimizer_slots().unwrap(),
        history,
    )
}

fn first_part(reader: &mut StateReader, epochs: usize) -> History {
    let data = blobs(60, 5);
    let mut model = momentum_model(3);
    let options = blob_options(epochs);
    model.fit(&data, options, &mut [reader]).unwrap()
}

#[test]
fn continuation_at_an_epoch_boundary_is_exact() {
    let (pa, sa, ha) = train_blobs(6);
    assert_eq!(ha.len(), 6);

    let mut reader = StateReader::default();
    let hb1 = first_part(&mut reader, 3);
    assert_eq!(hb1.to_vec()[..], ha.to_vec()[..3]);
    let state = reader.state.expect("state read at on_train_end");
    let steps = 60usize.div_ceil(7) as u64;
    assert_eq!(
        state.meta.position,
        Position {
            epoch: 3,
            step: 0,
            global_step: 3 * steps
        }
    );
    assert_eq!(state.meta.optimizer_steps, 3 * steps);
    assert_eq!(state.meta.history, hb1);

    let (pb, sb, hb) = continue_blobs(state, 3);
    assert!(bits(&pa) == bits(&pb), "parameters differ after continuing");
    assert!(
        bits(&sa) == bits(&sb),
        "momentum slots differ after continuing"
    );
    assert_eq!(hb, ha, "the continued run's history");
}

#[test]
fn continuation_in_the_middle_of_an_epoch_is_exact() {
    let (pa, sa, ha) = train_blobs(6);

    // Stop after batch 4 of epoch 2 (9 batches per epoch), reading the state there.
    let mut reader = StateReader {
        at_batch_end: Some((2, 4)),
        ..Default::default()
    };
    first_part(&mut reader, 6);
    let state = reader.state.expect("state read at the batch end");
    assert_eq!(state.meta.position.epoch, 2);
    assert_eq!(state.meta.position.step, 5);
    assert_eq!(state.batch_stats.shape, vec![5, 2]);
    assert_eq!(state.meta.history.to_vec()[..], ha.to_vec()[..2]);

    let (pb, sb, hb) = continue_blobs(state, 0);
    assert!(bits(&pa) == bits(&pb), "parameters differ after continuing");
    assert!(
        bits(&sa) == bits(&sb),
        "momentum slots differ after continuing"
    );
    assert_eq!(
        hb, ha,
        "the continued run's history (epoch 2 spans both runs)"
    );
}

/// A state that counts fewer updates than the batches its epoch has trained cannot number
/// its updates (the schedule's and Adam's step): refused, not wrapped.
#[test]
fn a_state_with_fewer_updates_than_batches_is_refused() {
    let mut reader = StateReader {
        at_batch_end: Some((1, 3)),
        ..Default::default()
    };
    first_part(&mut reader, 2);
    let mut state = reader.state.expect("state read at the batch end");
    assert_eq!(state.meta.position.step, 4);
    state.meta.optimizer_steps = 3;
    let mut model = momentum_model(99);
    let mut writer = StateWriter(Some(state));
    let e = model
        .fit(&blobs(60, 5), blob_options(3), &mut [&mut writer])
        .unwrap_err();
    match e {
        wgfit::Error::Config { what, reason } => {
            assert_eq!(what, "training state");
            assert!(reason.contains("3 optimizer updates"), "{reason}");
        }
        other => panic!("expected the state refused, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// (d) a last batch smaller than batch_size

/// Reads the parameters before and after one batch.
#[derive(Default)]
struct AroundBatch {
    batch: usize,
    epoch: usize,
    wanted_epoch: usize,
    before: Option<Vec<Tensor>>,
    after: Option<Vec<Tensor>>,
}

impl Callback for AroundBatch {
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_begin(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        if (self.epoch, batch) == (self.wanted_epoch, self.batch) {
            self.before = Some(ctx.read_state()?.params);
        }
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        if (self.epoch, batch) == (self.wanted_epoch, self.batch) {
            self.after = Some(ctx.read_state()?.params);
        }
        Ok(())
    }
}

#[test]
fn partial_last_batch() {
    // A linear model 3 -> 2 with MSE on float targets: loss and gradient are easy on the CPU.
    let mut rng = Rng(77);
    let x = rng.vec(30, -1.0, 1.0);
    let y = rng.vec(20, -1.0, 1.0);
    let data = Dataset::regression(x.clone(), 3, y.clone(), 2).unwrap();
    let lr = 0.1f32;
    let mut model = Sequential::new(3).add(Dense::new(2)).seed(1);
    model.compile(Loss::MeanSquaredError, Sgd::new(lr)).unwrap();
    let options = FitOptions {
        epochs: 2,
        batch_size: 3,
        shuffle: false,
        ..Default::default()
    };
    let mut probe = Probe {
        read_batch_logs: true,
        ..Default::default()
    };
    let mut around = AroundBatch {
        batch: 3,
        wanted_epoch: 1,
        ..Default::default()
    };
    let history = model
        .fit(&data, options, &mut [&mut probe, &mut around])
        .unwrap();
    assert_eq!(
        probe.batch_ends,
        vec![
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 0),
            (1, 1),
            (1, 2),
            (1, 3)
        ]
    );
    assert_eq!(history.len(), 2);

    // Epoch loss = row-weighted mean of the batch losses (3, 3, 3 and 1 rows).
    for epoch in 0..2 {
        let b = &probe.batch_losses[4 * epoch..4 * epoch + 4];
        let want = (b[0] * 3.0 + b[1] * 3.0 + b[2] * 3.0 + b[3]) / 10.0;
        let got = history[epoch].logs["loss"];
        assert!(
            (got - want).abs() <= 1e-12 * want.abs(),
            "epoch {epoch}: loss {got} but the row-weighted mean of {b:?} is {want}"
        );
    }

    // The 1-row batch of epoch 1 is sample 9 alone: its loss and its update.
    let before = around.before.expect("parameters before the last batch");
    let after = around.after.expect("parameters after the last batch");
    let (w, b) = (&before[0].data, &before[1].data);
    let xs = &x[27..30];
    let ts = &y[18..20];
    let out: Vec<f64> = (0..2)
        .map(|o| {
            b[o] as f64
                + (0..3)
                    .map(|i| w[o * 3 + i] as f64 * xs[i] as f64)
                    .sum::<f64>()
        })
        .collect();
    let diff: Vec<f64> = (0..2).map(|o| out[o] - ts[o] as f64).collect();
    let loss = (diff[0] * diff[0] + diff[1] * diff[1]) / 2.0;
    let got = probe.batch_losses[7];
    assert!(
        (got - loss).abs() <= 1e-6 * loss + 1e-7,
        "last batch loss {got} but sample 9 alone gives {loss}"
    );
    // dY = 2 (y - t) / (rows · cols) with rows = 1, cols = 2.
    for o in 0..2 {
        let gb = diff[o];
        let want_b = b[o] as f64 - lr as f64 * gb;
        assert!(
            (after[1].data[o] as f64 - want_b).abs() <= 1e-6,
            "bias {o}: {} but {want_b}",
            after[1].data[o]
        );
        for i in 0..3 {
            let gw = diff[o] * xs[i] as f64;
            let want_w = w[o * 3 + i] as f64 - lr as f64 * gw;
            assert!(
                (after[0].data[o * 3 + i] as f64 - want_w).abs() <= 1e-6,
                "weight [{o}, {i}]: {} but {want_w}",
                after[0].data[o * 3 + i]
            );
        }
    }
}
