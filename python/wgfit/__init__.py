"""wgfit from Python: a Keras model and NumPy arrays in, training on any GPU wgpu drives (or
on none, through lavapipe), runs that survive preemption bit-identically.

    import wgfit
    model = wgfit.Model.from_keras(keras_model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=128,
                        callbacks=[wgfit.callbacks.BackupAndRestore("run.backup")])
"""
import json
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import callbacks
from .callbacks import Callback as _Callback
from ._wgfit import (BackupMismatch, ConfigError, DataError, Error, GpuError, Preempted,
                     __version__, _Model)

__all__ = ["BackupMismatch", "ConfigError", "DataError", "Error", "GpuError", "History",
           "Model", "Preempted", "callbacks", "__version__"]

# Keras's loss names (and classes' names) for the losses wgfit has.
_LOSSES = {
    "sparse_categorical_crossentropy": "crossentropy",
    "SparseCategoricalCrossentropy": "crossentropy",
    "mse": "mse",
    "MSE": "mse",
    "mean_squared_error": "mse",
    "MeanSquaredError": "mse",
}
_OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}


class History:
    """What `fit` returns, as Keras's: `.history` maps each metric to its value per epoch,
    `.epoch` lists the epochs."""

    def __init__(self, epochs: List[Dict[str, Any]]):
        self.epoch = [e["epoch"] for e in epochs]
        self.history: Dict[str, List[float]] = {}
        for e in epochs:
            for k, v in e["logs"].items():
                self.history.setdefault(k, []).append(float(v))


def _loss_name(loss) -> str:
    if isinstance(loss, str):
        name = loss
    else:
        # A loss object's class, or a loss function's name (keras.losses.mse).
        name = getattr(loss, "__name__", type(loss).__name__)
        config = loss.get_config() if hasattr(loss, "get_config") else {}
        if config.get("label_smoothing"):
            raise ConfigError(f"loss {name}: wgfit has no label smoothing")
        if config.get("ignore_class") is not None:
            raise ConfigError(f"loss {name}: wgfit has no ignore_class")
        if config.get("reduction") not in (None, "sum_over_batch_size"):
            raise ConfigError(f"loss {name}: reduction {config['reduction']!r}: wgfit averages "
                              "over the batch (sum_over_batch_size)")
    if name not in _LOSSES:
        raise ConfigError(f"loss {name!r}: wgfit has sparse_categorical_crossentropy and mse")
    return _LOSSES[name]


def _optimizer_json(optimizer) -> str:
    if isinstance(optimizer, str):
        name = _OPTIMIZER_NAMES.get(optimizer.lower())
        if name is None:
            raise ConfigError(f"optimizer {optimizer!r}: wgfit has sgd, adam, adamw and rmsprop")
        return json.dumps({"class_name": name, "config": {}})
    import keras

    return json.dumps(keras.optimizers.serialize(optimizer), default=_plain)


def _plain(value):
    """A NumPy scalar (`np.int64(2)`, `np.float32(0.1)`) as the Python number JSON takes."""
    if isinstance(value, np.generic):
        return value.item()
    return float(value)


def _count(what: str, value, least: int = 0) -> int:
    """A whole number of at least `least` (as Keras takes them: `np.int64` too, not 2.5)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what}={value!r}: give a whole number")
    if value < least:
        raise ConfigError(f"{what}={value}: give {least} or more")
    return int(value)


def _batch_size(batch_size, rows: Optional[int]) -> int:
    """Keras's batch size: 32 by default, but never more than the rows (one batch of them)."""
    if batch_size is None:
        return 32 if rows is None else min(32, rows)
    return _count("batch_size", batch_size, 1)


def _float32_rows(x, what: str) -> np.ndarray:
    """`x` as a C-contiguous, aligned float32 array: `x` itself when it is one (wgfit then
    reads it in place), else one copy converted."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{what} of dtype {a.dtype}: give numbers (bool, int or float)")
    if a.ndim == 0 or len(a) == 0:
        raise DataError(f"{what} holds no rows (shape {a.shape})")
    return np.require(a, dtype=np.float32, requirements=["C", "A"])


def _redraws_lines() -> bool:
    """Whether `sys.stdout` shows a bar redrawn by carriage returns: a terminal or a Jupyter
    notebook (as Keras's Progbar decides); elsewhere verbose 1 writes the epochs' lines."""
    try:
        terminal = sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return terminal or "ipykernel" in sys.modules


class Model:
    """A Keras model trained by wgfit: Keras's `compile`, `fit`, `evaluate`, `predict`,
    `get_weights`, `set_weights` and `save`."""

    def __init__(self, native: "_Model"):
        self._native = native
        # The native model stays on the thread that made it (its GPU state is not shared).
        self._thread = threading.get_ident()
        self._pending_weights: Optional[List[np.ndarray]] = None
        self._compiled = False
        self._loss = None

    @classmethod
    def from_json(cls, text: str) -> "Model":
        """The model of Keras's `model.to_json()` text (Sequential or Functional)."""
        return cls(_Model.from_json(text))

    @classmethod
    def from_keras(cls, keras_model) -> "Model":
        """The model of a Keras model: its `to_json()` config and its current weights."""
        model = cls.from_json(keras_model.to_json())
        model._pending_weights = [np.asarray(w) for w in keras_model.get_weights()]
        return model

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, seed: int = 42) -> None:
        """Keras's compile: `optimizer` a name or a `keras.optimizers` object (with a
        learning-rate schedule, clipnorm or global_clipnorm); `loss`
        sparse_categorical_crossentropy (accuracy is reported with it) or mse. `seed` draws
        the initial weights when none were given."""
        self._check_thread()
        if isinstance(metrics, str):
            metrics = [metrics]
        if loss is None:
            raise ConfigError("compile needs a loss")
        name = _loss_name(loss)
        for m in metrics or []:
            if m not in ("accuracy", "acc", "sparse_categorical_accuracy"):
                raise ConfigError(f"metric {m!r}: wgfit reports accuracy (with cross-entropy)")
            if name != "crossentropy":
                raise ConfigError(f"metric {m!r}: wgfit reports accuracy with cross-entropy, "
                                  f"not with {name}")
        optimizer_json = _optimizer_json(optimizer)
        if self._native.softmax_output() and name != "crossentropy":
            raise ConfigError(f"loss {name}: the model ends in a softmax, whose probabilities "
                              "wgfit trains with sparse_categorical_crossentropy only")
        self._native.compile(name, optimizer_json, _count("seed", seed))
        # Only once the native model took it: a refused compile leaves the last one in force.
        self._loss = name
        self._compiled = True
        if self._pending_weights is not None:
            self.set_weights(self._pending_weights)
            self._pending_weights = None

    def _check_thread(self):
        if threading.get_ident() != self._thread:
            raise Error("a wgfit Model is used from the thread that made it; make the model "
                        "in the thread that trains it")

    def _check_compiled(self):
        self._check_thread()
        if not self._compiled:
            raise ConfigError("the model is not compiled: call compile(optimizer, loss) first")

    def _x(self, x, what="x") -> np.ndarray:
        a = _float32_rows(x, what)
        want = int(np.prod(self._native.input_shape()))
        if a[0].size != want:
            raise DataError(f"{what} rows of shape {a.shape[1:]} hold {a[0].size} values; "
                            f"the model takes {tuple(self._native.input_shape())} ({want})")
        return a

    def _y(self, y, rows: int, what="y"):
        if y is None:
            raise DataError(f"{what} is missing: arrays x need their targets y")
        a = np.asarray(y)
        if a.ndim == 0:
            raise DataError(f"{what} is a single value; give one target per row of x")
        if len(a) != rows:
            raise DataError(f"{what} has {len(a)} rows, x {rows}")
        if self._loss == "crossentropy":
            if a.dtype.kind == "f":
                if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
                    raise DataError(f"{what}: class labels must be whole numbers")
            elif a.dtype.kind not in "iub":
                raise DataError(f"{what} of dtype {a.dtype}: give integer class labels")
            if a.size and a.min() < 0:
                raise DataError(f"{what}: class label {int(a.min())} is negative")
            if a.size and a.max() >= 2**32:
                raise DataError(f"{what}: class label {a.max()} is beyond any model's classes")
            # One label per sample, or per position of a [T, classes] output.
            positions = tuple(self._native.output_shape()[:-1])
            one_label = np.prod(a.shape[1:], dtype=np.int64) == 1 and np.prod(positions) == 1
            if a.ndim > 1 and not one_label and tuple(a.shape[1:]) not in (positions,
                                                                            positions + (1,)):
                raise DataError(
                    f"{what} of shape {a.shape}: sparse categorical cross-entropy takes integer "
                    f"labels of shape ({rows},{''.join(f' {p},' for p in positions)}), not one-hot "
                    "rows (np.argmax(y, axis=-1) gives them)")
            cols = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
            return np.ascontiguousarray(a, dtype=np.uint32).tobytes(), "int", cols
        if a.dtype.kind not in "biuf":
            raise DataError(f"{what} of dtype {a.dtype}: give numbers")
        cols = int(np.prod(a.shape[1:])) if a.ndim > 1 else 1
        return np.ascontiguousarray(a, dtype=np.float32).tobytes(), "float", cols

    def fit(self, x=None, y=None, batch_size: Optional[int] = None, epochs: int = 1,
            verbose: Union[str, int] = "auto", callbacks: Optional[Sequence] = None,
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            initial_epoch: int = 0, seed: int = 42) -> History:
        """Keras's fit on NumPy arrays, or on a file `x` (CSV or safetensors with `x` and `y`,
        as `wgfit train --data` reads it: mapped, streamed when large). The GIL is released while wgfit trains. With a
        BackupAndRestore callback, SIGINT (Ctrl-C) saves the state and raises
        KeyboardInterrupt, SIGTERM saves and exits with status 143, and a `fit` run again
        resumes exactly where the state was saved."""
        self._check_compiled()
        epochs = _count("epochs", epochs, 1)
        initial_epoch = _count("initial_epoch", initial_epoch)
        path = None
        if isinstance(x, (str, os.PathLike)):
            if y is not None:
                raise DataError("x is a file, which holds its targets: give no y")
            path, xa, yb, kind, cols = os.fspath(x), np.zeros((1, 1), np.float32), b"", "int", 1
            rows = None
        else:
            xa = self._x(x)
            yb, kind, cols = self._y(y, len(xa))
            rows = len(xa)
        validation = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise DataError("validation_data: give (x, y); wgfit has no sample weights")
            vx, vy = validation_data[0], validation_data[1]
            va = self._x(vx, "validation x")
            vyb, vkind, vcols = self._y(vy, len(va), "validation y")
            # (A file's targets are checked against the validation data's when it is read.)
            if path is None and (vkind, vcols) != (kind, cols):
                raise DataError("validation y is not of y's kind and width")
            validation = (va, len(va), vyb)
        configs = []
        for c in callbacks or []:
            if not isinstance(c, _Callback):
                raise ConfigError(f"callback {type(c).__name__}: use the classes of wgfit.callbacks")
            configs.append((type(c).__name__, json.dumps(c._config(), default=_plain)))
        if verbose not in ("auto", 0, 1, 2):
            raise ConfigError(f"verbose={verbose!r}: \"auto\", 0, 1 or 2")
        level = 1 if verbose == "auto" else int(verbose)
        try:
            text = self._native.fit(xa, len(xa), yb, kind, cols, epochs,
                                    _batch_size(batch_size, rows), shuffle,
                                    _count("seed", seed), initial_epoch, level,
                                    _redraws_lines(),
                                    validation_split or None, validation, configs, path)
        except Preempted as e:
            signal = e.args[1] if len(e.args) > 1 else 2
            if signal == 15:
                raise SystemExit(143) from e
            raise KeyboardInterrupt(str(e.args[0])) from e
        return History(json.loads(text))

    def evaluate(self, x=None, y=None, batch_size: Optional[int] = None, verbose="auto",
                 return_dict: bool = False):
        """Keras's evaluate: the loss (and accuracy), as a list, a scalar, or a dict."""
        self._check_compiled()
        xa = self._x(x)
        yb, kind, cols = self._y(y, len(xa))
        logs = json.loads(self._native.evaluate(xa, len(xa), yb, kind, cols,
                                                _batch_size(batch_size, len(xa))))
        # NaN and infinities come as the strings float() reads.
        logs = {k: float(v) for k, v in logs.items()}
        if return_dict:
            return logs
        values = [logs["loss"]] + [v for k, v in logs.items() if k != "loss"]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: Optional[int] = None, verbose="auto") -> np.ndarray:
        """Keras's predict: `[rows, …output shape]` float32 (probabilities where the Keras
        model ends in a softmax)."""
        self._check_compiled()
        xa = self._x(x)
        raw = self._native.predict(xa, _batch_size(batch_size, len(xa)))
        out = np.frombuffer(raw, dtype=np.float32).reshape(
            (len(xa),) + tuple(self._native.output_shape()))
        if self._native.softmax_output():
            z = out - out.max(axis=-1, keepdims=True)
            e = np.exp(z)
            out = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        return out

    def get_weights(self) -> List[np.ndarray]:
        """Every variable in Keras's order and layout (Keras's `get_weights`)."""
        self._check_compiled()
        return [np.frombuffer(b, dtype=np.float32).reshape(shape).copy()
                for shape, b in self._native.get_weights()]

    def set_weights(self, weights: Sequence) -> None:
        """Replaces every variable, in Keras's order and layout (Keras's `set_weights`)."""
        self._check_compiled()
        shapes = [tuple(shape) for shape, _ in self._native.get_weights()]
        arrays = [np.asarray(w) for w in weights]
        if len(arrays) != len(shapes):
            raise ConfigError(f"set_weights: {len(arrays)} arrays given for the model's "
                              f"{len(shapes)} variables")
        for i, (a, shape) in enumerate(zip(arrays, shapes)):
            if a.shape != shape:
                raise ConfigError(f"set_weights: array {i} has shape {a.shape}; the model's "
                                  f"variable {i} has shape {shape}")
        self._native.set_weights([np.ascontiguousarray(a, dtype=np.float32).tobytes()
                                  for a in arrays])

    def save(self, filepath: str) -> None:
        """Writes `.keras` (Keras's `load_model` reads it), `.weights.h5`, `.onnx` or wgfit's
        `.safetensors`, by the extension."""
        self._check_compiled()
        self._native.save(os.fspath(filepath))

    def load_weights(self, filepath: str) -> None:
        """Reads `.keras`, `.weights.h5` or wgfit's `.safetensors` weights."""
        self._check_compiled()
        if os.fspath(filepath).lower().endswith(".onnx"):
            raise ConfigError(f"{filepath}: an ONNX model is written, not read, by wgfit; load "
                              ".keras, .weights.h5 or .safetensors weights")
        self._native.load_weights(os.fspath(filepath))

    def to_json(self) -> str:
        """The Keras config the model was made from."""
        return self._native.to_json()

    def to_keras(self):
        """The same model in Keras, holding this model's weights."""
        import keras

        model = keras.models.model_from_json(self.to_json())
        model.set_weights(self.get_weights())
        return model
