"""The Python API's behaviour: the arrays it takes and refuses, files, validation data,
callbacks (and their state across a resume), weights in Keras's order, `to_keras`, the GIL
released while training, and errors as exceptions of wgfit.Error."""
import csv
import threading
import time

import numpy as np
import pytest

import wgfit
from wgfit.callbacks import BackupAndRestore, CSVLogger, EarlyStopping


def mlp_json():
    import keras

    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    return m


def compiled(json_text=None, seed=3):
    model = wgfit.Model.from_json(json_text or mlp_json().to_json())
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], seed=seed)
    return model


def weights_after_one_epoch(x, y):
    model = compiled()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    return model.get_weights()


def test_every_numeric_dtype_and_layout_trains_alike(digits_data):
    x, y = digits_data
    x, y = x[:200], y[:200]
    want = weights_after_one_epoch(x, y)
    for xv, yv in [
        (x.astype(np.float64), y.astype(np.int32)),
        (np.asfortranarray(x), y.astype(np.uint8)),
        (np.concatenate([x, x], axis=1)[:, ::2] * 0 + x, y.astype(np.float32)),  # strided
        (x.reshape(200, 8, 8, 1), y.astype(np.uint64)),
    ]:
        got = weights_after_one_epoch(xv, yv)
        assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_bad_arrays_are_refused_with_a_data_error(digits_data):
    x, y = digits_data
    model = compiled()
    cases = [
        (x.astype(object), y, "dtype object"),
        (x.astype(str), y, "dtype <U"),
        (x[:, :63], y, "the model takes"),
        (x, y[:-1], "rows"),
        (x, y - 1, "negative"),
        (x, y + 0.5, "whole numbers"),
        (x, np.full(len(y), 10), "label"),
        (x[:0], y[:0], "no rows"),
    ]
    for xv, yv, words in cases:
        with pytest.raises(wgfit.DataError, match=words):
            model.fit(xv, yv, epochs=1, verbose=0)
    assert issubclass(wgfit.DataError, wgfit.Error)


def test_unknown_configs_are_refused_by_name():
    with pytest.raises(wgfit.ConfigError, match="optimizer 'adagrad'"):
        compiled().compile(optimizer="adagrad", loss="mse")
    with pytest.raises(wgfit.ConfigError, match="loss 'hinge'"):
        compiled().compile(optimizer="sgd", loss="hinge")
    with pytest.raises(wgfit.ConfigError, match="verbose='loud'"):
        compiled().fit(np.zeros((4, 64)), np.zeros(4, int), verbose="loud")
    with pytest.raises(wgfit.ConfigError, match="verbose=-1"):
        compiled().fit(np.zeros((4, 64)), np.zeros(4, int), verbose=-1)
    with pytest.raises(wgfit.ConfigError, match="not compiled"):
        wgfit.Model.from_json(mlp_json().to_json()).predict(np.zeros((1, 64)))
    with pytest.raises(wgfit.ConfigError):
        wgfit.Model.from_json('{"class_name": "Sequential", "config": {"layers": [7]}}')


def test_a_file_trains_like_its_arrays(tmp_path, digits_data):
    from safetensors.numpy import save_file

    x, y = digits_data
    save_file({"x": x, "y": y.astype(np.uint32)}, str(tmp_path / "d.safetensors"))
    from_file = compiled()
    from_file.fit(str(tmp_path / "d.safetensors"), epochs=1, batch_size=64, seed=5, verbose=0)
    from_arrays = compiled()
    from_arrays.fit(x, y, epochs=1, batch_size=64, seed=5, verbose=0)
    for a, b in zip(from_file.get_weights(), from_arrays.get_weights()):
        assert np.array_equal(a, b)


def test_validation_data_and_history_follow_keras(digits_data):
    x, y = digits_data
    model = compiled()
    h = model.fit(x[:1500], y[:1500], epochs=2, batch_size=64, verbose=0,
                  validation_data=(x[1500:], y[1500:]))
    assert set(h.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert h.epoch == [0, 1] and len(h.history["val_loss"]) == 2
    loss, accuracy = model.evaluate(x[1500:], y[1500:])
    assert loss == pytest.approx(h.history["val_loss"][-1], rel=1e-6)
    assert model.evaluate(x, y, return_dict=True).keys() >= {"loss", "accuracy"}


def test_weights_are_keras_s_and_to_keras_predicts_the_same(digits_data):
    x, _ = digits_data
    keras_model = mlp_json()
    model = wgfit.Model.from_keras(keras_model)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    for a, b in zip(model.get_weights(), keras_model.get_weights()):
        assert a.shape == b.shape and np.array_equal(a, b)
    back = model.to_keras()
    assert np.abs(back.predict(x, verbose=0) - model.predict(x)).max() < 1e-6
    with pytest.raises(wgfit.ConfigError, match="arrays given"):
        model.set_weights(model.get_weights()[:-1])


def test_callback_state_survives_a_resume(tmp_path, digits_data):
    """A run stopped after 2 of 4 epochs (its backup kept) and resumed writes each epoch's
    CSV row once and ends with an uninterrupted run's weights; EarlyStopping's count goes on."""
    x, y = digits_data
    log, backup = tmp_path / "log.csv", tmp_path / "run.backup"

    def fit(epochs, model):
        return model.fit(x, y, epochs=epochs, batch_size=128, verbose=0, callbacks=[
            BackupAndRestore(str(backup), delete_checkpoint=False),
            CSVLogger(str(log), append=True),
            EarlyStopping(monitor="loss", patience=50)])

    first = compiled()
    fit(2, first)
    resumed = compiled()
    fit(4, resumed)
    whole = compiled()
    whole.fit(x, y, epochs=4, batch_size=128, verbose=0)
    rows = list(csv.DictReader(open(log)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    for a, b in zip(resumed.get_weights(), whole.get_weights()):
        assert np.array_equal(a, b)


def test_training_releases_the_gil(digits_data):
    x, y = digits_data
    model = compiled()
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.005)

    t = threading.Thread(target=count)
    t.start()
    before = len(ticks)
    started = time.time()
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    took = time.time() - started
    during = len(ticks) - before
    stop.set()
    t.join()
    # Held for the whole fit, the GIL would let the other thread run once or twice at most.
    assert during >= 5, f"the other thread ran {during} times in the {took:.2f} s fit ran"


def test_float32_arrays_are_read_in_place(digits_data):
    """A C-contiguous, aligned float32 array is the data set's memory (no copy); any other is
    converted once, and the native half refuses what it cannot read in place."""
    from wgfit import _wgfit

    x, _ = digits_data
    x = np.ascontiguousarray(x)
    model = compiled()

    def address(a):
        return a.__array_interface__["data"][0]

    assert model._x(x) is x
    assert _wgfit.dataset_x_address(model._x(x), len(x)) == address(x)
    unaligned = np.frombuffer(bytearray(x.nbytes + 2), dtype=np.float32, count=x.size,
                              offset=2).reshape(x.shape)
    for other in [x.astype(np.float64), np.asfortranarray(x), unaligned]:
        converted = model._x(other)
        assert converted is not other
        assert _wgfit.dataset_x_address(converted, len(x)) == address(converted)
    for wrong in [x.astype(np.float64), np.asfortranarray(x), unaligned]:
        with pytest.raises(wgfit.DataError, match="C-contiguous, aligned float32"):
            _wgfit.dataset_x_address(wrong, len(x))
