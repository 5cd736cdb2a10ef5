#!/usr/bin/env python3
"""The checking side of tests/onnx_torch_files.rs. Every DIR/<case>/ holds model.onnx,
io.safetensors (inputs `x`, wgfit's outputs `y`) and, for the mlp and convnet_bn cases,
model.pt.safetensors:

- onnxruntime runs model.onnx on the first row alone and on all rows (batch sizes 1 and 37);
  its output must be within 1e-5 (relative to the largest) of wgfit's (the softmax of it for
  a `probabilities` output);
- model.pt.safetensors must hold exactly the keys and shapes of the nn.Sequential that
  docs/INTEROP.md states, and NumPy computing that nn.Sequential from it in torch's layouts
  (NCHW, Linear weights [out, in], flattening channels first) must give wgfit's outputs.

    python3 tests/keras/onnx_torch_files.py DIR
"""
import json
import os
import struct
import sys

import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(__file__))
from outputs import relative, softmax  # noqa: E402

TOLERANCE = 1e-5

# The nn.Sequential of each case (docs/INTEROP.md), as keys and shapes of its state_dict.
TORCH = {
    # 0 Linear(6, 8), 1 ReLU, 2 Linear(8, 5), 3 Tanh, 4 Linear(5, 3).
    "mlp": {"0.weight": [8, 6], "0.bias": [8], "2.weight": [5, 8], "2.bias": [5],
            "4.weight": [3, 5], "4.bias": [3]},
    # 0 Conv2d(1, 8, 3, bias=False), 1 BatchNorm2d(8), 2 ReLU, 3 MaxPool2d(2), 4 Flatten,
    # 5 Dropout, 6 Linear(72, 10).
    "convnet_bn": {"0.weight": [8, 1, 3, 3], "1.weight": [8], "1.bias": [8],
                   "1.running_mean": [8], "1.running_var": [8], "1.num_batches_tracked": [],
                   "6.weight": [10, 72], "6.bias": [10]},
}


def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def torch_forward(case, w, x):
    """The nn.Sequential of TORCH[case] in NumPy, channels first as torch computes it."""
    if case == "mlp":
        h = np.maximum(x @ w["0.weight"].T + w["0.bias"], 0)
        h = np.tanh(h @ w["2.weight"].T + w["2.bias"])
        return h @ w["4.weight"].T + w["4.bias"]
    x = x.reshape(len(x), 8, 8, 1).transpose(0, 3, 1, 2).astype(np.float64)  # NCHW
    k = w["0.weight"]
    out = np.zeros((len(x), 8, 6, 6))
    for i in range(6):
        for j in range(6):
            out[:, :, i, j] = np.einsum("nchw,ochw->no", x[:, :, i:i + 3, j:j + 3], k)
    c = lambda v: v[None, :, None, None]  # noqa: E731
    out = (out - c(w["1.running_mean"])) / np.sqrt(c(w["1.running_var"]) + 1e-3)
    out = np.maximum(out * c(w["1.weight"]) + c(w["1.bias"]), 0)
    out = out.reshape(len(x), 8, 3, 2, 3, 2).max(axis=(3, 5))
    flat = out.reshape(len(x), -1)  # torch's Flatten: channels first
    return flat @ w["6.weight"].T + w["6.bias"]


def main(root):
    failed = []
    for case in sorted(os.listdir(root)):
        d = os.path.join(root, case)
        io = load_file(os.path.join(d, "io.safetensors"))
        x, y = io["x"], io["y"]
        session = ort.InferenceSession(os.path.join(d, "model.onnx"))
        output = session.get_outputs()[0].name
        want = softmax(y) if output == "probabilities" else y
        one = relative(session.run(None, {"input": x[:1]})[0], want[:1])
        full = relative(session.run(None, {"input": x})[0], want)
        line = f"{case}: onnxruntime batch 1 {one:.2e}, batch {len(x)} {full:.2e}"
        ok = one <= TOLERANCE and full <= TOLERANCE
        pt = os.path.join(d, "model.pt.safetensors")
        if case in TORCH:
            shapes = {k: v["shape"] for k, v in header(pt).items() if k != "__metadata__"}
            if shapes != TORCH[case]:
                raise SystemExit(f"{case}: torch keys and shapes {shapes}, not {TORCH[case]}")
            torch = relative(torch_forward(case, load_file(pt), x), y)
            line += f"; torch layout {torch:.2e}"
            ok = ok and torch <= TOLERANCE
        print(line + " (max |theirs - wgfit| / max |wgfit|)")
        if not ok:
            failed.append(case)
    if failed:
        raise SystemExit(f"above {TOLERANCE}: {', '.join(failed)}")


if __name__ == "__main__":
    main(sys.argv[1])
