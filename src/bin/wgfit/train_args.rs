//! The arguments of `wgfit train` and the checks that need nothing but the arguments.

use crate::Failure;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use wgfit::{Activation, Loss, SaveFreq};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit train
      64-32-10 relu network on the bundled digits (scaled to 0..1), 30 epochs
  wgfit train --data iris.csv --layers 16,3 --epochs 100 --batch-size 16 --output iris.safetensors
  wgfit train --epochs 5 --save-freq 10 --history history.csv
  wgfit train --validation-split 0.2 --early-stopping 5 --restore-best-weights --plot curves.svg
  wgfit train --checkpoint 'ckpt/w-{epoch:02d}-{val_loss:.3f}.safetensors' --save-best-only \
      --validation-split 0.2 --reduce-lr-on-plateau 0.5 --plateau-patience 3 --csv-log log.csv

Backups go to <output stem>.backup beside --output (wgfit-model.backup by default) and are
removed when training ends; a run killed or preempted (SIGTERM/SIGINT saves first) resumes
exactly when the same command runs again.")]
pub struct TrainArgs {
    /// Training data: CSV (optionally gzip; class label in the last column), safetensors with
    /// tensors `x` and `y` (an F32 `x` is mapped, not read: see `wgfit convert`), or a NumPy pair
    /// `<name>x.npy`/`<name>y.npy` (give the x file) [default: the bundled digits data set, 1797
    /// 8x8 images, pixel values 0..16 scaled by 1/16]
    #[arg(long, value_name = "PATH", help_heading = "Data")]
    pub data: Option<PathBuf>,
    /// Multiply every input by F [default: 0.0625 (1/16) for the bundled digits, 1 for --data]
    #[arg(long, value_name = "F", help_heading = "Data")]
    pub scale: Option<f32>,
    /// Hold out the last fraction F of the data and report val_loss (and val_accuracy)
    #[arg(
        long,
        value_name = "F",
        help_heading = "Data",
        conflicts_with = "validation_data"
    )]
    pub validation_split: Option<f64>,
    /// Where the data lives while training: auto (on the GPU when it fits, else streamed), gpu,
    /// or host (a batch at a time from host memory); both give the same results
    #[arg(long, value_enum, default_value = "auto", help_heading = "Data")]
    pub data_on: DataOnArg,
    /// Validation data, in the same forms as --data (and scaled by --scale)
    #[arg(long, value_name = "PATH", help_heading = "Data")]
    pub validation_data: Option<PathBuf>,
    /// Validate at the end of every N-th epoch [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Data")]
    pub validation_freq: Option<u64>,
    /// Rows per validation batch [default: --batch-size]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Data")]
    pub validation_batch_size: Option<u64>,

    /// Hidden widths then the output width, e.g. 64,32,10; the input width comes from the data
    /// [default: 32,<classes> (32,10 for the digits)]
    #[arg(
        long,
        value_name = "W,..",
        value_delimiter = ',',
        action = clap::ArgAction::Set,
        help_heading = "Model"
    )]
    pub layers: Option<Vec<usize>>,
    /// A Keras 3 model instead of --layers: the JSON `model.to_json()` writes for a Sequential
    /// or Functional model of Dense, Conv2D, MaxPooling2D, AveragePooling2D,
    /// GlobalAveragePooling2D, Flatten, Reshape, Dropout, Activation, BatchNormalization,
    /// LayerNormalization, Embedding, PositionEmbedding, MultiHeadAttention, Add and Softmax
    /// layers, or a .keras file (its config, and its weights to start from); rows of the data
    /// are its input, flattened
    #[arg(
        long,
        value_name = "PATH.json|PATH.keras",
        conflicts_with_all = ["layers", "activation"],
        help_heading = "Model"
    )]
    pub model: Option<std::path::PathBuf>,
    /// Activation of the hidden layers (the output layer is linear)
    #[arg(long, value_enum, default_value = "relu", help_heading = "Model")]
    pub activation: Activation,
    /// Loss: softmax cross-entropy on class labels, or mean squared error
    #[arg(
        long,
        value_enum,
        default_value = "crossentropy",
        help_heading = "Model"
    )]
    pub loss: Loss,
    /// Start from the parameters in this file: wgfit's safetensors (same names and shapes as
    /// --output), Keras's .weights.h5, or a .keras file's weights
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub init: Option<PathBuf>,

    #[command(flatten)]
    pub optimizer: crate::optimizer_args::OptimizerArgs,

    /// Epochs to train
    #[arg(long, default_value_t = 30, help_heading = "Loop")]
    pub epochs: usize,
    /// Rows per batch
    #[arg(long, default_value_t = 32, help_heading = "Loop")]
    pub batch_size: usize,
    /// Seed of the initial weights and of the data order
    #[arg(long, default_value_t = 42, help_heading = "Loop")]
    pub seed: u64,
    /// Keep the data order (no shuffle per epoch)
    #[arg(long, help_heading = "Loop")]
    pub no_shuffle: bool,
    /// 0 silent (summary only), 1 a progress bar per epoch, 2 one line per epoch [default: 1 on
    /// a terminal, 2 otherwise]
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2), help_heading = "Loop")]
    pub verbose: Option<u8>,

    /// Backup directory, or an object-store URL (s3://bucket/prefix, gs://…, az://…, with the
    /// AWS_*, GOOGLE_* or AZURE_* environment) [default: <output stem>.backup beside --output]
    #[arg(
        long,
        value_name = "DIR",
        help_heading = "Backup",
        conflicts_with = "no_backup"
    )]
    pub backup_dir: Option<PathBuf>,
    /// Train without backups (a killed run starts over)
    #[arg(long, help_heading = "Backup")]
    pub no_backup: bool,
    /// When to back up: epoch, every N batches, every so long (30s, 10m, 1h: at the first batch
    /// end after that much time), or never (only on SIGTERM/SIGINT)
    #[arg(long, value_name = "epoch|N|DURATION|never", default_value = "epoch", value_parser = parse_save_freq, help_heading = "Backup", conflicts_with = "no_backup")]
    pub save_freq: SaveFreq,
    /// Keep the state before the latest as a fallback
    #[arg(long, help_heading = "Backup", conflicts_with = "no_backup")]
    pub double_checkpoint: bool,
    /// Continue the backup's run on however many ranks this job has: with a backup saved on
    /// another rank count, --batch-size and --accumulate become those of the same run on this
    /// one (its rows per micro-batch and micro-batches per update), so the result is
    /// bit-identical; without a backup the flags define the run (docs/MPI.md)
    #[arg(long, help_heading = "Backup", conflicts_with = "no_backup")]
    pub elastic: bool,
    /// Keep the backup after training ends (default: remove it once the output is written)
    #[arg(long, help_heading = "Backup", conflicts_with = "no_backup")]
    pub keep_checkpoint: bool,
    /// On SIGTERM or SIGINT, save a backup and exit with 128 + the signal number [default: on]
    #[arg(
        long,
        overrides_with = "no_save_before_preemption",
        help_heading = "Backup",
        conflicts_with = "no_backup"
    )]
    pub save_before_preemption: bool,
    /// Let SIGTERM and SIGINT end the run at once (the last regular backup stays)
    #[arg(long, help_heading = "Backup", conflicts_with = "no_backup")]
    pub no_save_before_preemption: bool,
    /// Discard a backup of a different run (model, data, options) instead of refusing to start
    #[arg(long, help_heading = "Backup", conflicts_with = "no_backup")]
    pub discard_mismatched_backup: bool,

    /// Where to write the final parameters (model.layers.<i>.weight [out,in] and .bias)
    #[arg(
        long,
        value_name = "PATH",
        default_value = "wgfit-model.safetensors",
        help_heading = "Output"
    )]
    pub output: PathBuf,
    /// The format of --output [default: by its extension: .weights.h5, .keras, .onnx,
    /// .pt.safetensors; else wgfit's safetensors]
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Output")]
    pub output_format: Option<crate::model_formats::ModelFormat>,
    /// Write the per-epoch metrics here as the run goes (.csv, or .json with the run's starts,
    /// resumes and preemptions too): after each epoch, or, while epochs are short against a
    /// rewrite of the file, often enough that the rewrites take about 2 % of the run
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub history: Option<PathBuf>,

    #[command(flatten)]
    pub callbacks: crate::callback_args::CallbackArgs,
}

impl TrainArgs {
    /// The format --output is written in: --output-format, else its extension's, else
    /// wgfit's safetensors.
    pub fn output_format(&self) -> crate::model_formats::ModelFormat {
        self.output_format
            .or_else(|| crate::model_formats::ModelFormat::of_path(&self.output))
            .unwrap_or(crate::model_formats::ModelFormat::Safetensors)
    }

    /// The format of --history, from its extension; a usage error for anything but .csv/.json.
    pub fn history_format(&self) -> Result<Option<HistoryFormat>, Failure> {
        match &self.history {
            None => Ok(None),
            Some(p) => match p
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
            {
                Some(e) if e == "csv" => Ok(Some(HistoryFormat::Csv)),
                Some(e) if e == "json" => Ok(Some(HistoryFormat::Json)),
                _ => Err(usage(format!(
                    "--history {}: use a file name ending in .csv or .json",
                    p.display()
                ))),
            },
        }
    }

    /// --verbose, defaulting to a progress bar on a terminal and one line per epoch otherwise.
    pub fn verbose_level(&self) -> u8 {
        self.verbose.unwrap_or(if std::io::stdout().is_terminal() {
            1
        } else {
            2
        })
    }

    /// Where backups go: none with --no-backup, else --backup-dir or the default beside --output.
    pub fn backup_dir(&self) -> Option<PathBuf> {
        if self.no_backup {
            None
        } else {
            Some(
                self.backup_dir
                    .clone()
                    .unwrap_or_else(|| default_backup_dir(&self.output)),
            )
        }
    }
}

/// `--data-on`.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum DataOnArg {
    Auto,
    Gpu,
    Host,
}

impl From<DataOnArg> for wgfit::DataOn {
    fn from(a: DataOnArg) -> Self {
        match a {
            DataOnArg::Auto => wgfit::DataOn::Auto,
            DataOnArg::Gpu => wgfit::DataOn::Gpu,
            DataOnArg::Host => wgfit::DataOn::Host,
        }
    }
}

/// How --history is written, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    Csv,
    Json,
}

fn parse_save_freq(s: &str) -> Result<SaveFreq, String> {
    // A duration: a whole number of seconds, minutes or hours (`90s`, `10m`, `1h`).
    let unit = match s.chars().last() {
        Some('s') => Some(1),
        Some('m') => Some(60),
        Some('h') => Some(3600),
        _ => None,
    };
    if let (Some(unit), Ok(n)) = (unit, s[..s.len() - 1].parse::<u64>()) {
        if n == 0 {
            return Err("a duration of 0 would save at every batch; use 1 for that".into());
        }
        let secs = n.checked_mul(unit).ok_or("that duration is too long")?;
        return Ok(SaveFreq::Every(std::time::Duration::from_secs(secs)));
    }
    match s {
        "epoch" => Ok(SaveFreq::Epoch),
        "never" => Ok(SaveFreq::Never),
        n => match n.parse::<usize>() {
            Ok(0) => Err("0 batches never saves; use 1 or more, `epoch` or `never`".into()),
            Ok(n) => Ok(SaveFreq::Batches(n)),
            Err(_) => Err(format!(
                "`{n}` is not `epoch`, `never`, a number of batches or a duration (30s, 10m, 1h)"
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
