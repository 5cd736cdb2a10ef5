#!/usr/bin/env python3
"""Trains a small GPT (a token Embedding plus keras_hub's PositionEmbedding, then BLOCKS
pre-norm blocks of LayerNormalization -> causal MultiHeadAttention and LayerNormalization ->
Dense gelu -> Dense -> Dropout, each added to the residual stream, then LayerNormalization
and Dense logits; Dropout rate 0 here, since the two draw different masks), built with
Keras's Functional API, with wgfit from the model's own `model.to_json()` and initial weights,
and with Keras 3 (JAX backend, CPU), on the same generated character-level next-token task
in the same order, and reports how far the weights are apart, relative to the largest weight,
after 1, 10, 50 and 200 steps (batches of 32), and the last epoch's loss of each. Fails when
any case is above 1e-5 after 200 steps.

The attention's key biases are left out of that figure and reported on their own: a key bias
adds the same q.b_k to every score of a query's row, which the softmax takes away, so its
gradient is 0 in exact arithmetic and what either run computes is rounding noise (about 1e-10).
SGD moves it by lr times that, nothing; Adam moves it by lr * g / (sqrt(v) + epsilon), about
lr * g / epsilon = lr * 1e-3 a step, by noise of its own in each run (Keras alone moves it by
about 5e-5 in 200 steps, where a real gradient would move it by about 0.2), so the two differ
by as much as either moves. The loss does not depend on them, so that does not matter.

The same makes Adam's figure about 2e-6 from the first step on (SGD's is 1e-7): where a
gradient is near epsilon (1e-7), lr * g / (|g| + epsilon) turns its rounding, relatively
large after cancellation, into a difference of lr times that. It does not grow with steps.

Not run by CI (it needs Keras and JAX). Run it from the repository root:

    pip install keras jax
    cargo build --release
    KERAS_BACKEND=jax python3 tests/keras/compare_gpt.py [target/release/wgfit]

`--write-json PATH` writes the model's `model.to_json()` (with `--blocks`, `--seq-len`,
`--embed`, `--heads`, `--vocab`, `--dropout` and `--no-final-norm` to choose it) and exits;
`tests/data/keras/gpt_small.json` is

    python3 tests/keras/compare_gpt.py --write-json tests/data/keras/gpt_small.json \
        --blocks 1 --seq-len 8 --embed 16 --heads 2 --vocab 11 --dropout 0.1 --no-final-norm
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from compare_optimizers import read_safetensors, write_safetensors  # noqa: E402
from position_embedding import PositionEmbedding  # noqa: E402

BLOCKS, SEQ_LEN, EMBED, HEADS, VOCAB = 2, 32, 64, 4, 32
BATCH, SAMPLES, EPOCHS = 32, 320, 20  # 10 steps an epoch, 200 steps in all
# The step counts reported: the first is a run of its own on the first batch; the others are
# wgfit's checkpoints at the ends of epochs.
STEPS = [1, 10, 50, 200]
TOLERANCE = 1e-5  # on the 200-step figure


def gpt(blocks=BLOCKS, seq_len=SEQ_LEN, embed=EMBED, heads=HEADS, vocab=VOCAB, dropout=0.0,
        final_norm=True):
    """The GPT as a Functional model; every sum is an Add layer, which wgfit reads."""
    layers = keras.layers
    inp = keras.Input(shape=(seq_len,), dtype="int32")
    tok = layers.Embedding(vocab, embed)(inp)
    pos = PositionEmbedding(seq_len)(tok)
    x = layers.Add()([tok, pos])
    for _ in range(blocks):
        h = layers.LayerNormalization(epsilon=1e-5)(x)
        h = layers.MultiHeadAttention(heads, embed // heads)(h, h, use_causal_mask=True)
        x = layers.Add()([x, h])
        h = layers.LayerNormalization(epsilon=1e-5)(x)
        h = layers.Dense(4 * embed, activation="gelu")(h)
        h = layers.Dense(embed)(h)
        h = layers.Dropout(dropout)(h)
        x = layers.Add()([x, h])
    if final_norm:
        x = layers.LayerNormalization(epsilon=1e-5)(x)
    return keras.Model(inp, layers.Dense(vocab)(x))


# wgfit's names of each kind's weights, in the order Keras's get_weights() gives them.
WEIGHT_NAMES = {
    "Embedding": ["embeddings"],
    "PositionEmbedding": ["position_embeddings"],
    "LayerNormalization": ["gamma", "beta"],
    "Dense": ["weight", "bias"],
    "MultiHeadAttention": ["query_kernel", "query_bias", "key_kernel", "key_bias",
                           "value_kernel", "value_bias", "output_kernel", "output_bias"],
}


def as_wgfit(model):
    """Keras's weights under wgfit's names: layer i is the i-th layer `model.to_json()` lists
    after the InputLayer; Dense kernels are transposed to [out, in], every other weight keeps
    Keras's layout."""
    listed = json.loads(model.to_json())["config"]["layers"]
    listed = [entry for entry in listed if entry["class_name"] != "InputLayer"]
    out = {}
    for i, entry in enumerate(listed):
        layer = model.get_layer(entry["name"])
        names = WEIGHT_NAMES.get(entry["class_name"], [])
        weights = layer.get_weights()
        assert len(names) == len(weights), (entry["class_name"], len(weights))
        for name, value in zip(names, weights):
            out[f"model.layers.{i}.{name}"] = value.T if name == "weight" else value
    return out


def text_task(samples, seq_len, vocab):
    """Next-token prediction on a text of random "words" (a fixed lexicon of 24 words of 2 to
    6 letters, token 0 the space between them): the letters within a word are predictable
    from the ones before, the word boundaries are not. x [samples, seq_len] int32 tokens, y
    the token after each."""
    rng = np.random.default_rng(5)
    lexicon = [rng.integers(1, vocab, rng.integers(2, 7)) for _ in range(24)]
    text = []
    while len(text) < samples * seq_len + 1:
        text.extend(lexicon[rng.integers(len(lexicon))])
        text.append(0)
    text = np.array(text[:samples * seq_len + 1], dtype=np.int32)
    x = text[:-1].reshape(samples, seq_len)
    y = text[1:].reshape(samples, seq_len)
    return x, y


def run_wgfit(wgfit, tmp, model, init, x, y, epochs, flags):
    """wgfit's weights after each epoch ({epoch: weights}) and its per-epoch losses."""
    model_json = os.path.join(tmp, "model.json")
    with open(model_json, "w") as f:
        f.write(model.to_json())
    init_path = os.path.join(tmp, "init.safetensors")
    write_safetensors(init_path, init)
    data = os.path.join(tmp, "data.safetensors")
    write_safetensors(data, {"x": x.astype(np.float32), "y": y.astype(np.uint32)})
    ckpt = os.path.join(tmp, f"ckpt-{len(x)}")
    history = os.path.join(tmp, "history.csv")
    subprocess.run([wgfit, "train", "--data", data, "--model", model_json,
                    "--init", init_path, "--no-shuffle", "--epochs", str(epochs),
                    "--batch-size", str(BATCH), "--no-backup", "--verbose", "0",
                    "--checkpoint", os.path.join(ckpt, "w-{epoch}.safetensors"),
                    "--history", history,
                    "--output", os.path.join(tmp, "out.safetensors")] + flags,
                   check=True, stdout=subprocess.DEVNULL)
    weights = {e: read_safetensors(os.path.join(ckpt, f"w-{e}.safetensors"))
               for e in range(1, epochs + 1)}
    with open(history) as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    return weights, losses


def run_keras(model, make, x, y, snapshot_steps):
    """Keras's weights after each of `snapshot_steps` ({step: weights}) and the mean loss of
    the last epoch's batches. train_on_batch takes the batches fit(shuffle=False) would, one
    at a time, so the weights can be read between them."""
    model.compile(optimizer=make(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    per_epoch = len(x) // BATCH
    snapshots, losses = {}, []
    for step in range(1, max(snapshot_steps) + 1):
        b = (step - 1) % per_epoch
        losses.append(float(model.train_on_batch(x[b * BATCH:(b + 1) * BATCH],
                                                 y[b * BATCH:(b + 1) * BATCH])))
        if step in snapshot_steps:
            snapshots[step] = as_wgfit(model)
    return snapshots, float(np.mean(losses[-per_epoch:]))


def is_key_bias(name):
    """A MultiHeadAttention's key bias, whose gradient is 0 but for rounding (see the top)."""
    return name.endswith(".key_bias")


def relative_difference(ours, theirs, which):
    """max |ours - theirs| / max |theirs| over the tensors `which` picks, and the tensor it is
    largest in."""
    largest = max(np.abs(t).max() for t in theirs.values())
    names = [k for k in theirs if which(k)]
    worst = max(names, key=lambda k: np.abs(ours[k] - theirs[k]).max())
    return np.abs(ours[worst] - theirs[worst]).max() / largest, worst


def differences(ours, theirs):
    """(difference, tensor) without the key biases, and the key biases' difference."""
    rest = relative_difference(ours, theirs, lambda k: not is_key_bias(k))
    return rest, relative_difference(ours, theirs, is_key_bias)[0]


def compare(wgfit, tmp, flags, make):
    """{step: ((difference, tensor), key-bias difference)}, how far Keras's weights moved in
    200 steps relative to the largest weight, and the two last-epoch losses."""
    x, y = text_task(SAMPLES, SEQ_LEN, VOCAB)
    per_epoch = SAMPLES // BATCH
    keras.utils.set_random_seed(1)
    model = gpt()
    init = as_wgfit(model)
    initial = model.get_weights()
    diffs = {}
    # The first step: one epoch of the first batch alone.
    ours, _ = run_wgfit(wgfit, tmp, model, init, x[:BATCH], y[:BATCH], 1, flags)
    theirs, _ = run_keras(model, make, x[:BATCH], y[:BATCH], {1})
    diffs[1] = differences(ours[1], theirs[1])
    # The rest from the same initial weights (and a fresh optimizer), against wgfit's
    # checkpoints at the ends of epochs.
    model.set_weights(initial)
    ours, wgfit_losses = run_wgfit(wgfit, tmp, model, init, x, y, EPOCHS, flags)
    theirs, keras_loss = run_keras(model, make, x, y, set(STEPS[1:]))
    for step in STEPS[1:]:
        diffs[step] = differences(ours[step // per_epoch], theirs[step])
    final = theirs[STEPS[-1]]
    largest = max(np.abs(t).max() for t in final.values())
    moved = max(np.abs(final[k] - init[k]).max() for k in final) / largest
    return diffs, moved, wgfit_losses[-1], keras_loss


def write_json(args):
    model = gpt(args.blocks, args.seq_len, args.embed, args.heads, args.vocab, args.dropout,
                not args.no_final_norm)
    with open(args.write_json, "w") as f:
        f.write(json.dumps(json.loads(model.to_json()), indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wgfit", nargs="?", default="target/release/wgfit")
    parser.add_argument("--write-json", metavar="PATH",
                        help="write the model's model.to_json() here and exit")
    for name, default in [("blocks", BLOCKS), ("seq-len", SEQ_LEN), ("embed", EMBED),
                          ("heads", HEADS), ("vocab", VOCAB)]:
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--no-final-norm", action="store_true",
                        help="no LayerNormalization before the logits")
    args = parser.parse_args()
    if args.write_json:
        write_json(args)
        return

    cases = [
        ("sgd 0.1", ["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0"],
         lambda: keras.optimizers.SGD(0.1)),
        ("adam", ["--optimizer", "adam"], lambda: keras.optimizers.Adam()),
    ]
    start = time.time()
    worst = 0.0
    header = " ".join(f"{f'{s} step' + ('s' if s > 1 else ''):>9s}" for s in STEPS)
    print(f"{'case':8s} {header}  key bias  (moved)   loss wgfit / keras  worst at 200")
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags, make in cases:
            diffs, moved, ours_loss, keras_loss = compare(args.wgfit, tmp, flags, make)
            (last, tensor), key_bias = diffs[STEPS[-1]]
            worst = max(worst, last)
            verdict = "ok" if last <= TOLERANCE else "DIFFERS"
            row = " ".join(f"{diffs[s][0][0]:9.2e}" for s in STEPS)
            print(f"{name:8s} {row}  {key_bias:8.2e}  ({moved:.2e}) {ours_loss:.5f} / "
                  f"{keras_loss:.5f}  {tensor[len('model.layers.'):]}  {verdict}")
    print(f"worst after {STEPS[-1]} steps, key biases aside: {worst:.2e} "
          f"(tolerance {TOLERANCE:g}); {time.time() - start:.0f} s")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
