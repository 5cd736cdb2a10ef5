//! `wgfit train`: build a Sequential of dense layers, fit it with backups, write the result.

use crate::progress::Progress;
use crate::{ActivationArg, CliResult, Failure, LossArg, classes_needed, load_data};
use clap::Args;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use wgfit::{
    BackupAndRestore, Callback, CsvOptions, Dataset, Dense, Error, FitOptions, History, SaveFreq,
    Sequential, Sgd, Targets, Tensor,
};

/// The safetensors metadata key under which the output file records how the model was built.
pub const META_KEY: &str = "wgfit";

/// What the output file's metadata records (so evaluate/predict need no --activation/--loss).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    pub activation: String,
    pub loss: String,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit train
      64-32-10 relu network on the bundled digits (scaled to 0..1), 30 epochs
  wgfit train --data iris.csv --layers 16,3 --epochs 100 --batch-size 16 --output iris.safetensors
  wgfit train --epochs 5 --save-freq 10 --history history.csv

Backups go to <output stem>.backup beside --output (wgfit-model.backup by default) and are
removed when training ends; a run killed or preempted (SIGTERM/SIGINT saves first) resumes
exactly when the same command runs again.")]
pub struct TrainArgs {
    /// Training data: CSV (optionally gzip; class label in the last column) or safetensors with
    /// tensors `x` and `y` [default: the bundled digits data set, 1797 8x8 images, pixel values
    /// 0..16 scaled by 1/16]
    #[arg(long, value_name = "PATH", help_heading = "Data")]
    data: Option<PathBuf>,
    /// Multiply every input by F [default: 0.0625 (1/16) for the bundled digits, 1 for --data]
    #[arg(long, value_name = "F", help_heading = "Data")]
    scale: Option<f32>,
    /// Hold out the last fraction F of the data and report val_loss (and val_accuracy)
    #[arg(long, value_name = "F", help_heading = "Data")]
    validation_split: Option<f64>,

    /// Hidden widths then the output width, e.g. 64,32,10; the input width comes from the data
    /// [default: 32,<classes> (32,10 for the digits)]
    #[arg(
        long,
        value_name = "W,..",
        value_delimiter = ',',
        help_heading = "Model"
    )]
    layers: Option<Vec<usize>>,
    /// Activation of the hidden layers (the output layer is linear)
    #[arg(long, value_enum, default_value = "relu", help_heading = "Model")]
    activation: ActivationArg,
    /// Loss: softmax cross-entropy on class labels, or mean squared error
    #[arg(
        long,
        value_enum,
        default_value = "crossentropy",
        help_heading = "Model"
    )]
    loss: LossArg,
    /// Start from the parameters in this safetensors file (same names and shapes as --output)
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    init: Option<PathBuf>,

    /// Learning rate
    #[arg(long, default_value_t = 0.1, help_heading = "Optimizer (SGD)")]
    lr: f32,
    /// Momentum
    #[arg(long, default_value_t = 0.9, help_heading = "Optimizer (SGD)")]
    momentum: f32,
    /// Nesterov momentum
    #[arg(long, help_heading = "Optimizer (SGD)")]
    nesterov: bool,
    /// Decoupled weight decay
    #[arg(long, default_value_t = 0.0, help_heading = "Optimizer (SGD)")]
    weight_decay: f32,

    /// Epochs to train
    #[arg(long, default_value_t = 30, help_heading = "Loop")]
    epochs: usize,
    /// Rows per batch
    #[arg(long, default_value_t = 32, help_heading = "Loop")]
    batch_size: usize,
    /// Seed of the initial weights and of the data order
    #[arg(long, default_value_t = 42, help_heading = "Loop")]
    seed: u64,
    /// Keep the data order (no shuffle per epoch)
    #[arg(long, help_heading = "Loop")]
    no_shuffle: bool,
    /// 0 silent (summary only), 1 a progress bar per epoch, 2 one line per epoch [default: 1 on
    /// a terminal, 2 otherwise]
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2), help_heading = "Loop")]
    verbose: Option<u8>,

    /// Backup directory [default: <output stem>.backup beside --output]
    #[arg(
        long,
        value_name = "DIR",
        help_heading = "Backup",
        conflicts_with = "no_backup"
    )]
    backup_dir: Option<PathBuf>,
    /// Train without backups (a killed run starts over)
    #[arg(long, help_heading = "Backup")]
    no_backup: bool,
    /// When to back up: epoch, every N batches, or never (only on SIGTERM/SIGINT)
    #[arg(long, value_name = "epoch|N|never", default_value = "epoch", value_parser = parse_save_freq, help_heading = "Backup")]
    save_freq: SaveFreq,
    /// Keep the state before the latest as a fallback
    #[arg(long, help_heading = "Backup")]
    double_checkpoint: bool,
    /// Keep the backup after training ends (default: remove it once the output is written)
    #[arg(long, help_heading = "Backup")]
    keep_checkpoint: bool,
    /// On SIGTERM or SIGINT, save a backup and exit with 128 + the signal number [default: on]
    #[arg(
        long,
        overrides_with = "no_save_before_preemption",
        help_heading = "Backup"
    )]
    save_before_preemption: bool,
    /// Let SIGTERM and SIGINT end the run at once (the last regular backup stays)
    #[arg(long, help_heading = "Backup")]
    no_save_before_preemption: bool,
    /// Discard a backup of a different run (model, data, options) instead of refusing to start
    #[arg(long, help_heading = "Backup")]
    discard_mismatched_backup: bool,

    /// Where to write the final parameters (model.layers.<i>.weight [out,in] and .bias)
    #[arg(
        long,
        value_name = "PATH",
        default_value = "wgfit-model.safetensors",
        help_heading = "Output"
    )]
    output: PathBuf,
    /// Write the per-epoch metrics here (.csv or .json)
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    history: Option<PathBuf>,
}

fn parse_save_freq(s: &str) -> Result<SaveFreq, String> {
    match s {
        "epoch" => Ok(SaveFreq::Epoch),
        "never" => Ok(SaveFreq::Never),
        n => match n.parse::<usize>() {
            Ok(0) => Err("0 batches never saves; use 1 or more, `epoch` or `never`".into()),
            Ok(n) => Ok(SaveFreq::Batches(n)),
            Err(_) => Err(format!(
                "`{n}` is not `epoch`, `never` or a number of batches"
            )),
        },
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 2,
    }
}

/// The default backup directory: `<output stem>.backup` beside the output.
fn default_backup_dir(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wgfit-model".into());
    output.with_file_name(format!("{stem}.backup"))
}

enum HistoryFormat {
    Csv,
    Json,
}

pub fn run(args: TrainArgs) -> CliResult {
    // Everything that can be checked before training is checked first.
    let history_format = match &args.history {
        None => None,
        Some(p) => match p
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "csv" => Some(HistoryFormat::Csv),
            Some(e) if e == "json" => Some(HistoryFormat::Json),
            _ => {
                return Err(usage(format!(
                    "--history {}: use a file name ending in .csv or .json",
                    p.display()
                )));
            }
        },
    };
    for (flag, path) in [
        ("--output", Some(&args.output)),
        ("--history", args.history.as_ref()),
    ] {
        if let Some(p) = path {
            check_parent(flag, p)?;
        }
    }
    let verbose = args.verbose.unwrap_or(if std::io::stdout().is_terminal() {
        1
    } else {
        2
    });

    let data = load_data(args.data.as_deref(), &CsvOptions::default(), args.scale)?;
    let (train, validation) = match args.validation_split {
        Some(f) => {
            let (t, v) = data.split_tail(f)?;
            (t, Some(v))
        }
        None => (data, None),
    };

    let widths = match &args.layers {
        Some(w) => w.clone(),
        None => vec![32, default_outputs(&train)],
    };
    let activation = args.activation.to_lib();
    let loss = args.loss.to_lib();
    let mut model = Sequential::new(train.features()).seed(args.seed);
    let last = widths.len().saturating_sub(1);
    for (i, &w) in widths.iter().enumerate() {
        let layer = Dense::new(w);
        model = model.add(if i < last {
            layer.activation(activation)
        } else {
            layer
        });
    }
    let optimizer = Sgd::new(args.lr)
        .momentum(args.momentum)
        .nesterov(args.nesterov)
        .weight_decay(args.weight_decay);
    model.compile(loss, optimizer)?;
    let data_name = args.data.as_ref().map_or_else(
        || "the bundled digits".to_string(),
        |p| p.display().to_string(),
    );
    for d in std::iter::once(&train).chain(validation.as_ref()) {
        model
            .check_data(d)
            .map_err(|e| data_mismatch(e, d, &widths, &data_name))?;
    }
    if let Some(init) = &args.init {
        let tensors = wgfit::checkpoint::read_tensors(init)?;
        model.set_parameters(&tensors).map_err(|e| {
            Failure::new(format!(
                "--init {}: {e} (the file must hold model.layers.<i>.weight/bias for layers {})",
                init.display(),
                describe_layers(train.features(), &widths)
            ))
        })?;
    }

    let backup_dir = if args.no_backup {
        None
    } else {
        Some(
            args.backup_dir
                .clone()
                .unwrap_or_else(|| default_backup_dir(&args.output)),
        )
    };
    // A directory the user named and made is left in place; the default one is removed with
    // the backup once training ends.
    let backup_existed = args.backup_dir.as_ref().is_some_and(|d| d.exists());
    let mut backup = match &backup_dir {
        None => None,
        Some(dir) => Some(
            BackupAndRestore::new(dir)?
                .save_before_preemption(!args.no_save_before_preemption)?
                .save_freq(args.save_freq)?
                .double_checkpoint(args.double_checkpoint)
                // The CLI removes the backup itself, after the output is safely written.
                .delete_checkpoint(false)
                .discard_mismatched(args.discard_mismatched_backup),
        ),
    };
    let mut progress = Progress::new(verbose);
    let options = FitOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        shuffle: !args.no_shuffle,
        seed: args.seed,
        initial_epoch: 0,
        verbose: 0,
        validation_data: validation,
    };
    let history = {
        let mut callbacks: Vec<&mut dyn Callback> = Vec::new();
        if let Some(b) = backup.as_mut() {
            callbacks.push(b);
        }
        callbacks.push(&mut progress);
        model
            .fit(&train, options, &mut callbacks)
            .map_err(|e| fit_error(e, &train, &widths, &data_name))?
    };

    let params = model.parameters()?;
    let meta = ModelMeta {
        activation: activation.name().to_string(),
        loss: loss.name().to_string(),
    };
    write_weights(&args.output, &params, &meta)?;
    if let (Some(path), Some(format)) = (&args.history, history_format) {
        write_history(path, &history, format)?;
    }
    if let Some(dir) = &backup_dir
        && !args.keep_checkpoint
    {
        remove_backup(dir, backup_existed)?;
    }

    let adapter = model.adapter()?;
    println!("epochs:        {}", history.len());
    if let Some(logs) = history.last() {
        for k in crate::metric_order(logs.keys()) {
            println!("{:<14} {:.4}", format!("{k}:"), logs[k]);
        }
    }
    println!("output:        {}", args.output.display());
    if let Some(h) = &args.history {
        println!("history:       {}", h.display());
    }
    if let Some(dir) = backup_dir.as_ref().filter(|_| args.keep_checkpoint) {
        println!("backup:        {}", dir.display());
    }
    println!("adapter:       {adapter}");
    Ok(())
}

/// The output width that fits the data: the class count, or the target columns.
fn default_outputs(data: &Dataset) -> usize {
    match data.targets() {
        Targets::Classes(_) => classes_needed(data).unwrap_or(2).max(2),
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

fn check_parent(flag: &str, path: &Path) -> CliResult {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(()),
    };
    if !parent.is_dir() {
        return Err(Failure::new(format!(
            "{flag} {}: the directory {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
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
        Error::FingerprintMismatch { dir, differences } => Failure::new(format!(
            "the backup in {} belongs to a different run; differences:\n  {}\nrerun with --discard-mismatched-backup to discard it and start over, or pass another --backup-dir",
            dir.display(),
            differences.join("\n  ")
        )),
        e @ Error::BackupLocked { .. } => Failure::new(format!(
            "{e}; wait for that run to finish, or pass another --backup-dir"
        )),
        e @ Error::Preempted { .. } => e.into(),
        e @ (Error::LabelOutOfRange { .. } | Error::Shape { .. }) => {
            data_mismatch(e, data, widths, data_name)
        }
        other => other.into(),
    }
}

/// Writes the parameters as safetensors, atomically (a temporary file renamed into place).
fn write_weights(path: &Path, params: &[Tensor], meta: &ModelMeta) -> CliResult {
    let fail = |e: &dyn std::fmt::Display| {
        Failure::new(format!("cannot write --output {}: {e}", path.display()))
    };
    let bytes: Vec<Vec<u8>> = params
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for (t, b) in params.iter().zip(&bytes) {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                .map_err(|e| fail(&e))?;
        views.push((t.name.clone(), view));
    }
    let meta_json = serde_json::to_string(meta).map_err(|e| fail(&e))?;
    // One metadata key only, so the file's bytes are the same from run to run.
    let info = HashMap::from([(META_KEY.to_string(), meta_json)]);
    let data = safetensors::serialize(views, Some(info)).map_err(|e| fail(&e))?;
    write_atomic(path, &data).map_err(|e| fail(&e))
}

/// Writes `data` to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wgfit-out-");
    // A plain file, as `File::create` makes it (the umask applies), not tempfile's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn write_history(path: &Path, history: &History, format: HistoryFormat) -> CliResult {
    let mut all: Vec<&String> = history.epochs.iter().flat_map(|e| e.logs.keys()).collect();
    all.sort();
    all.dedup();
    let names = crate::metric_order(all);
    let text = match format {
        HistoryFormat::Csv => {
            let mut s = String::from("epoch");
            for n in &names {
                s.push(',');
                s.push_str(n);
            }
            s.push('\n');
            for e in &history.epochs {
                s.push_str(&e.epoch.to_string());
                for n in &names {
                    s.push(',');
                    if let Some(v) = e.logs.get(*n) {
                        s.push_str(&v.to_string());
                    }
                }
                s.push('\n');
            }
            s
        }
        HistoryFormat::Json => {
            let rows: Vec<serde_json::Value> = history
                .epochs
                .iter()
                .map(|e| {
                    let mut row = serde_json::Map::new();
                    row.insert("epoch".into(), e.epoch.into());
                    for (k, v) in &e.logs {
                        row.insert(k.clone(), (*v).into());
                    }
                    serde_json::Value::Object(row)
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&rows)
                .map_err(|e| Failure::new(format!("cannot encode the history: {e}")))?;
            s.push('\n');
            s
        }
    };
    write_atomic(path, text.as_bytes())
        .map_err(|e| Failure::new(format!("cannot write --history {}: {e}", path.display())))
}

/// Removes what the backup callback wrote, and the directory when this run created it.
fn remove_backup(dir: &Path, existed_before: bool) -> CliResult {
    let mut backup = wgfit::checkpoint::BackupDir::open(dir)?;
    backup.remove_all()?;
    drop(backup);
    if !existed_before {
        // Fails harmlessly when the user put other files there.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}
