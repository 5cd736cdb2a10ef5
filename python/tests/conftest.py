"""Shared fixtures of the Python package's tests: the repository's digits data and model
files, the `wgfit` binary the CLI comparisons run, and Keras on JAX (CPU)."""
import gzip
import os
import pathlib

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = pathlib.Path(__file__).resolve().parents[2]


def digits():
    """The bundled digits (1797 rows of 8x8 pixels scaled to [0, 1], labels 0-9)."""
    with gzip.open(REPO / "data" / "digits.csv.gz", "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return rows[:, :-1] / np.float32(16), rows[:, -1].astype(np.int64)


@pytest.fixture
def digits_data():
    return digits()


@pytest.fixture
def convnet_json():
    """The digits convnet of the Rust tests (Keras 3's to_json: Conv2D, MaxPooling2D,
    Flatten, Dropout, Dense softmax on 8x8x1)."""
    return (REPO / "tests" / "data" / "keras" / "digits_convnet.json").read_text()


@pytest.fixture
def wgfit_bin():
    """The CLI, as `cargo build` left it (WGFIT_BIN overrides)."""
    path = pathlib.Path(os.environ.get("WGFIT_BIN", REPO / "target" / "debug" / "wgfit"))
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `cargo build` first (or set WGFIT_BIN)")
    return path
