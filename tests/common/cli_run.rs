//! What the CLI callback tests share: the small model's `wgfit train` arguments, and readers of
//! the files a run writes (JSON history, checkpoints, CSV log, directory listings).

use serde_json::Value;
use std::path::Path;

/// `wgfit train` of a small, fast model, silent but for the summary, followed by `extra`.
pub fn train<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--verbose", "0"];
    // A flag may be given once: `extra`'s own --layers replaces the default.
    if !extra.contains(&"--layers") {
        args.extend(["--layers", "16,10"]);
    }
    args.extend_from_slice(extra);
    args
}

/// A `--history` JSON file.
pub fn json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The epoch rows of a `--history` JSON file.
pub fn epochs(path: &Path) -> Vec<Value> {
    json(path)["epochs"]
        .as_array()
        .expect("an epochs array")
        .clone()
}

/// The kinds of the events of a `--history` JSON file, in order.
pub fn event_kinds(path: &Path) -> Vec<String> {
    json(path)["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| e["kind"].as_str().expect("a kind").to_string())
        .collect()
}

/// A metric of one epoch row.
pub fn metric(row: &Value, name: &str) -> f64 {
    row[name]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{name}` in {row}"))
}

/// The tensors of a safetensors file by name, as raw bits (metadata ignored).
pub fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let mut out: Vec<_> = wgfit::checkpoint::read_tensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|t| {
            (
                t.name,
                t.shape,
                t.data.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The file names in a directory, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The lines of a Keras CSVLogger file, each checked to end in `\r\n`.
pub fn csv_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with("\r\n"), "{text:?}");
    let lines: Vec<String> = text
        .strip_suffix("\r\n")
        .unwrap()
        .split("\r\n")
        .map(str::to_string)
        .collect();
    assert!(
        lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')),
        "a line not ended by \\r\\n in {text:?}"
    );
    lines
}
