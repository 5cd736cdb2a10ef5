//! `wgfit predict`: the outputs of a model rebuilt from a weights file, as CSV.

use crate::evaluate::{Loaded, ModelArgs, load_inputs, load_model};
use crate::{CliResult, Failure};
use clap::Args;
use std::path::PathBuf;
use wgfit::Loss;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit predict --weights wgfit-model.safetensors --output predictions.csv
  wgfit predict --weights iris.safetensors --data iris.csv --output iris-pred.csv

With cross-entropy the columns are the softmax probabilities p0..p<n-1> and the predicted class;
with mse the outputs y0..y<n-1>. A label column in the data (one more column than the model's
inputs) is ignored.")]
pub struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Where to write the predictions (CSV, one row per input row)
    #[arg(long, value_name = "PATH.csv")]
    output: PathBuf,
}

pub fn run_predict(args: PredictArgs) -> CliResult {
    let out = &args.output;
    for (flag, input) in [
        ("--data", &args.model.data),
        ("--weights", &Some(args.model.weights.clone())),
    ] {
        if let Some(input) = input {
            crate::arg_checks::refuse_overwriting_input("--output", out, flag, input)?;
        }
    }
    args.model.check_inputs()?;
    crate::arg_checks::check_output("--output", out)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        return Err(Failure::new(format!(
            "--output {}: the directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    let Loaded { model, loss, scale } = load_model(&args.model)?;
    let inputs = model.inputs();
    let x = load_inputs(&args.model, inputs, scale)?;
    let rows = x.len() / inputs;
    let outputs = model.outputs();
    let y = model.predict(&x, args.model.batch_size.max(1))?;
    let classes = loss == Loss::CrossEntropy;
    // A sequence model's logits ([T] ids in, [T, classes] out) are a row per position: a
    // softmax and a class per position.
    let width = match (model.input_shape(), model.specs()?.last()) {
        (&[t], Some(last)) if classes && last.out_shape.len() == 2 && last.out_shape[0] == t => {
            last.out_shape[1]
        }
        _ => outputs,
    };
    let positions = outputs / width.max(1);
    let suffix = |p: usize| {
        if positions > 1 {
            format!("_{p}")
        } else {
            String::new()
        }
    };
    let mut names: Vec<String> = Vec::with_capacity(outputs + positions);
    for p in 0..positions {
        let prefix = if classes { "p" } else { "y" };
        names.extend((0..width).map(|i| format!("{prefix}{i}{}", suffix(p))));
    }
    if classes {
        names.extend((0..positions).map(|p| format!("class{}", suffix(p))));
    }
    let mut csv = names.join(",");
    csv.push('\n');
    for row in y.chunks_exact(outputs) {
        let mut fields = Vec::with_capacity(outputs + positions);
        let mut picked = Vec::with_capacity(positions);
        for position in row.chunks_exact(width) {
            let values: Vec<f32> = if classes {
                softmax(position)
            } else {
                position.to_vec()
            };
            let class = values
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0;
            fields.extend(values.iter().map(|v| v.to_string()));
            picked.push(class.to_string());
        }
        if classes {
            fields.extend(picked);
        }
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    wgfit::checkpoint::write_atomically(out, csv.as_bytes())
        .map_err(|e| Failure::new(format!("--output: {e}")))?;
    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "wrote {} of {} to {}",
        noun(rows, "row", "rows"),
        noun(outputs, "output", "outputs"),
        out.display()
    );
    Ok(())
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&v| ((v - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}
