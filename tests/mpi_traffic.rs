//! What the ranks exchange per step (`--features mpi`; needs `mpirun`), counted by the
//! `Exchange` as it hands bytes to MPI: the ordered reduce-scatter and the all-gather of the
//! summed shards move 2(N−1)/N of the gradients' bytes per rank and step, plus a fixed
//! overhead, where an all-gather of every rank's gradients moved N−1 times them; and N ranks
//! still end with the bits of one rank accumulating N micro-batches (N = 2, 3, 4).
#![cfg(feature = "mpi")]

mod mpi_support;

use mpi_support::{line, run_ranks};
use sha2::{Digest, Sha256};
use wgfit::{
    Activation, Clipping, Configured, Dataset, Dense, FitOptions, Loss, Sequential, Sgd, Targets,
};

/// Global batch: splits over 2, 3 and 4 ranks.
const BATCH: usize = 48;
/// Trainable elements: 16·64 + 64 + 64·64 + 64, each tensor a multiple of 64 (no padding).
const TRAINABLE: usize = 5248;
/// Bytes of one announcement before each exchange, and of a share's statistics.
const ANNOUNCE: usize = 256;
const STATISTICS: usize = 16;

fn data() -> Dataset {
    let rows = 4 * BATCH;
    let x = (0..rows * 16)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    let labels = (0..rows).map(|i| (i % 5) as u32).collect();
    Dataset::new(x, 16, Targets::Classes(labels)).unwrap()
}

/// The model (or, `tiny`, one Dense layer of 3 × 64 elements, fewer than one per 64 for
/// each of 4 ranks), trained for 2 epochs with batches of `batch` rows accumulated
/// `accumulate` times (SGD with momentum and global-norm clipping), on `group`'s ranks if any.
fn train(
    tiny: bool,
    batch: usize,
    accumulate: u32,
    group: Option<wgfit::distributed::Group>,
) -> Sequential {
    let model = Sequential::new(16);
    let mut model = match tiny {
        true => model.add(Dense::new(5)),
        false => model
            .add(Dense::new(64).activation(Activation::Relu))
            .add(Dense::new(64)),
    }
    .seed(3);
    let optimizer = Configured::new(Sgd::new(0.05).momentum(0.9))
        .clipping(Clipping::GlobalNorm(0.5))
        .accumulate(accumulate);
    model.compile(Loss::CrossEntropy, optimizer).unwrap();
    let options = FitOptions {
        epochs: 2,
        batch_size: batch,
        seed: 7,
        distributed: group,
        ..Default::default()
    };
    model.fit(&data(), options, &mut []).unwrap();
    model
}

/// The SHA-256 of the model's parameters' bytes, tensor after tensor.
fn digest(model: &Sequential) -> String {
    let mut hash = Sha256::new();
    for t in model.parameters().unwrap() {
        hash.update(bytemuck::cast_slice::<f32, u8>(&t.data));
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One rank, under `mpirun`: prints `rank R: steps S sent B received B sha256 H`.
#[test]
#[ignore = "run under mpirun by the other tests in this file"]
fn rank() {
    let mpi = wgfit::distributed::Mpi::init().unwrap();
    let tiny = std::env::var("CASE").is_ok_and(|c| c == "tiny");
    let model = train(tiny, BATCH, 1, Some(mpi.group()));
    let t = wgfit::distributed::timings();
    println!(
        "rank {}: steps {} sent {} received {} sha256 {}",
        mpi.rank(),
        t.steps,
        t.sent_bytes,
        t.received_bytes,
        digest(&model)
    );
}

/// The value after `word` in `line`.
fn field(line: &str, word: &str) -> String {
    let mut words = line.split_whitespace();
    words.find(|w| *w == word);
    words
        .next()
        .unwrap_or_else(|| panic!("no {word} in {line}"))
        .into()
}

#[test]
fn each_rank_sends_and_receives_two_n_minus_one_over_n_of_the_gradients_per_step() {
    let gradients = TRAINABLE * 4;
    for ranks in [2, 3, 4] {
        let (out, _) = run_ranks(&ranks.to_string(), ranks);
        let one_rank = digest(&train(false, BATCH / ranks, ranks as u32, None));
        // The widest shard, in elements: shards are cut at multiples of 64 elements.
        let width = (TRAINABLE / 64).div_ceil(ranks) * 64;
        let expected = (ranks - 1) * (2 * ANNOUNCE + STATISTICS + 2 * 4 * width);
        let ring = 2 * (ranks - 1) * gradients / ranks;
        for r in 0..ranks {
            let l = line(&out, r);
            let steps: usize = field(&l, "steps").parse().unwrap();
            assert_eq!(steps, 8, "{ranks} ranks: {l}");
            for way in ["sent", "received"] {
                let bytes: usize = field(&l, way).parse().unwrap();
                assert_eq!(
                    bytes,
                    steps * expected,
                    "{ranks} ranks, rank {r}, {way}: {l}"
                );
            }
            let per_step = expected;
            // 2(N−1)/N of the gradients, and no more than a small fixed overhead beyond.
            assert!(per_step >= ring, "{per_step} < {ring}");
            assert!(
                per_step - ring <= (ranks - 1) * 1024,
                "{per_step} vs {ring}"
            );
            if ranks > 2 {
                assert!(per_step < (ranks - 1) * gradients, "{per_step}");
            }
            assert_eq!(
                field(&l, "sha256"),
                one_rank,
                "{ranks} ranks against one rank accumulating {ranks}"
            );
        }
    }
}

/// 192 elements over 4 ranks: shards of 0, 64, 64 and 64 elements (rank 0 owns none).
#[test]
fn a_model_smaller_than_a_shard_per_rank_trains_alike_on_four_ranks() {
    let (out, _) = run_ranks("tiny", 4);
    let one_rank = digest(&train(true, BATCH / 4, 4, None));
    for r in 0..4 {
        assert_eq!(field(&line(&out, r), "sha256"), one_rank, "rank {r}: {out}");
    }
}
