//! What `wgfit train` says about the model its flags and labels build, before it trains: the
//! model's summary line, and a refusal when the default output layer (one output per class
//! up to the largest label) would be far wider than the labels the data uses, as one stray
//! label such as 1 000 000 among 0..9 makes it.

use crate::{CliResult, Failure};
use wgfit::{Dataset, Targets};

/// Output layers narrower than this are never called sparse: a few unused classes cost little.
const SPARSE_MIN_CLASSES: usize = 1024;

/// An output layer with more than this many classes per distinct label is sparse.
const SPARSE_CLASSES_PER_LABEL: usize = 16;

/// `model:` and the layer widths from the inputs to the outputs, with the parameter count:
/// `model:         4 -> 32 -> 10 (490 parameters)`.
/// The model of `--model`, one layer a line, with its parameter count.
pub fn model_summary(model: &wgfit::Sequential) -> wgfit::Result<String> {
    let specs = model.specs()?;
    let count = |tensors: Vec<(&str, Vec<usize>)>| -> usize {
        tensors
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    };
    // A shared layer's second call has its owner's parameters, counted once.
    let parameters: usize = specs
        .iter()
        .filter(|s| s.shares.is_none())
        .map(|s| count(s.tensors()))
        .sum();
    let state: usize = specs.iter().map(|s| count(s.state_tensors())).sum();
    let mut out = format!("{:<14} {parameters} parameters", "model:");
    if state > 0 {
        out.push_str(&format!(" (and {state} non-trainable)"));
    }
    for s in &specs {
        out.push_str(&format!("\n  {}", s.describe()));
    }
    Ok(out)
}

pub fn model_line(inputs: usize, widths: &[usize]) -> String {
    let mut shape = inputs.to_string();
    let mut parameters = 0u128;
    let mut previous = inputs;
    for &w in widths {
        shape.push_str(&format!(" -> {w}"));
        parameters += (previous as u128 + 1) * w as u128;
        previous = w;
    }
    format!("{:<14} {shape} ({parameters} parameters)", "model:")
}

/// The classes the largest label asks for and the distinct labels `data` uses (`None` for
/// float targets).
fn label_spread(data: &Dataset) -> Option<(usize, usize, u32)> {
    let Targets::Classes(labels) = data.targets() else {
        return None;
    };
    let mut sorted = labels.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let largest = *sorted.last()?;
    Some((largest as usize + 1, sorted.len(), largest))
}

/// Checks the output layer against the labels of `data` (named `data_name`). Sparse labels
/// with the default `--layers` are refused (exit status 2), since nobody asked for that layer;
/// with `--layers` given, they are only warned about on stderr.
pub fn check_output_layer(
    data: &Dataset,
    layers_given: bool,
    widths: &[usize],
    data_name: &str,
) -> CliResult {
    let Some((classes, distinct, largest)) = label_spread(data) else {
        return Ok(());
    };
    let outputs = widths.last().copied().unwrap_or(0);
    let sparse = classes >= SPARSE_MIN_CLASSES
        && classes > SPARSE_CLASSES_PER_LABEL * distinct
        && outputs >= classes;
    if !sparse {
        return Ok(());
    }
    let problem = format!(
        "{data_name} uses {distinct} distinct labels, but its largest label is {largest}, so \
         the output layer has {outputs} classes, {} of which no sample has",
        outputs - distinct
    );
    if layers_given {
        eprintln!("wgfit: warning: {problem}");
        return Ok(());
    }
    let hidden: Vec<String> = widths[..widths.len() - 1]
        .iter()
        .map(|w| w.to_string())
        .collect();
    Err(Failure {
        message: format!(
            "{problem}; renumber the labels 0..{} (or fix the stray ones), or pass --layers {},{outputs} \
             to build that layer anyway",
            distinct - 1,
            hidden.join(",")
        ),
        code: 2,
    })
}
