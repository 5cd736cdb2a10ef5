//! Training end to end: learning on the digits, determinism, exact continuation through
//! `read_state` / `set_state`, partial last batches, callback errors and stops, `evaluate` and
//! `predict` against CPU computations, and the errors raised before any GPU work.

use wgfit::{
    Activation, Callback, Context, CsvOptions, Dataset, Dense, Error, FitOptions, FitOutcome,
    History, Logs, Loss, Position, Sequential, Sgd, Tensor, TrainState,
};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Three noisy clusters in 4 dimensions, labels 0..3.
fn blobs(samples: usize, seed: u64) -> Dataset {
    let mut rng = Rng(seed);
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for s in 0..samples {
        let class = (s % 3) as u32;
        for f in 0..4 {
            let centre = if f == class as usize { 1.5 } else { 0.0 };
            x.push(centre + rng.uniform(-1.0, 1.0));
        }
        labels.push(class);
    }
    Dataset::classification(x, 4, labels).unwrap()
}

fn blob_model(seed: u64) -> Sequential {
    Sequential::new(4)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(seed)
}

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

fn digits() -> Dataset {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let data = Dataset::from_csv(path, &CsvOptions::default()).unwrap();
    Dataset::new(
        data.x().iter().map(|v| v / 16.0).collect(),
        data.features(),
        data.targets().clone(),
    )
    .unwrap()
}

/// Records what `fit` tells its callbacks, and optionally stops or fails on cue.
#[derive(Default)]
struct Probe {
    /// `(epoch, batch)` of every on_train_batch_end.
    batch_ends: Vec<(usize, usize)>,
    /// `batch_logs()["loss"]` at every batch end, when `read_batch_logs`.
    batch_losses: Vec<f64>,
    read_batch_logs: bool,
    epoch_ends: Vec<(usize, Logs)>,
    /// Stop at this `(epoch, batch)` end.
    stop_at: Option<(usize, usize)>,
    /// Fail at the end of this epoch.
    fail_at_epoch_end: Option<usize>,
    /// Stop once an epoch's accuracy reaches this.
    stop_at_accuracy: Option<f64>,
    outcomes: Vec<FitOutcome>,
    train_end: bool,
    epoch: usize,
}

impl Callback for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_train_batch_end(&mut self, ctx: &mut Context<'_>, batch: usize) -> wgfit::Result<()> {
        self.batch_ends.push((self.epoch, batch));
        if self.read_batch_logs {
            self.batch_losses.push(ctx.batch_logs()?["loss"]);
        }
        if self.stop_at == Some((self.epoch, batch)) {
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        ctx: &mut Context<'_>,
        epoch: usize,
        logs: &Logs,
    ) -> wgfit::Result<()> {
        self.epoch_ends.push((epoch, logs.clone()));
        if self.fail_at_epoch_end == Some(epoch) {
            return Err(Error::Callback {
                callback: "probe".into(),
                reason: format!("deliberate failure after epoch {epoch}"),
            });
        }
        if let Some(target) = self.stop_at_accuracy
            && logs["accuracy"] >= target
        {
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _ctx: &mut Context<'_>, _logs: &Logs) -> wgfit::Result<()> {
        self.train_end = true;
        Ok(())
    }

    fn on_fit_exit(&mut self, _ctx: &mut Context<'_>, outcome: FitOutcome) -> wgfit::Result<()> {
        self.outcomes.push(outcome);
        Ok(())
    }
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
// (a) learning

#[test]
fn digits_reach_95_percent_training_accuracy() {
    let data = digits();
    assert_eq!((data.len(), data.features()), (1797, 64));
    let mut model = Sequential::new(64)
        .add(Dense::new(32).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(7);
    model
        .compile(Loss::CrossEntropy, Sgd::new(0.1).momentum(0.9))
        .unwrap();
    let options = FitOptions {
        epochs: 30,
        batch_size: 32,
        seed: 42,
        ..Default::default()
    };
    // Stop as soon as the goal is met, to keep the test short.
    let mut probe = Probe {
        stop_at_accuracy: Some(0.95),
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut [&mut probe]).unwrap();
    let accuracy = history.metric("accuracy");
    eprintln!(
        "digits: {} epochs on {}, accuracy {accuracy:?}",
        history.len(),
        model.adapter().unwrap()
    );
    let last = *accuracy.last().unwrap();
    assert!(
        last >= 0.95,
        "training accuracy after {} epochs is {last}; history {accuracy:?}",
        history.len()
    );
    assert!(history.len() <= 30);
    let losses = history.metric("loss");
    assert!(
        losses.last().unwrap() < &losses[0],
        "the loss did not fall: {losses:?}"
    );
    // evaluate agrees with what training reports, roughly (the weights moved during the epoch).
    let logs = model.evaluate(&data, 256).unwrap();
    assert!(logs["accuracy"] >= 0.9, "evaluate: {logs:?}");
}

// ------------------------------------------------------------------------------------------
// (b) determinism

fn train_blobs(epochs: usize) -> (Vec<Tensor>, Vec<Tensor>, History) {
    let data = blobs(60, 5);
    let mut model = blob_model(3);
    model
        .compile(
            Loss::CrossEntropy,
            Sgd::new(0.05).momentum(0.9).nesterov(true),
        )
        .unwrap();
    let options = FitOptions {
        epochs,
        batch_size: 7,
        shuffle: true,
        seed: 11,
        ..Default::default()
    };
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
    let mut model = blob_model(99);
    model
        .compile(
            Loss::CrossEntropy,
            Sgd::new(0.05).momentum(0.9).nesterov(true),
        )
        .unwrap();
    let options = FitOptions {
        epochs: 6,
        initial_epoch,
        batch_size: 7,
        shuffle: true,
        seed: 11,
        ..Default::default()
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
    let mut model = blob_model(3);
    model
        .compile(
            Loss::CrossEntropy,
            Sgd::new(0.05).momentum(0.9).nesterov(true),
        )
        .unwrap();
    let options = FitOptions {
        epochs,
        batch_size: 7,
        shuffle: true,
        seed: 11,
        ..Default::default()
    };
    model.fit(&data, options, &mut [reader]).unwrap()
}

#[test]
fn continuation_at_an_epoch_boundary_is_exact() {
    let (pa, sa, ha) = train_blobs(6);
    assert_eq!(ha.len(), 6);

    let mut reader = StateReader::default();
    let hb1 = first_part(&mut reader, 3);
    assert_eq!(hb1.epochs[..], ha.epochs[..3]);
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
    assert_eq!(state.meta.history.epochs[..], ha.epochs[..2]);

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
        let got = history.epochs[epoch].logs["loss"];
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

// ------------------------------------------------------------------------------------------
// (e) callback errors, (f) stopping

#[test]
fn callback_error_ends_fit_with_that_error() {
    let data = blobs(12, 1);
    let mut model = blob_model(0);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let mut probe = Probe {
        fail_at_epoch_end: Some(1),
        ..Default::default()
    };
    let options = FitOptions {
        epochs: 5,
        batch_size: 4,
        ..Default::default()
    };
    let err = model.fit(&data, options, &mut [&mut probe]).unwrap_err();
    match err {
        Error::Callback { callback, reason } => {
            assert_eq!(callback, "probe");
            assert_eq!(reason, "deliberate failure after epoch 1");
        }
        other => panic!("expected Error::Callback, got {other:?}"),
    }
    assert_eq!(
        probe.epoch_ends.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(probe.batch_ends.len(), 6, "no batch after the failure");
    assert!(!probe.train_end, "on_train_end does not run after an error");
    assert_eq!(probe.outcomes, vec![FitOutcome::Failed]);
}

#[test]
fn stop_training_after_a_batch() {
    let data = blobs(12, 2);
    let mut model = blob_model(0);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let mut probe = Probe {
        stop_at: Some((1, 1)),
        read_batch_logs: true,
        ..Default::default()
    };
    let options = FitOptions {
        epochs: 5,
        batch_size: 4,
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut [&mut probe]).unwrap();
    assert_eq!(
        probe.batch_ends,
        vec![(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    );
    assert_eq!(history.epoch_numbers(), vec![0, 1]);
    // The stopped epoch's loss covers the two batches that ran.
    let b = &probe.batch_losses[3..5];
    let want = (b[0] + b[1]) / 2.0;
    let got = history.epochs[1].logs["loss"];
    assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    assert!(probe.train_end);
    assert_eq!(probe.outcomes, vec![FitOutcome::Completed]);
    assert_eq!(probe.epoch_ends.len(), 2);
}

// ------------------------------------------------------------------------------------------
// (g) evaluate and predict

fn tensor(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor {
        name: name.into(),
        shape,
        data,
    }
}

#[test]
fn predict_and_evaluate_match_the_cpu() {
    let mut model = Sequential::new(3).add(Dense::new(2)).seed(0);
    model
        .compile(Loss::MeanSquaredError, Sgd::new(0.1))
        .unwrap();
    let w = vec![0.5, -1.0, 2.0, 0.25, 0.75, -0.5];
    let b = vec![0.125, -2.0];
    model
        .set_parameters(&[
            tensor("model.layers.0.weight", vec![2, 3], w.clone()),
            tensor("model.layers.0.bias", vec![2], b.clone()),
        ])
        .unwrap();
    let mut rng = Rng(5);
    let rows = 7;
    let x = rng.vec(rows * 3, -2.0, 2.0);
    let want: Vec<f64> = (0..rows)
        .flat_map(|r| {
            let x = &x;
            let w = &w;
            let b = &b;
            (0..2).map(move |o| {
                b[o] as f64
                    + (0..3)
                        .map(|i| x[r * 3 + i] as f64 * w[o * 3 + i] as f64)
                        .sum::<f64>()
            })
        })
        .collect();
    for batch in [1, 3, 7, 100] {
        let got = model.predict(&x, batch).unwrap();
        assert_eq!(got.len(), rows * 2, "batch {batch}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= 1e-6 * (1.0 + w.abs()),
                "batch {batch}: output [{}, {}] = {g} but x·Wᵀ+b = {w}",
                i / 2,
                i % 2
            );
        }
    }

    // evaluate: MSE over all rows and outputs, regardless of the batch size.
    let t = rng.vec(rows * 2, -1.0, 1.0);
    let data = Dataset::regression(x.clone(), 3, t.clone(), 2).unwrap();
    let mse: f64 = want
        .iter()
        .zip(&t)
        .map(|(y, t)| (y - *t as f64).powi(2))
        .sum::<f64>()
        / (rows * 2) as f64;
    for batch in [1, 3, 7] {
        let logs = model.evaluate(&data, batch).unwrap();
        assert!(
            (logs["loss"] - mse).abs() <= 1e-5 * mse,
            "batch {batch}: evaluate {logs:?} but the CPU MSE is {mse}"
        );
        assert!(!logs.contains_key("accuracy"));
    }
}

#[test]
fn evaluate_cross_entropy_loss_and_accuracy() {
    let mut model = Sequential::new(2).add(Dense::new(3)).seed(0);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    // Identity-like weights: logits = (x0, x1, 0.5).
    model
        .set_parameters(&[
            tensor(
                "model.layers.0.weight",
                vec![3, 2],
                vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            ),
            tensor("model.layers.0.bias", vec![3], vec![0.0, 0.0, 0.5]),
        ])
        .unwrap();
    let x = vec![2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 3.0, 3.0, 1.0];
    let labels = vec![0, 1, 2, 0, 0];
    let data = Dataset::classification(x.clone(), 2, labels.clone()).unwrap();
    let mut loss = 0.0;
    let mut correct = 0;
    for r in 0..5 {
        let y = [x[2 * r] as f64, x[2 * r + 1] as f64, 0.5];
        let m = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + y.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        loss += lse - y[labels[r] as usize];
        let arg = (0..3).fold(0, |best, j| if y[j] > y[best] { j } else { best });
        correct += usize::from(arg == labels[r] as usize);
    }
    assert_eq!(correct, 4);
    for batch in [2, 5] {
        let logs = model.evaluate(&data, batch).unwrap();
        assert!((logs["loss"] - loss / 5.0).abs() <= 1e-6, "{logs:?}");
        assert_eq!(logs["accuracy"], 0.8, "{logs:?}");
    }
}

// ------------------------------------------------------------------------------------------
// (h) errors before any GPU work

fn small_data() -> Dataset {
    blobs(6, 9)
}

fn assert_config(result: wgfit::Result<History>, what: &str) {
    match result {
        Err(Error::Config { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected Error::Config about {what}, got {other:?}"),
    }
}

#[test]
fn errors_before_gpu_work() {
    let data = small_data();

    let mut model = blob_model(0);
    assert!(matches!(
        model.fit(&data, FitOptions::default(), &mut []),
        Err(Error::NotCompiled)
    ));
    assert!(matches!(model.evaluate(&data, 2), Err(Error::NotCompiled)));
    assert!(matches!(
        model.predict(data.x(), 2),
        Err(Error::NotCompiled)
    ));
    assert!(matches!(model.parameters(), Err(Error::NotCompiled)));

    model.compile(Loss::CrossEntropy, Sgd::new(0.1)).unwrap();
    let initial = model.parameters().unwrap();
    let opts = |epochs, batch_size| FitOptions {
        epochs,
        batch_size,
        ..Default::default()
    };
    assert_config(model.fit(&data, opts(1, 0), &mut []), "batch size");
    assert_config(model.fit(&data, opts(1, 7), &mut []), "batch size");
    assert_config(model.fit(&data, opts(0, 2), &mut []), "epochs");
    let late_start = FitOptions {
        initial_epoch: 3,
        ..opts(3, 2)
    };
    assert_config(model.fit(&data, late_start, &mut []), "initial epoch");

    let bad_labels = Dataset::classification(vec![0.0; 12], 4, vec![0, 3, 1]).unwrap();
    match model.fit(&bad_labels, opts(1, 1), &mut []) {
        Err(Error::LabelOutOfRange {
            sample,
            label,
            classes,
        }) => assert_eq!((sample, label, classes), (1, 3, 3)),
        other => panic!("expected LabelOutOfRange, got {other:?}"),
    }
    let wide = Dataset::classification(vec![0.0; 15], 5, vec![0, 1, 2]).unwrap();
    assert!(matches!(
        model.fit(&wide, opts(1, 1), &mut []),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(model.evaluate(&wide, 1), Err(Error::Shape { .. })));
    let floats = Dataset::regression(vec![0.0; 12], 4, vec![0.0; 3], 1).unwrap();
    assert!(matches!(
        model.fit(&floats, opts(1, 1), &mut []),
        Err(Error::InvalidData { .. })
    ));
    assert!(
        model.predict(&[0.0; 5], 1).is_err(),
        "5 values for 4 inputs"
    );

    // set_parameters: wrong shape, missing tensor, unknown tensor.
    let mut wrong = initial.clone();
    wrong[0].shape = vec![4, 8];
    assert!(matches!(
        model.set_parameters(&wrong),
        Err(Error::Shape { .. })
    ));
    let mut short = initial.clone();
    short[1].data.pop();
    assert!(matches!(
        model.set_parameters(&short),
        Err(Error::Shape { .. })
    ));
    let missing: Vec<Tensor> = initial[1..].to_vec();
    match model.set_parameters(&missing) {
        Err(Error::MissingTensor { name, .. }) => assert_eq!(name, "model.layers.0.weight"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let mut unknown = initial.clone();
    unknown.push(tensor("model.layers.9.bias", vec![1], vec![0.0]));
    assert!(matches!(
        model.set_parameters(&unknown),
        Err(Error::Config { .. })
    ));

    // Nothing above touched the parameters.
    assert_eq!(model.parameters().unwrap(), initial);

    // Model configuration errors at compile.
    let mut empty = Sequential::new(4);
    assert!(matches!(
        empty.compile(Loss::MeanSquaredError, Sgd::new(0.1)),
        Err(Error::Config { .. })
    ));
    let mut one_output = Sequential::new(4).add(Dense::new(1));
    assert!(matches!(
        one_output.compile(Loss::CrossEntropy, Sgd::new(0.1)),
        Err(Error::Config { .. })
    ));
    let mut m = blob_model(0);
    for bad in [
        Sgd::new(0.0),
        Sgd::new(f32::NAN),
        Sgd::new(0.1).momentum(1.0),
        Sgd::new(0.1).nesterov(true),
        Sgd::new(0.1).weight_decay(-1.0),
    ] {
        assert!(
            matches!(
                m.compile(Loss::CrossEntropy, bad),
                Err(Error::Config { .. })
            ),
            "{bad:?}"
        );
    }
}
