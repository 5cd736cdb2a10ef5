//! Everything `wgfit train` can refuse from its flags alone, checked before any data is read or
//! the GPU is opened: a mistake costs a second, never a trained run. Every refusal here is a
//! usage error (exit 2) whose message starts with the flag. Only what needs the data's row
//! count waits for the data (`check_against_data`).

use crate::CliResult;
use crate::optimizer_args::ScheduleKind;
use crate::train_args::TrainArgs;
use std::path::{Path, PathBuf};
use wgfit::Loss;

use crate::arg_checks::{
    check_input, check_output, check_scale, refuse_overwriting_input, same_place, usage,
};

/// Checks the flags of a run (on a rank past 0 of a distributed run, whose file flags are
/// cleared, only the others).
pub fn check(args: &TrainArgs) -> CliResult {
    check_numbers(args)?;
    check_optimizer(args)?;
    check_validation_flags(args)?;
    check_monitor(args)?;
    check_checkpoint_pattern(args)?;
    check_inputs_exist(args)?;
    check_outputs(args)?;
    check_backup_dir(args)
}

/// A local backup directory (--backup-dir, or the default beside --output) must be a directory
/// or not exist yet (it is made), and be none of the files the run reads or writes.
fn check_backup_dir(args: &TrainArgs) -> CliResult {
    let Some(dir) = args.backup_dir() else {
        return Ok(());
    };
    if dir.to_string_lossy().contains("://") {
        return Ok(());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(usage(format!(
            "--backup-dir {} is a file, not a directory",
            dir.display()
        )));
    }
    let files = outputs(args).into_iter().chain(inputs(args));
    for (flag, path) in files {
        if same_place(&dir, &path) {
            let named = match args.backup_dir {
                Some(_) => "--backup-dir",
                None => "the backup directory (the default beside --output)",
            };
            return Err(usage(format!(
                "{named} {} is also {flag}: give the backup a directory of its own \
                 (--backup-dir DIR)",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The number flags whose every value clap accepts but training cannot use.
fn check_numbers(args: &TrainArgs) -> CliResult {
    if args.epochs == 0 {
        return Err(usage("--epochs 0: train at least 1 epoch"));
    }
    if args.batch_size == 0 {
        return Err(usage("--batch-size 0: a batch has at least 1 row, e.g. 32"));
    }
    check_scale(args.scale)?;
    if let Some(f) = args.validation_split
        && !(f > 0.0 && f < 1.0)
    {
        return Err(usage(format!(
            "--validation-split {f}: the fraction must be above 0 and below 1, e.g. 0.2"
        )));
    }
    if let Some(w) = &args.layers
        && w.contains(&0)
    {
        return Err(usage(format!(
            "--layers {}: every layer needs a width of at least 1",
            join(w)
        )));
    }
    let c = &args.callbacks;
    if !c.min_delta.is_finite() {
        return Err(usage(format!(
            "--min-delta {}: give a finite number",
            c.min_delta
        )));
    }
    if !(c.min_lr.is_finite() && c.min_lr >= 0.0) {
        return Err(usage(format!(
            "--min-lr {}: give a finite number >= 0",
            c.min_lr
        )));
    }
    if let Some(f) = c.reduce_lr_on_plateau
        && !(f > 0.0 && f < 1.0)
    {
        return Err(usage(format!(
            "--reduce-lr-on-plateau {f}: the factor must be above 0 and below 1"
        )));
    }
    Ok(())
}

/// The optimizer, clipping and schedule flags, by the library's own checks, with the flag
/// named; and the schedule against --reduce-lr-on-plateau, which both set the rate.
fn check_optimizer(args: &TrainArgs) -> CliResult {
    let o = &args.optimizer;
    if o.lr_schedule != ScheduleKind::Constant && args.callbacks.reduce_lr_on_plateau.is_some() {
        return Err(usage(
            "--reduce-lr-on-plateau cannot change a rate that --lr-schedule sets at every step; \
             use one of them",
        ));
    }
    check_schedule_numbers(o)?;
    let optimizer = o.build()?;
    optimizer.validate().map_err(|e| match e {
        wgfit::Error::Config { what, reason } => {
            usage(format!("{}: {reason}", flag_of(&what, args)))
        }
        other => other.into(),
    })
}

/// The schedule flags one by one, so that a bad one is named (the library's check speaks of
/// the schedule as a whole).
fn check_schedule_numbers(o: &crate::optimizer_args::OptimizerArgs) -> CliResult {
    let finite_non_negative = [
        ("--decay-rate", o.decay_rate),
        ("--end-lr", o.end_lr),
        ("--warmup-target", o.warmup_target),
        ("--alpha", o.alpha),
    ];
    for (flag, value) in finite_non_negative {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(usage(format!("{flag} {v}: give a finite number >= 0")));
        }
    }
    if let Some(p) = o.power
        && !p.is_finite()
    {
        return Err(usage(format!("--power {p}: give a finite number")));
    }
    if o.warmup_steps == Some(0) && o.warmup_target.is_some() {
        return Err(usage(
            "--warmup-steps 0: a warmup to --warmup-target takes at least 1 step",
        ));
    }
    if let Some(values) = &o.values
        && let Some(v) = values.iter().find(|v| !(v.is_finite() && **v >= 0.0))
    {
        return Err(usage(format!(
            "--values {}: {v} is not a learning rate; give finite numbers >= 0",
            join(values)
        )));
    }
    if let Some(b) = &o.boundaries {
        if b.windows(2).any(|w| w[0] >= w[1]) {
            return Err(usage(format!(
                "--boundaries {}: the steps must increase",
                join(b)
            )));
        }
        if let Some(values) = &o.values
            && values.len() != b.len() + 1
        {
            return Err(usage(format!(
                "--values {}: {} rates for {} --boundaries; give one more rate than boundaries",
                join(values),
                values.len(),
                b.len()
            )));
        }
    }
    Ok(())
}

/// The flag behind a name the library's optimizer checks use.
fn flag_of(what: &str, args: &TrainArgs) -> String {
    let o = &args.optimizer;
    match what {
        "learning rate" => "--lr",
        "momentum" => "--momentum",
        "nesterov" => "--nesterov",
        "weight decay" => "--weight-decay",
        "beta_1" => "--beta1",
        "beta_2" => "--beta2",
        "epsilon" => "--epsilon",
        "rho" => "--rho",
        "gradient accumulation" => "--accumulate",
        "gradient clipping" if o.clipnorm.is_some() => "--clipnorm",
        "gradient clipping" if o.global_clipnorm.is_some() => "--global-clipnorm",
        "gradient clipping" => "--clipvalue",
        "learning-rate schedule" => "--lr-schedule",
        other => return format!("--optimizer ({other})"),
    }
    .to_string()
}

/// The metrics `wgfit train` logs whose direction (down for losses, up for accuracies) is
/// known, so that --monitor can watch them.
fn monitorable(args: &TrainArgs) -> Vec<String> {
    let mut names = vec!["loss".to_string()];
    if args.loss == Loss::CrossEntropy {
        names.push("accuracy".into());
    }
    if validates(args) {
        let val: Vec<String> = names.iter().map(|n| format!("val_{n}")).collect();
        names.extend(val);
    }
    names
}

fn validates(args: &TrainArgs) -> bool {
    args.validation_split.is_some() || args.validation_data.is_some()
}

/// The validation flags that do nothing without validation data (a run that was meant to
/// validate and lost its data flag would otherwise train without a word).
fn check_validation_flags(args: &TrainArgs) -> CliResult {
    if validates(args) {
        return match args.validation_freq {
            // No epoch would validate: the data flag and any val_ monitor would do nothing.
            Some(n) if n > args.epochs as u64 => Err(usage(format!(
                "--validation-freq {n} is above --epochs {}: no epoch would validate; use {} or less",
                args.epochs, args.epochs
            ))),
            _ => Ok(()),
        };
    }
    let given = [
        ("--validation-freq", args.validation_freq),
        ("--validation-batch-size", args.validation_batch_size),
    ];
    match given.iter().find(|(_, v)| v.is_some()) {
        Some((flag, Some(n))) => Err(usage(format!(
            "{flag} {n} needs validation data: add --validation-split or --validation-data"
        ))),
        _ => Ok(()),
    }
}

fn check_monitor(args: &TrainArgs) -> CliResult {
    let Some(m) = &args.callbacks.monitor else {
        return Ok(());
    };
    if m.starts_with("val_") && !validates(args) {
        return Err(usage(format!(
            "--monitor {m} needs validation data: add --validation-split or --validation-data"
        )));
    }
    let known = monitorable(args);
    if !known.contains(m) {
        return Err(usage(format!(
            "--monitor {m}: this run logs no such metric with a known direction; monitor one of {}",
            known.join(", ")
        )));
    }
    Ok(())
}

/// Formats the --checkpoint pattern with this run's fields, as every save will.
fn check_checkpoint_pattern(args: &TrainArgs) -> CliResult {
    let Some(pattern) = &args.callbacks.checkpoint else {
        return Ok(());
    };
    let mut names = monitorable(args);
    names.push("learning_rate".into());
    if validates(args) {
        names.push("val_learning_rate".into());
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let sample = wgfit::callbacks::check_file_pattern(pattern, &names)
        .map_err(|reason| usage(format!("--checkpoint {pattern}: {reason}")))?;
    if Path::new(&sample).is_dir() {
        return Err(usage(format!(
            "--checkpoint {pattern}: names the directory {sample}; give a file name pattern"
        )));
    }
    // A name with fields changes from save to save; the first one is what can be checked.
    for (input_flag, input) in inputs(args) {
        refuse_overwriting_input("--checkpoint", Path::new(&sample), input_flag, &input)?;
    }
    Ok(())
}

/// The files the run reads: --data (both files of a NumPy pair), --validation-data, --init.
fn inputs(args: &TrainArgs) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    for (flag, path) in [
        ("--data", &args.data),
        ("--validation-data", &args.validation_data),
    ] {
        if let Some(p) = path {
            out.push((flag, p.clone()));
            if let Some(y) = npy_y_path(p) {
                out.push((flag, y));
            }
        }
    }
    if let Some(p) = &args.init {
        out.push(("--init", p.clone()));
    }
    out
}

/// The `<name>y.npy` beside a `<name>x.npy`.
fn npy_y_path(x: &Path) -> Option<PathBuf> {
    let name = x.file_name()?.to_str()?;
    let stem = name.strip_suffix("x.npy")?;
    Some(x.with_file_name(format!("{stem}y.npy")))
}

fn check_inputs_exist(args: &TrainArgs) -> CliResult {
    for (flag, path) in inputs(args) {
        check_input(flag, &path)?;
    }
    Ok(())
}

/// The files the run writes, with their flags.
fn outputs(args: &TrainArgs) -> Vec<(&'static str, PathBuf)> {
    let mut outputs = vec![("--output", args.output.clone())];
    if let Some(h) = &args.history {
        outputs.push(("--history", h.clone()));
    }
    for (flag, p) in args.callbacks.outputs() {
        outputs.push((flag, p.clone()));
    }
    outputs
}

/// The files the run writes: each can be created where it is asked for, none is a file the
/// run reads, and no two are the same file.
fn check_outputs(args: &TrainArgs) -> CliResult {
    let outputs = outputs(args);
    for (flag, path) in &outputs {
        check_output(flag, path)?;
    }
    let inputs = inputs(args);
    for (i, (flag, path)) in outputs.iter().enumerate() {
        for (input_flag, input) in &inputs {
            refuse_overwriting_input(flag, path, input_flag, input)?;
        }
        for (other_flag, other) in &outputs[..i] {
            if same_place(path, other) {
                return Err(usage(format!(
                    "{flag} {} is also {other_flag}: give each output its own file",
                    path.display()
                )));
            }
        }
    }
    if let Some(plot) = &args.callbacks.plot {
        crate::arg_checks::check_svg("--plot", plot)?;
    }
    Ok(())
}

/// The checks that need the training data's row count: a --batch-size larger than the data,
/// and an --accumulate that never reaches an update in the whole run (the weights would come
/// back as they started).
pub fn check_against_data(args: &TrainArgs, train_rows: usize) -> CliResult {
    if args.batch_size > train_rows {
        return Err(usage(format!(
            "--batch-size {}: larger than the {train_rows} training rows; use at most {train_rows}",
            args.batch_size
        )));
    }
    let n = args.optimizer.accumulate as usize;
    let batches = train_rows.div_ceil(args.batch_size.max(1)).max(1);
    let total = batches.saturating_mul(args.epochs);
    if n > total {
        return Err(usage(format!(
            "--accumulate {n}: the run has {total} batches ({} epochs of {batches}), so the \
             weights would never be updated; use at most {total}",
            args.epochs
        )));
    }
    Ok(())
}

fn join<T: ToString>(w: &[T]) -> String {
    w.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
