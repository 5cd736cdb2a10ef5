#!/usr/bin/env python3
"""T1's peer figure: the same GPT in Keras 3 (JAX backend, CPU): 4 pre-norm blocks of causal
MultiHeadAttention (4 heads) and a GELU MLP, embedding 128, T = 64, vocabulary 65, on 512
sequences of random ids in batches of 32, Adam; tokens/s of the second epoch (the first
compiles). The position embedding is keras_hub's PositionEmbedding, written out here (keras_hub
needs TensorFlow).

    KERAS_BACKEND=jax python3 bench/keras_t1.py
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from keras_c1 import Clock  # noqa: E402

VOCABULARY, T, WIDTH, HEADS, BLOCKS, BATCH, SAMPLES = 65, 64, 128, 4, 4, 32, 512


class PositionEmbedding(keras.layers.Layer):
    """keras_hub's PositionEmbedding (its call without start_index)."""

    def __init__(self, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length

    def build(self, shape):
        self.embeddings = self.add_weight(
            name="embeddings", shape=[self.sequence_length, shape[-1]],
            initializer="glorot_uniform")

    def call(self, inputs):
        shape = ops.shape(inputs)
        table = ops.slice(ops.convert_to_tensor(self.embeddings), (0, 0), (shape[-2], shape[-1]))
        return ops.broadcast_to(table, shape)


def gpt():
    layers = keras.layers
    inputs = keras.Input(shape=(T,), dtype="int32")
    tokens = layers.Embedding(VOCABULARY, WIDTH)(inputs)
    x = layers.Add()([tokens, PositionEmbedding(T)(tokens)])
    for _ in range(BLOCKS):
        h = layers.LayerNormalization()(x)
        h = layers.MultiHeadAttention(HEADS, WIDTH // HEADS)(h, h, use_causal_mask=True)
        x = layers.Add()([x, h])
        h = layers.LayerNormalization()(x)
        h = layers.Dense(4 * WIDTH, activation="gelu")(h)
        x = layers.Add()([x, layers.Dense(WIDTH)(h)])
    logits = layers.Dense(VOCABULARY)(layers.LayerNormalization()(x))
    return keras.Model(inputs, logits)


def main():
    model = gpt()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(43)
    ids = rng.integers(0, VOCABULARY, SAMPLES * T + 1)
    x = ids[:-1].reshape(SAMPLES, T)
    y = ids[1:].reshape(SAMPLES, T)
    print(f"{model.count_params()} parameters")
    for _ in range(3):
        clock = Clock()
        model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0, callbacks=[clock])
        print(f"tokens/s {SAMPLES * T / (clock.ends[1] - clock.ends[0]):.0f}")


if __name__ == "__main__":
    main()
