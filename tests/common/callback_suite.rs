//! The stateful callbacks together (EarlyStopping with its best weights, ReduceLROnPlateau,
//! ModelCheckpoint with save_best_only, CSVLogger), as the resume tests and the kill storm
//! run them, and what a run of them leaves: parameters, history, stopped epoch, files.

use super::{Bits, bits, data, model, options};
use std::collections::BTreeMap;
use std::path::Path;
use wgfit::{
    Callback, CsvLogger, EarlyStopping, FitOptions, History, ModelCheckpoint, ReduceLROnPlateau,
};

/// Epochs asked for: EarlyStopping ends the run before.
pub const EPOCHS: usize = 14;

/// What a run with the suite ends with.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub bits: Bits,
    pub history: History,
    pub stopped_epoch: Option<usize>,
    /// The files ModelCheckpoint and CSVLogger wrote, by name (no temporary files).
    pub files: BTreeMap<String, Vec<u8>>,
}

pub struct Suite {
    pub plateau: ReduceLROnPlateau,
    pub checkpoint: ModelCheckpoint,
    pub early: EarlyStopping,
    pub csv: CsvLogger,
}

/// The suite writing into `artifacts`. On this model and data the validation loss stalls for
/// a while, so the plateau halves the rate; the validation accuracy stops rising, so early
/// stopping ends the run and puts back the best epoch's weights.
pub fn suite(artifacts: &Path) -> Suite {
    Suite {
        plateau: ReduceLROnPlateau::new("val_loss")
            .factor(0.5)
            .patience(2)
            .cooldown(2)
            .min_delta(0.01),
        checkpoint: ModelCheckpoint::new(
            artifacts
                .join("w-{epoch:02d}-{val_loss:.4f}.safetensors")
                .to_string_lossy()
                .into_owned(),
        )
        .monitor("val_loss")
        .save_best_only(true),
        early: EarlyStopping::new("val_accuracy")
            .patience(3)
            .restore_best_weights(true),
        csv: CsvLogger::new(artifacts.join("log.csv")),
    }
}

impl Suite {
    pub fn list(&mut self) -> Vec<&mut dyn Callback> {
        vec![
            &mut self.plateau,
            &mut self.checkpoint,
            &mut self.early,
            &mut self.csv,
        ]
    }
}

pub fn suite_options() -> FitOptions {
    FitOptions {
        validation_split: Some(0.2),
        ..options(EPOCHS)
    }
}

/// The non-hidden files of `dir` (a kill can leave a hidden temporary file behind).
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("entry"))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// Trains [`model`] with the suite (and `before`, e.g. a backup, first; `after` last).
pub fn run(
    artifacts: &Path,
    before: &mut [&mut dyn Callback],
    after: &mut [&mut dyn Callback],
) -> wgfit::Result<Outcome> {
    let mut m = model();
    let mut s = suite(artifacts);
    let history = {
        let mut list: Vec<&mut dyn Callback> = Vec::new();
        for c in before.iter_mut() {
            list.push(&mut **c);
        }
        list.extend(s.list());
        for c in after.iter_mut() {
            list.push(&mut **c);
        }
        m.fit(&data(), suite_options(), &mut list)?
    };
    Ok(Outcome {
        bits: bits(&m),
        history,
        stopped_epoch: s.early.stopped_epoch(),
        files: files(artifacts),
    })
}

impl Outcome {
    /// Everything the outcome holds, as bytes (for a worker process to report).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .bits
            .iter()
            .flat_map(|(_, b)| b.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        out.extend(format!("{:?}|{:?}", self.history, self.stopped_epoch).into_bytes());
        for (name, bytes) in &self.files {
            out.extend(name.as_bytes());
            out.extend(bytes);
        }
        out
    }
}
