//! `wgfit`: train, inspect, evaluate and predict with wgfit models from the command line.
//!
//! Exit status: 0 done; 1 error; 2 usage error (an unknown flag, a bad value of a flag or of a
//! `WGFIT_*` environment variable, flags that do not go together); 128 + the signal number
//! after a preemption (SIGTERM/SIGINT) whose state was saved to the backup directory; killed
//! by SIGPIPE (141 in a shell) when the reader of stdout or stderr went away.

mod arg_checks;
mod callback_args;
mod convert;
mod devices;
mod elastic;
mod evaluate;
mod export;
mod generate;
mod history_file;
mod inspect;
mod keep_trained;
mod labels;
mod model_file;
mod model_formats;
mod mpi_launch;
mod optimizer_args;
mod plot;
mod predict;
mod preflight;
mod train;
mod train_args;

use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use wgfit::{CsvOptions, Dataset};

/// The bundled data set: 1797 handwritten digits, 8x8 pixels of 0..16, label in the last column.
const DIGITS_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");

/// The bundled digits are scaled by this (pixel values 0..16 become 0..1).
pub const DIGITS_SCALE: f32 = 1.0 / 16.0;

#[derive(Parser)]
#[command(
    name = "wgfit",
    version,
    about = "Train neural networks on the GPU (wgpu compute shaders), with exact crash-safe resume",
    after_help = "Examples:\n  wgfit train                      train a 64-32-10 network on the bundled digits\n  wgfit train --epochs 5 --output digits.safetensors\n  wgfit inspect digits.backup      what a killed run left behind\n  wgfit evaluate --weights digits.safetensors\n\nA killed `wgfit train` picks up where it stopped when run again with the same arguments."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

// Every command takes negative numbers as values (`--lr -0.01`), so that its own check names
// the flag and the value rather than clap taking `-0` for an unknown flag.
#[derive(Subcommand)]
enum Command {
    /// Train a model (dense layers, or a Keras model file) and write its final parameters.
    #[command(allow_negative_numbers = true)]
    Train(Box<train_args::TrainArgs>),
    /// Report on a backup directory: the committed checkpoint and whether its files verify.
    #[command(allow_negative_numbers = true)]
    Inspect(inspect::InspectArgs),
    /// Print the loss (and accuracy) of trained weights on a data set.
    #[command(allow_negative_numbers = true)]
    Evaluate(evaluate::EvaluateArgs),
    /// Write the model's outputs for every row of a data set as CSV.
    #[command(allow_negative_numbers = true)]
    Predict(predict::PredictArgs),
    /// Write trained weights for Keras (.weights.h5, .keras), ONNX (.onnx) or PyTorch
    /// (.pt.safetensors).
    #[command(allow_negative_numbers = true)]
    Export(export::ExportArgs),
    /// Draw a run's training curves (loss, accuracy, ...) as an SVG, marking resumes and
    /// learning-rate changes.
    #[command(
        allow_negative_numbers = true,
        after_help = "Examples:\n  wgfit train --history run.json --backup-dir run.backup\n  wgfit plot run.json -o run.svg\n  wgfit plot keras_log.csv --backup-dir run.backup -o run.svg --width 1200"
    )]
    Plot(plot::PlotArgs),
    /// Convert a CSV data set, a folder of images or a text to safetensors, which training
    /// maps instead of parsing.
    #[command(allow_negative_numbers = true)]
    Convert(convert::ConvertArgs),
    /// Continue a text with a character-level model trained on `convert --seq-len` data.
    #[command(allow_negative_numbers = true)]
    Generate(generate::GenerateArgs),
    /// List the GPU adapters wgpu sees and mark the one wgfit would use.
    #[command(
        after_help = "Examples:\n  wgfit devices\n  WGPU_ADAPTER_NAME=llvmpipe wgfit train    use the adapter whose name contains `llvmpipe`"
    )]
    Devices,
}

/// A command's failure: the message for stderr and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<wgfit::Error> for Failure {
    fn from(e: wgfit::Error) -> Self {
        let code = match &e {
            wgfit::Error::Preempted { signal, .. }
            | wgfit::Error::StoppedBySignal { signal, .. } => {
                u8::try_from(128 + signal.clamp(&0, &127)).unwrap_or(1)
            }
            // A bad value, like a bad flag value: the run never started.
            wgfit::Error::Environment { .. } => 2,
            _ => 1,
        };
        Failure {
            message: e.to_string(),
            code,
        }
    }
}

pub type CliResult<T = ()> = Result<T, Failure>;

/// Loads `--data` (CSV, optionally gzip, or safetensors with `x` and `y`), or the bundled digits
/// scaled to 0..1 when no path is given; `scale` multiplies the inputs (default: 1/16 for the
/// bundled digits, 1 for a file).
pub fn load_data(
    path: Option<&Path>,
    options: &CsvOptions,
    scale: Option<f32>,
) -> CliResult<Dataset> {
    let data = match path {
        Some(p) => load_file(p, options)?,
        None => load_bundled(options)?,
    };
    let scale = scale.unwrap_or(if path.is_none() { DIGITS_SCALE } else { 1.0 });
    scale_inputs(data, scale)
}

/// Loads a data file, its form told by its content, not its name; a CSV of 16 MB or more
/// shows a progress bar on a terminal (mapped formats are not read but mapped: nothing to wait
/// for but one hashing pass).
fn load_file(path: &Path, options: &CsvOptions) -> CliResult<Dataset> {
    let format = wgfit::data::DataFormat::of(path)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if format != wgfit::data::DataFormat::Csv || size < 16 << 20 {
        return Dataset::load(path, options).map_err(|e| float_targets_hint(e, path, options));
    }
    let bar = byte_progress(size, "loading");
    let data =
        Dataset::from_csv_with_progress(path, options, |read| bar.set_position(read.min(size)));
    bar.finish_and_clear();
    data.map_err(|e| float_targets_hint(e, path, options))
}

/// A CSV whose last column is not a class label is most often a regression data set: the
/// error says how to train on float targets.
fn float_targets_hint(e: wgfit::Error, path: &Path, options: &CsvOptions) -> Failure {
    let label_error = matches!(&e, wgfit::Error::DataParse { reason, .. }
        if reason.starts_with("class label"));
    if !(label_error && options.targets == wgfit::CsvTargets::Class) {
        return e.into();
    }
    let stem = path
        .file_stem()
        .map_or("data".into(), |s| s.to_string_lossy());
    Failure::new(format!(
        "{e}\n  the last column is read as a class label; for float targets (regression, \
         --loss mse) convert the file with the number N of target columns, then train on the \
         result:\n    wgfit convert {} {stem}.safetensors --targets N\n    \
         wgfit train --data {stem}.safetensors --loss mse ...",
        path.display()
    ))
}

/// A progress bar over `size` bytes on stderr when it is a terminal (hidden otherwise).
pub fn byte_progress(size: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bytes}}/{{total_bytes}} {{wide_bar}} {{binary_bytes_per_sec}} {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

/// The bundled digits as the CSV loader reads them with `options` (unscaled).
pub fn load_bundled(options: &CsvOptions) -> CliResult<Dataset> {
    let mut tmp = tempfile::Builder::new()
        .prefix("wgfit-digits-")
        .suffix(".csv.gz")
        .tempfile()
        .map_err(|e| Failure::new(format!("cannot unpack the bundled digits data set: {e}")))?;
    tmp.write_all(DIGITS_GZ)
        .and_then(|_| tmp.flush())
        .map_err(|e| Failure::new(format!("cannot unpack the bundled digits data set: {e}")))?;
    Ok(Dataset::from_csv(tmp.path(), options)?)
}

/// Multiplies every input by `scale` (no copy when it is 1).
pub fn scale_inputs(data: Dataset, scale: f32) -> CliResult<Dataset> {
    if scale == 1.0 {
        return Ok(data);
    }
    if !scale.is_finite() || scale == 0.0 {
        return Err(Failure {
            message: format!("--scale {scale} is not usable; pass a finite, non-zero factor"),
            code: 2,
        });
    }
    let x = data.x().iter().map(|v| v * scale).collect();
    Ok(Dataset::new(x, data.features(), data.targets().clone())?)
}

/// The number of classes a data set's labels need (max label + 1), if it has class labels.
pub fn classes_needed(data: &Dataset) -> Option<usize> {
    match data.targets() {
        wgfit::Targets::Classes(labels) | wgfit::Targets::Tokens { labels, .. } => {
            labels.iter().max().map(|&m| m as usize + 1)
        }
        wgfit::Targets::Values { .. } => None,
    }
}

/// A reader that closes its end of stdout or stderr (`wgfit inspect DIR | head`) ends wgfit
/// as it ends other Unix tools: by SIGPIPE, exit status 141 in a shell, with nothing more to
/// say. Rust ignores SIGPIPE, which turns every later print into a panic (exit 101, which
/// `inspect`'s statuses would read as something else); a killed `train` leaves its last
/// backup, and the same command resumes from it.
fn die_on_closed_pipe() {
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

fn main() -> ExitCode {
    die_on_closed_pipe();
    // Before any other thread exists (see the function's docs).
    wgfit::gpu::quiet_headless_vulkan();
    let cli = Cli::parse();
    let result = match wgfit::env_knobs::check() {
        Err(e) => Err(e.into()),
        Ok(()) => run(cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                say_on_stderr(&format!("wgfit: error: {}", f.message));
            }
            ExitCode::from(f.code)
        }
    }
}

/// Writes `line` and a newline to stderr in one write: the ranks of an MPI job share it, and
/// a line written in pieces (as `eprintln!` formats it) interleaves with another rank's.
pub fn say_on_stderr(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

fn run(cli: Cli) -> CliResult {
    match cli.command {
        None => {
            println!("wgfit {}", env!("CARGO_PKG_VERSION"));
            println!(
                "run `wgfit --help` for the commands, `wgfit train` to train on the bundled digits"
            );
            Ok(())
        }
        Some(Command::Train(args)) => train::run(*args),
        Some(Command::Inspect(args)) => inspect::run(args),
        Some(Command::Evaluate(args)) => evaluate::run_evaluate(args),
        Some(Command::Predict(args)) => predict::run_predict(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Plot(args)) => plot::run(args),
        Some(Command::Convert(args)) => convert::run(args),
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::Devices) => devices::run(),
    }
}
