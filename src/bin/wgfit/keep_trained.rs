//! `wgfit train` after its backup failed in training: what was trained still goes to
//! `--output`, then the failure is reported with its own exit status.

use crate::Failure;
use crate::model_formats::{ModelFormat, write_model};
use std::path::Path;
use wgfit::{BackupAndRestore, Error, Sequential};

/// Whether `e`, which ended `fit`, is the backup's own failure once training had begun, with
/// the trained weights worth keeping: not a later failure of the backup's after another error
/// stopped the run, and not a lease another run took over (that run writes the backup, and
/// perhaps this output, now).
pub fn applies(e: &Error, backup: Option<&BackupAndRestore>) -> bool {
    let storage = matches!(
        e,
        Error::ObjectStore { .. }
            | Error::LeaseLost {
                taken_over: false,
                ..
            }
            | Error::CheckpointIo { .. }
            | Error::WriteFile { .. }
    );
    storage && backup.is_some_and(|b| b.failed_in_training())
}

/// Exit status of a run whose backup failed after training began, once what was trained is
/// in the output (README, "Exit status").
const BACKUP_FAILED: u8 = 4;

/// After the backup failed in training (its store went away, its disk filled up, its lease
/// was lost), writes what was trained to `output` before reporting the failure: nothing
/// trained is lost with the backup's store. The backup keeps its last commit, from which a
/// rerun of the same command resumes.
pub fn keep_trained(
    model: &Sequential,
    output: &Path,
    format: ModelFormat,
    keras_config: Option<&str>,
    input_scale: f32,
    e: Error,
) -> Failure {
    let kept = match model.parameters() {
        // Weights that went non-finite meanwhile are no result to keep.
        Ok(params) if params.iter().any(|t| t.data.iter().any(|v| !v.is_finite())) => {
            Err("they are not finite (the training diverged)".to_string())
        }
        Ok(_) => write_model("--output", model, output, format, input_scale, keras_config)
            .map_err(|f| f.message),
        Err(e) => Err(e.to_string()),
    };
    let message = match kept {
        Ok(()) => format!(
            "{e}\nwgfit: the backup failed; the weights trained until then are in {} (the \
             backup keeps its last commit, and the same command resumes from it once the \
             backup works again)",
            output.display()
        ),
        Err(why) => format!("{e}\nwgfit: the weights trained could not be kept: {why}"),
    };
    Failure {
        message,
        code: BACKUP_FAILED,
    }
}
