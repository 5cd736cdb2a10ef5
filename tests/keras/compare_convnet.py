#!/usr/bin/env python3
"""Trains the Keras example "Simple MNIST convnet" (Conv2D 32 -> MaxPooling2D -> Conv2D 64 ->
MaxPooling2D -> Flatten -> Dropout -> Dense 10 softmax; Dropout rate 0 here, since the two
draw different masks) with wgfit, from the model's own `model.to_json()` and initial weights,
and with Keras 3 (JAX backend, CPU), on the same generated 28x28x1 data in the same order for
3 epochs, and reports how far the final weights are apart, relative to the largest weight.
Fails when any optimizer's is above 1e-5.

Not run by CI (it needs Keras and JAX). Run it from the repository root:

    pip install keras jax
    cargo build --release
    KERAS_BACKEND=jax python3 tests/keras/compare_convnet.py [target/release/wgfit]
"""
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from compare_optimizers import read_safetensors, write_safetensors  # noqa: E402

EPOCHS, BATCH, SAMPLES = 3, 32, 256
TOLERANCE = 1e-5
# wgfit's index of each Keras layer with weights (pooling, Flatten and Dropout count too).
LAYERS = {0: "conv2d", 2: "conv2d_1", 6: "dense"}


def convnet():
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.0),
        layers.Dense(10, activation="softmax"),
    ])


def as_wgfit(model):
    """Keras's weights under wgfit's names: Conv2D kernels keep their layout, Dense kernels
    are transposed to [out, in]."""
    out = {}
    for index, name in LAYERS.items():
        kernel, bias = model.get_layer(name).get_weights()
        out[f"model.layers.{index}.weight"] = kernel.T if kernel.ndim == 2 else kernel
        out[f"model.layers.{index}.bias"] = bias
    return out


def main():
    wgfit = sys.argv[1] if len(sys.argv) > 1 else "target/release/wgfit"
    rng = np.random.default_rng(3)
    x = rng.random((SAMPLES, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, SAMPLES).astype(np.int32)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.csv")
        np.savetxt(data, np.hstack([x.reshape(SAMPLES, -1), y[:, None]]), delimiter=",",
                   fmt=["%.9g"] * 784 + ["%d"])
        for name, flags, make in [
            ("sgd 0.01", ["--optimizer", "sgd", "--lr", "0.01", "--momentum", "0"],
             lambda: keras.optimizers.SGD(0.01)),
            ("sgd 0.01, momentum 0.9", ["--optimizer", "sgd", "--lr", "0.01",
                                        "--momentum", "0.9"],
             lambda: keras.optimizers.SGD(0.01, 0.9)),
            ("adam", ["--optimizer", "adam"], lambda: keras.optimizers.Adam()),
        ]:
            keras.utils.set_random_seed(1)
            model = convnet()
            init = as_wgfit(model)
            model_json = os.path.join(tmp, "model.json")
            with open(model_json, "w") as f:
                f.write(model.to_json())
            init_path = os.path.join(tmp, "init.safetensors")
            write_safetensors(init_path, init)
            out = os.path.join(tmp, "out.safetensors")
            subprocess.run([wgfit, "train", "--data", data, "--model", model_json,
                            "--init", init_path, "--no-shuffle", "--epochs", str(EPOCHS),
                            "--batch-size", str(BATCH), "--no-backup", "--verbose", "0",
                            "--output", out] + flags, check=True, stdout=subprocess.DEVNULL)
            ours = read_safetensors(out)
            model.compile(optimizer=make(), loss="sparse_categorical_crossentropy")
            model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)
            theirs = as_wgfit(model)
            largest = max(np.abs(t).max() for t in theirs.values())
            diff = max(np.abs(ours[k] - theirs[k]).max() for k in theirs) / largest
            moved = max(np.abs(theirs[k] - init[k]).max() for k in theirs) / largest
            worst = max(worst, diff)
            verdict = "ok" if diff <= TOLERANCE else "DIFFERS"
            print(f"{name:24s} max |wgfit - keras| / max |w| = {diff:.2e}"
                  f"  (weights moved {moved:.2e})  {verdict}")
    print(f"worst: {worst:.2e} (tolerance {TOLERANCE:g})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
