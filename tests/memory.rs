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
    // Bind groups never grow. Buffers grow only by the snapshot staging pool, which holds at
    // most three (when it makes its second and third depends on how fast the disk is, so not
    // at a fixed epoch): a leak of one per epoch would be 29 more.
    assert_eq!(
        m[29].bind_groups, m[0].bind_groups,
        "{:?} {:?}",
        m[0], m[29]
    );
    let staging = m
        .windows(2)
        .map(|w| w[1].buffers - w[0].buffers)
        .sum::<u64>();
    assert!(
        m.windows(2).all(|w| w[1].buffers >= w[0].buffers) && staging <= 3,
        "buffers by epoch end: {:?}",
        m.iter().map(|x| x.buffers).collect::<Vec<_>>()
    );
    let grown = m[29].buffer_bytes - m[0].buffer_bytes;
    let per_buffer = grown / staging.max(1);
    assert!(
        staging == 0 || grown == per_buffer * staging,
        "only whole staging buffers were added: {grown} bytes in {staging} buffers"
    );
}
