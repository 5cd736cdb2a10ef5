#!/usr/bin/env python3
"""Trains the same model from the same initial weights on the same batches with wgfit and with
Keras 3 (JAX backend, CPU), for each optimizer with its defaults, a cosine schedule with warmup,
each kind of gradient clipping and gradient accumulation, and reports how far the final weights are apart, relative
to the largest weight. Fails when any is above 1e-4.

Not run by CI (it needs Keras and JAX). Run it from the repository root:

    pip install keras jax
    cargo build --release
    KERAS_BACKEND=jax python3 tests/keras/compare_optimizers.py [target/release/wgfit]
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

EPOCHS, BATCH = 3, 16
TOLERANCE = 1e-4


def write_safetensors(path, tensors):
    """A safetensors file of the arrays: uint32 ones as U32 (labels), the rest as F32."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        labels = np.asarray(array).dtype == np.uint32
        tag, layout = ("U32", "<u4") if labels else ("F32", "<f4")
        data = np.ascontiguousarray(array, dtype=layout).tobytes()
        header[name] = {"dtype": tag, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    return {name: np.frombuffer(body[i["data_offsets"][0]:i["data_offsets"][1]], "<f4")
            .reshape(i["shape"]) for name, i in header.items() if name != "__metadata__"}


def load_iris(path):
    rows = [line.strip().split(",") for line in open(path) if line.strip()]
    rows = rows[1:]  # the count line
    x = np.array([[float(v) for v in r[:4]] for r in rows], dtype="float32")
    y = np.array([int(r[4]) for r in rows], dtype="int32")
    return x, y


def keras_weights(init, optimizer, x, y):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3)])
    model.set_weights([init["model.layers.0.weight"].T, init["model.layers.0.bias"],
                       init["model.layers.1.weight"].T, init["model.layers.1.bias"]])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)
    w = model.get_weights()
    return {"model.layers.0.weight": w[0].T, "model.layers.0.bias": w[1],
            "model.layers.1.weight": w[2].T, "model.layers.1.bias": w[3]}


def cases():
    o, s = keras.optimizers, keras.optimizers.schedules
    cosine = s.CosineDecay(0.001, decay_steps=20, warmup_target=0.01, warmup_steps=5)
    cosine_flags = ["--lr", "0.001", "--lr-schedule", "cosine", "--decay-steps", "20",
                    "--warmup-steps", "5", "--warmup-target", "0.01"]
    return [
        ("sgd (Keras defaults)", ["--optimizer", "sgd", "--lr", "0.01", "--momentum", "0"],
         lambda: o.SGD()),
        ("sgd, Nesterov momentum", ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                                    "--nesterov"], lambda: o.SGD(0.05, 0.9, nesterov=True)),
        ("adam", ["--optimizer", "adam"], lambda: o.Adam()),
        ("adam, amsgrad", ["--optimizer", "adam", "--amsgrad"], lambda: o.Adam(amsgrad=True)),
        ("adamw", ["--optimizer", "adamw"], lambda: o.AdamW()),
        ("rmsprop", ["--optimizer", "rmsprop"], lambda: o.RMSprop()),
        ("rmsprop, centered, momentum", ["--optimizer", "rmsprop", "--centered",
                                         "--momentum", "0.5"],
         lambda: o.RMSprop(centered=True, momentum=0.5)),
        ("adam, cosine schedule with warmup", ["--optimizer", "adam"] + cosine_flags,
         lambda: o.Adam(learning_rate=cosine)),
        ("adam, clipnorm 0.1", ["--optimizer", "adam", "--clipnorm", "0.1"],
         lambda: o.Adam(clipnorm=0.1)),
        ("adam, global_clipnorm 0.1", ["--optimizer", "adam", "--global-clipnorm", "0.1"],
         lambda: o.Adam(global_clipnorm=0.1)),
        ("adam, accumulating 3 batches", ["--optimizer", "adam", "--accumulate", "3"],
         lambda: o.Adam(gradient_accumulation_steps=3)),
        ("sgd momentum, cosine, accumulating 2", ["--optimizer", "sgd", "--momentum", "0.9",
                                                  "--accumulate", "2"] + cosine_flags,
         lambda: o.SGD(cosine, 0.9, gradient_accumulation_steps=2)),
        ("sgd, clipvalue 0.05", ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0",
                                 "--clipvalue", "0.05"], lambda: o.SGD(0.05, clipvalue=0.05)),
    ]


def main():
    wgfit = sys.argv[1] if len(sys.argv) > 1 else "target/release/wgfit"
    data = os.path.abspath("data/iris.csv")
    x, y = load_iris(data)
    rng = np.random.default_rng(7)
    init = {"model.layers.0.weight": rng.normal(0, 0.5, (8, 4)).astype("float32"),
            "model.layers.0.bias": rng.normal(0, 0.1, 8).astype("float32"),
            "model.layers.1.weight": rng.normal(0, 0.5, (3, 8)).astype("float32"),
            "model.layers.1.bias": rng.normal(0, 0.1, 3).astype("float32")}
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        init_path = os.path.join(tmp, "init.safetensors")
        write_safetensors(init_path, init)
        for name, flags, make in cases():
            out = os.path.join(tmp, "out.safetensors")
            cmd = [wgfit, "train", "--data", data, "--layers", "8,3", "--activation", "relu",
                   "--init", init_path, "--no-shuffle", "--epochs", str(EPOCHS),
                   "--batch-size", str(BATCH), "--no-backup", "--verbose", "0",
                   "--output", out] + flags
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            ours = read_safetensors(out)
            theirs = keras_weights(init, make(), x, y)
            largest = max(np.abs(t).max() for t in theirs.values())
            diff = max(np.abs(ours[k] - theirs[k]).max() for k in theirs) / largest
            moved = max(np.abs(theirs[k] - init[k]).max() for k in theirs) / largest
            worst = max(worst, diff)
            verdict = "ok" if diff <= TOLERANCE else "DIFFERS"
            print(f"{name:36s} max |wgfit - keras| / max |w| = {diff:.2e}"
                  f"  (weights moved {moved:.2e})  {verdict}")
    print(f"worst: {worst:.2e} (tolerance {TOLERANCE:g})")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
