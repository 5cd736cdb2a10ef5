//! A short, stable-Rust run of the fuzzer's readers: every seed of `fuzz/seeds/<reader>/` and
//! a few thousand cheap mutations of them go through the reader the libFuzzer target of that
//! name calls (the same code: `fuzz/src/lib.rs`). Each must return, within a bound, a value or
//! an error that says something; a panic or a hang fails the test and shows the input.

#[path = "../fuzz/src/lib.rs"]
mod readers;

mod common;

use common::rng::Rng;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Mutated inputs per reader, on top of the seeds.
const MUTATIONS: usize = 2000;

/// The longest one input may take (the debug build on a busy machine; a hang is far longer).
const BOUND: Duration = Duration::from_secs(20);

type Reader = fn(&[u8]) -> readers::Verdict;

/// The seeds of `reader`, and the inputs the fuzzer found crashing it (`fuzz/crashes/`, kept
/// as regression cases once fixed).
fn seeds(reader: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let dir = root.join("seeds").join(reader);
    let read = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect()
    };
    let mut seeds = read(&dir);
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    let crashes = root.join("crashes").join(reader);
    if crashes.is_dir() {
        seeds.extend(read(&crashes));
    }
    seeds.sort();
    seeds
}

/// Bytes that matter to the formats read: separators, digits, signs, brackets, quotes.
const INTERESTING: &[u8] = b"0129,;\t\n\r{}[]\":.-+eE\x00\xff\x7f\x80 nai";

/// One to four cheap edits of a seed: flip a bit, put an interesting byte, insert, delete a
/// run, repeat a run, cut, or splice in part of another seed.
fn mutate(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].1.clone();
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if len > 0 => data[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => data[at.min(len - 1)] = INTERESTING[rng.below(INTERESTING.len())],
            2 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 => {
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at.min(end)..end);
            }
            4 => {
                let end = (at + 1 + rng.below(16)).min(len);
                let run = data[at.min(end)..end].to_vec();
                data.splice(at..at, run.iter().copied().cycle().take(run.len() * 3));
            }
            5 => data.truncate(at),
            _ => {
                let other = &seeds[rng.below(seeds.len())].1;
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
        }
    }
    data
}

fn escaped(data: &[u8]) -> String {
    let shown: Vec<u8> = data.iter().copied().take(400).collect();
    format!(
        "{} bytes: {:?}",
        data.len(),
        String::from_utf8_lossy(&shown)
    )
}

/// Runs every seed and [`MUTATIONS`] mutations through `reader` on a worker thread, watching
/// that no input takes longer than [`BOUND`].
fn run(name: &str, reader: Reader) {
    let seeds = seeds(name);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let mut inputs: Vec<Vec<u8>> = seeds.iter().map(|(_, d)| d.clone()).collect();
    inputs.extend((0..MUTATIONS).map(|_| mutate(&mut rng, &seeds)));
    let inputs = Arc::new(inputs);
    // (input being read, since when); None once all are done.
    let current = Arc::new(Mutex::new(Some((0usize, Instant::now()))));
    let worker = {
        let (inputs, current) = (inputs.clone(), current.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let (mut values, mut errors) = (0usize, 0usize);
            for (i, input) in inputs.iter().enumerate() {
                *current.lock().unwrap() = Some((i, Instant::now()));
                match std::panic::catch_unwind(|| reader(input)) {
                    Ok(Ok(())) => values += 1,
                    Ok(Err(message)) if !message.trim().is_empty() => errors += 1,
                    Ok(Err(_)) => failures.push((i, "an error with no message".to_string())),
                    Err(_) => failures.push((i, "a panic".to_string())),
                }
            }
            *current.lock().unwrap() = None;
            (failures, values, errors)
        })
    };
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let Some((i, since)) = *current.lock().unwrap() else {
            break;
        };
        assert!(
            since.elapsed() < BOUND,
            "{name}: input {i} did not return within {BOUND:?}: {}",
            escaped(&inputs[i])
        );
    }
    let (failures, values, errors) = worker.join().unwrap();
    if let Some((i, what)) = failures.first() {
        panic!(
            "{name}: {} of {} inputs failed; input {i} gave {what}: {}",
            failures.len(),
            inputs.len(),
            escaped(&inputs[*i])
        );
    }
    // Seeds that read as values keep the mutations near the paths that accept data.
    assert!(
        values > 0 && errors > 0,
        "{name}: {values} values, {errors} errors"
    );
}

#[test]
fn sidecar() {
    run("sidecar", readers::sidecar);
}

#[test]
fn safetensors() {
    run("safetensors", readers::safetensors);
}

#[test]
fn csv() {
    run("csv", readers::csv);
}

#[test]
fn npy() {
    run("npy", readers::npy);
}

#[test]
fn history() {
    run("history", readers::history);
}

#[test]
fn pattern() {
    run("pattern", readers::pattern);
}
