//! The GPU side of a distributed step: read back this rank's gradients, and after the
//! exchange sum every rank's in rank order with the gradient accumulation kernels, then update.
//!
//! Share r of global step s is micro-batch `j = (s-1)·N + r + 1` of the one-rank run with
//! `--accumulate N·K`: the same launch (`acc += g`, or `g = (g + acc) / (N·K)` then clipping
//! and the update) on the same bytes, in the same order, so the same bits.

use super::update::{Accumulate, accumulate_launches};
use super::{GpuParams, Workspace};
use crate::distributed::{Group, StepMessage, decode_steps};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// What a distributed run keeps on the GPU besides the model.
pub(crate) struct Reducer {
    pub group: Group,
    /// Every rank's gradients of the step, rank after rank (copied from, never bound).
    gathered: wgpu::Buffer,
    /// This rank's gradients and its share's statistics, read back after the backward pass.
    staging: wgpu::Buffer,
    /// `acc += g` and `g = (g + acc) / (N·K)` over the model's accumulator (`--accumulate K`
    /// above 1) or one of the reducer's own (left zero at every step's end, so not saved).
    launches: Accumulate,
    /// K, the optimizer's accumulation steps.
    accumulation: u64,
    // Kept alive for the launches' bind groups.
    _buffers: Vec<wgpu::Buffer>,
}

impl Reducer {
    pub fn new(params: &GpuParams, group: Group) -> Result<Self> {
        let gpu = &params.gpu;
        let bytes = params.len as u64 * 4;
        let ranks = group.size();
        let gathered = gpu.storage_in_pieces("gathered gradients", bytes * ranks as u64)?;
        let staging = gpu.staging("gradient readback", bytes + 8)?;
        let accumulation = u64::from(params.optimizer.accumulation_steps());
        let own = match &params.accumulator {
            Some(_) => None,
            None => Some(gpu.storage_in_pieces("rank gradient sum", bytes)?),
        };
        let acc = match (&params.accumulator, &own) {
            (Some(slot), _) => &slot.buffer,
            (None, Some(own)) => own,
            (None, None) => return Err(Error::internal("no accumulator for the rank sum")),
        };
        let divisor = u32::try_from(ranks as u64 * accumulation)
            .map_err(|_| Error::config("ranks", "ranks × accumulation steps is too large"))?;
        let (launches, mut buffers) =
            accumulate_launches(gpu, &params.grads, acc, &params.chunks, divisor);
        buffers.extend(own);
        Ok(Reducer {
            group,
            gathered,
            staging,
            launches,
            accumulation,
            _buffers: buffers,
        })
    }

    /// Records the copy of this rank's gradients and its statistics of `step` for the host.
    pub fn record_readback(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        params: &GpuParams,
        work: &Workspace,
        step: usize,
    ) {
        let bytes = params.len as u64 * 4;
        encoder.copy_buffer_to_buffer(&params.grads, 0, &self.staging, 0, bytes);
        encoder.copy_buffer_to_buffer(&work.stats, step as u64 * 8, &self.staging, bytes, 8);
    }

    /// This rank's message for the step (after the readback's submission): its gradients,
    /// statistics, rows and the preemption signal it caught.
    pub fn message(&self, gpu: &Gpu, params: &GpuParams, rows: usize) -> Result<Vec<u8>> {
        let bytes = params.len as u64 * 4;
        let raw = gpu.map_read(
            &self.staging,
            bytes + 8,
            "reading gradients for the exchange",
        )?;
        let stat = |i: usize| {
            let at = bytes as usize + 4 * i;
            f32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]])
        };
        let header = StepMessage {
            signal: crate::callbacks::caught_signal().unwrap_or(0) as u32,
            rows: rows as u32,
            loss: stat(0),
            correct: stat(1),
        };
        Ok(header.encode(&raw[..bytes as usize]))
    }

    /// After the exchange: the agreed signal, the batch's statistics (the shares' losses
    /// weighted by rows, summed in f64 in rank order), and the ordered sum of the gradients
    /// with the update when this global step completes one. `done` is the global steps
    /// before this one.
    pub fn reduce(
        &self,
        params: &GpuParams,
        work: &Workspace,
        step: usize,
        done: u64,
        all: &[u8],
    ) -> Result<()> {
        let gpu = &params.gpu;
        let ranks = self.group.size();
        let messages = decode_steps(all, ranks)?;
        let bytes = params.len as u64 * 4;
        let signal = messages.iter().map(|(m, _)| m.signal).find(|&s| s != 0);
        crate::distributed::set_agreed_signal(signal.unwrap_or(0) as i32);
        let (mut loss, mut correct, mut rows) = (0f64, 0f32, 0f64);
        for (r, (m, grads)) in messages.iter().enumerate() {
            if grads.len() as u64 != bytes {
                return Err(Error::internal(format!(
                    "rank {r} sent {} bytes of gradients, not {bytes}",
                    grads.len()
                )));
            }
            gpu.write(&self.gathered, r as u64 * bytes, grads);
            loss += f64::from(m.loss) * f64::from(m.rows);
            correct += m.correct;
            rows += f64::from(m.rows);
        }
        let stats = [(loss / rows.max(1.0)) as f32, correct];
        gpu.write(&work.stats, step as u64 * 8, bytemuck::cast_slice(&stats));

        let group = ranks as u64 * self.accumulation;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for r in 0..ranks {
            encoder.copy_buffer_to_buffer(
                &self.gathered,
                r as u64 * bytes,
                &params.grads,
                0,
                bytes,
            );
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let micro = done * ranks as u64 + r as u64 + 1;
            if !micro.is_multiple_of(group) {
                // acc ← acc + g_r
                self.launches
                    .add
                    .iter()
                    .for_each(|a| a.record(&mut pass, step as u32));
                continue;
            }
            // g ← (g_r + acc) / (N·K), acc ← 0; clipping; the update
            let launches = self
                .launches
                .average
                .iter()
                .chain(&params.clip)
                .chain(&work.update);
            launches.for_each(|a| a.record(&mut pass, step as u32));
        }
        gpu.queue.submit([encoder.finish()]);
        Ok(())
    }
}
