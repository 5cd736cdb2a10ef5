//! Data-parallel training over MPI (`--features mpi`; needs `mpirun`, docs/MPI.md): an N-rank
//! run gives the bits of the one-rank run that accumulates N micro-batches, on every rank,
//! and bad set-ups are clear errors.
#![cfg(feature = "mpi")]

mod mpi_support;

use mpi_support::*;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    digits_1792(dir.path());
    dir
}

/// Trains `args` on one rank with `one_extra` and on `ranks` ranks with `dp_extra`; returns
/// both output files' bytes after checking that every rank ended with the same parameters.
/// The ranks exchange each layer's gradients as its own bucket (`WGFIT_BUCKET_BYTES=0`), while
/// the backward pass of the layers before it runs: the most buckets a model can have.
fn one_and_many(
    args: &[&str],
    one_extra: &[&str],
    ranks: usize,
    dp_extra: &[&str],
) -> (Vec<u8>, Vec<u8>) {
    let dir = setup();
    one_and_many_in(&dir, TRAIN, args, one_extra, ranks, dp_extra)
}

/// [`one_and_many`] in `dir`, training `train` (the command and its data).
fn one_and_many_in(
    dir: &tempfile::TempDir,
    train: &[&str],
    args: &[&str],
    one_extra: &[&str],
    ranks: usize,
    dp_extra: &[&str],
) -> (Vec<u8>, Vec<u8>) {
    let with = |extra: &[&str], out: &str| -> Vec<String> {
        train
            .iter()
            .chain(QUIET)
            .chain(args)
            .chain(extra)
            .map(|s| s.to_string())
            .chain(["--output".into(), out.into(), "--no-backup".into()])
            .collect()
    };
    let one = with(one_extra, "one.safetensors");
    let one: Vec<&str> = one.iter().map(String::as_str).collect();
    let out = wgfit(dir.path(), &one).output().expect("run wgfit");
    assert_ok(&out);
    let many = with(dp_extra, "many.safetensors");
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let out = mpirun(dir.path(), ranks, &many)
        .env("WGFIT_BUCKET_BYTES", "0")
        .output()
        .expect("run mpirun");
    assert_ok(&out);
    let hashes = rank_hashes(&out, ranks);
    assert!(
        hashes.iter().all(|h| h == &hashes[0]),
        "ranks differ: {hashes:?}"
    );
    let read = |f: &str| std::fs::read(dir.path().join(f)).expect("output file");
    (read("one.safetensors"), read("many.safetensors"))
}

#[test]
fn two_ranks_batch_64_equal_one_rank_batch_32_accumulate_2() {
    let _one = one_test_at_a_time();
    let (one, many) = one_and_many(
        &["--epochs", "3"],
        &["--batch-size", "32", "--accumulate", "2"],
        2,
        &["--batch-size", "64"],
    );
    assert!(
        one == many,
        "2 ranks with batch 64 differ from 1 rank with batch 32 accumulating 2"
    );
}

/// A convnet from a Keras model file (Conv2D, MaxPooling2D, Dropout 0.25, Dense softmax) over 2
/// ranks: the bits of one rank accumulating 2 micro-batches, dropout masks included (they are
/// keyed by each sample's epoch position, the same in both runs).
#[test]
fn a_convnet_with_dropout_over_two_ranks_equals_one_rank_accumulating_two() {
    let _one = one_test_at_a_time();
    let model = format!(
        "{}/tests/data/keras/digits_convnet.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (one, many) = one_and_many(
        &["--model", &model, "--epochs", "2"],
        &["--batch-size", "32", "--accumulate", "2"],
        2,
        &["--batch-size", "64"],
    );
    assert!(
        one == many,
        "the convnet on 2 ranks differs from 1 rank accumulating 2"
    );
}

/// With `--accumulate K` the batch is the micro-batch: 2 ranks, batch 64, K 2 = 1 rank,
/// batch 32, accumulating 4; through Adam, a learning-rate schedule (counted in the one-rank
/// run's micro-batches) and global clipping.
#[test]
fn accumulation_schedule_and_clipping_over_two_ranks() {
    let _one = one_test_at_a_time();
    let args = [
        "--epochs",
        "2",
        "--optimizer",
        "adam",
        "--lr-schedule",
        "exponential",
        "--decay-steps",
        "7",
        "--decay-rate",
        "0.5",
        "--global-clipnorm",
        "0.5",
    ];
    let (one, many) = one_and_many(
        &args,
        &["--batch-size", "32", "--accumulate", "4"],
        2,
        &["--batch-size", "64", "--accumulate", "2"],
    );
    assert!(
        one == many,
        "2 ranks accumulating 2 differ from 1 rank accumulating 4"
    );
}

/// A GPT from Keras JSON (`tests/data/keras/gpt_small.json`: causal attention, residual
/// connections, Dropout 0.1) on character sequences over 2 ranks, with AdamW exempting
/// normalizations and biases: the bits of one rank accumulating 2 micro-batches.
#[test]
fn a_gpt_over_two_ranks_equals_one_rank_accumulating_two() {
    let _one = one_test_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("t.txt"), "the cat hid a bag. ".repeat(60)).expect("text");
    let convert = [
        "convert",
        "t.txt",
        "t.safetensors",
        "--seq-len",
        "8",
        "--stride",
        "3",
    ];
    assert_ok(&wgfit(dir.path(), &convert).output().expect("run wgfit"));
    let model = format!(
        "{}/tests/data/keras/gpt_small.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let args = [
        "--model",
        &model,
        "--epochs",
        "2",
        "--optimizer",
        "adamw",
        "--exclude-from-weight-decay",
        "gamma,beta,bias",
    ];
    let (one, many) = one_and_many_in(
        &dir,
        &["train", "--data", "t.safetensors"],
        &args,
        &["--batch-size", "16", "--accumulate", "2"],
        2,
        &["--batch-size", "32"],
    );
    assert!(
        one == many,
        "the GPT on 2 ranks differs from 1 rank accumulating 2"
    );
}

#[test]
fn three_ranks_equal_one_rank_accumulating_three() {
    let _one = one_test_at_a_time();
    // 1792 = 29·60 + 52: the last batch gives each of the 3 ranks rows (52 > 2·20).
    let (one, many) = one_and_many(
        &["--epochs", "2"],
        &["--batch-size", "20", "--accumulate", "3"],
        3,
        &["--batch-size", "60"],
    );
    assert!(one == many, "3 ranks differ from 1 rank accumulating 3");
}

#[test]
fn a_batch_that_does_not_split_is_refused() {
    let _one = one_test_at_a_time();
    let dir = setup();
    let args: Vec<&str> = TRAIN
        .iter()
        .copied()
        .chain(["--batch-size", "63", "--no-backup"])
        .collect();
    let out = mpirun(dir.path(), 2, &args).output().expect("run mpirun");
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be split over 2 ranks") && err.contains("multiple of 2"),
        "{}",
        text(&out)
    );
    // 1792 = 7·250 + 42: a last batch of 42 rows gives rank 1 (rows 125..250) nothing.
    let args: Vec<&str> = TRAIN
        .iter()
        .copied()
        .chain(["--batch-size", "250", "--no-backup"])
        .collect();
    let out = mpirun(dir.path(), 2, &args).output().expect("run mpirun");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leaves rank 1 without rows"),
        "{}",
        text(&out)
    );
}

#[test]
fn ranks_that_disagree_are_refused_naming_the_rank_and_the_difference() {
    let _one = one_test_at_a_time();
    let dir = setup();
    // MPMD: rank 0 and rank 1 get different seeds.
    let mut c = mpirun(dir.path(), 1, &[]);
    let args: Vec<&str> = TRAIN
        .iter()
        .copied()
        .chain(["--no-backup", "--seed"])
        .collect();
    c.args(&args)
        .arg("1")
        .args([":", "-np", "1", BIN])
        .args(&args)
        .arg("2");
    let out = c.output().expect("run mpirun");
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rank 1 disagrees with rank 0"),
        "{}",
        text(&out)
    );
    assert!(err.contains("seed: rank 0 1, rank 1 2"), "{}", text(&out));
}
