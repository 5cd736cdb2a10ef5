#!/usr/bin/env python3
"""W1 (bench/WORKLOADS.md) trained from Python (`wgfit.Model.fit` on NumPy arrays) and by the
CLI (`wgfit train --data w1.safetensors`) with the same model, data, optimizer and batches:
each prints its epochs' batches/s (the same Progress lines); the first epoch is the warm-up,
the other three are timed. REPS interleaved runs of each; prints the median and range of
each one's steps/s and of their ratio (Python / CLI). Needs the package installed from a
release build (`pip install ./python`) and `cargo build --release`.

    python3 bench/python_w1.py [REPS] [path/to/wgfit]
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np

N, FEATURES, CLASSES, EPOCHS, BATCH = 8192, 784, 10, 4, 128
MODEL = {"class_name": "Sequential", "config": {"name": "w1", "layers": [
    {"class_name": "InputLayer", "config": {"batch_shape": [None, FEATURES]}},
    {"class_name": "Dense", "config": {"name": "dense", "units": 256, "activation": "relu"}},
    {"class_name": "Dense", "config": {"name": "dense_1", "units": 256, "activation": "relu"}},
    {"class_name": "Dense", "config": {"name": "dense_2", "units": 10, "activation": "linear"}},
]}}


def splitmix64(seed, k):
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + (k + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def w1_data():
    out = splitmix64(42, np.arange(N * FEATURES + N, dtype=np.uint64))
    x = ((out[:N * FEATURES] >> np.uint64(40)).astype(np.float32) / np.float32(2 ** 24))
    labels = (out[N * FEATURES:] >> np.uint64(32)) % np.uint64(10)
    y = np.eye(CLASSES, dtype=np.float32)[labels.astype(np.int64)]
    return x.reshape(N, FEATURES), y


PYTHON_RUN = """
import json, sys, numpy as np, wgfit
from safetensors.numpy import load_file
d = load_file(sys.argv[1])
model = wgfit.Model.from_json(sys.argv[2])
model.compile(optimizer="sgd", loss="mse", seed=42)
model.fit(d["x"], d["y"], epochs=%d, batch_size=%d, seed=42, verbose=1)
""" % (EPOCHS, BATCH)


def batches_per_s(text):
    """The timed epochs' batches/s from Progress lines (`... (65 batches/s) ...`)."""
    rates = [float(r) for r in re.findall(r"\(([0-9.]+) batches/s\)", text)]
    if len(rates) != EPOCHS:
        raise SystemExit(f"expected {EPOCHS} epoch lines, got {rates} in:\n{text}")
    return statistics.median(rates[1:])


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    wgfit_bin = sys.argv[2] if len(sys.argv) > 2 else "target/release/wgfit"
    from safetensors.numpy import save_file

    x, y = w1_data()
    assert np.allclose(x[0, :3], [0.7415649, 0.1599104, 0.2786011])
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "w1.safetensors")
        save_file({"x": x, "y": y}, data)
        model = os.path.join(d, "w1.json")
        with open(model, "w") as f:
            json.dump(MODEL, f)
        python, cli = [], []
        for _ in range(reps):
            p = subprocess.run([sys.executable, "-c", PYTHON_RUN, data, json.dumps(MODEL)],
                               capture_output=True, text=True, check=True)
            python.append(batches_per_s(p.stdout + p.stderr))
            c = subprocess.run(
                [wgfit_bin, "train", "--model", model, "--data", data, "--loss", "mse",
                 "--optimizer", "sgd", "--lr", "0.01", "--epochs", str(EPOCHS),
                 "--batch-size", str(BATCH), "--seed", "42", "--no-backup",
                 "--output", os.path.join(d, "out.safetensors"), "--verbose", "1"],
                capture_output=True, text=True, check=True)
            cli.append(batches_per_s(c.stdout + c.stderr))
    ratios = [p / c for p, c in zip(python, cli)]
    fmt = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"  # noqa: E731
    print(f"W1 steps/s, {reps} interleaved runs: Python fit {fmt(python)}, CLI {fmt(cli)}")
    print(f"Python / CLI: {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
