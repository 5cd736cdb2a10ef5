//! `wgfit convert text.txt data.safetensors --seq-len T`: a UTF-8 text as character-level
//! sequences for a next-character model. The vocabulary is the text's distinct characters in
//! code point order (id 0 the smallest), recorded in the file's metadata (`vocabulary`, a
//! JSON list of one-character strings) for `wgfit generate`. Sample `i` is the ids of the
//! characters `i·S .. i·S + T` (`x`, F32 `[n, T]`) and of the characters one further (`y`,
//! U32 `[n, T]`), in the text's order, so that `--validation-split` holds out its end; the
//! stride `S` is `T` (no character twice) or less, for windows at every offset, as a model
//! that generates beyond `T` characters slides its window.

use super::convert::{Converted, WriteError, write_atomically};
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The metadata key of the vocabulary.
pub const VOCABULARY_KEY: &str = "vocabulary";

/// Converts the UTF-8 text file `input` to character sequences of `seq_len`, one every
/// `stride` characters, in `output` (written atomically, as [`super::convert_csv`] writes).
/// Errors: `seq_len` or `stride` 0, a file that is not UTF-8 (naming the byte), or a text of
/// fewer than `seq_len + 1` characters.
pub fn convert_text(
    input: &Path,
    output: &Path,
    seq_len: usize,
    stride: usize,
) -> Result<Converted> {
    if seq_len == 0 || stride == 0 {
        return Err(Error::config(
            "sequence length and stride",
            format!("{seq_len} and {stride}; give 1 or more"),
        ));
    }
    let bytes = std::fs::read(input).map_err(|source| Error::DataIo {
        path: input.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| Error::InvalidData {
        path: Some(input.to_path_buf()),
        reason: format!(
            "not UTF-8 text: byte {} does not begin a character",
            e.utf8_error().valid_up_to()
        ),
    })?;
    // A byte-order mark (Notepad's UTF-8) is no character of the text: as a class the model
    // would learn to predict it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let chars: Vec<char> = text.chars().collect();
    let window = seq_len.saturating_add(1);
    let samples = match chars.len().checked_sub(window) {
        Some(rest) => rest / stride + 1,
        None => 0,
    };
    if samples == 0 {
        return Err(Error::InvalidData {
            path: Some(input.to_path_buf()),
            reason: format!(
                "{} characters make no sequence of {seq_len} with its next characters; give a \
                 longer text or a shorter --seq-len",
                chars.len()
            ),
        });
    }
    let mut vocabulary = chars.clone();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    let id = |c: &char| vocabulary.binary_search(c).unwrap_or_default() as u32;
    let ids: Vec<u32> = chars.iter().map(id).collect();
    write_atomically(output, |file| {
        write_sequences(file, &ids, &vocabulary, (seq_len, stride), samples)
    })
}

fn write_sequences(
    file: std::fs::File,
    ids: &[u32],
    vocabulary: &[char],
    (seq_len, stride): (usize, usize),
    samples: usize,
) -> std::result::Result<Converted, WriteError> {
    let values = samples * seq_len;
    let (x_bytes, y_bytes) = (values as u64 * 4, values as u64 * 4);
    let names: Vec<String> = vocabulary.iter().map(|c| c.to_string()).collect();
    let vocabulary_json = serde_json::to_string(&names)
        .map_err(|e| WriteError::Data(Error::internal(e.to_string())))?;
    let header = serde_json::json!({
        "__metadata__": {
            VOCABULARY_KEY: vocabulary_json,
            "seq_len": seq_len.to_string(),
            "stride": stride.to_string(),
            "order": "the text's",
        },
        "x": {"dtype": "F32", "shape": [samples, seq_len], "data_offsets": [0, x_bytes]},
        "y": {"dtype": "U32", "shape": [samples, seq_len], "data_offsets": [x_bytes, x_bytes + y_bytes]},
    });
    let (mut out, header_len) = super::convert::start_safetensors(file, &header)?;
    let window = |i: usize| i * stride..i * stride + seq_len;
    for i in 0..samples {
        let x: Vec<f32> = ids[window(i)].iter().map(|&id| id as f32).collect();
        out.write_all(bytemuck::cast_slice(&x))?;
    }
    for i in 0..samples {
        let next = window(i);
        out.write_all(bytemuck::cast_slice(&ids[next.start + 1..next.end + 1]))?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Converted {
        samples,
        features: seq_len,
        target_cols: seq_len,
        classes: true,
        bytes: 8 + header_len as u64 + x_bytes + y_bytes,
        input_shape: vec![seq_len],
        class_names: names,
    })
}

/// The vocabulary `convert_text` recorded in the safetensors file `path`.
pub fn read_vocabulary(path: &Path) -> Result<Vec<char>> {
    let io = |source| Error::DataIo {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let invalid = |reason: String| Error::InvalidData {
        path: Some(path.to_path_buf()),
        reason,
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
    let text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(VOCABULARY_KEY))
        .ok_or_else(|| {
            invalid(
                "no vocabulary in its metadata; give the file `wgfit convert text.txt OUT \
                 --seq-len T` wrote"
                    .into(),
            )
        })?;
    let names: Vec<String> = serde_json::from_str(text)
        .map_err(|e| invalid(format!("its vocabulary is not a JSON list of strings: {e}")))?;
    names
        .iter()
        .map(|n| {
            let mut chars = n.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(c),
                _ => Err(invalid(format!(
                    "its vocabulary holds {n:?}, not one character"
                ))),
            }
        })
        .collect()
}
