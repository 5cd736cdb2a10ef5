"""What the checking scripts here share: wgfit's outputs against another tool's."""
import numpy as np


def softmax(z):
    """The softmax over the last axis, in float64 (wgfit writes logits; Keras and ONNX models
    of a cross-entropy classifier give probabilities)."""
    z = z.astype(np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def relative(got, want):
    """max |got - want| / max |want|; the shapes must agree."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise SystemExit(f"shape {got.shape}, wgfit's {want.shape}")
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))
