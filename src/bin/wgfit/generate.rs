//! `wgfit generate`: text from a character-level model trained on what `wgfit convert
//! text.txt --seq-len T` wrote.

use crate::{CliResult, Failure};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use wgfit::{Sampling, Sgd, WeightsMeta};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit convert book.txt book.safetensors --seq-len 64
  wgfit train --data book.safetensors --model gpt.json --output book-gpt.safetensors
  wgfit generate --weights book-gpt.safetensors --data book.safetensors --prompt \"The \" --tokens 200
      the 200 most likely next characters, one at a time
  wgfit generate ... --temperature 0.8 --seed 7
      drawn from the model's distribution sharpened by 0.8; the same seed gives the same text")]
pub struct GenerateArgs {
    /// The trained model, as `wgfit train --output` writes it
    #[arg(long, value_name = "PATH")]
    weights: PathBuf,
    /// The data it was trained on, as `wgfit convert text.txt --seq-len T` wrote it: its
    /// vocabulary turns characters into ids and back
    #[arg(long, value_name = "PATH")]
    data: PathBuf,
    /// The text to continue (every character must be in the vocabulary)
    #[arg(long, allow_hyphen_values = true)]
    prompt: String,
    /// Characters to write
    #[arg(long, value_name = "N", default_value_t = 200)]
    tokens: usize,
    /// Draw each character from softmax(logits / F) instead of taking the most likely one
    #[arg(long, value_name = "F")]
    temperature: Option<f32>,
    /// The seed of the draws with --temperature
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
}

pub fn run(args: GenerateArgs) -> CliResult {
    let usage = crate::arg_checks::usage;
    crate::arg_checks::check_input("--weights", &args.weights)?;
    crate::arg_checks::check_input("--data", &args.data)?;
    if let Some(t) = args.temperature
        && !(t.is_finite() && t > 0.0)
    {
        return Err(usage(format!(
            "--temperature {t}: give a number above 0 (leave it out for the most likely text)"
        )));
    }
    if args.prompt.is_empty() {
        return Err(usage(
            "--prompt is empty: give at least one character".into(),
        ));
    }
    let vocabulary = wgfit::data::read_vocabulary(&args.data)?;
    let mut prompt = Vec::new();
    for c in args.prompt.chars() {
        let id = vocabulary.binary_search(&c).map_err(|_| {
            usage(format!(
                "--prompt: {c:?} is not in the vocabulary of --data {} (its {} characters)",
                args.data.display(),
                vocabulary.len()
            ))
        })?;
        prompt.push(id as u32);
    }
    let path = &args.weights;
    let (bytes, tensors) = crate::evaluate::read_weights(path)?;
    let Some(record) = WeightsMeta::architecture(&bytes, path)? else {
        return Err(Failure::new(format!(
            "--weights {} records no model architecture: give the file `wgfit train --output` \
             wrote for a sequence model",
            path.display()
        )));
    };
    let meta = WeightsMeta::from_file_bytes(&bytes, path, record.layers.len())?;
    let mut model = record.model();
    let loss = meta.map_or(wgfit::Loss::CrossEntropy, |m| m.loss);
    model.compile(loss, Sgd::new(0.1))?;
    model.set_parameters(&tensors)?;
    let per_position = model.outputs() / model.inputs().max(1);
    if per_position != vocabulary.len() {
        return Err(Failure::new(format!(
            "--weights {} predicts {per_position} classes per position, but the vocabulary of \
             --data {} has {} characters: give the data the model was trained on",
            path.display(),
            args.data.display(),
            vocabulary.len()
        )));
    }
    let sampling = match args.temperature {
        Some(temperature) => Sampling::Temperature {
            temperature,
            seed: args.seed,
        },
        None => Sampling::Greedy,
    };
    // Each character is printed as it is made (a reader that goes away ends wgfit by SIGPIPE,
    // as for every command).
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    let mut print = |text: &str| match write!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    };
    if print(&args.prompt) {
        model.generate_each(&prompt, args.tokens, sampling, |id| {
            print(&vocabulary[id as usize].to_string())
        })?;
        print("\n");
    }
    match failed {
        Some(e) => Err(Failure::new(format!("cannot write the text: {e}"))),
        None => Ok(()),
    }
}
