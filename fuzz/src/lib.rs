//! One function per reader of outside input, each calling the library's real entry point on
//! the bytes of a file. The libFuzzer targets (`fuzz_targets/`) and the stable-Rust corpus test
//! (`tests/fuzz_corpus.rs`, which includes this file) share them, so both exercise the same
//! calls. Each returns the reader's verdict: `Ok` with a value read, or the error's message.

use std::path::Path;
use wgfit::{CsvOptions, CsvTargets, Dataset, Header};

/// A verdict: what was read, or why not.
pub type Verdict = Result<(), String>;

fn verdict<T>(r: wgfit::Result<T>) -> Verdict {
    r.map(|_| ()).map_err(|e| e.to_string())
}

/// A backup's sidecar (`latest.json`): parsed and checked.
pub fn sidecar(data: &[u8]) -> Verdict {
    let parsed = wgfit::checkpoint::Sidecar::parse(data, Path::new("latest.json"));
    // What a resume on another rank count asks of a parsed fingerprint.
    if let Ok(s) = &parsed
        && let Some(run) = s.fingerprint.one_rank_run()
    {
        let _ = (run.rank_counts(), run.arguments_for(3), run.runs_on(2));
        let _ = s.fingerprint.differences(&s.fingerprint);
    }
    verdict(parsed)
}

/// A safetensors file, as a data set (`--data`) and as a weights file: a value if either
/// reads it.
pub fn safetensors(data: &[u8]) -> Verdict {
    let as_data = verdict(Dataset::from_safetensors_bytes(data));
    let as_weights = verdict(wgfit::checkpoint::read_tensors_from(
        data,
        Path::new("weights.safetensors"),
    ));
    as_data.or(as_weights)
}

/// A CSV data set (plain or gzip); the first byte picks the header and target options.
pub fn csv(data: &[u8]) -> Verdict {
    let Some((&pick, text)) = data.split_first() else {
        return Err("no options byte".into());
    };
    let header = [Header::Auto, Header::Yes, Header::No][usize::from(pick % 3)];
    let targets = match (pick / 3) % 4 {
        0 => CsvTargets::Class,
        n => CsvTargets::Values(usize::from(n)),
    };
    verdict(Dataset::from_csv_bytes(
        text,
        &CsvOptions { header, targets },
    ))
}

/// An `.npy` pair: a 4-byte little-endian length of the `x` file, its bytes, then the `y`
/// file's.
pub fn npy(data: &[u8]) -> Verdict {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return Err("no length".into());
    };
    let split = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (x, y) = rest.split_at(split);
    verdict(Dataset::from_npy_bytes(x, y))
}

/// A history file for `wgfit plot` (JSON or CSV, or a Keras `CSVLogger` log), read from a
/// file as `plot` reads it.
pub fn history(data: &[u8]) -> Verdict {
    thread_local! {
        static FILE: tempfile::TempPath = tempfile::NamedTempFile::new()
            .expect("a temporary file for the fuzzer")
            .into_temp_path();
    }
    FILE.with(|path| {
        std::fs::write(path, data).map_err(|e| e.to_string())?;
        verdict(wgfit::plot::Curves::read(path, None))
    })
}

/// A `ModelCheckpoint` file name pattern (`w-{epoch:02d}-{val_loss:.3f}.safetensors`); the
/// first byte picks the value the float fields hold.
pub fn pattern(data: &[u8]) -> Verdict {
    let Some((&pick, text)) = data.split_first() else {
        return Err("no value byte".into());
    };
    let value = [
        0.5,
        -1e300,
        f64::NAN,
        f64::INFINITY,
        1e-310,
        0.0,
        123456.789,
    ][usize::from(pick) % 7];
    let pattern = std::str::from_utf8(text).map_err(|e| e.to_string())?;
    wgfit::callbacks::format_file_name(pattern, u64::from(pick), value).map(|_| ())
}
