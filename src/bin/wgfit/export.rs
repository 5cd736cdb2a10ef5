//! `wgfit export`: a weights file as Keras's `.weights.h5` or `.keras`, ONNX, or safetensors
//! with PyTorch's names (docs/INTEROP.md).

use crate::model_formats::{ModelFormat, write_model};
use crate::{CliResult, Failure};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit export digits.safetensors -o digits.weights.h5      Keras's model.load_weights reads it
  wgfit export digits.safetensors -o digits.keras           keras.saving.load_model reads it
  wgfit export digits.safetensors -o digits.onnx            onnxruntime runs it
  wgfit export digits.safetensors -o digits.pt.safetensors --names torch
  wgfit export gpt.safetensors --model gpt.json -o gpt.keras   the .keras keeps your config

A cross-entropy model's .keras, and its ONNX output `probabilities`, end in the softmax that
`wgfit predict` applies. Inputs go in as training took them: multiplied by the --scale the
weights file records (printed here when it is not 1).")]
pub struct ExportArgs {
    /// The weights to export, as `wgfit train --output` or `--checkpoint` writes them
    #[arg(value_name = "WEIGHTS")]
    weights: PathBuf,
    /// Where to write
    #[arg(short, long, value_name = "PATH")]
    output: PathBuf,
    /// The format [default: by the extension of --output: .weights.h5, .keras, .onnx,
    /// .pt.safetensors (with --names torch), .safetensors]
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<ModelFormat>,
    /// Tensor names of a .safetensors output: wgfit's, or PyTorch's nn.Sequential state_dict
    #[arg(long, value_enum, default_value = "wgfit")]
    names: Names,
    /// The Keras config for a .keras output: this model.to_json() file, or this .keras file's
    /// config (describing the same model), instead of the one wgfit writes
    #[arg(long, value_name = "PATH.json|PATH.keras")]
    model: Option<PathBuf>,
}

/// Tensor names in a safetensors output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Names {
    /// `model.layers.<i>.weight`, …
    Wgfit,
    /// `0.weight`, … as `torch.nn.Sequential`'s `state_dict()`.
    Torch,
}

pub fn run(args: ExportArgs) -> CliResult {
    let usage = crate::arg_checks::usage;
    let mut format = ModelFormat::choose("--output", &args.output, args.format)?;
    match (format, args.names) {
        (ModelFormat::Safetensors, Names::Torch) => format = ModelFormat::Torch,
        (ModelFormat::Torch | ModelFormat::Safetensors, _) => {}
        (other, Names::Torch) => {
            return Err(usage(format!(
                "--names torch names the tensors of a safetensors output, not of {} (--output {})",
                other.name(),
                args.output.display()
            )));
        }
        _ => {}
    }
    if format == ModelFormat::Torch && args.names == Names::Wgfit && args.format.is_none() {
        return Err(usage(format!(
            "--output {}: a .pt.safetensors file holds PyTorch's names; add --names torch (or name it .safetensors)",
            args.output.display()
        )));
    }
    if args.model.is_some() && format != ModelFormat::Keras {
        return Err(usage(
            "--model gives the config of a .keras output; the other formats take none".to_string(),
        ));
    }
    if let Some(path) = &args.model {
        crate::arg_checks::check_input("--model", path)?;
    }
    crate::arg_checks::check_input("WEIGHTS", &args.weights)?;
    crate::arg_checks::check_output("--output", &args.output)?;
    crate::arg_checks::refuse_overwriting_input(
        "--output",
        &args.output,
        "WEIGHTS",
        &args.weights,
    )?;
    if let Some(path) = &args.model {
        crate::arg_checks::refuse_overwriting_input("--output", &args.output, "--model", path)?;
    }
    let (model, scale) = crate::evaluate::load_weights_file(&args.weights)?;
    let config = match &args.model {
        Some(path) => Some(same_model_config(path, &model, &args.weights)?),
        None => None,
    };
    let scale = scale.unwrap_or(1.0);
    write_model(
        "--output",
        &model,
        &args.output,
        format,
        scale,
        config.as_deref(),
    )?;
    println!(
        "output:        {} ({})",
        args.output.display(),
        format.name()
    );
    if scale != 1.0 {
        println!(
            "inputs:        multiply by {scale} first, as training did (the weights file records --scale {scale})"
        );
    }
    Ok(())
}

/// The text of `--model`, once it is known to describe the model of the weights file.
fn same_model_config(path: &Path, model: &wgfit::Sequential, weights: &Path) -> CliResult<String> {
    let given = crate::model_file::keras_model(path, model.loss()?)?;
    let (ours, theirs) = (model.specs()?, given.model.specs()?);
    if ours != theirs {
        let at = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        return Err(Failure::new(format!(
            "--model {} describes another model than {} ({} layers against {}; they differ from layer {at} on)",
            path.display(),
            weights.display(),
            theirs.len(),
            ours.len()
        )));
    }
    Ok(given.config)
}
