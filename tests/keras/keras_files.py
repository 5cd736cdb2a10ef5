#!/usr/bin/env python3
"""Keras's side of tests/keras_files.rs: Keras 3 (JAX backend) reads what wgfit writes and
writes what wgfit reads.

    keras_files.py check DIR   every DIR/<case>/ holds config.json (the model's Keras config),
                               model.weights.h5 and model.keras (written by wgfit) and
                               io.safetensors (inputs `x`, wgfit's outputs `y`): Keras loads
                               both files and must predict y within 1e-5 (relative to the
                               largest |y|); prints each case's difference.
    keras_files.py write DIR   for every DIR/<case>/config.json, Keras builds the model,
                               initialises it (BatchNormalization's moving statistics set to
                               random values, so that they are checked too) and writes
                               keras.weights.h5 with `save_weights`, and the same weights with
                               wgfit's names and layouts in wgfit.safetensors.
    keras_files.py init DIR    Keras builds and initialises the convnet of
                               tests/data/keras/digits_convnet_bn.json and saves DIR/start.keras,
                               and the same weights with wgfit's names in start.safetensors.
    keras_files.py evaluate M  Keras loads the .keras file M and evaluates it on the bundled
                               digits (scaled by 1/16, as wgfit trains on them); prints
                               {"loss": …, "accuracy": …}.
"""
import gzip
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from outputs import relative, softmax  # noqa: E402
from position_embedding import PositionEmbedding  # noqa: E402,F401 (registers it)

TOLERANCE = 1e-5


# wgfit's name of each of a layer's weights, in the order of Keras's `layer.weights`.
WGFIT_NAMES = {
    "Dense": ["weight", "bias"],
    "Conv2D": ["weight", "bias"],
    "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"],
    "LayerNormalization": ["gamma", "beta"],
    "Embedding": ["embeddings"],
    "PositionEmbedding": ["position_embeddings"],
    "MultiHeadAttention": ["query_kernel", "query_bias", "key_kernel", "key_bias",
                           "value_kernel", "value_bias", "output_kernel", "output_bias"],
}


def ends_in_softmax(model):
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    return last.__class__.__name__ == "Softmax" or getattr(act, "__name__", "") == "softmax"


def difference(model, x, y):
    x = x.astype(model.inputs[0].dtype)  # token ids: Keras's int32 input
    got = model.predict(x, batch_size=64, verbose=0)
    return relative(got, softmax(y) if ends_in_softmax(model) else y)


def check(root):
    failed = []
    for case in sorted(os.listdir(root)):
        d = os.path.join(root, case)
        io = load_file(os.path.join(d, "io.safetensors"))
        x, y = io["x"], io["y"]
        with open(os.path.join(d, "config.json")) as f:
            model = keras.models.model_from_json(f.read())
        model.load_weights(os.path.join(d, "model.weights.h5"))
        weights = difference(model, x, y)
        whole = difference(keras.saving.load_model(os.path.join(d, "model.keras")), x, y)
        print(f"{case}: .weights.h5 {weights:.2e}, .keras {whole:.2e} (max |Keras - wgfit| / max |wgfit|)")
        if not (weights <= TOLERANCE and whole <= TOLERANCE):
            failed.append(case)
    if failed:
        raise SystemExit(f"above {TOLERANCE}: {', '.join(failed)}")


def wgfit_tensors(model, rng=None):
    """The model's weights with wgfit's names and layouts (BatchNormalization's moving
    statistics first set to random values when `rng` is given, so that they are checked too)."""
    tensors = {}
    layers = [l for l in model.layers if l.__class__.__name__ != "InputLayer"]
    for i, layer in enumerate(layers):
        kind = layer.__class__.__name__
        if kind == "BatchNormalization" and rng is not None:
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype("float32"))
        for name, w in zip(WGFIT_NAMES.get(kind, []), layer.weights):
            value = np.asarray(w.numpy(), dtype=np.float32)
            if kind == "Dense" and name == "weight":
                value = value.T
            tensors[f"model.layers.{i}.{name}"] = np.ascontiguousarray(value)
    return tensors


def write(root):
    rng = np.random.default_rng(5)
    for case in sorted(os.listdir(root)):
        d = os.path.join(root, case)
        with open(os.path.join(d, "config.json")) as f:
            model = keras.models.model_from_json(f.read())
        tensors = wgfit_tensors(model, rng)
        model.save_weights(os.path.join(d, "keras.weights.h5"))
        save_file(tensors, os.path.join(d, "wgfit.safetensors"))
        print(f"{case}: {len(tensors)} tensors")


REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def init(root):
    with open(os.path.join(REPO, "tests", "data", "keras", "digits_convnet_bn.json")) as f:
        model = keras.models.model_from_json(f.read())
    model.save(os.path.join(root, "start.keras"))
    save_file(wgfit_tensors(model), os.path.join(root, "start.safetensors"))
    print(f"start.keras: {model.count_params()} parameters")


def evaluate(path):
    with gzip.open(os.path.join(REPO, "data", "digits.csv.gz"), "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x, y = rows[:, :-1] / np.float32(16), rows[:, -1].astype(np.int32)
    model = keras.saving.load_model(path)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = x.reshape((len(x),) + tuple(model.inputs[0].shape[1:]))
    loss, accuracy = model.evaluate(x, y, batch_size=256, verbose=0)
    print(json.dumps({"loss": float(loss), "accuracy": float(accuracy)}))


if __name__ == "__main__":
    commands = {"check": check, "write": write, "init": init, "evaluate": evaluate}
    commands[sys.argv[1]](sys.argv[2])
