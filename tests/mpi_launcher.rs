//! A wgfit built without the `mpi` feature refuses to run as one of several processes an MPI
//! launcher started: each would train the whole model alone and race the others on one backup.
#![cfg(not(feature = "mpi"))]

use std::process::Command;

#[test]
fn a_build_without_mpi_refuses_an_mpi_launch() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (var, value) in [("OMPI_COMM_WORLD_SIZE", "2"), ("PMI_SIZE", "4")] {
        let out = Command::new(env!("CARGO_BIN_EXE_wgfit"))
            .args(["train", "--epochs", "1", "--verbose", "0"])
            .env(var, value)
            .current_dir(dir.path())
            .output()
            .expect("run wgfit");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("({var}={value})")) && err.contains("built without MPI"),
            "{err}"
        );
        assert!(!dir.path().join("wgfit-model.safetensors").exists());
        assert!(!dir.path().join("wgfit-model.backup").exists());
    }
    // One process is not a race.
    let out = Command::new(env!("CARGO_BIN_EXE_wgfit"))
        .args(["train", "--epochs", "1", "--verbose", "0", "--no-backup"])
        .env("OMPI_COMM_WORLD_SIZE", "1")
        .current_dir(dir.path())
        .output()
        .expect("run wgfit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
