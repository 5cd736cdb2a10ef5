#!/usr/bin/env python3
"""C1's peer figure: the same convnet in Keras 3 (JAX backend, CPU) on 2048 samples of 28x28x1
noise in batches of 128, Adam; steps/s of the second epoch (the first compiles).

    KERAS_BACKEND=jax python3 bench/keras_c1.py
"""
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402


class Clock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def main():
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(42)
    x = rng.random((2048, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 2048)
    for _ in range(3):
        clock = Clock()
        model.fit(x, y, epochs=2, batch_size=128, verbose=0, callbacks=[clock])
        print(f"steps/s {16 / (clock.ends[1] - clock.ends[0]):.1f}")


if __name__ == "__main__":
    main()
