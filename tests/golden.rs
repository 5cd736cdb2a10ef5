//! Golden files: the final parameters and optimizer slots of fixed runs, byte for byte, as
//! recorded on an adapter. A change to the engine that is meant to change no bit (a
//! refactor, a new code path beside the old) must leave them identical.
//!
//! The bits are those of one device type: the files live under `tests/golden/<adapter>/`, and
//! on an adapter without files the comparison with them says so on stderr and passes; the
//! exactness of a resume is checked against an uninterrupted run made in the test itself, on
//! any adapter. `WGFIT_BLESS=1`
//! (re)writes the files of the adapter in use, for a change that is meant to change the bits
//! (say why in its commit) or to record a new device type.

mod common;

use common::{Counter, Interrupt, backup_every_batch, bits, data, options};
use std::path::PathBuf;
use wgfit::{Activation, Dataset, Dense, FitOptions, Loss, Sequential, Sgd, Tensor};

/// The directory of this adapter's golden files: its name with anything but letters and
/// digits folded to `-` (the name carries the driver's version, e.g. llvmpipe's LLVM). On a
/// CPU adapter the host's fused multiply-add decides how a product and a sum round, so
/// whether the CPU has one is part of the device type.
fn golden_dir(model: &Sequential) -> PathBuf {
    let adapter = model.adapter().expect("an adapter");
    let mut name = adapter.name;
    if adapter.device_type == "Cpu" {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let fma = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "fma"));
        name.push_str(if fma { " fma" } else { " no fma" });
    }
    let key: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(key.trim_matches('-'))
}

/// Every parameter and slot of the model.
fn state(model: &Sequential) -> Vec<Tensor> {
    let mut all = model.parameters().expect("parameters");
    all.extend(model.optimizer_slots().expect("slots"));
    all
}

/// Compares the model's state with the golden file `case` (or writes it when blessing).
fn check(case: &str, model: &Sequential) {
    let dir = golden_dir(model);
    let path = dir.join(format!("{case}.safetensors"));
    let got = state(model);
    if std::env::var_os("WGFIT_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        wgfit::checkpoint::write_tensors(&path, &got).unwrap();
        eprintln!("golden: wrote {}", path.display());
        return;
    }
    if !dir.is_dir() {
        let notice = format!(
            "golden: NOT CHECKED: no golden files for this adapter ({}); record them with WGFIT_BLESS=1",
            dir.display()
        );
        // Not a failure even in CI (WGFIT_REQUIRE_ALL_TESTS): bits belong to a device type,
        // and another one has no files to compare with until someone records them there.
        // Straight to the process's stderr: the test harness hides what a passing test
        // prints through eprintln!, and this must be seen.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{notice}");
        return;
    }
    let want = wgfit::checkpoint::read_tensors(&path)
        .unwrap_or_else(|e| panic!("golden file {}: {e}", path.display()));
    let mut got = got;
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got.len(), want.len(), "{case}: tensor count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.name, &g.shape), (&w.name, &w.shape), "{case}");
        let differ = g
            .data
            .iter()
            .zip(&w.data)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{case}: {differ} values of `{}` differ", g.name);
    }
}

fn tanh_momentum() -> Sequential {
    let mut m = Sequential::new(6)
        .add(Dense::new(8).activation(Activation::Tanh))
        .add(Dense::new(3))
        .seed(3);
    m.compile(Loss::CrossEntropy, Sgd::new(0.05).momentum(0.9))
        .unwrap();
    m
}

#[test]
fn cross_entropy_tanh_momentum() {
    let mut m = tanh_momentum();
    m.fit(&data(), options(3), &mut []).unwrap();
    check("cross_entropy_tanh_momentum", &m);
}

/// Checked against the uninterrupted run made here, on any adapter, and that the rerun resumed
/// rather than started over; the golden file adds the check across versions where it exists.
#[test]
fn the_same_run_killed_mid_epoch_with_saves_every_batch() {
    let mut uninterrupted = tanh_momentum();
    let mut all = Counter::default();
    uninterrupted
        .fit(&data(), options(3), &mut [&mut all])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut stop = Interrupt {
        at_global_step: Some(17),
        at_epoch_begin: None,
    };
    tanh_momentum()
        .fit(
            &data(),
            options(3),
            &mut [&mut backup_every_batch(&dir), &mut stop],
        )
        .unwrap_err();
    let mut m = tanh_momentum();
    let mut rest = Counter::default();
    m.fit(
        &data(),
        options(3),
        &mut [&mut backup_every_batch(&dir), &mut rest],
    )
    .unwrap();
    assert_eq!(rest.batches[..], all.batches[17..], "resumed after step 17");
    assert!(
        bits(&m) == bits(&uninterrupted),
        "the resumed run ends with other bits"
    );
    check("cross_entropy_tanh_momentum", &m);
}

#[test]
fn mean_squared_error_relu_sigmoid_nesterov_weight_decay() {
    let x = data().x().to_vec();
    let y: Vec<f32> = x
        .chunks(6)
        .flat_map(|r| [r[0] - r[3], r[1] * r[2]])
        .collect();
    let regression = Dataset::regression(x, 6, y, 2).unwrap();
    let mut m = Sequential::new(6)
        .add(Dense::new(7).activation(Activation::Relu))
        .add(Dense::new(5).activation(Activation::Sigmoid))
        .add(Dense::new(2))
        .seed(5);
    let sgd = Sgd::new(0.02)
        .momentum(0.8)
        .nesterov(true)
        .weight_decay(1e-3);
    m.compile(Loss::MeanSquaredError, sgd).unwrap();
    let opts = FitOptions {
        batch_size: 7,
        ..options(4)
    };
    m.fit(&regression, opts, &mut []).unwrap();
    check("mean_squared_error_relu_sigmoid_nesterov_weight_decay", &m);
}

#[test]
fn cross_entropy_sigmoid_plain_sgd_unshuffled() {
    let mut m = Sequential::new(6)
        .add(Dense::new(5).activation(Activation::Sigmoid))
        .add(Dense::new(3))
        .seed(9);
    m.compile(Loss::CrossEntropy, Sgd::new(0.2)).unwrap();
    let opts = FitOptions {
        shuffle: false,
        ..options(2)
    };
    m.fit(&data(), opts, &mut []).unwrap();
    check("cross_entropy_sigmoid_plain_sgd_unshuffled", &m);
}
