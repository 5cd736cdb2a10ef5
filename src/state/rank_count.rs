//! A state saved by a run on N ranks, restated for the same one-rank run on M ranks (docs/MPI.md,
//! "Resuming on another rank count").
//!
//! N ranks with global batch B accumulating A micro-batches each are, operation for operation,
//! one rank with batch B/N accumulating N·A: a global step is N consecutive micro-batches of
//! that run, summed in their order (`src/engine/reduce.rs`). So a state at a step boundary of
//! M ranks is the same state there: only the counts of steps change (a step of N ranks is N/M
//! steps of M), the per-step statistics of the epoch in progress are regrouped, and the
//! gradient accumulator, which a rank keeps only when it accumulates, is started empty or
//! dropped (it is empty at an update boundary).

use super::{BATCH_STATS, OneRankRun, Tensor, TrainState};
use crate::error::{Error, Result};
use std::path::Path;

/// The slot of the gradient accumulator, `optimizer.<param>.gradient_accumulator`.
pub(crate) const ACCUMULATOR: &str = ".gradient_accumulator";

/// `state`, saved by `from` ranks, as `run.ranks` ranks continue it in `run` (the same
/// one-rank run, checked by the fingerprints). `accumulators` are the accumulator slots the
/// run keeps (names and shapes; none when each rank updates at every step). `path` names the
/// backup for errors.
pub(crate) fn restate(
    mut state: TrainState,
    from: usize,
    run: OneRankRun,
    accumulators: &[(String, Vec<usize>)],
    path: &Path,
) -> Result<TrainState> {
    let to = run.ranks;
    if from == to {
        return Ok(state);
    }
    let meta = &mut state.meta;
    let overflow = || Error::corrupt(path, "its step counts overflow in micro-batches");
    let micro = |steps: u64| steps.checked_mul(from as u64).ok_or_else(overflow);
    let done = micro(meta.position.step as u64)?;
    let (global, optimizer) = (
        micro(meta.position.global_step)?,
        micro(meta.optimizer_steps)?,
    );
    for count in [done, global, optimizer] {
        if !count.is_multiple_of(to as u64) {
            let mut counts = run.rank_counts();
            counts.retain(|&d| done.is_multiple_of(d) && global.is_multiple_of(d));
            return Err(Error::RankCountMisaligned {
                from,
                to,
                epoch: meta.position.epoch,
                micro_batches: done,
                counts,
            });
        }
    }
    meta.position.step = usize::try_from(done / to as u64).map_err(|_| overflow())?;
    meta.position.global_step = global / to as u64;
    meta.optimizer_steps = optimizer / to as u64;
    state.batch_stats = regroup(&state.batch_stats, from, run);

    // The accumulator: kept only by a run that accumulates on each rank.
    let mut slots = Vec::with_capacity(state.slots.len());
    for slot in std::mem::take(&mut state.slots) {
        let wanted = accumulators.iter().any(|(name, _)| *name == slot.name);
        if slot.name.ends_with(ACCUMULATOR) && !wanted {
            if slot.data.iter().any(|v| v.to_bits() != 0) {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "`{}` holds gradients at an update boundary of {to} ranks, where it is empty",
                        slot.name
                    ),
                ));
            }
            continue;
        }
        slots.push(slot);
    }
    for (name, shape) in accumulators {
        if !slots.iter().any(|s| s.name == *name) {
            slots.push(Tensor {
                name: name.clone(),
                shape: shape.clone(),
                data: vec![0.0; shape.iter().product()],
            });
        }
    }
    state.slots = slots;
    Ok(state)
}

/// The epoch's per-step `(mean loss, correct)` of `from` micro-batches each, as steps of
/// `run.ranks`: each step's loss goes to each of its micro-batches and its count to the
/// first; then every `run.ranks` of them make a step, whose loss is their mean weighted by
/// their rows (the last micro-batch of an epoch may be short) and whose count is their sum.
fn regroup(stats: &Tensor, from: usize, run: OneRankRun) -> Tensor {
    let micro: Vec<(f64, f64)> = stats
        .data
        .chunks_exact(2)
        .flat_map(|pair| {
            (0..from).map(move |k| {
                let correct = if k == 0 { f64::from(pair[1]) } else { 0.0 };
                (f64::from(pair[0]), correct)
            })
        })
        .collect();
    let data: Vec<f32> = micro
        .chunks_exact(run.ranks)
        .enumerate()
        .flat_map(|(step, group)| {
            let (mut loss, mut rows, mut correct) = (0f64, 0f64, 0f64);
            for (k, m) in group.iter().enumerate() {
                let r = run.rows_of(step * run.ranks + k) as f64;
                loss += m.0 * r;
                rows += r;
                correct += m.1;
            }
            [(loss / rows.max(1.0)) as f32, correct as f32]
        })
        .collect();
    Tensor {
        name: BATCH_STATS.into(),
        shape: vec![data.len() / 2, 2],
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{History, Position, StateMeta};

    fn state(step: usize, stats: Vec<f32>, slots: Vec<Tensor>) -> TrainState {
        TrainState {
            params: Vec::new(),
            slots,
            meta: StateMeta {
                position: Position {
                    epoch: 3,
                    step,
                    global_step: 30 + step as u64,
                },
                seed: 1,
                optimizer_steps: 30 + step as u64,
                learning_rate: 0.1,
                history: History::default(),
                callbacks: Default::default(),
                events: Vec::new(),
                stop_training: false,
            },
            batch_stats: Tensor {
                name: BATCH_STATS.into(),
                shape: vec![step, 2],
                data: stats,
            },
            callback_tensors: Vec::new(),
        }
    }

    /// A run on `ranks` ranks of 12-row micro-batches, `per_update` per update, 48 per epoch.
    fn run(ranks: usize, per_update: u64) -> OneRankRun {
        OneRankRun {
            ranks,
            micro_batch: 12,
            per_update,
            samples: 12 * 48,
        }
    }

    #[test]
    fn a_short_last_micro_batch_weighs_its_rows() {
        // 41 samples: micro-batches of 12, 12, 12 and 5 rows; saved at the epoch's end.
        let mut s = state(4, vec![1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 1.0], Vec::new());
        s.meta.position.global_step = 40;
        s.meta.optimizer_steps = 40;
        let two = OneRankRun {
            samples: 41,
            ..run(2, 2)
        };
        let merged = restate(s, 1, two, &[], Path::new("b")).unwrap();
        let want = ((12.0 * 2.0 + 5.0 * 4.0) / 17.0) as f32;
        assert_eq!(merged.batch_stats.data, vec![1.0, 3.0, want, 4.0]);
    }

    fn slot(name: &str, v: f32) -> Tensor {
        Tensor {
            name: name.into(),
            shape: vec![2],
            data: vec![v; 2],
        }
    }

    #[test]
    fn steps_and_statistics_are_restated_in_micro_batches() {
        let here = Path::new("b");
        // 2 steps of 4 ranks are 4 steps of 2 ranks and 8 of one.
        let s = state(2, vec![1.0, 8.0, 3.0, 4.0], Vec::new());
        let two = restate(s.clone(), 4, run(2, 4), &[], here).unwrap();
        assert_eq!(two.meta.position.step, 4);
        assert_eq!(two.meta.position.global_step, 64);
        assert_eq!(two.meta.optimizer_steps, 64);
        assert_eq!(two.batch_stats.shape, vec![4, 2]);
        assert_eq!(
            two.batch_stats.data,
            vec![1.0, 8.0, 1.0, 0.0, 3.0, 4.0, 3.0, 0.0]
        );
        // Back to 4 ranks: the same statistics.
        let four = restate(two, 2, run(4, 4), &[], here).unwrap();
        assert_eq!(four.meta.position, s.meta.position);
        assert_eq!(four.batch_stats, s.batch_stats);
        // Merged steps: the mean loss, the summed counts.
        let s = state(4, vec![1.0, 8.0, 2.0, 4.0, 0.5, 1.0, 0.5, 1.0], Vec::new());
        let merged = restate(s, 1, run(2, 4), &[], here).unwrap();
        assert_eq!(merged.batch_stats.data, vec![1.5, 12.0, 0.5, 2.0]);
        assert_eq!(merged.meta.position.step, 2);
    }

    #[test]
    fn a_step_boundary_of_the_new_count_is_required() {
        // 3 steps of one rank: not a step of 2 ranks; 3 and 33 micro-batches, 6 per update.
        let s = state(3, vec![0.0; 6], Vec::new());
        let err = restate(s, 1, run(2, 6), &[], Path::new("b")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("3 micro-batches"), "{text}");
        assert!(text.contains("[1, 3]"), "{text}");
    }

    #[test]
    fn the_accumulator_is_dropped_when_empty_and_started_empty_when_wanted() {
        let here = Path::new("b");
        let acc = "optimizer.w.gradient_accumulator";
        let wanted = [(acc.to_string(), vec![2])];
        let s = state(2, vec![0.0; 4], vec![slot("optimizer.w.momentum", 1.0)]);
        let two = restate(s, 4, run(2, 4), &wanted, here).unwrap();
        assert_eq!(two.slots[1], slot(acc, 0.0));
        let four = restate(two.clone(), 2, run(4, 4), &[], here).unwrap();
        assert_eq!(four.slots, vec![slot("optimizer.w.momentum", 1.0)]);
        // Gradients where there can be none: damaged.
        let mut full = two;
        full.slots[1] = slot(acc, 0.5);
        let err = restate(full, 2, run(4, 4), &[], here).unwrap_err();
        assert!(matches!(err, Error::CorruptCheckpoint { .. }), "{err}");
    }

    fn fingerprint(batch: usize, ranks: Option<usize>, accumulation: u32) -> crate::Fingerprint {
        let accumulated = match accumulation {
            1 => String::new(),
            a => format!(" accumulated over {a} steps"),
        };
        crate::Fingerprint {
            layers: vec![(3, 2, "relu".into())],
            tensors: Vec::new(),
            model: None,
            loss: "mse".into(),
            optimizer: format!("sgd(lr=0.1){accumulated}"),
            batch_size: batch,
            shuffle: true,
            data_len: 64,
            data_sha256: "0".repeat(64),
            seed: 7,
            ranks,
            accumulation: ranks.map(|_| accumulation),
        }
    }

    #[test]
    fn another_rank_count_compares_the_one_rank_run() {
        let four = fingerprint(64, Some(4), 1);
        // The same run on 2 ranks and on one: nothing differs.
        assert_eq!(
            four.differences(&fingerprint(32, Some(2), 2)),
            Vec::<String>::new()
        );
        assert_eq!(
            four.differences(&fingerprint(16, Some(1), 4)),
            Vec::<String>::new()
        );
        // The same global batch on 2 ranks is another run: the arguments that resume it.
        let lines = four.differences(&fingerprint(64, Some(2), 1));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0]
                .ends_with("on 2 rank(s) it resumes exactly with --batch-size 32 --accumulate 2"),
            "{lines:?}"
        );
        // 3 ranks cannot share 4 micro-batches: the counts that can.
        let lines = four.differences(&fingerprint(48, Some(3), 1));
        assert!(
            lines[0]
                .ends_with("shares its 4 micro-batches per update and its 4 per epoch: [1, 2, 4]"),
            "{lines:?}"
        );
        // Another optimizer is still another run.
        let mut other = fingerprint(32, Some(2), 2);
        other.optimizer = other.optimizer.replace("0.1", "0.2");
        assert_eq!(four.differences(&other).len(), 1);
        // A version 5 backup (no rank count): the global batch and the whole text, as before.
        let old = fingerprint(64, None, 1);
        assert_eq!(
            old.differences(&fingerprint(64, Some(2), 1)),
            Vec::<String>::new()
        );
        assert_eq!(old.differences(&fingerprint(32, Some(2), 2)).len(), 2);
    }
}
