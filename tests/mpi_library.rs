//! A library caller's distributed `fit` on 2 ranks (`--features mpi`; needs `mpirun`): an error
//! on one rank alone ends every rank's `fit` within seconds, naming the rank, wherever it
//! happens (in the middle of training, or after the last exchange), or when one rank stops
//! alone (the ranks are told they are out of step); ranks that differ in what
//! they must run alike (the epochs, the validation data, a callback) are refused before
//! training, naming the difference; a model with BatchNormalization is refused; after a
//! failed fit, whose optimizer slots were sharded over the ranks, the model refuses them. Each case runs this test binary's `rank` test under
//! `mpirun`.
#![cfg(feature = "mpi")]

mod mpi_support;

use mpi_support::{line, one_test_at_a_time};
use std::time::Duration;
use wgfit::callbacks::LambdaCallback;
use wgfit::{
    Activation, Callback, Dataset, Dense, EarlyStopping, Error, FitOptions, Loss, Sequential, Sgd,
    Targets,
};

/// 256 rows of 8 features in 3 classes, the same on every rank (`shift` moves the inputs).
fn data(rows: usize, shift: f32) -> Dataset {
    let x = (0..rows * 8)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) + shift)
        .collect();
    let labels = (0..rows).map(|i| (i % 3) as u32).collect();
    Dataset::new(x, 8, Targets::Classes(labels)).unwrap()
}

/// One rank of a case (`CASE`), under `mpirun`: prints `rank R: ok` or `rank R: error: …`.
#[test]
#[ignore = "run under mpirun by the other tests in this file"]
fn rank() {
    let mpi = wgfit::distributed::Mpi::init().unwrap();
    let rank = mpi.rank();
    let case = std::env::var("CASE").unwrap_or_default();
    let mut model = Sequential::new(8).add(Dense::new(16).activation(Activation::Relu));
    if case == "batchnorm" {
        model = model.add(wgfit::BatchNormalization::new());
    }
    let mut model = model.add(Dense::new(3)).seed(3);
    // Momentum: a slot, sharded over the ranks while training.
    model
        .compile(Loss::CrossEntropy, Sgd::new(0.05).momentum(0.9))
        .unwrap();
    let fails_here = |r: usize| rank == r;
    let mut fail_at_batch = LambdaCallback::new().on_train_batch_end(move |ctx, _| {
        if case_is("batch") && fails_here(1) && ctx.position().global_step == 5 {
            return Err(Error::Callback {
                callback: "test".into(),
                reason: "rank 1 fails alone at step 5".into(),
            });
        }
        Ok(())
    });
    let mut fail_at_end = LambdaCallback::new().on_train_end(move |_, _| {
        if case_is("end") && fails_here(0) {
            return Err(Error::Callback {
                callback: "test".into(),
                reason: "rank 0 fails alone after training".into(),
            });
        }
        Ok(())
    });
    // A caller's own callback that stops one rank alone (the ranks then reach different
    // exchanges).
    let mut stop_one = LambdaCallback::new().on_epoch_end(move |ctx, epoch, _| {
        if case_is("stop") && fails_here(0) && epoch == 1 {
            ctx.stop_training();
        }
        Ok(())
    });
    let mut early = EarlyStopping::new("val_loss").patience(2);
    let mut callbacks: Vec<&mut dyn Callback> =
        vec![&mut fail_at_batch, &mut fail_at_end, &mut stop_one];
    if case == "callback" && rank == 1 {
        callbacks.push(&mut early);
    }
    let options = FitOptions {
        epochs: if case == "epochs" && rank == 1 { 7 } else { 6 },
        batch_size: 32,
        validation_data: Some(data(
            64,
            if case == "validation" && rank == 1 {
                0.5
            } else {
                0.0
            },
        )),
        distributed: Some(mpi.group()),
        ..Default::default()
    };
    match model.fit(&data(256, 0.0), options.clone(), &mut callbacks) {
        Ok(_) => println!("rank {rank}: ok"),
        Err(e) => println!("rank {rank}: error: {e}"),
    }
    // A second fit on the same data keeps the first's workspace (the data stays on the GPU)
    // though the first replaced the slot buffers twice (sharded, then whole).
    if case == "none" {
        let again = model
            .fit(&data(256, 0.0), options.clone(), &mut [])
            .map(|_| ());
        let slots = model.optimizer_slots().map(|s| s.len());
        println!("second fit of rank {rank}: {again:?}, slots {slots:?}");
    }
    // After a failed fit each rank holds only its shard of the optimizer state: refused,
    // when read and when trained on, rather than resumed with zeros in place of the rest.
    if case == "batch" {
        let slots = model.optimizer_slots().map(|s| s.len());
        println!("slots of rank {rank}: {slots:?}");
        let again = model.fit(&data(256, 0.0), options, &mut []).map(|_| ());
        println!("refit of rank {rank}: {again:?}");
    }
}

fn case_is(name: &str) -> bool {
    std::env::var("CASE").is_ok_and(|c| c == name)
}

/// Runs `case` on 2 ranks (see [`mpi_support::run_ranks`]).
fn run(case: &str) -> (String, Duration) {
    mpi_support::run_ranks(case, 2)
}

/// BatchNormalization's statistics over each rank's share would make N ranks train otherwise
/// than one: refused on every rank, before training.
#[test]
fn a_model_with_batch_normalization_is_refused_on_every_rank() {
    let _one = one_test_at_a_time();
    let (out, _) = run("batchnorm");
    for r in 0..2 {
        let l = line(&out, r);
        assert!(
            l.contains("error") && l.contains("BatchNormalization"),
            "{l}"
        );
    }
}

#[test]
fn the_ranks_train_alike_and_both_succeed() {
    let _one = one_test_at_a_time();
    let (out, _) = run("none");
    assert_eq!(line(&out, 0), "ok", "{out}");
    assert_eq!(line(&out, 1), "ok", "{out}");
    for r in 0..2 {
        assert!(
            out.contains(&format!("second fit of rank {r}: Ok(()), slots Ok(4)")),
            "{out}"
        );
    }
}

#[test]
fn an_error_on_one_rank_in_training_ends_every_ranks_fit() {
    let _one = one_test_at_a_time();
    let (out, took) = run("batch");
    assert!(line(&out, 1).contains("rank 1 fails alone"), "{out}");
    let other = line(&out, 0);
    assert!(
        other.contains("rank 1 failed") && other.contains("rank 1 fails alone"),
        "{out}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    for r in 0..2 {
        for what in ["slots", "refit"] {
            let said = out
                .lines()
                .find(|l| l.contains(&format!("{what} of rank {r}: ")))
                .unwrap_or_else(|| panic!("no {what} of rank {r} in {out}"));
            assert!(
                said.contains("OptimizerStateIncomplete { ranks: 2 }"),
                "{said}"
            );
        }
    }
}

#[test]
fn an_error_on_rank_0_after_the_last_exchange_ends_every_ranks_fit() {
    let _one = one_test_at_a_time();
    let (out, _) = run("end");
    assert!(line(&out, 0).contains("rank 0 fails alone"), "{out}");
    assert!(line(&out, 1).contains("rank 0 failed"), "{out}");
}

#[test]
fn a_rank_that_stops_alone_ends_every_ranks_fit_out_of_step() {
    let _one = one_test_at_a_time();
    let (out, _) = run("stop");
    for r in 0..2 {
        assert!(line(&out, r).contains("the ranks are out of step"), "{out}");
    }
}

#[test]
fn ranks_that_run_different_epochs_validation_or_callbacks_are_refused_before_training() {
    let _one = one_test_at_a_time();
    for (case, what) in [
        ("epochs", "epochs: rank 0 \"6\", rank 1 \"7\""),
        ("validation", "validation data"),
        ("callback", "EarlyStopping"),
    ] {
        let (out, _) = run(case);
        for r in 0..2 {
            assert!(
                out.contains(&format!("rank {r}: error: rank 1 disagrees with rank 0")),
                "case {case}: {out}"
            );
        }
        // Each rank names the difference (on the lines after its first).
        assert_eq!(out.matches(what).count(), 2, "case {case}: {out}");
    }
}
