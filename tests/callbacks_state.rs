//! What a backup keeps of the callbacks and of the run: callbacks' states by name (two of one
//! name are refused), callbacks' tensors and states (only what a restore accepts is saved),
//! and the run's events (start, resume, fallback).

mod common;

use common::{Interrupt, data, model, options};
use wgfit::{BackupAndRestore, EarlyStopping, SaveFreq};

#[test]
fn two_stateful_callbacks_of_one_name_are_refused() {
    let err = model()
        .fit(
            &data(),
            options(1),
            &mut [
                &mut EarlyStopping::new("loss"),
                &mut EarlyStopping::new("loss"),
            ],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("two callbacks of this name"),
        "{err}"
    );
}

#[test]
fn the_backup_records_starts_resumes_and_fallbacks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let backup = || {
        BackupAndRestore::new(&dir)
            .unwrap()
            .save_freq(SaveFreq::Batches(1))
            .unwrap()
            .double_checkpoint(true)
            .delete_checkpoint(false)
    };
    for at in [7, 20] {
        // Run 1 starts and is killed at 7; run 2 resumes at 7 and is killed at 20.
        let mut kill = Interrupt {
            at_global_step: Some(at),
            at_epoch_begin: None,
        };
        model()
            .fit(&data(), options(3), &mut [&mut backup(), &mut kill])
            .unwrap_err();
    }
    // Damage latest.json's weights: the next run falls back to previous.json.
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("latest.json")).unwrap()).unwrap();
    let weights = dir.join(sidecar["weights"]["file"].as_str().unwrap());
    let previous: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("previous.json")).unwrap()).unwrap();
    let fallback = previous["global_step"].as_u64().unwrap();
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let mut b = backup();
    model().fit(&data(), options(3), &mut [&mut b]).unwrap();
    drop(b);
    let report = wgfit::checkpoint::inspect(&dir).unwrap();
    let events = &report.sidecars[0].state.as_ref().unwrap().events;
    let seen: Vec<(wgfit::EventKind, u64)> =
        events.iter().map(|e| (e.kind, e.global_step)).collect();
    use wgfit::EventKind::*;
    // Run 3 falls back to the previous state, which run 2 saved (the last but one it
    // committed; the writer may have skipped saves): its events, and the fallback.
    assert!(fallback > 7 && fallback < 20, "{fallback}");
    assert_eq!(seen, [(Start, 0), (Resume, 7), (Fallback, fallback)]);
    assert_eq!(
        (events[1].epoch, events[1].step, events[1].steps),
        (0, 7, 12)
    );
}

/// A callback whose state tensors a restore would not accept.
struct BadTensors(Vec<wgfit::Tensor>);

impl wgfit::Callback for BadTensors {
    fn name(&self) -> &str {
        "Bad"
    }
    fn state_tensors(&self) -> Option<std::sync::Arc<[wgfit::Tensor]>> {
        Some(self.0.clone().into())
    }
}

#[test]
fn callback_tensors_a_restore_would_refuse_are_never_saved() {
    let tensor = |name: &str, shape: Vec<usize>| wgfit::Tensor {
        name: name.into(),
        data: vec![0.0; shape.iter().product()],
        shape,
    };
    let weight = |name: &str| tensor(name, vec![8, 6]);
    for (tensors, why) in [
        (
            vec![weight("callbacks.Other.model.layers.0.weight")],
            "is not named",
        ),
        (
            vec![tensor("callbacks.Bad.model.layers.0.weight", vec![6, 8])],
            "has shape",
        ),
        (
            vec![weight("callbacks.Bad.model.layers.9.weight")],
            "names no parameter",
        ),
        (
            vec![
                weight("callbacks.Bad.model.layers.0.weight"),
                weight("callbacks.Bad.model.layers.0.weight"),
            ],
            "appears twice",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut backup = BackupAndRestore::new(tmp.path().join("b")).unwrap();
        let err = model()
            .fit(
                &data(),
                options(1),
                &mut [&mut BadTensors(tensors), &mut backup],
            )
            .unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
}

/// A callback whose state is larger than a sidecar may be.
struct Hoarder;

impl wgfit::Callback for Hoarder {
    fn name(&self) -> &str {
        "Hoarder"
    }

    fn state(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String("x".repeat(65 << 20)))
    }
}

#[test]
fn a_state_too_large_to_restore_is_not_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut backup = BackupAndRestore::new(&dir).unwrap();
    let err = model()
        .fit(&data(), options(1), &mut [&mut backup, &mut Hoarder])
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("more than the 64 MiB a restore reads")
            && message.contains("was not committed"),
        "{message}"
    );
    assert!(!dir.join("latest.json").exists());
}

/// Keeps a copy of the model's first weight matrix (its largest tensor) under its own name.
struct FirstWeights(&'static str, Option<std::sync::Arc<[wgfit::Tensor]>>);

impl wgfit::Callback for FirstWeights {
    fn name(&self) -> &str {
        self.0
    }

    fn on_train_begin(&mut self, ctx: &mut wgfit::Context<'_>) -> wgfit::Result<()> {
        let first = ctx.read_params()?.swap_remove(0);
        let name = format!("callbacks.{}.{}", self.0, first.name);
        self.1 = Some(vec![wgfit::Tensor { name, ..first }].into());
        Ok(())
    }

    fn state_tensors(&self) -> Option<std::sync::Arc<[wgfit::Tensor]>> {
        self.1.clone()
    }
}

#[test]
fn callbacks_tensors_are_limited_in_values_not_only_in_tensors() {
    // EarlyStopping's whole copy and two copies of the largest tensor: fewer tensors than two
    // copies of the parameters, more values.
    let tmp = tempfile::tempdir().unwrap();
    let mut backup = BackupAndRestore::new(tmp.path().join("b")).unwrap();
    let err = model()
        .fit(
            &data(),
            options(1),
            &mut [
                &mut backup,
                &mut EarlyStopping::new("loss").restore_best_weights(true),
                &mut FirstWeights("A", None),
                &mut FirstWeights("B", None),
            ],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more than 2 copies of the parameters'"),
        "{err}"
    );
}
