//! Crash tests with real processes: SIGKILL at random moments (saves every batch, with and
//! without double_checkpoint), SIGTERM and SIGINT with save_before_preemption, and a save that
//! fails because the file system refuses the write.
//!
//! The child process is this test binary itself running the ignored `worker` test, configured
//! through environment variables.

mod common;

use common::storm::{self, Backup};
use common::worker::{self, EPOCHS, file_bytes, reference, run_to_end, spawn, wait_for_training};
use std::process::Command;
use std::time::Duration;

#[test]
#[ignore = "run as a child process by the other tests in this file"]
fn worker() {
    worker::main();
}

/// A storm on a local directory.
fn kill_storm(what: &str, settings: &[(&str, &str)], default_kills: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backup");
    let backup = Backup {
        location: dir.clone(),
        committed_step: Box::new(|| committed_step(&dir)),
        // The directory itself may stay, empty: when a kill interrupted an earlier removal
        // after its marker went, the next run cannot know that wgfit created it.
        left: Box::new(|| {
            std::fs::read_dir(&dir).map_or(Vec::new(), |d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
        }),
    };
    storm::kill_storm(tmp.path(), &backup, what, settings, default_kills);
}

/// The global step of the state committed in `dir`, if there is one.
fn committed_step(dir: &std::path::Path) -> Option<u64> {
    let bytes = std::fs::read(dir.join(wgfit::checkpoint::LATEST)).ok()?;
    let sidecar: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    sidecar["global_step"].as_u64()
}

#[test]
fn sigkill_storm_with_saves_every_batch() {
    kill_storm("saves every batch", &[("SLOW_MS", "3")], 12);
}

#[test]
fn sigkill_storm_with_adam_and_a_cosine_schedule_after_warmup() {
    kill_storm(
        "Adam, cosine schedule after warmup",
        &[("SLOW_MS", "3"), ("ADAM_COSINE", "1")],
        12,
    );
}

#[test]
fn sigkill_storm_with_the_stateful_callbacks() {
    // EarlyStopping (best weights), ReduceLROnPlateau, ModelCheckpoint (save_best_only) and
    // CSVLogger: the same parameters, history, stopped epoch, checkpoint and CSV bytes.
    kill_storm(
        "EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, CSVLogger",
        &[("CALLBACKS", "1"), ("SLOW_MS", "2")],
        12,
    );
}

#[test]
fn sigkill_storm_with_a_convnet_with_batch_normalization_and_dropout() {
    // Conv2D, BatchNormalization, MaxPooling2D, Dropout 0.5, Adam on a cosine schedule,
    // validation: the masks are drawn again, not restored, and must be the uninterrupted
    // run's; the moving statistics are compared with the weights.
    kill_storm(
        "a convnet with batch normalization and dropout, Adam, a schedule and validation",
        &[("CONVNET", "1"), ("SLOW_MS", "5")],
        24,
    );
}

#[test]
fn sigkill_storm_with_a_gpt() {
    // A 2-block GPT of the Functional API on sequences (attention with the causal mask,
    // residual connections, Dropout 0.1), AdamW exempting normalizations and biases, warmup
    // and cosine decay, global-norm clipping: the same bits as an uninterrupted run.
    kill_storm(
        "a GPT with dropout, AdamW, warmup and cosine decay, clipping",
        &[("GPT", "1"), ("SLOW_MS", "5")],
        30,
    );
}

#[test]
fn sigkill_storm_with_streamed_input() {
    // The data set in host memory, a batch at a time: the same bits as resident data.
    kill_storm(
        "streamed input",
        &[("DATA_ON", "host"), ("SLOW_MS", "3")],
        10,
    );
}

/// With the state read ahead of `fit`, too (used only where `latest.json` restores).
#[test]
fn sigkill_storm_with_double_checkpoint() {
    kill_storm(
        "double_checkpoint, read ahead",
        &[("SLOW_MS", "3"), ("DOUBLE", "1"), ("READ_AHEAD", "1")],
        12,
    );
}

/// Parameters, gradients and optimizer slots bound in pieces (as for a model past one storage
/// binding; here forced with a 256-byte binding limit on the small model): the same bits as
/// bound whole, with SGD and momentum, with Adam on a schedule and with gradient
/// accumulation, and exact across kills.
#[test]
fn parameters_bound_in_pieces_train_to_the_same_bits_and_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    for model in [None, Some(("ADAM_COSINE", "1")), Some(("ACCUMULATE", "1"))] {
        let whole: Vec<_> = model.into_iter().collect();
        let mut pieces = whole.clone();
        pieces.push(("WGFIT_MAX_BINDING_BYTES", "256"));
        let dirs = [tmp.path().join("whole"), tmp.path().join("pieces")];
        for d in &dirs {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir(d).unwrap();
        }
        let (a, _) = reference(&dirs[0], &whole);
        let (b, _) = reference(&dirs[1], &pieces);
        assert!(a == b, "{model:?}: the same bits bound in pieces");
    }
    kill_storm(
        "parameters bound in pieces",
        &[("WGFIT_MAX_BINDING_BYTES", "256"), ("SLOW_MS", "3")],
        8,
    );
}

/// A model whose backup files (34 MB) are written past the page cache (O_DIRECT).
#[test]
fn sigkill_storm_with_saves_past_the_page_cache() {
    kill_storm("34 MB saves, O_DIRECT", &[("WIDE", "1")], 6);
}

fn preempt_with(signal: &str, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let vars = [("PREEMPT", "1"), ("SLOW_MS", "5")];
    let (expected, _) = reference(tmp.path(), &vars);
    let dir = tmp.path().join("backup");
    let out = tmp.path().join("out.bin");
    let mut child = spawn(&dir, &out, &vars, None);
    // Wait until training runs (the handlers are then installed), then a bit more.
    assert!(wait_for_training(&mut child));
    std::thread::sleep(Duration::from_millis(150));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status 128 + signal: {stderr}"
    );
    let info = wgfit::checkpoint::inspect(&dir).unwrap();
    let saved = info.sidecars[0].state.as_ref().expect("a committed backup");
    assert!(saved.global_step > 0 && saved.global_step < (EPOCHS * 12) as u64);
    assert!(!out.exists());
    let (code, err) = run_to_end(&dir, &out, &vars, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

#[test]
fn sigterm_saves_commits_and_exits_143() {
    preempt_with("-TERM", 143);
}

#[test]
fn sigint_saves_commits_and_exits_130() {
    preempt_with("-INT", 130);
}

#[test]
fn a_failing_save_names_the_path_and_keeps_the_last_committed_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let dir = tmp.path().join("backup");
    let out = tmp.path().join("out.bin");

    // A run that stops at epoch 2 leaves a committed backup of epochs 0-1.
    let (code, _) = run_to_end(&dir, &out, &[("STOP_EPOCH", "2"), ("KEEP", "1")], None);
    assert_eq!(code, 1);
    let committed = file_bytes(dir.join("latest.json"));

    // Files may not grow past 512 bytes (SIGXFSZ ignored, so writes fail with EFBIG): the
    // restore reads fine, epoch 2 trains, and its save fails.
    let (code, err) = run_to_end(&dir, &out, &[], Some("trap '' XFSZ; ulimit -f 1"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(dir.to_str().unwrap()),
        "the error names the path: {err}"
    );
    assert!(
        err.contains("too large") || err.contains("File too large"),
        "{err}"
    );
    assert_eq!(
        file_bytes(dir.join("latest.json")),
        committed,
        "nothing new was committed"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wgfit-tmp-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no partial file is left: {leftovers:?}"
    );

    // With room again, the run resumes from the committed state and ends exactly.
    let (code, err) = run_to_end(&dir, &out, &[], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}

#[test]
fn two_processes_on_one_directory_exactly_one_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("backup");
    let vars = [("SLOW_MS", "10"), ("KEEP", "1"), ("FREQ", "3")];
    let a = spawn(&dir, &tmp.path().join("a.bin"), &vars, None);
    let b = spawn(&dir, &tmp.path().join("b.bin"), &vars, None);
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(1)),
        "one wins, one fails: {codes:?}"
    );
    let loser = outs.iter().find(|o| o.status.code() == Some(1)).unwrap();
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("in use by another run"), "{err}");
    // The directory holds the winner's final state, verified.
    let info = wgfit::checkpoint::inspect(&dir).unwrap();
    let s = info.sidecars[0].state.as_ref().expect("a committed state");
    assert_eq!((s.epoch, s.step), (EPOCHS, 0));
}

#[test]
fn a_gpu_wait_that_times_out_is_an_error_and_the_backup_stays_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let (expected, _) = reference(tmp.path(), &[]);
    let dir = tmp.path().join("backup");
    let out = tmp.path().join("out.bin");
    let (code, _) = run_to_end(&dir, &out, &[("STOP_EPOCH", "2"), ("KEEP", "1")], None);
    assert_eq!(code, 1);

    // Every wait on the GPU may take 0 ms: the first that finds work still running is a hang.
    let (code, err) = run_to_end(
        &dir,
        &out,
        &[("WGFIT_GPU_TIMEOUT_MS", "0"), ("KEEP", "1")],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("did not finish") && err.contains("WGFIT_GPU_TIMEOUT_MS"),
        "{err}"
    );
    let info = wgfit::checkpoint::inspect(&dir).unwrap();
    assert!(
        matches!(info.rerun, wgfit::checkpoint::Outlook::Resume { .. }),
        "the backup still verifies: {info:?}"
    );

    let (code, err) = run_to_end(&dir, &out, &[], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), expected);
}
