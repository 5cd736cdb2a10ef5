//! Small data sets, models and callbacks shared by the training tests.

use super::rng::Rng;
use wgfit::{
    Activation, Callback, Context, Dataset, Dense, Error, FitOutcome, Logs, Sequential, Tensor,
};

/// Three noisy clusters in 4 dimensions, labels 0..3.
pub fn blobs(samples: usize, seed: u64) -> Dataset {
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

pub fn blob_model(seed: u64) -> Sequential {
    Sequential::new(4)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(seed)
}

/// Records what `fit` tells its callbacks, and optionally stops or fails on cue.
#[derive(Default)]
pub struct Probe {
    /// `(epoch, batch)` of every on_train_batch_end.
    pub batch_ends: Vec<(usize, usize)>,
    /// `batch_logs()["loss"]` at every batch end, when `read_batch_logs`.
    pub batch_losses: Vec<f64>,
    pub read_batch_logs: bool,
    pub epoch_ends: Vec<(usize, Logs)>,
    /// Stop at this `(epoch, batch)` end.
    pub stop_at: Option<(usize, usize)>,
    /// Fail at the end of this epoch.
    pub fail_at_epoch_end: Option<usize>,
    /// Stop once an epoch's accuracy reaches this.
    pub stop_at_accuracy: Option<f64>,
    pub outcomes: Vec<FitOutcome>,
    pub train_end: bool,
    pub epoch: usize,
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

/// A named tensor, for `set_parameters`.
pub fn tensor(name: &str, shape: Vec<usize>, data: Vec<f32>) -> Tensor {
    Tensor {
        name: name.into(),
        shape,
        data,
    }
}
