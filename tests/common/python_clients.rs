//! The Python clients that check wgfit's files (Keras 3 on JAX, h5py, onnxruntime,
//! safetensors; `scripts/install-python-clients.sh` installs them): a test that needs them
//! runs a script of `tests/keras/` and fails with its output if the script fails.

use std::path::Path;
use std::process::Command;

const MODULES: &str = "keras, jax, h5py, onnxruntime, safetensors";

/// Whether the clients are importable; without them a test says so and returns, unless
/// `WGFIT_REQUIRE_ALL_TESTS=1` (set by `.ci/run`) makes that a failure.
pub fn available(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", &format!("import {MODULES}")])
        .env("KERAS_BACKEND", "jax")
        .output();
    let why = match probe {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("python3 cannot start: {e}"),
    };
    let notice = format!(
        "{test} NOT RUN: it needs the Python modules {MODULES} ({why}); \
         scripts/install-python-clients.sh installs them"
    );
    assert!(
        !std::env::var(super::mount_ns::REQUIRE_ALL).is_ok_and(|v| v == "1"),
        "{notice} ({}=1)",
        super::mount_ns::REQUIRE_ALL
    );
    eprintln!("{notice}");
    false
}

/// Runs `tests/keras/<script>` with `args` (Keras on JAX, CPU), panicking with its output if
/// it fails; returns its standard output.
pub fn run(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg(Path::new("tests/keras").join(script))
        .args(args)
        .env("KERAS_BACKEND", "jax")
        .env("JAX_PLATFORMS", "cpu")
        .output()
        .expect("python3 starts");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{stdout}");
    stdout
}
