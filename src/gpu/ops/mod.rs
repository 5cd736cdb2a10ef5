//! Each kernel run once on host data, for tests against CPU references and for benchmarks.
//! Training does not use these: it records the same kernels into one submission per group of
//! batches (see `src/engine/step.rs`).

mod matmul;

pub use matmul::{
    Layout, MatmulShape, matmul, matmul_on, time_matmul, time_matmul_on, try_matmul_on,
};

use crate::error::Result;
use crate::gpu::bindings::{
    ActBackwardBindings, GatherBindings, LossFusedBindings, LossGradBindings, LossReduceBindings,
    UpdateBindings,
};
use crate::gpu::{
    ActDims, Batch, FUSED_LOSS_ROWS, GatherDims, Gpu, LossDims, MAX_LOSS_COLS, Slice,
    WIDE_LOSS_COLS,
};
use crate::{Activation, Loss, Optimizer, Sgd};

/// Runs `activation.wgsl`'s backward once: given the layer output `a` and its gradient `d`
/// (both `[rows, cols]`), returns `(dZ, db)`.
pub fn activation_backward(
    gpu: &Gpu,
    rows: usize,
    cols: usize,
    act: Activation,
    a: &[f32],
    d: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    crate::engine::loop_limit::check(gpu, || "the rows".into(), rows)?;
    let a_buf = gpu.upload("a", a)?;
    let d_buf = gpu.upload("d", d)?;
    let db = gpu.storage("db", cols as u64 * 4)?;
    let dims = ActDims {
        rows: rows as u32,
        cols: cols as u32,
        act: act.code(),
        _pad: 0,
    };
    let uniform = gpu.uniform("activation", &dims);
    let launch = gpu.kernels.act_backward_dispatch(
        &gpu.device,
        gpu.uses_cpu_kernels(),
        &dims,
        &ActBackwardBindings {
            dims: Slice::all(&uniform),
            a: Slice::all(&a_buf),
            d: Slice::all(&d_buf),
            db: Slice::all(&db),
        },
    );
    run(gpu, &[&launch])?;
    Ok((
        gpu.read_f32(&d_buf, 0, rows * cols, "reading dZ")?,
        gpu.read_f32(&db, 0, cols, "reading db")?,
    ))
}

/// What the loss kernels return for one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput {
    /// Gradient of the batch loss with respect to the outputs, `[rows, cols]`.
    pub grad: Vec<f32>,
    /// Loss of each row.
    pub row_loss: Vec<f32>,
    /// 1 where the row's first maximum is its label (class labels only), else 0.
    pub row_correct: Vec<f32>,
    /// Mean loss of the batch, from the fixed-order tree reduction.
    pub batch_loss: f32,
    /// Correct rows in the batch.
    pub batch_correct: f32,
}

/// One batch for the loss kernels: outputs `y [rows, cols]` and targets `t`, class labels (one
/// per row) when `class_labels`, else float targets `[rows, t_cols]`.
#[derive(Debug, Clone, Copy)]
pub struct LossCase<'a> {
    /// The loss.
    pub loss: Loss,
    /// Rows of the batch.
    pub rows: usize,
    /// Outputs per row.
    pub cols: usize,
    /// The model's outputs.
    pub y: &'a [f32],
    /// The targets.
    pub t: &'a [f32],
    /// Whether `t` holds class labels.
    pub class_labels: bool,
    /// Target columns (1 for labels, or one float target broadcast to every output).
    pub t_cols: usize,
}

/// The buffers of one run of the loss kernels.
struct LossRun {
    dims: wgpu::Buffer,
    y: wgpu::Buffer,
    t: wgpu::Buffer,
    dy: wgpu::Buffer,
    row_stats: wgpu::Buffer,
    stats: wgpu::Buffer,
    table: wgpu::Buffer,
    /// The bias gradient `loss_grad_reduce` writes.
    db: wgpu::Buffer,
    rows: usize,
    cols: usize,
}

impl LossRun {
    fn new(gpu: &Gpu, c: &LossCase<'_>, act: Activation) -> Result<Self> {
        Ok(LossRun {
            dims: gpu.uniform(
                "loss",
                &LossDims {
                    rows: c.rows as u32,
                    cols: c.cols as u32,
                    kind: c.loss.code(),
                    class_labels: u32::from(c.class_labels),
                    t_cols: c.t_cols as u32,
                    act: act.code(),
                    positions: 1,
                    _pad: 0,
                },
            ),
            y: gpu.upload("y", c.y)?,
            t: gpu.upload("t", c.t)?,
            dy: gpu.storage("dy", (c.rows * c.cols) as u64 * 4)?,
            row_stats: gpu.storage("row stats", c.rows as u64 * 8)?,
            stats: gpu.storage("stats", 8)?,
            table: batch_entry(gpu, 0, c.rows),
            db: gpu.storage("db", c.cols as u64 * 4)?,
            rows: c.rows,
            cols: c.cols,
        })
    }

    /// The bindings both loss launches start with: dimensions, outputs, targets, gradient.
    fn inputs(&self) -> [Slice<'_>; 4] {
        [
            Slice::all(&self.dims),
            Slice::all(&self.y),
            Slice::all(&self.t),
            Slice::all(&self.dy),
        ]
    }

    /// Reads the results back (the per-row statistics only where `rows_written`).
    fn output(&self, gpu: &Gpu, rows_written: bool) -> Result<LossOutput> {
        let per_row = if rows_written {
            gpu.read_f32(&self.row_stats, 0, 2 * self.rows, "reading row losses")?
        } else {
            Vec::new()
        };
        let batch = gpu.read_f32(&self.stats, 0, 2, "reading the batch loss")?;
        Ok(LossOutput {
            grad: gpu.read_f32(&self.dy, 0, self.rows * self.cols, "reading dY")?,
            row_loss: per_row.iter().step_by(2).copied().collect(),
            row_correct: per_row.iter().skip(1).step_by(2).copied().collect(),
            batch_loss: batch[0],
            batch_correct: batch[1],
        })
    }
}

/// Runs `loss.wgsl` (`loss_grad` or, for rows wider than 4 096 outputs, `loss_grad_wide`,
/// then `reduce`) on one batch.
///
/// # Errors
/// [`Error::Config`](crate::Error::Config) for rows wider than [`MAX_LOSS_COLS`], which no
/// model has.
pub fn loss(gpu: &Gpu, case: &LossCase<'_>) -> Result<LossOutput> {
    if case.cols > MAX_LOSS_COLS {
        return Err(crate::Error::config(
            "loss",
            format!("{} outputs; it takes at most {MAX_LOSS_COLS}", case.cols),
        ));
    }
    let b = LossRun::new(gpu, case, Activation::Linear)?;
    let [dims, y, t, dy] = b.inputs();
    let bindings = LossGradBindings {
        dims,
        y,
        t,
        dy,
        row_stats: Slice::all(&b.row_stats),
    };
    let grad_launch = gpu
        .kernels
        .loss_grad_dispatch(&gpu.device, case.rows, case.cols, &bindings);
    let bindings = LossReduceBindings {
        batch: Slice::all(&b.table),
        rows_in: Slice::all(&b.row_stats),
        stats: Slice::all(&b.stats),
    };
    let reduce =
        gpu.kernels
            .loss_reduce
            .dispatch_per_batch(&gpu.device, &bindings.slices(), (1, 1));
    run(gpu, &[&grad_launch, &reduce])?;
    b.output(gpu, true)
}

/// Runs `loss.wgsl`'s `loss_grad_reduce`: for batches of at most 64 rows of at most 4 096
/// outputs, [`loss`] followed
/// by [`activation_backward`] of the outputs `y` under `act`, in one launch. Returns the
/// loss output with `grad` = dZ and without per-row statistics, and the bias gradient.
pub fn loss_fused(
    gpu: &Gpu,
    case: &LossCase<'_>,
    act: Activation,
) -> Result<(LossOutput, Vec<f32>)> {
    if case.rows > FUSED_LOSS_ROWS {
        return Err(crate::Error::config(
            "loss_fused",
            format!("{} rows; it takes at most {FUSED_LOSS_ROWS}", case.rows),
        ));
    }
    if case.cols > WIDE_LOSS_COLS {
        // Training never fuses wide rows (their loss sums in another order).
        return Err(crate::Error::config(
            "loss_fused",
            format!("{} outputs; it takes at most {WIDE_LOSS_COLS}", case.cols),
        ));
    }
    let b = LossRun::new(gpu, case, act)?;
    let [dims, y, t, dy] = b.inputs();
    let bindings = LossFusedBindings {
        dims,
        y,
        t,
        dy,
        batch: Slice::all(&b.table),
        stats: Slice::all(&b.stats),
        db: Slice::all(&b.db),
    };
    let launch = gpu
        .kernels
        .loss_fused
        .dispatch_per_batch(&gpu.device, &bindings.slices(), (1, 1));
    run(gpu, &[&launch])?;
    let db = gpu.read_f32(&b.db, 0, case.cols, "reading db")?;
    Ok((b.output(gpu, false)?, db))
}

/// Runs `gather.wgsl`: rows `perm[start .. start + rows]` of `x [_, features]` and
/// `t [_, t_cols]`.
#[allow(clippy::too_many_arguments)] // one argument per kernel binding and dimension
pub fn gather(
    gpu: &Gpu,
    x: &[f32],
    features: usize,
    t: &[f32],
    t_cols: usize,
    perm: &[u32],
    start: usize,
    rows: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let x_buf = gpu.upload("x", x)?;
    let t_buf = gpu.upload("t", t)?;
    let perm_buf = gpu.upload("perm", perm)?;
    let xb = gpu.storage("xb", (rows * features) as u64 * 4)?;
    let tb = gpu.storage("tb", (rows * t_cols) as u64 * 4)?;
    let dims = GatherDims {
        features: features as u32,
        t_cols: t_cols as u32,
        _pad: [0; 2],
    };
    let uniform = gpu.uniform("gather", &dims);
    let table = batch_entry(gpu, start, rows);
    let launch = gpu.kernels.gather_dispatch(
        &gpu.device,
        &dims,
        rows,
        &GatherBindings {
            batch: Slice::all(&table),
            dims: Slice::all(&uniform),
            perm: Slice::all(&perm_buf),
            x: Slice::all(&x_buf),
            t: Slice::all(&t_buf),
            xb: Slice::all(&xb),
            tb: Slice::all(&tb),
        },
    );
    run(gpu, &[&launch])?;
    Ok((
        gpu.read_f32(&xb, 0, rows * features, "reading xb")?,
        gpu.read_f32(&tb, 0, rows * t_cols, "reading tb")?,
    ))
}

/// Runs `sgd.wgsl` once on weights `w`, gradients `g` and momentum `v` (all the same length);
/// returns the new `(w, v)`.
pub fn sgd(gpu: &Gpu, opt: &Sgd, w: &[f32], g: &[f32], v: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
    let (w, mut slots) = update(gpu, opt, 1, w, g, &[v.to_vec()])?;
    Ok((w, slots.remove(0)))
}

/// Runs `optimizer`'s update kernel once, as the update that makes iteration `iteration`, on
/// weights `w`, gradients `g` and one vector per slot of its kernel (all the same length);
/// returns the new weights and slots.
pub fn update(
    gpu: &Gpu,
    optimizer: &dyn Optimizer,
    iteration: u64,
    w: &[f32],
    g: &[f32],
    slots: &[Vec<f32>],
) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
    // The kernel updates whole vec4s: pad with zeros, which stay zero.
    let padded = |x: &[f32]| {
        let mut p = x.to_vec();
        p.resize(x.len().next_multiple_of(4).max(4), 0.0);
        p
    };
    let len = w.len().next_multiple_of(4);
    let w_buf = gpu.upload("w", &padded(w))?;
    let g_buf = gpu.upload("g", &padded(g))?;
    let slot_bufs: Vec<wgpu::Buffer> = slots
        .iter()
        .map(|v| gpu.upload("slot", &padded(v)))
        .collect::<Result<_>>()?;
    let uniform = gpu.uniform_bytes("optimizer", &optimizer.uniform(len));
    let values = optimizer.step_values(iteration, optimizer.learning_rate());
    let step = gpu.uniform_bytes("step", bytemuck::cast_slice(&values));
    let bindings = UpdateBindings {
        uniform: Slice::all(&uniform),
        params: Slice::all(&w_buf),
        grads: Slice::all(&g_buf),
        slots: slot_bufs.iter().map(Slice::all).collect(),
        step: Slice::all(&step),
    };
    let launch = gpu
        .kernels
        .update(&gpu.device, optimizer)
        .dispatch_per_batch(
            &gpu.device,
            &bindings.slices(),
            crate::optim::update_grid(len),
        );
    run(gpu, &[&launch])?;
    let slots = slot_bufs
        .iter()
        .zip(slots)
        .map(|(b, v)| gpu.read_f32(b, 0, v.len(), "reading a slot"))
        .collect::<Result<_>>()?;
    Ok((gpu.read_f32(&w_buf, 0, w.len(), "reading w")?, slots))
}

/// Clips the gradient tensors `tensors` as `clipping` asks, with `clip.wgsl` on the GPU (each
/// tensor at a 64-float boundary of one flat buffer, as a model's are); returns them clipped.
/// `shards` above 1 clips as that many ranks of a distributed run do, each its own shard of
/// the flat buffer (cut as a distributed run cuts it, tensors split at multiples of 64): all
/// shards' block sums first, then each shard's scaling.
pub fn clip(
    gpu: &Gpu,
    clipping: crate::Clipping,
    tensors: &[Vec<f32>],
    shards: usize,
) -> Result<Vec<Vec<f32>>> {
    let mut flat = Vec::new();
    let mut table = Vec::new();
    for t in tensors {
        table.push([flat.len() as u32, t.len() as u32]);
        flat.extend_from_slice(t);
        flat.resize(flat.len().next_multiple_of(64), 0.0);
    }
    let g = gpu.upload("gradients", &flat)?;
    let mut launches = Vec::new();
    for shard in crate::engine::shards(flat.len(), shards.max(1)) {
        if let Some(c) = crate::gpu::clip_launches(gpu, clipping, &table, &g, &[shard])? {
            launches.push((shard, c));
        }
    }
    // Every shard's block sums, as the ranks' all-gather brings them.
    let mut blocks = vec![0f32; flat.len() / 64];
    for ((first, len), c) in &launches {
        run(gpu, &c.blocks.iter().collect::<Vec<_>>())?;
        let mine = gpu.read_f32(&c.block_sums, 0, blocks.len(), "reading block sums")?;
        let own = first / 64..(first + len) / 64;
        blocks[own.clone()].copy_from_slice(&mine[own]);
    }
    for (_, c) in &launches {
        gpu.write(&c.block_sums, 0, bytemuck::cast_slice(&blocks));
        run(gpu, &c.scale.iter().collect::<Vec<_>>())?;
    }
    let back = gpu.read_f32(&g, 0, flat.len(), "reading gradients")?;
    Ok(table
        .iter()
        .map(|&[first, len]| back[first as usize..(first + len) as usize].to_vec())
        .collect())
}

/// A one-entry batch table.
fn batch_entry(gpu: &Gpu, start: usize, rows: usize) -> wgpu::Buffer {
    gpu.uniform(
        "batch",
        &Batch {
            start: start as u32,
            rows: rows as u32,
            step: 0,
            first_position: 0,
        },
    )
}

/// Records the launches into one pass, submits, and waits.
fn run(gpu: &Gpu, launches: &[&crate::gpu::Dispatch]) -> Result<()> {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for l in launches {
            l.record(&mut pass, 0);
        }
    }
    let index = gpu.queue.submit([encoder.finish()]);
    gpu.wait(Some(index), "a kernel")
}

/// Runs `dropout.wgsl`'s Philox4x32-10 on each `(counter, key)`: the four words per pair,
/// for the generator's known-answer tests.
pub fn philox(gpu: &Gpu, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>> {
    let packed: Vec<u32> = inputs
        .iter()
        .flat_map(|(c, k)| c.iter().chain(k).copied().chain([0, 0]))
        .collect();
    let counters = gpu.upload("philox counters", &packed)?;
    let words = gpu.storage("philox words", (inputs.len().max(1) * 16) as u64)?;
    let kernel = gpu.kernels.layer(
        &gpu.device,
        crate::gpu::layer_kernels::LayerKernel::PhiloxWords,
    );
    let launch = kernel.dispatch(
        &gpu.device,
        &[Slice::all(&counters), Slice::all(&words)],
        crate::gpu::grid(inputs.len(), 64),
    );
    run(gpu, &[&launch])?;
    let bytes = gpu.read(&words, 0, inputs.len() as u64 * 16, "reading philox words")?;
    let flat: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
    Ok(flat
        .chunks_exact(4)
        .map(|w| [w[0], w[1], w[2], w[3]])
        .collect())
}
