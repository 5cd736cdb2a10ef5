//! Nothing grows across epochs: the GPU objects a run holds (buffers, their bytes, bind
//! groups) are the same at the last epoch end as at an early one, with a backup every epoch.

mod common;

use std::sync::Arc;
use wgfit::{BackupAndRestore, Callback, Context, Gpu, GpuMemory, Logs, SaveFreq};

/// What the context holds at every epoch end.
struct Record {
    gpu: Arc<Gpu>,
    at_epoch_end: Vec<GpuMemory>,
}

impl Callback for Record {
    fn on_epoch_end(
        &mut self,
        _ctx: &mut Context<'_>,
        _epoch: usize,
        _logs: &Logs,
    ) -> wgfit::Result<()> {
        self.at_epoch_end.push(self.gpu.memory());
        Ok(())
    }
}

#[test]
fn gpu_objects_stay_constant_across_epochs_with_backups() {
    // A context of its own, so that tests running beside this one do not count.
    let gpu = Arc::new(Gpu::new().unwrap());
    let before = gpu.memory();
    let mut model = common::model_on(gpu.clone());
    let tmp = tempfile::tempdir().unwrap();
    let mut backup = BackupAndRestore::new(tmp.path().join("b"))
        .unwrap()
        .save_freq(SaveFreq::Epoch)
        .unwrap();
    let mut record = Record {
        gpu: gpu.clone(),
        at_epoch_end: Vec::new(),
    };
    model
        .fit(
            &common::data(),
            common::options(30),
            &mut [&mut backup, &mut record],
        )
        .unwrap();
    let m = &record.at_epoch_end;
    assert_eq!(m.len(), 30);
    assert!(m[0].buffers > before.buffers && m[0].buffer_bytes > before.buffer_bytes);
    // The staging pool reaches its working size within the first epochs; after that, not one
    // buffer, byte or bind group more.
    assert_eq!(m[29], m[5], "epoch 6 {:?}, epoch 30 {:?}", m[5], m[29]);
}
