//! `wgfit evaluate`: a model rebuilt from a weights file (`wgfit predict` shares it).

use crate::{CliResult, Failure, load_data};
use clap::Args;
use std::path::{Path, PathBuf};
use wgfit::{
    Activation, CsvOptions, CsvTargets, Dense, Loss, Sequential, Sgd, Tensor, WeightsMeta,
};

/// The model flags evaluate and predict share.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// The parameters, as `wgfit train --output` or `--checkpoint` writes them
    #[arg(long, value_name = "PATH")]
    pub weights: PathBuf,
    /// Data: CSV (optionally gzip) or safetensors with tensor `x` (and `y`) [default: the
    /// bundled digits, scaled by 1/16]
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Multiply every input by F [default: as `wgfit train --scale` recorded in the weights
    /// file; else 0.0625 (1/16) for the bundled digits, 1 for --data]
    #[arg(long, value_name = "F")]
    scale: Option<f32>,
    /// Hidden widths then the output width; optional: read from the weights' shapes, and
    /// checked against them when given
    #[arg(long, value_name = "W,..", value_delimiter = ',', action = clap::ArgAction::Set)]
    layers: Option<Vec<usize>>,
    /// Hidden-layer activation, for a weights file that does not record it [default: as
    /// recorded in the weights file]
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Loss, for a weights file that does not record it [default: as recorded in the weights
    /// file]
    #[arg(long, value_enum)]
    loss: Option<Loss>,
    /// Rows per forward pass
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

impl ModelArgs {
    /// Refuses a --weights or --data that is not there, and bad numbers (usage errors).
    pub fn check_inputs(&self) -> CliResult {
        crate::arg_checks::check_at_least_one("--batch-size", self.batch_size)?;
        crate::arg_checks::check_scale(self.scale)?;
        crate::arg_checks::check_input("--weights", &self.weights)?;
        match &self.data {
            Some(d) => crate::arg_checks::check_input("--data", d),
            None => Ok(()),
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit evaluate --weights wgfit-model.safetensors
  wgfit evaluate --weights iris.safetensors --data iris.csv")]
pub struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArgs,
}

/// A compiled model holding the parameters of a weights file.
pub struct Loaded {
    pub model: Sequential,
    pub loss: Loss,
    /// `--scale`, else the factor the training inputs were multiplied by, if recorded.
    pub scale: Option<f32>,
}

/// Rebuilds the model from `--weights`: layer widths from the tensor shapes, activations and
/// loss from the record wgfit writes in every weights file. Flags may stand in for a missing
/// record, never contradict one, and a file with neither is refused: a guessed activation
/// gives wrong numbers without any error.
pub fn load_model(args: &ModelArgs) -> CliResult<Loaded> {
    let path = &args.weights;
    let (bytes, tensors) = read_weights(path)?;
    if let Some(record) = WeightsMeta::architecture(&bytes, path)? {
        return load_recorded(args, record, &bytes, tensors);
    }
    let (inputs, widths) = shapes_of(&tensors, path)?;
    if let Some(given) = &args.layers
        && given != &widths
    {
        return Err(Failure::new(format!(
            "--layers {} does not match --weights {}, which holds layers {} (inputs {inputs}); leave --layers out to use the file's",
            join(given),
            path.display(),
            join(&widths)
        )));
    }
    let recorded = WeightsMeta::from_file_bytes(&bytes, path, widths.len())?;
    let scale = args.scale.or(recorded.as_ref().and_then(|m| m.input_scale));
    let (activations, loss) = model_of(args, recorded, widths.len())?;
    let mut model = Sequential::new(inputs);
    for (&units, &activation) in widths.iter().zip(&activations) {
        model = model.add(Dense::new(units).activation(activation));
    }
    model.compile(loss, Sgd::new(0.1))?;
    model.set_parameters(&tensors)?;
    Ok(Loaded { model, loss, scale })
}

/// A weights file's bytes and tensors. The files people mistake for one (a Keras file, a
/// backup's state file) are named for what they are, not failed as a damaged safetensors file.
pub fn read_weights(path: &Path) -> CliResult<(Vec<u8>, Vec<wgfit::Tensor>)> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::new(format!("cannot read --weights {}: {e}", path.display())))?;
    refuse_other_kinds(&bytes, path)?;
    let tensors = wgfit::checkpoint::read_tensors(path)?;
    if tensors
        .iter()
        .any(|t| t.name == "fit.batch_stats" || t.name.starts_with("optimizer."))
    {
        return Err(Failure::new(format!(
            "{} is a backup's state file (optimizer slots and batch statistics beside the \
             weights), which a backup directory's latest.json describes: give the run's \
             --output file, or resume the run with `wgfit train --backup-dir DIR`",
            path.display()
        )));
    }
    Ok((bytes, tensors))
}

/// Names a Keras file by its first bytes.
fn refuse_other_kinds(bytes: &[u8], path: &Path) -> CliResult {
    let kind = if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        "an HDF5 file (Keras's .weights.h5): start a run from it with `wgfit train --model \
         MODEL.json --init FILE`"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "a zip archive (a Keras .keras file?): train it with `wgfit train --model FILE`"
    } else {
        return Ok(());
    };
    Err(Failure::new(format!(
        "{} is {kind}; this command reads a weights file wgfit wrote (`wgfit train --output`)",
        path.display()
    )))
}

/// The model a weights file records whole (a convnet, say): `--layers` and `--activation`
/// cannot describe it, and `--loss` may only repeat the recorded one.
fn load_recorded(
    args: &ModelArgs,
    record: wgfit::ModelRecord,
    bytes: &[u8],
    tensors: Vec<wgfit::Tensor>,
) -> CliResult<Loaded> {
    let path = &args.weights;
    if args.layers.is_some() || args.activation.is_some() {
        return Err(Failure {
            message: format!(
                "--weights {} records its whole model ({} layers from input {:?}); leave --layers and --activation out",
                path.display(),
                record.layers.len(),
                record.input_shape
            ),
            code: 2,
        });
    }
    let Some(meta) = WeightsMeta::from_file_bytes(bytes, path, record.layers.len())? else {
        return Err(Failure::new(format!(
            "--weights {}: its model record disappeared while it was read",
            path.display()
        )));
    };
    if let Some(l) = args.loss
        && l != meta.loss
    {
        return Err(Failure {
            message: format!(
                "--loss {} contradicts --weights {}, which records the loss {}; leave --loss out to use the file's",
                l.name(),
                path.display(),
                meta.loss.name()
            ),
            code: 2,
        });
    }
    let mut model = record.model();
    model.compile(meta.loss, Sgd::new(0.1))?;
    model.set_parameters(&tensors)?;
    Ok(Loaded {
        model,
        loss: meta.loss,
        scale: args.scale.or(meta.input_scale),
    })
}

/// Each layer's activation and the loss: the file's record, checked against `--activation`
/// and `--loss` when given; without a record, both flags.
fn model_of(
    args: &ModelArgs,
    recorded: Option<WeightsMeta>,
    layers: usize,
) -> CliResult<(Vec<Activation>, Loss)> {
    let path = args.weights.display();
    let from_flag = |hidden: Activation| WeightsMeta::hidden_then_linear(hidden, layers);
    let Some(meta) = recorded else {
        return match (args.activation, args.loss) {
            (Some(a), Some(l)) => Ok((from_flag(a), l)),
            (a, l) => {
                let missing: Vec<&str> = [(a.is_none(), "--activation"), (l.is_none(), "--loss")]
                    .iter()
                    .filter(|(m, _)| *m)
                    .map(|(_, f)| *f)
                    .collect();
                Err(Failure {
                    message: format!(
                        "--weights {path} does not record the model's activation and loss (it is not a file of `wgfit train --output` or `--checkpoint` or of `save_weights`, or is from a wgfit before checkpoints recorded them); pass {} to say what the model is",
                        missing.join(" and ")
                    ),
                    code: 2,
                })
            }
        };
    };
    let contradiction = |flag: &str, given: &str, recorded: String| Failure {
        message: format!(
            "{flag} {given} contradicts --weights {path}, which records {recorded}; leave {flag} out to use the file's"
        ),
        code: 2,
    };
    if let Some(a) = args.activation
        && meta.activations != from_flag(a)
    {
        let names: Vec<&str> = meta.activations.iter().map(|a| a.name()).collect();
        return Err(contradiction(
            "--activation",
            a.name(),
            format!("the layer activations {}", names.join(", ")),
        ));
    }
    if let Some(l) = args.loss
        && l != meta.loss
    {
        return Err(contradiction(
            "--loss",
            l.name(),
            format!("the loss {}", meta.loss.name()),
        ));
    }
    Ok((meta.activations, meta.loss))
}

/// `(inputs, widths)` from `model.layers.<i>.weight` `[out, in]`, checking the chain and biases.
fn shapes_of(tensors: &[Tensor], path: &Path) -> CliResult<(usize, Vec<usize>)> {
    let find = |name: &str| tensors.iter().find(|t| t.name == name);
    let bad = |reason: String| {
        Failure::new(format!(
            "--weights {}: {reason} (expected model.layers.<i>.weight [out, in] and model.layers.<i>.bias [out], as `wgfit train` writes)",
            path.display()
        ))
    };
    let mut widths = Vec::new();
    let mut inputs = 0;
    for i in 0.. {
        let Some(w) = find(&format!("model.layers.{i}.weight")) else {
            break;
        };
        let [out, inp] = w.shape[..] else {
            return Err(bad(format!(
                "model.layers.{i}.weight has shape {:?}, not [out, in]",
                w.shape
            )));
        };
        if i == 0 {
            inputs = inp;
        } else if inp != widths[i - 1] {
            return Err(bad(format!(
                "model.layers.{i}.weight takes {inp} inputs but layer {} has {} outputs",
                i - 1,
                widths[i - 1]
            )));
        }
        match find(&format!("model.layers.{i}.bias")) {
            Some(b) if b.shape == [out] => {}
            Some(b) => {
                return Err(bad(format!(
                    "model.layers.{i}.bias has shape {:?}, not [{out}]",
                    b.shape
                )));
            }
            None => return Err(bad(format!("model.layers.{i}.bias is missing"))),
        }
        widths.push(out);
    }
    if widths.is_empty() {
        return Err(bad("no model.layers.0.weight".into()));
    }
    Ok((inputs, widths))
}

fn join(w: &[usize]) -> String {
    w.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// An input-width mismatch in terms of the flags.
fn width_error(data_name: &str, got: usize, inputs: usize) -> Failure {
    Failure::new(format!(
        "{data_name} has {got} input columns but the model in --weights takes {inputs}"
    ))
}

fn data_name(args: &ModelArgs) -> String {
    args.data
        .as_ref()
        .map_or_else(|| "the bundled digits".into(), |p| p.display().to_string())
}

pub fn run_evaluate(args: EvaluateArgs) -> CliResult {
    let args = args.model;
    args.check_inputs()?;
    let Loaded { model, loss, scale } = load_model(&args)?;
    let data = load_data(args.data.as_deref(), &CsvOptions::default(), scale)?;
    if data.features() != model.inputs() {
        return Err(width_error(
            &data_name(&args),
            data.features(),
            model.inputs(),
        ));
    }
    let logs = model.evaluate(&data, args.batch_size.max(1))?;
    println!("samples:       {}", data.len());
    for k in wgfit::callbacks::metric_order(logs.keys()) {
        println!(
            "{:<14} {}",
            format!("{k}:"),
            wgfit::callbacks::format_value(logs[k])
        );
    }
    println!("loss fn:       {}", loss.name());
    Ok(())
}

/// The compiled model of a weights file (as `wgfit train --output` writes it) and the factor
/// its training inputs were multiplied by, if recorded: what `wgfit export` converts.
pub fn load_weights_file(path: &Path) -> CliResult<(Sequential, Option<f32>)> {
    let args = ModelArgs {
        weights: path.to_path_buf(),
        data: None,
        scale: None,
        layers: None,
        activation: None,
        loss: None,
        batch_size: 1,
    };
    args.check_inputs()?;
    let loaded = load_model(&args)?;
    Ok((loaded.model, loaded.scale))
}

/// The inputs of every row, dropping a label column when the data has one more column than
/// the model's inputs.
pub fn load_inputs(args: &ModelArgs, inputs: usize, scale: Option<f32>) -> CliResult<Vec<f32>> {
    let name = data_name(args);
    let is_safetensors = args
        .data
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    let scale = scale.unwrap_or(if args.data.is_none() {
        crate::DIGITS_SCALE
    } else {
        1.0
    });
    let data_file = args
        .data
        .as_ref()
        .filter(|_| is_safetensors)
        .and_then(|p| wgfit::Dataset::from_safetensors(p).ok());
    let (x, cols) = if let Some(data) = data_file {
        // A data file with its targets (integer labels among them): its inputs.
        (data.x().to_vec(), data.features())
    } else if let (true, Some(path)) = (is_safetensors, &args.data) {
        // Inputs alone (`x`, F32).
        let tensors = wgfit::checkpoint::read_tensors(path)?;
        let x = tensors
            .into_iter()
            .find(|t| t.name == "x")
            .ok_or_else(|| Failure::new(format!("{name} holds no tensor `x`")))?;
        let cols = match x.shape[..] {
            [_] => 1,
            [_, c] => c,
            _ => {
                return Err(Failure::new(format!(
                    "{name}: tensor `x` has shape {:?}, not [rows, features]",
                    x.shape
                )));
            }
        };
        (x.data, cols)
    } else {
        // Every column as a number: the last one is read as a float target and put back.
        let options = CsvOptions {
            targets: CsvTargets::Values(1),
            ..Default::default()
        };
        let data = load_data(args.data.as_deref(), &options, Some(1.0))?;
        let last = data.targets_f32();
        let f = data.features();
        let mut x = Vec::with_capacity(data.len() * (f + 1));
        for (row, y) in data.x().chunks_exact(f).zip(&last) {
            x.extend_from_slice(row);
            x.push(*y);
        }
        (x, f + 1)
    };
    let x: Vec<f32> = x.iter().map(|v| v * scale).collect();
    if cols == inputs {
        Ok(x)
    } else if cols == inputs + 1 {
        Ok(x.chunks_exact(cols)
            .flat_map(|r| &r[..inputs])
            .copied()
            .collect())
    } else {
        Err(Failure::new(format!(
            "{name} has {cols} columns but the model in --weights takes {inputs} inputs (or {} with a label column)",
            inputs + 1
        )))
    }
}
