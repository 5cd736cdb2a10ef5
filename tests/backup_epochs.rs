//! A backup that holds more training than `epochs` asks for is refused by `fit`: training
//! nothing would return the weights of a later epoch than asked, as if they were its result.

mod common;

use common::{Interrupt, backup_every_batch, data, dir_contents, model, options};
use wgfit::Error;

#[test]
fn fit_refuses_a_backup_past_the_last_epoch_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    // 90 samples in batches of 8: 12 batches an epoch. Killed after 2 epochs and 1 batch.
    let mut stop = Interrupt {
        at_global_step: Some(25),
        at_epoch_begin: None,
    };
    model()
        .fit(
            &data(),
            options(4),
            &mut [&mut backup_every_batch(&dir), &mut stop],
        )
        .expect_err("interrupted");
    let before = dir_contents(&dir);

    for epochs in [1, 2] {
        let err = model()
            .fit(
                &data(),
                options(epochs),
                &mut [&mut backup_every_batch(&dir)],
            )
            .expect_err("a backup past the last epoch is refused");
        assert!(
            matches!(
                err,
                Error::BackupBeyondEpochs {
                    epoch: 2,
                    step: 1,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("2 finished epochs and 1 batch of epoch 3")
                && text.contains(&format!("past epoch {epochs},"))
                && text.contains("--epochs 3"),
            "{text}"
        );
        assert_eq!(dir_contents(&dir), before, "the backup is unchanged");
    }

    // Asked for enough epochs, the same backup resumes and the run ends as asked.
    let history = model()
        .fit(&data(), options(3), &mut [&mut backup_every_batch(&dir)])
        .unwrap();
    assert_eq!(history.len(), 3);
}
