//! `wgfit train`: build a Sequential of dense layers, fit it with backups, write the result.

use crate::history_file::HistoryView;
use crate::train_args::TrainArgs;
use crate::{CliResult, Failure, classes_needed, load_data};
use std::path::Path;
use wgfit::callbacks::metric_order;
use wgfit::{
    BackupAndRestore, Callback, CsvOptions, Dataset, Error, FitOptions, Progress, Sequential,
    Targets,
};

pub fn run(args: TrainArgs) -> CliResult {
    let launch = crate::mpi_launch::Launch::start()?;
    train(args, &launch).map_err(|f| launch.fail(f))
}

fn train(mut args: TrainArgs, launch: &crate::mpi_launch::Launch) -> CliResult {
    let rank = launch.rank();
    if rank > 0 {
        // Rank 0 alone writes files and reports progress (docs/MPI.md).
        args.history = None;
        args.callbacks.csv_log = None;
        args.callbacks.checkpoint = None;
        args.callbacks.plot = None;
        args.verbose = Some(0);
    }
    // --elastic: the backup's run on this many ranks (said as a resume is, whatever --verbose).
    if let Some(line) = crate::elastic::agree(&mut args, launch)? {
        eprintln!("{line}");
    }
    // Everything that can be checked before training is checked first.
    let history_format = args.history_format()?;
    crate::preflight::check(&args)?;
    let verbose = args.verbose_level();

    let backup_dir = args.backup_dir();
    let mut backup = match &backup_dir {
        None => None,
        Some(dir) => Some(
            BackupAndRestore::new(dir)?
                .save_before_preemption(!args.no_save_before_preemption)?
                .save_freq(args.save_freq)?
                .double_checkpoint(args.double_checkpoint)
                // Removed below, under the same lock, once the output is safely written.
                .delete_checkpoint(false)
                .discard_mismatched(args.discard_mismatched_backup),
        ),
    };
    // Rank 0 restores: its read of the backup runs beside loading the data and opening the
    // GPU context (rank 0's `fit` uses it only if the backup is unchanged and this run's).
    if rank == 0 {
        backup = backup.map(BackupAndRestore::read_ahead);
    }

    let data = load_data(args.data.as_deref(), &CsvOptions::default(), args.scale)?;
    let (train, validation) = match (args.validation_split, &args.validation_data) {
        (Some(f), _) => {
            let (t, v) = data.split_tail(f)?;
            (t, Some(v))
        }
        (None, Some(path)) => {
            let v = load_data(
                Some(path),
                &CsvOptions::default(),
                args.scale.or(
                    // The bundled digits are scaled; validation data for them is too.
                    args.data.is_none().then_some(crate::DIGITS_SCALE),
                ),
            )?;
            (data, Some(v))
        }
        (None, None) => (data, None),
    };
    crate::preflight::check_against_data(&args, train.len())?;
    let mut callbacks = args.callbacks.build(validation.is_some())?;
    // What the inputs were multiplied by, recorded in every weights file for evaluate/predict.
    let input_scale = args.scale.unwrap_or(if args.data.is_none() {
        crate::DIGITS_SCALE
    } else {
        1.0
    });
    callbacks.checkpoint = callbacks
        .checkpoint
        .take()
        .map(|c| c.input_scale(input_scale));

    let widths = match &args.layers {
        Some(w) => w.clone(),
        None => vec![32, default_outputs(&train)],
    };
    let (activation, loss) = (args.activation, args.loss);
    // Float targets would otherwise give one output, and cross-entropy refuses a model of
    // one output: name the data instead of the model the user never chose.
    if loss == wgfit::Loss::CrossEntropy && matches!(train.targets(), wgfit::Targets::Values { .. })
    {
        let data_name = args
            .data
            .as_ref()
            .map_or_else(|| "the data".to_string(), |p| p.display().to_string());
        return Err(Failure::new(format!(
            "{data_name}: its targets are floats (values), but --loss crossentropy (the default) \
             needs integer class labels: pass --loss mse to fit values, or store the labels as \
             integers"
        )));
    }
    let mut keras_config = None;
    let mut keras_weights = None;
    let mut model = match &args.model {
        Some(path) => {
            let file = crate::model_file::keras_model(path, loss)?;
            keras_config = Some(file.config);
            keras_weights = file.weights;
            file.model
        }
        None => {
            let data_label = args.data.as_ref().map(|p| p.display().to_string());
            crate::labels::check_output_layer(
                &train,
                args.layers.is_some(),
                &widths,
                data_label.as_deref().unwrap_or("the bundled digits"),
            )?;
            Sequential::dense_stack(train.features(), &widths, activation)
        }
    }
    .seed(args.seed);
    // The flags' hints (`--layers ending in …`) speak of --layers models only.
    let from_file = args.model.is_some();
    let optimizer = args.optimizer.build()?;
    model.compile(loss, optimizer)?;
    let data_name = args.data.as_ref().map_or_else(
        || "the bundled digits".to_string(),
        |p| p.display().to_string(),
    );
    model.check_data(&train).map_err(|e| match from_file {
        true => crate::model_file::model_file_mismatch(e, &model, &data_name),
        false => data_mismatch(e, &train, &widths, &data_name),
    })?;
    if let Some(v) = &validation {
        // The model is sized for the training data: validation data that does not fit it is
        // what is wrong, whatever --layers says.
        model.check_data(v).map_err(|e| {
            let name = args.validation_data.as_ref().map_or_else(
                || format!("the validation split of {data_name}"),
                |p| format!("--validation-data {}", p.display()),
            );
            Failure::new(format!(
                "{name}: {e}; validation data needs the training data's features and labels \
                 ({data_name})"
            ))
        })?;
    }
    if let (Some(init), Some(_)) = (&args.init, &keras_weights) {
        return Err(crate::arg_checks::usage(format!(
            "--init {} and --model {} both give the initial weights (a .keras file holds them); give one",
            init.display(),
            args.model.as_deref().unwrap_or(Path::new("")).display()
        )));
    }
    if let Some(weights) = &keras_weights {
        let tensors = weights.tensors_for(&model)?;
        model.set_parameters(&tensors)?;
    }
    if let Some(init) = &args.init {
        let tensors = crate::model_formats::read_init(&model, init)?;
        model.set_parameters(&tensors).map_err(|e| {
            Failure::new(format!(
                "--init {}: {e} (the file must hold model.layers.<i>.weight/bias for layers {})",
                init.display(),
                match from_file {
                    true => format!("{:?}", model.specs().map(|s| s.len()).unwrap_or(0)),
                    false => describe_layers(train.features(), &widths),
                }
            ))
        })?;
    }

    let (streamed, limit) = model.data_placement(&train, args.data_on.into())?;
    if streamed && verbose > 0 {
        println!(
            "data: {:.1} MB streamed from host memory a batch at a time (resident limit {:.1} MB{})",
            (train.x().len() * 4) as f64 / 1e6,
            limit as f64 / 1e6,
            if matches!(args.data_on, crate::train_args::DataOnArg::Host) {
                ", --data-on host"
            } else {
                ""
            }
        );
    }
    if verbose > 0 {
        match from_file {
            true => println!("{}", crate::labels::model_summary(&model)?),
            false => println!("{}", crate::labels::model_line(train.features(), &widths)),
        }
    }
    let mut progress = Progress::new(verbose).on_stdout(true);
    let options = FitOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        shuffle: !args.no_shuffle,
        seed: args.seed,
        initial_epoch: 0,
        verbose: 0,
        validation_data: validation,
        validation_split: None,
        validation_freq: args.validation_freq.map_or(1, |n| n as usize),
        validation_batch_size: args.validation_batch_size.map(|n| n as usize),
        data_on: args.data_on.into(),
        distributed: launch.group(),
    };
    let mut history_file = match (&args.history, history_format) {
        (Some(path), Some(format)) => Some(HistoryView::history(path.clone(), format)),
        _ => None,
    };
    let fitted = {
        let mut list: Vec<&mut dyn Callback> = Vec::new();
        if let Some(b) = backup.as_mut() {
            list.push(b);
        }
        list.push(&mut progress);
        if let Some(h) = history_file.as_mut() {
            list.push(h);
        }
        list.extend(callbacks.list());
        model.fit(&train, options, &mut list)
    };
    let history = match fitted {
        Ok(history) => history,
        Err(e) => {
            launch.note(&e);
            if rank == 0 && crate::keep_trained::applies(&e, backup.as_ref()) {
                return Err(crate::keep_trained::keep_trained(
                    &model,
                    &args.output,
                    args.output_format(),
                    keras_config.as_deref(),
                    input_scale,
                    e,
                ));
            }
            return Err(match from_file {
                true => crate::model_file::model_file_mismatch(e, &model, &data_name),
                false => fit_error(e, &train, &widths, &data_name),
            });
        }
    };

    if rank > 0 {
        // Identical to rank 0's, checked at the end of `fit`: rank 0 writes them.
        let sha = wgfit::distributed::parameters_sha256().unwrap_or_default();
        println!("rank {rank} parameters sha256: {sha}");
        return Ok(());
    }
    let output_format = args.output_format();
    crate::model_formats::write_model(
        "--output",
        &model,
        &args.output,
        output_format,
        input_scale,
        keras_config.as_deref(),
    )?;
    let superseded = backup.as_ref().map_or(0, |b| b.superseded_saves());
    if let Some(b) = backup.as_mut()
        && !args.keep_checkpoint
    {
        b.remove_backup()?;
    }

    let adapter = model.adapter()?;
    if let Some(report) = callbacks.stop_report() {
        println!("{report}");
    }
    println!("epochs:        {}", history.len());
    // The metrics of the epoch whose weights the output holds.
    let restored = callbacks
        .early_stopping
        .as_ref()
        .and_then(|es| es.restored_epoch());
    let held = match restored {
        Some(epoch) => {
            println!(
                "weights:       epoch {} (the best {}, put back by --restore-best-weights); its metrics:",
                epoch + 1,
                callbacks.monitor
            );
            history.iter().find(|e| e.epoch == epoch).map(|e| &e.logs)
        }
        None => history.last(),
    };
    if let Some(logs) = held {
        for k in metric_order(logs.keys()) {
            println!(
                "{:<14} {}",
                format!("{k}:"),
                wgfit::callbacks::format_value(logs[k])
            );
        }
    }
    println!("output:        {}", args.output.display());
    if let Some(h) = &args.history {
        println!("history:       {}", h.display());
    }
    if let Some(dir) = backup_dir.as_ref().filter(|_| args.keep_checkpoint) {
        println!("backup:        {}", dir.display());
    }
    if superseded > 0 {
        println!(
            "saves skipped: {superseded} (superseded by a newer save while the disk was busy)"
        );
    }
    println!("adapter:       {adapter}");
    if let Some(sha) = wgfit::distributed::parameters_sha256().filter(|_| launch.ranks() > 1) {
        println!("ranks:         {}", launch.ranks());
        println!("rank 0 parameters sha256: {sha}");
    }
    Ok(())
}

/// The output width that fits the data: the class count, or the target columns.
fn default_outputs(data: &Dataset) -> usize {
    match data.targets() {
        Targets::Classes(_) => classes_needed(data).unwrap_or(2).max(2),
        Targets::Tokens { positions, .. } => positions * classes_needed(data).unwrap_or(2).max(2),
        Targets::Values { cols, .. } => *cols,
    }
}

fn describe_layers(inputs: usize, widths: &[usize]) -> String {
    let mut s = inputs.to_string();
    for w in widths {
        s.push_str(&format!("->{w}"));
    }
    s
}

/// Explains a data set that does not fit the model in terms of the CLI's flags.
fn data_mismatch(e: Error, data: &Dataset, widths: &[usize], data_name: &str) -> Failure {
    match e {
        Error::LabelOutOfRange { .. } => {
            let classes = classes_needed(data).unwrap_or(0);
            let mut suggested: Vec<String> = widths
                .iter()
                .take(widths.len().saturating_sub(1))
                .map(|w| w.to_string())
                .collect();
            suggested.push(classes.to_string());
            Failure::new(format!(
                "{e}; {data_name} has {classes} classes (labels 0..{}): use --layers ending in {classes}, e.g. --layers {}",
                classes.saturating_sub(1),
                suggested.join(",")
            ))
        }
        Error::Shape {
            ref what,
            ref expected,
            ref got,
        } if what == "target columns" => Failure::new(format!(
            "{data_name} has {} target columns but the model has {} outputs: use --layers ending in {}",
            got.first().copied().unwrap_or(0),
            expected.first().copied().unwrap_or(0),
            got.first().copied().unwrap_or(0)
        )),
        other => other.into(),
    }
}

/// Adds the CLI's hints to the errors `fit` can end with.
fn fit_error(e: Error, data: &Dataset, widths: &[usize], data_name: &str) -> Failure {
    match e {
        e @ Error::BackupLocked { .. } => Failure::new(format!(
            "{e}; wait for that run to finish, or pass another --backup-dir"
        )),
        e @ (Error::Preempted { .. } | Error::StoppedBySignal { .. }) => preempted(e),
        e @ (Error::LabelOutOfRange { .. } | Error::Shape { .. }) => {
            data_mismatch(e, data, widths, data_name)
        }
        other => other.into(),
    }
}

/// A preemption is not an error: the state is saved and a rerun continues. It is said on
/// stderr without `error:`, and the exit status is still 128 + the signal.
fn preempted(e: Error) -> Failure {
    crate::say_on_stderr(&format!("wgfit: {e}"));
    Failure {
        message: String::new(),
        ..Failure::from(e)
    }
}
