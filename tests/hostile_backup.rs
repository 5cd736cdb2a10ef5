//! Restore reads files that may be damaged or crafted. Each case below must give a clear error
//! (or the double_checkpoint fallback), never a panic, never a read outside the backup
//! directory, never a change to any file. A mutation fuzzer drives the sidecar and weights
//! parsers: a short pass by default, `WGFIT_FUZZ_SECS=600` for a long one.

mod common;

use common::rng::Rng;
use common::{bits, data, dir_contents, kept_backup, model, options};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wgfit::checkpoint::{self, LATEST, load_sidecar};
use wgfit::checksum::{PART_BYTES, parts_hex};
use wgfit::{BackupAndRestore, Error};

fn sidecar(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(LATEST)).unwrap()).unwrap()
}

fn weights_path(dir: &Path) -> PathBuf {
    dir.join(sidecar(dir)["weights"]["file"].as_str().unwrap())
}

/// Replaces the weights file's bytes and updates the sidecar's length and checksum, so that
/// only the safetensors parser and the model checks stand between the bytes and the GPU.
fn replace_weights(dir: &Path, bytes: &[u8]) {
    std::fs::write(weights_path(dir), bytes).unwrap();
    let mut v = sidecar(dir);
    v["weights"]["bytes"] = json!(bytes.len());
    v["weights"]["parts"] = json!(parts_hex(bytes, PART_BYTES));
    std::fs::write(dir.join(LATEST), serde_json::to_vec(&v).unwrap()).unwrap();
}

/// A SHA-256 whose first 16 digits are the chunk names' below.
const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// An edit that makes the sidecar's history name the chunk `file` (`sha256`, `count`).
fn chunk_ref(file: &'static str, sha256: &str, count: usize) -> Box<dyn Fn(&mut Value)> {
    let chunks = json!({"file": file, "sha256": sha256, "count": count});
    Box::new(move |v| v["history"]["chunks"] = chunks.clone())
}

/// Restores without double_checkpoint: must fail with a named reason and touch nothing.
fn refused(dir: &Path, what: &str) -> String {
    let before = dir_contents(dir);
    let mut backup = BackupAndRestore::new(dir).unwrap();
    let err = model()
        .fit(&data(), options(4), &mut [&mut backup])
        .expect_err(what);
    assert!(
        matches!(
            err,
            Error::CorruptCheckpoint { .. } | Error::CheckpointIo { .. }
        ),
        "{what}: {err}"
    );
    assert_eq!(dir_contents(dir), before, "{what}: files unchanged");
    err.to_string()
}

/// The safetensors header of a weights file as JSON, and the data after it.
fn split_safetensors(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

fn join_safetensors(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

#[test]
fn crafted_sidecars_are_refused() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "parent directory",
            Box::new(|v| v["weights"]["file"] = json!("../ckpt-36.safetensors")),
            "not of the form",
        ),
        (
            "absolute path",
            Box::new(|v| v["weights"]["file"] = json!("/etc/passwd")),
            "not of the form",
        ),
        (
            "slash",
            Box::new(|v| v["weights"]["file"] = json!("sub/ckpt-1.safetensors")),
            "not of the form",
        ),
        (
            "huge length",
            Box::new(|v| v["weights"]["bytes"] = json!(u64::MAX)),
            "the sidecar records 18446744073709551615 bytes, more than",
        ),
        (
            "absurd step",
            Box::new(|v| v["step"] = json!(1_000_000_000u64)),
            "step",
        ),
        (
            "negative epoch",
            Box::new(|v| v["epoch"] = json!(-1)),
            "field `epoch`: invalid value: integer `-1`, expected usize",
        ),
        (
            "epoch as a string",
            Box::new(|v| v["epoch"] = json!("3")),
            "field `epoch`: invalid type: string",
        ),
        (
            "missing weights",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("weights");
            }),
            "missing field `weights`",
        ),
        (
            "nested field of the wrong type",
            Box::new(|v| v["weights"]["bytes"] = json!(true)),
            "field `weights.bytes`: invalid type: boolean",
        ),
        (
            "bad checksum text",
            Box::new(|v| v["weights"]["parts"][0] = json!("zz")),
            "part 0's SHA-256 is not 64",
        ),
        (
            "a whole-file checksum in a version 4 sidecar",
            Box::new(|v| v["weights"]["sha256"] = json!("0".repeat(64))),
            "digest per part",
        ),
        (
            "a part size out of range",
            Box::new(|v| v["weights"]["part_bytes"] = json!(1)),
            "part size 1 is outside",
        ),
        (
            "a digest missing for a part",
            Box::new(|v| {
                v["weights"]["parts"].as_array_mut().unwrap().pop();
            }),
            "weights part digests for",
        ),
        (
            "other format",
            Box::new(|v| v["format"] = json!("keras")),
            "format",
        ),
        (
            "future version",
            Box::new(|v| v["version"] = json!(99)),
            "version",
        ),
        (
            "no rank count in a version 6 fingerprint",
            Box::new(|v| {
                v["fingerprint"].as_object_mut().unwrap().remove("ranks");
            }),
            "lacks the rank count",
        ),
        (
            "zero ranks",
            Box::new(|v| v["fingerprint"]["ranks"] = json!(0)),
            "both are at least 1",
        ),
        (
            "more micro-batches per update than a run can have",
            Box::new(|v| {
                v["fingerprint"]["ranks"] = json!(u32::MAX);
                v["fingerprint"]["accumulation"] = json!(u32::MAX);
            }),
            "more micro-batches per update",
        ),
        (
            "a history chunk outside the directory",
            chunk_ref("../history-0-0123456789abcdef.json", DIGEST, 1),
            "is not of the form history-<index>-<digest>.json",
        ),
        (
            "a history chunk whose name disagrees with its digest",
            chunk_ref("history-0-0123456789abcdef.json", &"f".repeat(64), 1),
            "its name agrees with",
        ),
        (
            "a history chunk of another index than its count",
            chunk_ref("history-3-0123456789abcdef.json", DIGEST, 1),
            "does not give its index 0",
        ),
        (
            "a chain of 0 history chunks",
            chunk_ref("history-0-0123456789abcdef.json", DIGEST, 0),
            "a chain of 0 chunks",
        ),
        (
            "a history chunk that is not there",
            chunk_ref("history-0-0123456789abcdef.json", DIGEST, 1),
            "the history chunk is missing",
        ),
        (
            "zero learning rate",
            Box::new(|v| v["learning_rate"] = json!(0.0)),
            "learning rate",
        ),
        (
            "not an object",
            Box::new(|v| *v = json!([1, 2, 3])),
            "sidecar",
        ),
    ];
    for (what, edit, expect) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        kept_backup(&dir);
        let mut v = sidecar(&dir);
        edit(&mut v);
        std::fs::write(dir.join(LATEST), serde_json::to_vec(&v).unwrap()).unwrap();
        let msg = refused(&dir, what);
        assert!(msg.contains(expect), "{what}: {msg}");
    }
}

#[test]
fn duplicate_keys_in_a_sidecar_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    let text = String::from_utf8(std::fs::read(dir.join(LATEST)).unwrap()).unwrap();
    let doubled = text.replacen('{', "{\"epoch\": 0,", 1);
    std::fs::write(dir.join(LATEST), doubled).unwrap();
    let msg = refused(&dir, "duplicate key");
    assert!(msg.contains("duplicate field"), "{msg}");
}

#[test]
fn a_weights_file_outside_the_directory_is_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    // A valid copy of the weights outside the directory, with a sidecar pointing at it.
    let outside = tmp.path().join("ckpt-36.safetensors");
    std::fs::copy(weights_path(&dir), &outside).unwrap();
    let mut v = sidecar(&dir);
    v["weights"]["file"] = json!("../ckpt-36.safetensors");
    std::fs::write(dir.join(LATEST), serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&dir, "outside");
}

#[test]
fn crafted_weights_files_are_refused() {
    type Craft = Box<dyn Fn(Value, Vec<u8>) -> Vec<u8>>;
    let cases: Vec<(&str, Craft, &str)> = vec![
        (
            "header longer than the file",
            Box::new(|h, d| {
                let mut b = join_safetensors(&h, &d);
                b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
                b
            }),
            "safetensors",
        ),
        (
            "offsets past the end",
            Box::new(|mut h, d| {
                h["model.layers.0.bias"]["data_offsets"][1] = json!(1 << 30);
                join_safetensors(&h, &d)
            }),
            "safetensors",
        ),
        (
            "overlapping tensors",
            Box::new(|mut h, d| {
                let start = h["model.layers.0.bias"]["data_offsets"][0]
                    .as_u64()
                    .unwrap();
                h["model.layers.0.weight"]["data_offsets"][0] = json!(start);
                join_safetensors(&h, &d)
            }),
            "safetensors",
        ),
        (
            "wrong dtype",
            Box::new(|mut h, d| {
                h["model.layers.0.bias"]["dtype"] = json!("I32");
                join_safetensors(&h, &d)
            }),
            "dtype",
        ),
        (
            "wrong shape",
            Box::new(|mut h, d| {
                h["model.layers.0.weight"]["shape"] = json!([6, 8]);
                join_safetensors(&h, &d)
            }),
            "shape",
        ),
        (
            "NaN in a parameter",
            Box::new(|h, mut d| {
                let start = h["model.layers.0.weight"]["data_offsets"][0]
                    .as_u64()
                    .unwrap() as usize;
                d[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
                join_safetensors(&h, &d)
            }),
            "NaN",
        ),
        (
            "missing tensor",
            Box::new(|mut h, d| {
                h.as_object_mut().unwrap().remove("model.layers.1.bias");
                join_safetensors(&h, &d)
            }),
            "safetensors",
        ),
        (
            "unknown tensor",
            Box::new(|mut h, d| {
                let bias = h["model.layers.1.bias"].clone();
                h.as_object_mut().unwrap().remove("model.layers.1.bias");
                h["evil"] = bias;
                join_safetensors(&h, &d)
            }),
            "evil",
        ),
    ];
    for (what, craft, expect) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        kept_backup(&dir);
        let (h, d) = split_safetensors(&std::fs::read(weights_path(&dir)).unwrap());
        replace_weights(&dir, &craft(h, d));
        let msg = refused(&dir, what);
        assert!(msg.contains(expect), "{what}: {msg}");

        // With double_checkpoint the previous state takes over.
        let mut backup = BackupAndRestore::new(&dir).unwrap().double_checkpoint(true);
        let mut m = model();
        m.fit(&data(), options(4), &mut [&mut backup])
            .unwrap_or_else(|e| panic!("{what}: fallback failed: {e}"));
        assert!(!bits(&m).is_empty());
    }
}

/// One random mutation: flip a bit, overwrite a byte, cut, duplicate a span, or insert
/// interesting bytes.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let n = bytes.len().max(1);
    match rng.below(6) {
        0 => {
            let i = rng.below(n);
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(n);
            if let Some(b) = bytes.get_mut(i) {
                *b = [0, 0xff, b'"', b'{', b'}', b'-', b'9', b','][rng.below(8)];
            }
        }
        2 => bytes.truncate(rng.below(n)),
        3 => {
            let a = rng.below(n);
            let len = rng.below(64).min(bytes.len().saturating_sub(a));
            let span: Vec<u8> = bytes[a..a + len].to_vec();
            let at = rng.below(n).min(bytes.len());
            bytes.splice(at..at, span);
        }
        4 => {
            let at = rng.below(n).min(bytes.len());
            let junk: &[u8] = [
                &b"99999999999999999999"[..],
                b"null",
                b"\"..\"",
                b"-1",
                b"1e309",
            ][rng.below(5)];
            bytes.splice(at..at, junk.iter().copied());
        }
        _ => {
            let i = rng.below(n.saturating_sub(8).max(1));
            if bytes.len() >= i + 8 {
                bytes[i..i + 8].copy_from_slice(&rng.next_u64().to_le_bytes());
            }
        }
    }
}

#[test]
fn fuzz_sidecar_and_weights_parsers() {
    let secs: u64 = std::env::var("WGFIT_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    kept_backup(&dir);
    let good_sidecar = std::fs::read(dir.join(LATEST)).unwrap();
    let good_weights = std::fs::read(weights_path(&dir)).unwrap();
    let weights_name = sidecar(&dir)["weights"]["file"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut accepted) = (0u64, 0u64);
    while Instant::now() < deadline {
        // Half the time the sidecar, half the time the weights (with a matching checksum).
        let mut side = good_sidecar.clone();
        let mut weights = good_weights.clone();
        let rounds = 1 + rng.below(4);
        if rng.below(2) == 0 {
            (0..rounds).for_each(|_| mutate(&mut rng, &mut side));
        } else {
            (0..rounds).for_each(|_| mutate(&mut rng, &mut weights));
            let mut v: Value = serde_json::from_slice(&side).unwrap();
            v["weights"]["bytes"] = json!(weights.len());
            v["weights"]["parts"] = json!(parts_hex(&weights, PART_BYTES));
            side = serde_json::to_vec(&v).unwrap();
        }
        std::fs::write(dir.join(LATEST), &side).unwrap();
        std::fs::write(dir.join(&weights_name), &weights).unwrap();
        let before = dir_contents(&dir);
        if load_sidecar(&dir, LATEST).is_ok() {
            accepted += 1;
        }
        assert_eq!(dir_contents(&dir), before, "a load never writes");
        runs += 1;
    }
    eprintln!("fuzz: {runs} inputs in {secs} s, {accepted} accepted as well-formed, no panic");
    assert!(runs > 50, "the fuzzer ran ({runs} inputs)");
}

#[test]
fn parameter_files_with_bad_bytes_are_errors() {
    // The plain parameter reader (used by `wgfit train --init` and `evaluate`).
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.safetensors");
    for bytes in [
        &b""[..],
        b"\x05\0\0\0\0\0\0\0{}",
        b"\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        std::fs::write(&p, bytes).unwrap();
        let err = checkpoint::read_tensors(&p).unwrap_err();
        assert!(err.to_string().contains(p.to_str().unwrap()), "{err}");
    }
}
