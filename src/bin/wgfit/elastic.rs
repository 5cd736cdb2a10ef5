//! `wgfit train --elastic`: a job script that runs on whatever ranks it gets. With a backup
//! saved on another rank count, `--batch-size` and `--accumulate` become those that continue
//! the backup's run exactly on this many ranks (docs/MPI.md, "Resuming on another rank
//! count"); without one, the flags define the run.

use crate::mpi_launch::Launch;
use crate::train_args::TrainArgs;
use crate::{CliResult, Failure};
use wgfit::checkpoint::Location;

/// [`adapt`] on rank 0, whose backup it is, and its decision on every rank: the line to print
/// (rank 0's), or the failure every rank then ends with.
pub fn agree(args: &mut TrainArgs, launch: &Launch) -> CliResult<Option<String>> {
    if !args.elastic {
        return Ok(None);
    }
    let Some(group) = launch.group() else {
        return adapt(args, 1);
    };
    let decision = match launch.rank() {
        0 => {
            let decided = adapt(args, group.size());
            let value = match &decided {
                Ok(line) => serde_json::json!({
                    "batch": args.batch_size,
                    "accumulate": args.optimizer.accumulate,
                    "line": line,
                }),
                Err(f) => serde_json::json!({ "error": f.message }),
            };
            group.broadcast(value.to_string().into_bytes())?;
            if decided.is_err() {
                launch.agreed_failure();
            }
            return decided;
        }
        _ => group.broadcast(Vec::new())?,
    };
    let value: serde_json::Value = serde_json::from_slice(&decision).map_err(|e| Failure {
        message: format!("--elastic: rank 0's decision did not parse: {e}"),
        code: 1,
    })?;
    if let Some(error) = value["error"].as_str() {
        // Every rank ends here alike: no rank waits for another.
        launch.agreed_failure();
        return Err(Failure {
            message: error.to_string(),
            code: 2,
        });
    }
    let (Some(batch), Some(accumulate)) = (value["batch"].as_u64(), value["accumulate"].as_u64())
    else {
        return Err(Failure {
            message: format!("--elastic: rank 0's decision lacks its batch: {value}"),
            code: 1,
        });
    };
    args.batch_size = batch as usize;
    args.optimizer.accumulate = accumulate as u32;
    Ok(None)
}

/// Sets `args`' batch and accumulation to the backup's run on `ranks` ranks, if the backup
/// recorded another rank count: the line saying so, for rank 0 to print. A
/// sidecar that does not parse leaves the flags as given (the restore reports it).
fn adapt(args: &mut TrainArgs, ranks: usize) -> CliResult<Option<String>> {
    let Some(dir) = args.backup_dir() else {
        return Ok(None);
    };
    // No backup directory yet: the first run, which the flags define.
    if let Ok(Location::Local(path)) = Location::parse(&dir.to_string_lossy())
        && !path.exists()
    {
        return Ok(None);
    }
    let Some(bytes) = wgfit::checkpoint::read_latest_sidecar(&dir)? else {
        return Ok(None);
    };
    let path = dir.join(wgfit::checkpoint::LATEST);
    let Ok(sidecar) = wgfit::checkpoint::Sidecar::parse(&bytes, &path) else {
        return Ok(None);
    };
    // Saved on this rank count (or before version 6): the flags as given; the fingerprint
    // decides (with --discard-mismatched-backup a changed flag stays changed).
    let Some(run) = sidecar
        .fingerprint
        .one_rank_run()
        .filter(|r| r.ranks != ranks)
    else {
        return Ok(None);
    };
    let Some((batch, accumulate)) = run.arguments_for(ranks) else {
        return Err(Failure {
            message: format!(
                "--elastic: the backup in {} trains {} micro-batches per update and {} per epoch, which {ranks} rank(s) cannot share equally; run it on {:?} rank(s)",
                dir.display(),
                run.per_update,
                run.micro_batches_per_epoch(),
                run.rank_counts()
            ),
            code: 2,
        });
    };
    let accumulate = u32::try_from(accumulate).map_err(|_| Failure {
        message: format!("--elastic: {accumulate} micro-batches per rank and update is too many"),
        code: 2,
    })?;
    args.batch_size = batch;
    args.optimizer.accumulate = accumulate;
    Ok(Some(format!(
        "wgfit: --elastic: the backup's run ({} rows per micro-batch, {} per update) on {ranks} rank(s): --batch-size {batch} --accumulate {accumulate}",
        run.micro_batch, run.per_update
    )))
}
