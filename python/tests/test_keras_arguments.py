"""Keras's arguments as Keras means them, and the mistakes Keras refuses refused here too:
default learning rates, schedules, gradient accumulation, whole-number callback arguments,
batch sizes, weights' shapes, labels, non-finite losses, and a model used from another
thread or after a refused compile."""
import concurrent.futures
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import wgfit
from wgfit.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint


def small(loss="sparse_categorical_crossentropy", optimizer="sgd", last="softmax"):
    import keras

    keras.utils.set_random_seed(0)  # the same first weights in every call
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3, activation=last)])
    model = wgfit.Model.from_keras(m)
    model.compile(optimizer=optimizer, loss=loss, seed=5)
    return model


def data(rows=12):
    rng = np.random.default_rng(1)
    return rng.random((rows, 4), dtype=np.float32), np.arange(rows) % 3


def step_change(optimizer):
    """The first kernel's change after one full batch."""
    x, y = data(8)
    model = small(optimizer=optimizer)
    before = model.get_weights()[0]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    return model.get_weights()[0] - before


def test_sgd_by_name_takes_kerass_default_rate_of_0_01():
    import keras

    by_name = step_change("sgd")
    by_object = step_change(keras.optimizers.SGD())
    assert np.abs(by_name).max() > 0
    np.testing.assert_array_equal(by_name, by_object)
    np.testing.assert_allclose(by_name, step_change(keras.optimizers.SGD(0.01)))


def test_a_learning_rate_schedule_compiles_and_sets_the_rate():
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = small(optimizer=keras.optimizers.SGD(schedule))
    x, y = data()
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    # Three steps an epoch: the rate after each epoch's last step halves three times.
    rates = history.history["learning_rate"]
    np.testing.assert_allclose(rates[1] / rates[0], 0.125, rtol=1e-5)
    steps = keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    small(optimizer=keras.optimizers.Adam(steps)).fit(x, y, epochs=1, batch_size=4, verbose=0)


def test_gradient_accumulation_is_taken_not_ignored():
    import keras

    plain = step_change(keras.optimizers.SGD(0.1))
    accumulated = step_change(keras.optimizers.SGD(0.1, gradient_accumulation_steps=2))
    # One batch of two accumulated: no update yet.
    assert np.abs(plain).max() > 0
    assert np.abs(accumulated).max() == 0


def test_losses_by_function_or_other_spelling_and_their_unsupported_options():
    import keras

    small(loss=keras.losses.mean_squared_error, last="linear")
    small(loss="MSE", last="linear")
    for loss, words in [
        (keras.losses.SparseCategoricalCrossentropy(ignore_class=0), "ignore_class"),
        (keras.losses.SparseCategoricalCrossentropy(reduction="sum"), "reduction 'sum'"),
    ]:
        with pytest.raises(wgfit.ConfigError, match=words):
            small(loss=loss)
    model = small()
    with pytest.raises(wgfit.ConfigError, match="with cross-entropy, not with mse"):
        model.compile(optimizer="sgd", loss="mse", metrics="accuracy")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics="accuracy")


def test_a_softmax_output_trains_with_cross_entropy_only():
    # Its probabilities would otherwise be trained as logits, and softmaxed in predict.
    with pytest.raises(wgfit.ConfigError, match="ends in a softmax"):
        small(loss="mse")


def test_a_refused_compile_leaves_the_last_one_in_force():
    model = small(loss="mse", last="linear")
    with pytest.raises(wgfit.ConfigError, match="nadam"):
        model.compile(optimizer="nadam", loss="sparse_categorical_crossentropy")
    x, _ = data()
    # Still mse: negative, fractional targets are regression targets, not class labels.
    model.fit(x, -x[:, :3] / 3, epochs=1, batch_size=4, verbose=0)


def test_callback_counts_are_whole_numbers():
    x, y = data()
    model = small()
    stop = EarlyStopping(monitor="loss", patience=np.int64(2), min_delta=np.float32(10.0))
    history = model.fit(x, y, epochs=6, batch_size=4, verbose=0, callbacks=[stop])
    assert len(history.epoch) == 3
    for bad in [2.5, -1]:
        with pytest.raises(wgfit.ConfigError, match="patience"):
            model.fit(x, y, epochs=2, batch_size=4, verbose=0,
                      callbacks=[EarlyStopping(monitor="loss", patience=bad)])
    with pytest.raises(wgfit.ConfigError, match="separator"):
        model.fit(x, y, epochs=1, batch_size=4, verbose=0,
                  callbacks=[CSVLogger("log.csv", separator=";;")])
    for name in ["best.keras", "w.weights.h5"]:
        with pytest.raises(wgfit.ConfigError, match=r"\*\.safetensors"):
            ModelCheckpoint(name)
    with pytest.raises(wgfit.ConfigError, match="save_weights_only"):
        ModelCheckpoint("w.safetensors", save_weights_only=False)


def test_batch_sizes_as_keras_takes_them():
    x, y = data(8)
    model = small()
    # Fewer rows than the default 32: one batch of them, as in Keras.
    model.fit(x, y, epochs=1, verbose=0)
    for bad in [0, -4]:
        with pytest.raises(wgfit.ConfigError, match="batch_size"):
            model.fit(x, y, epochs=1, batch_size=bad, verbose=0)
    with pytest.raises(wgfit.ConfigError, match="epochs=-1"):
        model.fit(x, y, epochs=-1, verbose=0)


def test_weights_of_the_wrong_shape_are_refused():
    model = small()
    weights = model.get_weights()
    for bad in [[weights[0].T, *weights[1:]],
                [weights[0].reshape(2, 16), *weights[1:]],
                weights[:-1]]:
        with pytest.raises(wgfit.ConfigError, match="set_weights"):
            model.set_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


def test_labels_that_would_be_read_as_others_are_refused():
    x, y = data()
    model = small()
    for bad, words in [
        (np.eye(3)[y], "one-hot"),
        (np.where(y == 0, 2**32, y), "beyond"),
        (None, "y is missing"),
        (1, "single value"),
    ]:
        with pytest.raises(wgfit.DataError, match=words):
            model.fit(x, bad, epochs=1, batch_size=4, verbose=0)
    # A column of labels is one label per row, also for an output of [1, 1, classes].
    model.fit(x, y.reshape(-1, 1), epochs=1, batch_size=4, verbose=0)
    import keras

    image = keras.Sequential([keras.Input((1, 1, 4)), keras.layers.Dense(3, activation="softmax")])
    pixel = wgfit.Model.from_keras(image)
    pixel.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    pixel.fit(x.reshape(-1, 1, 1, 4), y.reshape(-1, 1), epochs=1, batch_size=4, verbose=0)
    with pytest.raises(wgfit.DataError, match="sample weights"):
        model.fit(x, y, epochs=1, batch_size=4, verbose=0,
                  validation_data=(x, y, np.ones(len(y))))


def test_a_non_finite_loss_is_a_float_not_none():
    x, _ = data()
    model = small(loss="mse", last="linear")
    loss = model.evaluate(x * 1e30, np.full((len(x), 3), 1e30, np.float32), verbose=0)
    assert isinstance(loss, float) and not np.isfinite(loss)


def test_a_model_used_from_another_thread_raises_an_error():
    model = small()
    x, _ = data()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(wgfit.Error, match="thread that made it"):
            pool.submit(model.predict, x).result()
    model.predict(x, verbose=0)


def test_ctrl_c_after_a_fit_with_a_backup_is_keyboard_interrupt_again(tmp_path):
    # In a process of its own: the signal goes to the whole interpreter.
    script = textwrap.dedent(f"""
        import os, signal, time
        import numpy as np
        import wgfit
        from wgfit.callbacks import BackupAndRestore
        model = wgfit.Model.from_json(open({str(tmp_path / 'm.json')!r}).read())
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
        model.fit(x, np.arange(8) % 3, batch_size=4, verbose=0,
                  callbacks=[BackupAndRestore({str(tmp_path / 'b')!r})])
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("no interrupt")
        except KeyboardInterrupt:
            print("interrupted, still running")
    """)
    import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    (tmp_path / "m.json").write_text(m.to_json())
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "interrupted, still running", out.stdout + out.stderr
