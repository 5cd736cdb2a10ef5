"""Keras's callbacks, with Keras's arguments, that wgfit runs (in Rust) during `fit`."""
from typing import Optional, Union

from ._wgfit import ConfigError


class Callback:
    """A callback wgfit knows by name; its arguments go to Rust as a config."""

    def _config(self) -> dict:
        return dict(self.__dict__)


class BackupAndRestore(Callback):
    """Keras's BackupAndRestore: the training state is saved to `backup_dir` (a directory, or
    an `s3://`/`gs://`/`az://` URL) at each save point, and a `fit` started again resumes from
    it exactly, with the bits of a run that was never interrupted. `save_freq`: "epoch", a
    number of batches, or False (only on SIGTERM/SIGINT, which always save first)."""

    def __init__(self, backup_dir: str, save_freq: Union[str, int, bool] = "epoch",
                 double_checkpoint: bool = False, delete_checkpoint: bool = True):
        self.backup_dir = str(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint


class EarlyStopping(Callback):
    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        self.monitor, self.min_delta, self.patience = monitor, min_delta, patience
        self.mode, self.baseline = mode, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch


class ModelCheckpoint(Callback):
    """Saves the weights (wgfit's safetensors, which `wgfit evaluate` and `Model.load_weights`
    read) to `filepath`, a `.safetensors` name whose `{epoch}` and `{val_loss:.2f}`-style
    fields are filled as Keras fills them. (`Model.save` writes `.keras` and `.weights.h5`.)
    With `save_best_only`, a `monitor` the run does not log is an error (Keras warns, then
    saves every time): the default `val_loss` needs validation data and a `validation_freq`
    no larger than `epochs`, and saves every n batches see `loss` (and `accuracy`) only."""

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = True,
                 mode: str = "auto", save_freq: Union[str, int] = "epoch"):
        filepath = str(filepath)
        if not filepath.lower().endswith(".safetensors"):
            raise ConfigError(f"ModelCheckpoint {filepath!r}: it writes wgfit's safetensors "
                              "weights; name the file *.safetensors (Model.save writes .keras "
                              "and .weights.h5)")
        if not save_weights_only:
            raise ConfigError("ModelCheckpoint: save_weights_only=False (a whole model in "
                              ".keras) is not written during training; it saves the weights")
        self.filepath, self.monitor, self.save_best_only = filepath, monitor, save_best_only
        self.mode, self.save_freq = mode, save_freq


class ReduceLROnPlateau(Callback):
    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        self.monitor, self.factor, self.patience, self.mode = monitor, factor, patience, mode
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr


class CSVLogger(Callback):
    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = str(filename), separator, append


class TerminateOnNaN(Callback):
    pass


__all__ = ["BackupAndRestore", "CSVLogger", "Callback", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "TerminateOnNaN"]
