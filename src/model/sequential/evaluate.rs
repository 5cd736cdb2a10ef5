//! `Sequential`'s uses of a trained model besides `fit`: `evaluate`, `predict`, and the
//! profile of one step and the data's placement.

use super::Sequential;
use crate::data::Dataset;
use crate::engine::{DataOn, StepProfile, Workspace};
use crate::error::Result;
use crate::fit::FitOptions;
use crate::state::Logs;

impl Sequential {
    /// Times every kernel launch of one training step on `data` in batches of `batch_size`,
    /// each repeated `reps` times on its own, and the whole step: where a step's time goes.
    /// The steps really train (on the first batch), so the parameters and optimizer slots
    /// are put back after.
    ///
    /// # Errors
    /// As [`Sequential::fit`] for the data and the batch size; GPU errors.
    pub fn profile_step(
        &mut self,
        data: &Dataset,
        batch_size: usize,
        reps: usize,
    ) -> Result<StepProfile> {
        self.check_data(data)?;
        FitOptions {
            batch_size,
            ..Default::default()
        }
        .validate(data.len())?;
        let c = self.compiled()?;
        // The profiled steps really train: parameters and optimizer slots are put back.
        let (params, slots) = (c.params.read_params()?, c.params.read_slots()?);
        let work = Workspace::new(&c.params, data, batch_size, c.loss, DataOn::Auto)?;
        let profile = crate::engine::profile(
            &c.params.gpu,
            work.plan(0),
            &c.params.clip,
            &work.update,
            reps,
        );
        c.params.write_params(&params, "")?;
        c.params.write_slots(&slots, "")?;
        profile
    }

    /// Whether `fit` with `data_on: on` would stream `data` from host memory a batch at a time
    /// rather than keep it on the GPU, and the resident limit that decides it for
    /// [`DataOn::Auto`] (bytes of the inputs, or of the targets: the adapter's largest storage
    /// binding, lowered by the environment variable `WGFIT_RESIDENT_LIMIT_BYTES`).
    pub fn data_placement(&self, data: &Dataset, on: DataOn) -> Result<(bool, u64)> {
        let gpu = &self.compiled()?.params.gpu;
        Ok((
            crate::engine::streams(gpu, data, on),
            crate::engine::resident_limit(gpu),
        ))
    }

    /// The loss (and accuracy with cross-entropy) over `data`, in order, in batches.
    pub fn evaluate(&self, data: &Dataset, batch_size: usize) -> Result<Logs> {
        self.check_data(data)?;
        let c = self.compiled()?;
        let batch_size = batch_size.clamp(1, data.len());
        let work = Workspace::new(&c.params, data, batch_size, c.loss, DataOn::Auto)?;
        crate::fit::evaluate_on(&c.params, &work, c.loss.reports_accuracy(), "")
    }

    /// The model's outputs for `x` (row-major, `x.len() / inputs` rows), in batches.
    /// With cross-entropy these are logits; apply a softmax for probabilities.
    pub fn predict(&self, x: &[f32], batch_size: usize) -> Result<Vec<f32>> {
        let c = self.compiled()?;
        let rows = x.len() / self.inputs.max(1);
        // The forward pass runs with placeholder labels; their loss is not used.
        let data = Dataset::classification(x.to_vec(), self.inputs, vec![0; rows])?;
        data.check_model(self.inputs, self.outputs())?;
        self.check_ids(&data)?;
        let work = Workspace::new(
            &c.params,
            &data,
            batch_size.clamp(1, rows),
            c.loss,
            DataOn::Auto,
        )?;
        crate::fit::predict_on(&c.params, &work, self.outputs())
    }
}
