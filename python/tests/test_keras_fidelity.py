"""Keras's "Simple MNIST convnet" (Conv2D 32, MaxPooling2D, Conv2D 64, MaxPooling2D, Flatten,
Dropout, Dense softmax), built in Keras with Dropout 0, trained by wgfit through
`Model.from_keras` and by Keras's own `fit` on the same data in the same order: with SGD and
momentum for 3 epochs the weights end within 1e-5 of each other (relative to the largest),
and with Adam after one step. Over many Adam steps they part (2e-2 after 3 epochs, the
README's Step 16 table): Adam divides by √v, so a parameter whose gradient is near 0 moves by
about the learning rate in a direction rounding decides, in either run. The data are random
28x28x1 images with random labels (as tests/keras/compare_convnet.py's): images with exact
ties, such as upscaled digits, let the two break a max-pooling tie differently, after which
the runs part by more than rounding (9.8e-4 measured on the digits scaled up 3x)."""
import numpy as np

import wgfit


def simple_mnist_convnet(seed):
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.0), layers.Dense(10, activation="softmax")])


def apart_after(optimizer, samples, epochs):
    """max |wgfit - Keras| / max |Keras| over the weights after both trained the convnet
    from the same initial weights with `optimizer()` on the same batches of 32."""
    rng = np.random.default_rng(11)
    images = rng.random((samples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, samples)
    model = simple_mnist_convnet(1)
    ours = wgfit.Model.from_keras(model)
    ours.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    ours.fit(images, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0)
    model.fit(images, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0)
    largest = max(np.abs(w).max() for w in model.get_weights())
    return max(np.abs(a - b).max() for a, b in zip(ours.get_weights(), model.get_weights())) / largest


def test_the_simple_mnist_convnet_ends_where_keras_ends():
    import keras

    momentum = apart_after(lambda: keras.optimizers.SGD(0.01, momentum=0.9), 256, 3)
    adam_step = apart_after(lambda: keras.optimizers.Adam(1e-3), 32, 1)
    print(f"Simple MNIST convnet: SGD with momentum, 3 epochs (24 steps) {momentum:.2e}; "
          f"Adam, 1 step {adam_step:.2e}")
    assert momentum <= 1e-5
    assert adam_step <= 1e-5
