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
        name = type(loss).__name__
        config = loss.get_config() if hasattr(loss, "get_config") else {}
        if config.get("label_smoothing"):
            raise ConfigError(f"loss {name}: wgfit has no label smoothing")
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

    return json.dumps(keras.optimizers.serialize(optimizer), default=float)


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
        for m in metrics or []:
            if m not in ("accuracy", "acc", "sparse_categorical_accuracy"):
                raise ConfigError(f"metric {m!r}: wgfit reports accuracy (with cross-entropy)")
        if loss is None:
            raise ConfigError("compile needs a loss")
        self._loss = _loss_name(loss)
        self._native.compile(self._loss, _optimizer_json(optimizer), seed)
        self._compiled = True
        if self._pending_weights is not None:
            self.set_weights(self._pending_weights)
            self._pending_weights = None

    def _check_compiled(self):
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
        a = np.asarray(y)
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
        path = None
        if isinstance(x, (str, os.PathLike)):
            if y is not None:
                raise DataError("x is a file, which holds its targets: give no y")
            path, xa, yb, kind, cols = os.fspath(x), np.zeros((1, 1), np.float32), b"", "int", 1
        else:
            xa = self._x(x)
            yb, kind, cols = self._y(y, len(xa))
        validation = None
        if validation_data is not None:
            vx, vy = validation_data[0], validation_data[1]
            va = self._x(vx, "validation x")
            vyb, vkind, vcols = self._y(vy, len(va), "validation y")
            if (vkind, vcols) != (kind, cols):
                raise DataError("validation y is not of y's kind and width")
            validation = (va, len(va), vyb)
        configs = []
        for c in callbacks or []:
            if not isinstance(c, _Callback):
                raise ConfigError(f"callback {type(c).__name__}: use the classes of wgfit.callbacks")
            configs.append((type(c).__name__, json.dumps(c._config())))
        if verbose not in ("auto", 0, 1, 2):
            raise ConfigError(f"verbose={verbose!r}: \"auto\", 0, 1 or 2")
        level = 1 if verbose == "auto" else int(verbose)
        try:
            text = self._native.fit(xa, len(xa), yb, kind, cols, epochs,
                                    batch_size or 32, shuffle, seed, initial_epoch, level,
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
                                                batch_size or 32))
        if return_dict:
            return logs
        values = [logs["loss"]] + [v for k, v in logs.items() if k != "loss"]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: Optional[int] = None, verbose="auto") -> np.ndarray:
        """Keras's predict: `[rows, …output shape]` float32 (probabilities where the Keras
        model ends in a softmax)."""
        self._check_compiled()
        xa = self._x(x)
        raw = self._native.predict(xa, batch_size or 32)
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
        self._native.set_weights([np.ascontiguousarray(w, dtype=np.float32).tobytes()
                                  for w in weights])

    def save(self, filepath: str) -> None:
        """Writes `.keras` (Keras's `load_model` reads it), `.weights.h5`, `.onnx` or wgfit's
        `.safetensors`, by the extension."""
        self._check_compiled()
        self._native.save(str(filepath))

    def load_weights(self, filepath: str) -> None:
        """Reads `.keras`, `.weights.h5` or wgfit's `.safetensors` weights."""
        self._check_compiled()
        self._native.load_weights(str(filepath))

    def to_json(self) -> str:
        """The Keras config the model was made from."""
        return self._native.to_json()

    def to_keras(self):
        """The same model in Keras, holding this model's weights."""
        import keras

        model = keras.models.model_from_json(self.to_json())
        model.set_weights(self.get_weights())
        return model
